"""A pytest plugin: write a fault-injection test in a few lines.

    def test_paxos_survives_partitions(tobtest_cluster):
        result = tobtest_cluster.run(protocol="paxos", nemesis="partition", time_limit_s=10)
        assert result.valid is True, result.summary()

The `tobtest_cluster` fixture runs real tests (real node and proxy processes) in a store
under pytest's tmp_path, and after the test ends every process any of its runs started,
failing the test if one outlived its run. It is registered as a pytest plugin through the
`pytest11` entry point, so installing tobtest makes it available.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tobtest.config import TestConfig
from tobtest.nemesis.registry import parse_nemesis_list
from tobtest.runner import Runner, RunResult


class TobtestCluster:
    """Runs tests with tobtest's runner; every run gets its own folder in `store`."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.results: list[RunResult] = []

    def run(self, **options: Any) -> RunResult:
        """Runs one test. Options are `TestConfig` fields; `nemesis` may be "a,b" or a list."""
        nemesis = options.pop("nemesis", ["partition"])
        if isinstance(nemesis, str):
            nemesis = parse_nemesis_list(nemesis)
        known = {f.name for f in dataclasses.fields(TestConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown tobtest option(s) {unknown}; known: {sorted(known)}")
        config = TestConfig(store=str(self.store), nemesis=list(nemesis), **options)
        result = asyncio.run(Runner(config).run())
        self.results.append(result)
        return result

    def leftover_pids(self) -> list[int]:
        """Node or proxy processes of this fixture's runs that are still alive."""
        alive = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = proc.info.get("cmdline") or []
            if proc.info.get("status") == psutil.STATUS_ZOMBIE:
                continue
            if any(str(self.store) in part for part in cmdline) or _run_dir_in(proc, self.store):
                alive.append(proc.pid)
        return alive


def _run_dir_in(proc: psutil.Process, store: Path) -> bool:
    """Whether a cluster of a run in `store` started `proc` (any node kind: by environment)."""
    from tobtest.cluster import RUN_DIR_ENV

    try:
        return proc.environ().get(RUN_DIR_ENV, "").startswith(str(store))
    except (psutil.Error, OSError):
        return False


def _summary(self: RunResult) -> str:
    lines = [f"verdict {self.valid}; store {self.run_path}"]
    for name, result in self.results.get("checkers", {}).items():
        kinds = ", ".join(result.get("anomaly_types") or [])
        lines.append(f"  {name}: {result.get('valid')} {kinds}".rstrip())
    lines.append(f"reproduce with: {self.results.get('reproduce', '')}")
    return "\n".join(lines)


RunResult.summary = _summary  # type: ignore[attr-defined]


@pytest.fixture
def tobtest_cluster(tmp_path: Path) -> Iterator[TobtestCluster]:
    harness = TobtestCluster(tmp_path / "tobtest-store")
    yield harness
    pids = harness.leftover_pids()
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            continue
    assert not pids, f"tobtest processes outlived their run: {pids}"
