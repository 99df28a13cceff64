"""Suite cases run N at a time, each in a process of its own: `tobtest run --suite F --jobs N`.

    results = Fanout(Path("suite.yaml"), "store", jobs=2).run(cases, on_done=print_row)

Why processes and not one event loop: a case's checker is CPU-bound Python, and in a shared
loop it would stall the other cases' clients and nemeses (op timeouts, late faults). Each
case runs in `python -m tobtest.fanout ...` (this module's `worker_main`), which loads the
same suite file, runs its one case with a `Runner`, and writes a small result file. What it
prints (progress, the verdict) goes to the case's own `console.log` in its run folder; the
parent alone writes to the terminal, one line per finished case, so lines never interleave.

Ports: every case gets its own block of consecutive ports from `PortLeases` (below the OS's
ephemeral range, no two live blocks overlapping), passed as its `--base-port`. A case whose
proxy or node still finds a port taken (a process outside this suite bound it between the
check and the bind) failed before any op ran; it is started again on a fresh block, at most
`PORT_ATTEMPTS` times, and its line says so.

Ending: each case process has its own session, so a Ctrl-C in the terminal reaches only the
parent, which sends SIGTERM to every running case by pid; a case ends its cluster as
`tobtest run` does on SIGTERM, keeps its history, and exits. One still there after
`STOP_TIMEOUT_S` gets SIGKILL (its nodes and proxy watch their parent and exit with it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from tobtest.cluster import last_line
from tobtest.config import TestConfig
from tobtest.ports import PortInUse, PortLeases, ports_needed
from tobtest.suite import CaseResult, case_key, load_suite, summarize

PORT_ATTEMPTS = 3
POLL_S = 0.1
STOP_TIMEOUT_S = 20.0
CONSOLE_LOG = "console.log"  # a case's own output, in its run folder


def cpus() -> int:
    """CPUs this process may run on (all of them where that cannot be asked)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def effective_jobs(requested: int, cases: int, cpu_count: int) -> tuple[int, str | None]:
    """How many cases to run at once, and a one-line notice when that is fewer than asked.

    Capped at the CPU count: a case is a cluster of node processes, a proxy and a harness
    that checks the history in Python, and cases that wait for a CPU time out on ops and
    report unknowns that are the machine's, not the protocol's.

    >>> effective_jobs(4, 10, 2)
    (2, '--jobs 4 is more than the 2 CPUs here; running 2 cases at a time')
    >>> effective_jobs(2, 10, 2)
    (2, None)
    """
    jobs = max(1, min(requested, cases))
    if jobs > cpu_count:
        notice = (
            f"--jobs {requested} is more than the {cpu_count} CPUs here; "
            f"running {cpu_count} cases at a time"
        )
        return cpu_count, notice
    return jobs, None


def key_digest(config: TestConfig) -> str:
    return hashlib.sha256(case_key(config).encode()).hexdigest()[:16]


@dataclass
class _Running:
    index: int
    config: TestConfig
    base_port: int
    attempt: int
    popen: subprocess.Popen[bytes]
    output: IO[bytes]
    output_path: Path
    result_path: Path
    started: float


