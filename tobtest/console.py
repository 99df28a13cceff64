"""What a person sees of a run in the terminal: live progress, then the verdict.

    exit_code = run_with_console(TestConfig(time_limit_s=10))

On a terminal the progress is a live line (rich); elsewhere (CI, a pipe) it is a plain line
every few seconds, so logs stay readable.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:  # the runner (and asyncio) load only with a run: `tobtest check` prints here
    from tobtest.config import TestConfig
    from tobtest.runner import Progress
    from tobtest.suite import CaseResult, Shard

PLAIN_PROGRESS_EVERY_S = 5.0
VERDICT_STYLE = {True: "bold green", False: "bold red"}


def verdict_text(valid: Any) -> str:
    if valid is True:
        return "VALID"
    return "INVALID" if valid is False else "UNKNOWN"


def verdict_style(valid: Any) -> str:
    return VERDICT_STYLE[valid] if isinstance(valid, bool) else "bold yellow"


def progress_line(p: Progress) -> str:
    counts = p.counts
    return (
        f"[{p.phase}] {p.elapsed_s:5.1f}/{p.time_limit_s:g} s  "
        f"ok {counts['ok']}  fail {counts['fail']}  info {counts['info']}  "
        f"faults {p.faults_applied}  now: {p.fault}"
    )


def run_with_console(config: TestConfig, remote: Any = None) -> int:
    """Runs one test with progress on stderr; `remote` (a tobtest.remote.RemoteSetup) puts
    its nodes on other hosts."""
    import asyncio

    from tobtest.exits import EXIT_INTERRUPTED, exit_code_for
    from tobtest.runner import Runner

    out = Console(stderr=False)
    err = Console(stderr=True)
    interactive = out.is_terminal
    last_plain = [0.0]
    live = (
        Live(Text(""), console=err, refresh_per_second=4, transient=True) if interactive else None
    )

    def on_progress(p: Progress) -> None:
        if live is not None:
            live.update(Text(progress_line(p)))
        elif time.monotonic() - last_plain[0] >= PLAIN_PROGRESS_EVERY_S or p.phase == "check":
            last_plain[0] = time.monotonic()
            err.print(progress_line(p), highlight=False, markup=False, soft_wrap=True)

    runner = Runner(config, on_progress, remote)
    err.print(f"tobtest: {config.test_name}, seed {config.seed}", highlight=False)

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None
        # SIGTERM ends a run as Ctrl-C does: the runner's finally blocks stop every process.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await runner.run()

    try:
        if live is not None:
            live.start()
        try:
            result = asyncio.run(main())
        finally:
            if live is not None:
                live.stop()
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print(
            f"tobtest: interrupted; every process it started has been ended; "
            f"history kept in {runner.store.path}",
            highlight=False,
        )
        runner.write_report()  # a NOT CHECKED page that still shows the history
        return EXIT_INTERRUPTED
    print_results(result.results, result.run_path, out)
    return exit_code_for(result.valid)


def print_results(
    results: dict[str, Any], run_path: Path, out: Console | None = None, label: str = "store"
) -> None:
    out = out or Console()
    for name, result in results.get("checkers", {}).items():
        valid = result.get("valid")
        line = Text(f"  {name}: ")
        line.append(verdict_text(valid), style=verdict_style(valid))
        if result.get("anomaly_types"):
            line.append(f"  anomalies: {', '.join(result['anomaly_types'])}")
        if result.get("error"):
            line.append(f"  error: {result['error']}")
        elif valid is not True and valid is not False and result.get("reasons"):
            line.append(f"  ({'; '.join(map(str, result['reasons']))})")
        out.print(line, soft_wrap=True)
    valid = results.get("valid")
    ops = results.get("ops")
    if ops:
        out.print(
            f"  ops: ok {ops.get('ok', 0)}, fail {ops.get('fail', 0)}, info {ops.get('info', 0)}; "
            f"faults applied: {results.get('faults_applied', 0)}",
            highlight=False,
        )
    network = results.get("network")
    if network and network.get("messages_per_op") is not None:
        out.print(
            f"  messages: {network['messages']} node-to-node, "
            f"{network['messages_per_op']:g} per op",
            highlight=False,
        )
    if results.get("node_note"):
        out.print(f"  note: {results['node_note']}", highlight=False)
    out.print(f"  {label}: {run_path}", highlight=False)
    if (run_path / "report.html").exists():
        out.print(f"  report: {run_path / 'report.html'}", highlight=False)
    verdict = Text("Verdict: ")
    verdict.append(verdict_text(valid), style=verdict_style(valid))
    out.print(verdict)
    if valid is not True and results.get("reproduce"):
        out.print(f"reproduce with: {results['reproduce']}", highlight=False, soft_wrap=True)
    sys.stdout.flush()


def run_suite_with_console(
    suite_path: Path,
    store: str,
    junit_path: Path | None,
    jobs: int = 1,
    shard: Shard | None = None,
) -> int:
    """Runs the cases of a suite (of one shard of it), one after another or `jobs` at a
    time (tobtest/fanout.py), printing a row as each finishes, then a table."""
    import asyncio

    from tobtest.exits import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID
    from tobtest.fanout import Fanout, cpus, effective_jobs
    from tobtest.suite import case_name, junit_xml, load_suite, shard_cases

    suite = load_suite(suite_path, store)
    cases = shard_cases(suite.cases, shard)
    out = Console()
    jobs, notice = effective_jobs(jobs, len(cases), cpus())
    if notice is not None:
        Console(stderr=True).print(f"tobtest: {notice}", highlight=False)
    of_shard = f" (shard {shard} of {len(suite.cases)})" if shard is not None else ""
    at_once = f", {jobs} at a time" if jobs > 1 else ""
    out.print(f"suite {suite.name}: {len(cases)} cases{of_shard}{at_once}", highlight=False)
    results: dict[int, CaseResult] = {}

    def on_done(index: int, case: CaseResult) -> None:
        results[index] = case
        line = Text(f"[{len(results)}/{len(cases)}] {case_name(case.config):<50} ")
        line.append(verdict_text(case.valid), style=verdict_style(case.valid))
        line.append(f"  {case.duration_s:5.1f} s  {case.run_path}")
        out.print(line, highlight=False, soft_wrap=True)  # one line per case, never wrapped

    try:
        if jobs == 1:
            for index, config in cases:
                on_done(index, _run_case_here(config))
        else:
            Fanout(suite_path, store, jobs).run(cases, on_done)
    except (KeyboardInterrupt, asyncio.CancelledError):
        out.print("tobtest: suite interrupted; every process it started has been ended")
        return EXIT_INTERRUPTED
    finally:
        ended = [results[index] for index in sorted(results)]  # file order, not finish order
        if junit_path is not None:
            junit_path.parent.mkdir(parents=True, exist_ok=True)
            junit_path.write_text(junit_xml(suite.name, ended, shard))
    title = f"suite {suite.name}" + (f" shard {shard}" if shard is not None else "")
    print_suite_table(title, ended, out)
    if junit_path is not None:
        out.print(f"JUnit XML: {junit_path}", highlight=False)
    if any(c.valid is False for c in ended):
        return EXIT_INVALID
    if any(c.valid is not True for c in ended):
        return EXIT_UNKNOWN
    return EXIT_VALID


def _run_case_here(config: TestConfig) -> CaseResult:
    """One case in this process (the suite's --jobs 1)."""
    import asyncio

    from tobtest.runner import Runner
    from tobtest.suite import CaseResult, summarize

    started = time.monotonic()
    runner = Runner(config)
    try:
        result = asyncio.run(runner.run())
        return CaseResult(
            config,
            result.valid,
            str(result.run_path),
            time.monotonic() - started,
            summarize(result.results),
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise
    except Exception as exc:  # one crashed case must not stop the suite
        message = f"{type(exc).__name__}: {exc}"
        return CaseResult(
            config, "unknown", str(runner.store.path), time.monotonic() - started,
            f"crashed: {message}", error=message,
        )  # fmt: skip


def print_suite_table(title: str, results: list[CaseResult], out: Console) -> None:
    """The verdict table: a row per case, in the suite file's order."""
    from rich.table import Table

    from tobtest.suite import case_name

    table = Table(title=title)
    for column in ("case", "verdict", "anomalies", "seconds"):
        table.add_column(column)
    for case in results:
        kinds = ", ".join(
            line.split("anomalies: ")[1].split(" error:")[0]
            for line in case.summary.splitlines()
            if "anomalies: " in line
        )
        table.add_row(
            case_name(case.config),
            Text(verdict_text(case.valid), style=verdict_style(case.valid)),
            kinds,
            f"{case.duration_s:.1f}",
        )
    out.print(table)
