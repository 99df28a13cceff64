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


def run_with_console(config: TestConfig) -> int:
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

    runner = Runner(config, on_progress)
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


def run_suite_with_console(suite_path: Path, store: str, junit_path: Path | None) -> int:
    """Runs every case of a suite in turn, printing a row as each finishes."""
    import asyncio

    from rich.table import Table

    from tobtest.exits import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID
    from tobtest.runner import Runner
    from tobtest.suite import CaseResult, case_name, junit_xml, load_suite, summarize

    suite = load_suite(suite_path, store)
    out = Console()
    out.print(f"suite {suite.name}: {len(suite.cases)} cases", highlight=False)
    results: list[CaseResult] = []
    try:
        for number, config in enumerate(suite.cases, 1):
            started = time.monotonic()
            runner = Runner(config)
            try:
                result = asyncio.run(runner.run())
                case = CaseResult(
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
                case = CaseResult(
                    config, "unknown", str(runner.store.path), time.monotonic() - started,
                    f"crashed: {message}", error=message,
                )  # fmt: skip
            results.append(case)
            line = Text(f"[{number}/{len(suite.cases)}] {case_name(config):<50} ")
            line.append(verdict_text(case.valid), style=verdict_style(case.valid))
            line.append(f"  {case.duration_s:5.1f} s  {case.run_path}")
            out.print(line, highlight=False)
    except (KeyboardInterrupt, asyncio.CancelledError):
        out.print("tobtest: suite interrupted; every process it started has been ended")
        return EXIT_INTERRUPTED
    finally:
        if junit_path is not None:
            junit_path.parent.mkdir(parents=True, exist_ok=True)
            junit_path.write_text(junit_xml(suite.name, results))
    table = Table(title=f"suite {suite.name}")
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
    if junit_path is not None:
        out.print(f"JUnit XML: {junit_path}", highlight=False)
    if any(c.valid is False for c in results):
        return EXIT_INVALID
    if any(c.valid is not True for c in results):
        return EXIT_UNKNOWN
    return EXIT_VALID
