"""What a person sees of a run in the terminal: live progress, then the verdict.

    exit_code = run_with_console(TestConfig(time_limit_s=10))

On a terminal the progress is a live line (rich); elsewhere (CI, a pipe) it is a plain line
every few seconds, so logs stay readable.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from tobtest.config import TestConfig
from tobtest.runner import Progress, Runner

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
    from tobtest.cli import EXIT_INTERRUPTED, exit_code_for

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
            err.print(progress_line(p), highlight=False, markup=False)

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
        out.print(line)
    valid = results.get("valid")
    ops = results.get("ops")
    if ops:
        out.print(
            f"  ops: ok {ops.get('ok', 0)}, fail {ops.get('fail', 0)}, info {ops.get('info', 0)}; "
            f"faults applied: {results.get('faults_applied', 0)}",
            highlight=False,
        )
    out.print(f"  {label}: {run_path}", highlight=False)
    verdict = Text("Verdict: ")
    verdict.append(verdict_text(valid), style=verdict_style(valid))
    out.print(verdict)
    if valid is not True and results.get("reproduce"):
        out.print(f"reproduce with: {results['reproduce']}", highlight=False, soft_wrap=True)
    sys.stdout.flush()
