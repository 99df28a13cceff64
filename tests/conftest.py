"""Shared fixtures: where the shared corpus lives, and a check that no process is left."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import psutil

from tobtest.cluster import RUN_DIR_ENV

REPO = Path(__file__).resolve().parent.parent


def tobtest_processes(store: Path | None = None) -> list[psutil.Process]:
    """Live node and proxy processes; with `store`, only those of runs in that store.

    A node's command line names its data directory and the proxy's names its config, both
    inside the run folder, so a test that gives each run its own store finds its own.
    """
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if store is not None and _started_for(proc, store):
            found.append(proc)  # any node kind: the cluster marks what it starts
            continue
        if not any(part in ("tobtest.node", "tobtest.nemesis.proxy") for part in cmdline):
            continue
        if store is not None and not any(str(store) in part for part in cmdline):
            continue
        found.append(proc)
    return found


def _started_for(proc: psutil.Process, store: Path) -> bool:
    """Whether a cluster of a run in `store` started `proc` (RUN_DIR_ENV in its environment)."""
    try:
        run_dir = proc.environ().get(RUN_DIR_ENV, "")
    except (psutil.Error, OSError):
        return False
    return run_dir.startswith(str(store))


def wait_gone(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    """Waits until none of `pids` runs; returns those still running at the timeout."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def assert_no_processes_left(store: Path, timeout_s: float = 5.0) -> None:
    """Fails if a node or proxy of a run in `store` is still alive after `timeout_s`."""
    alive = wait_gone([p.pid for p in tobtest_processes(store)], timeout_s=timeout_s)
    for pid in alive:  # end them so that one failure does not cascade, then fail
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    assert not alive, f"processes left behind: {alive}"


def tobtest_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "tobtest", *args]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env