class Fanout:
    """Runs suite cases `jobs` at a time in case processes; see the module docstring."""

    def __init__(
        self, suite_path: Path, store: str, jobs: int, leases: PortLeases | None = None
    ) -> None:
        self.suite_path = suite_path
        self.store = store
        self.jobs = jobs
        self.leases = leases or PortLeases()

    def run(
        self,
        cases: list[tuple[int, TestConfig]],
        on_done: Callable[[int, CaseResult], None],
    ) -> dict[int, CaseResult]:
        """Runs `cases` (index in the suite file, config); calls `on_done` as each ends."""
        results: dict[int, CaseResult] = {}
        pending = collections.deque((index, config, 1) for index, config in cases)
        running: list[_Running] = []
        with tempfile.TemporaryDirectory(prefix="tobtest-fanout-") as scratch, _term_as_interrupt():
            try:
                # Bounded: each case starts at most PORT_ATTEMPTS times and each case process
                # ends with its own time limit.
                while pending or running:
                    while pending and len(running) < self.jobs:
                        running.append(self._start(*pending.popleft(), Path(scratch)))
                    time.sleep(POLL_S)
                    for case in [c for c in running if c.popen.poll() is not None]:
                        running.remove(case)
                        retry = self._finish(case)
                        if retry:
                            pending.appendleft((case.index, case.config, case.attempt + 1))
                            continue
                        results[case.index] = self._result(case)
                        on_done(case.index, results[case.index])
            finally:
                self._end_all(running)
        return results

    def _start(self, index: int, config: TestConfig, attempt: int, scratch: Path) -> _Running:
        base_port = self.leases.lease(ports_needed(config.nodes))
        output_path = scratch / f"case-{index}-{attempt}.out"
        result_path = scratch / f"case-{index}-{attempt}.json"
        output = output_path.open("wb")
        argv = [
            sys.executable, "-m", "tobtest.fanout",
            "--suite", str(self.suite_path), "--store", self.store, "--case", str(index),
            "--key", key_digest(config), "--base-port", str(base_port),
            "--result", str(result_path),
        ]  # fmt: skip
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Own session: a terminal's Ctrl-C reaches the parent only, which then ends each
            # case in order (SIGTERM, the case stops its cluster) instead of all at once.
            start_new_session=True,
        )
        return _Running(
            index, config, base_port, attempt, popen, output, output_path, result_path,
            time.monotonic(),
        )  # fmt: skip

    def _finish(self, case: _Running) -> bool:
        """Releases the case's ports and keeps its output; True if it must start again."""
        self._keep_output(case)
        self.leases.release(case.base_port)
        data = self._read_result(case)
        return bool(data.get("port_in_use")) and case.attempt < PORT_ATTEMPTS

    def _keep_output(self, case: _Running) -> None:
        """Copies what the case process printed into its run folder, as console.log."""
        case.output.close()
        run_path = self._read_result(case).get("run_path")
        if run_path and Path(run_path).is_dir():
            with contextlib.suppress(OSError):
                shutil.copyfile(case.output_path, Path(run_path) / CONSOLE_LOG)

    def _read_result(self, case: _Running) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(case.result_path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _result(self, case: _Running) -> CaseResult:
        data = self._read_result(case)
        duration_s = float(data.get("duration_s") or time.monotonic() - case.started)
        retried = f" (started {case.attempt} times: ports taken)" if case.attempt > 1 else ""
        if not data:
            last = last_line(case.output_path)
            message = f"case process exited {case.popen.returncode}: {last}"
            return CaseResult(
                case.config, "unknown", "", duration_s, f"crashed: {message}", error=message
            )
        return CaseResult(
            case.config,
            data.get("valid", "unknown"),
            str(data.get("run_path") or ""),
            duration_s,
            str(data.get("summary") or "") + retried,
            error=data.get("error"),
        )

    def _end_all(self, running: list[_Running]) -> None:
        """Ends every case process still running: SIGTERM by pid, then SIGKILL."""
        for case in running:
            with contextlib.suppress(ProcessLookupError):
                case.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for case in running:
            try:
                case.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                case.popen.kill()
                case.popen.wait(timeout=STOP_TIMEOUT_S)
            self._keep_output(case)
            self.leases.release(case.base_port)


@contextlib.contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the parent as Ctrl-C does: every case process is ended first."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- the case process ----------------------------------------------------------------------


def worker_main(argv: list[str]) -> int:
    """Runs one case of a suite file and writes its result file (JSON)."""
    parser = argparse.ArgumentParser(prog="python -m tobtest.fanout")
    for flag in ("--suite", "--store", "--key", "--result"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--case", type=int, required=True)
    parser.add_argument("--base-port", type=int, required=True)
    args = parser.parse_args(argv)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Outside the event loop (setting up, checking) SIGTERM interrupts like Ctrl-C.
    signal.signal(signal.SIGTERM, interrupt)
    config = load_suite(Path(args.suite), args.store).cases[args.case]
    if key_digest(config) != args.key:
        print(f"case {args.case} of {args.suite} is not the case asked for: the file changed")
        return 1
    config.base_port = args.base_port
    result = _run_case(config)
    tmp = Path(args.result + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, args.result)
    return 0


def _run_case(config: TestConfig) -> dict[str, Any]:
    from tobtest.console import print_results, progress_line
    from tobtest.runner import Progress, Runner

    started = time.monotonic()
    last_progress = [0.0]

    def on_progress(p: Progress) -> None:
        if time.monotonic() - last_progress[0] >= 5.0 or p.phase == "check":
            last_progress[0] = time.monotonic()
            print(progress_line(p), flush=True)

    result: dict[str, Any] = {"valid": "unknown", "summary": "", "error": None}
    runner: Runner | None = None
    print(f"tobtest: {config.test_name}, seed {config.seed}, ports from {config.base_port}")
    try:
        runner = Runner(config, on_progress)
        result["run_path"] = str(runner.store.path)

        async def main() -> Any:
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
            return await runner.run()

        run_result = asyncio.run(main())
        result["valid"] = run_result.valid
        result["summary"] = summarize(run_result.results)
        print_results(run_result.results, run_result.run_path)
    except PortInUse as exc:
        result.update(error=f"PortInUse: {exc}", summary=f"crashed: {exc}", port_in_use=True)
    except (KeyboardInterrupt, asyncio.CancelledError):
        result.update(error="interrupted", summary="interrupted")
        print("tobtest: interrupted; every process it started has been ended")
        if runner is not None:
            runner.write_report()
    except Exception as exc:  # one crashed case is that case's verdict, not the suite's end
        message = f"{type(exc).__name__}: {exc}"
        result.update(error=message, summary=f"crashed: {message}")
        print(f"tobtest: crashed: {message}")
    result["duration_s"] = time.monotonic() - started
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
