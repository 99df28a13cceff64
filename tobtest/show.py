"""`tobtest show`: a stored run in the terminal, the few facts that explain it.

    show_run(find_run(Path("store"), None), Console())   # what `tobtest show` prints
    show_list(Path("store"), Console())                  # what `tobtest show --list` prints

For one run: the verdict of each checker, what the nemesis explored (faults by kind and
move, the protocol situations they struck in, leader changes, elections, restarts from a
log, abstract states reached, and one sentence: "Verdict VALID after 7 faults: 2 aimed at
the leader, ..."; for an invalid run, the faults in force at each kind's first anomaly), key
figures (duration, ok ops/s, latency p50/p99
of ok ops), op counts by f and outcome, the faults applied, and the anomalies, each with
the checker's sentence and the ops involved (a few per anomaly, a few anomalies per kind:
the report has them all). Reads the run folder only (tobtest.checker.report_data), so it
works on a partial run too, and says what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tobtest.checker.report_data import (
    exploration,
    faults_around,
    figures,
    list_runs,
    load_run,
    verdict_word,
)
from tobtest.checker.report_explain import checker_sections

ANOMALIES_PER_KIND = 3
OPS_PER_ANOMALY = 4
FAULTS_SHOWN = 12
VERDICT_STYLES = {"VALID": "bold green", "INVALID": "bold red", "UNKNOWN": "bold yellow"}


def verdict_text(valid: Any) -> Text:
    word = verdict_word(valid)
    return Text(word, style=VERDICT_STYLES.get(word, "bold"))


def show_run(run_dir: Path, out: Console) -> None:
    """Prints one run; never raises on a partial run."""
    run = load_run(run_dir)
    head = Text(f"{run.test_name}  ", style="bold")
    head.append(verdict_text(run.valid))
    head.append(f"  {run_dir}", style="dim")
    out.print(head)
    for note in run.notes:
        out.print(Text(f"  note: {note}", style="yellow"))
    results = run.results or {}
    seed = results.get("seed", run.config.get("seed"))
    if seed is not None:
        out.print(Text(f"  seed {seed}"))
    if results.get("reproduce"):
        out.print(Text(f"  reproduce with: {results['reproduce']}"))
    sections = checker_sections(run.results, {op.index: op for op in run.history}, run.t0_ns)
    _checkers(out, sections)
    _explored(out, run, sections)
    _figures(out, run)
    _anomalies(out, sections)
    report = run_dir / "report.html"
    if report.exists():
        out.print(Text(f"  report: {report}", style="dim"))


def _checkers(out: Console, sections: list[Any]) -> None:
    if not sections:
        return
    out.print(Text("Checkers", style="bold underline"))
    for s in sections:
        line = Text(f"  {s.name}: ")
        line.append(verdict_text(s.valid))
        kinds = ", ".join(f"{k.kind} ({k.total})" for k in s.kinds)
        if kinds:
            line.append(f"  anomalies: {kinds}")
        if s.error:
            line.append(f"  error: {s.error}")
        for reason in s.reasons[:2]:
            line.append(f"  ({reason})", style="dim")
        out.print(line)


def _explored(out: Console, run: Any, sections: list[Any]) -> None:
    """What the nemesis explored: the sentence first, then the tables and figures behind it,
    then, for an invalid run, the faults in force where each kind of anomaly first showed."""
    found = exploration(run)
    if found is None:
        return
    title = "What the nemesis explored"
    if found.source == "history":
        title += " (from the history's nemesis ops: results.json has no exploration)"
    out.print(Text(title, style="bold underline"))
    out.print(Text(f"  {found.sentence}"))
    if found.kinds:
        out.print(Text("  faults by kind: " + ", ".join(f"{k} {n}" for k, n in found.kinds)))
    table = Table(show_edge=False, pad_edge=False, box=None, show_header=True)
    table.add_column("  faults", justify="right")
    table.add_column("move or situation")
    table.add_column("novelty", justify="right")
    for move, count, score in found.moves:
        table.add_row(f"  {count}", f"move {move}", "" if score is None else str(score))
    for label, count in found.situations:
        table.add_row(f"  {count}", label, "")
    if table.row_count:
        out.print(table)
    events = [f"{n} {label}" for key, n, label in found.events]
    if events:
        out.print(Text("  " + ", ".join(events)))
    if found.reached:
        steer = {True: "; moves steered by novelty", False: "; no novelty feedback", None: ""}
        reached = ", ".join(f"{n} {label}" for n, label in found.reached)
        out.print(Text(f"  reached {reached}{steer[found.feedback]}"))
    for view in sections:
        for kind in view.kinds:
            where = faults_around(run, kind.anomalies[0].ops) if kind.anomalies else ""
            if where:
                out.print(Text(f"  {view.name} {kind.kind} first showed {where}", style="red"))


def _figures(out: Console, run: Any) -> None:
    fig = figures(run)
    line = f"  duration {fig.duration_s:.1f} s, ok ops/s {fig.ok_ops_per_s:.1f}"
    if "all" in fig.latency_ms:
        p50, p99, _count = fig.latency_ms["all"]
        line += f", latency of ok ops p50 {p50:.1f} ms p99 {p99:.1f} ms"
    out.print(Text("Key figures", style="bold underline"))
    out.print(Text(line))
    if fig.counts:
        table = Table(title=None, show_edge=False, pad_edge=False, box=None)
        outcomes = [o for o in ("ok", "fail", "info", "open") if any(k[1] == o for k in fig.counts)]
        table.add_column("  f")
        for outcome in outcomes:
            table.add_column(outcome, justify="right")
        for f in sorted({k[0] for k in fig.counts}):
            table.add_row(f"  {f}", *(str(fig.counts.get((f, o), 0)) for o in outcomes))
        out.print(Text("Ops (by f and outcome; open: never completed)", style="bold underline"))
        out.print(table)
    out.print(Text(f"Faults applied: {len(fig.faults)}", style="bold underline"))
    for start_s, description in fig.faults[:FAULTS_SHOWN]:
        out.print(Text(f"  {start_s:7.3f} s  {description}"))
    if len(fig.faults) > FAULTS_SHOWN:
        out.print(Text(f"  ... and {len(fig.faults) - FAULTS_SHOWN} more", style="dim"))


def _anomalies(out: Console, sections: list[Any]) -> None:
    if not any(s.kinds for s in sections):
        return
    out.print(Text("Anomalies", style="bold underline"))
    for s in sections:
        for note in s.notes:
            out.print(Text(f"  {s.name}: {note}"))
        for kind in s.kinds:
            more = f" (showing {min(kind.shown, ANOMALIES_PER_KIND)})" if kind.total > 1 else ""
            out.print(Text(f"  {s.name} {kind.kind}: {kind.total} found{more}", style="red"))
            for anomaly in kind.anomalies[:ANOMALIES_PER_KIND]:
                out.print(Text(f"    - {anomaly.explanation}"))
                for edge in anomaly.edges:
                    out.print(Text(f"        {edge['rel']}: {edge['text']}", style="dim"))
                for line in anomaly.op_lines[:OPS_PER_ANOMALY]:
                    out.print(Text(f"        {line.text}", style="dim"))
                if len(anomaly.op_lines) > OPS_PER_ANOMALY:
                    hidden = len(anomaly.ops) - OPS_PER_ANOMALY
                    out.print(Text(f"        ... {hidden} more ops", style="dim"))


def show_list(store: Path, out: Console) -> int:
    """Prints a table of the store's runs, newest first; returns how many there are."""
    rows = list_runs(store)
    if not rows:
        out.print(f"no runs in store {store}")
        return 0
    # The run folder's name is its start time and what `tobtest show <test>/<run>` takes.
    table = Table(title=f"runs in {store}", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("test", overflow="fold")
    table.add_column("time (run)", no_wrap=True)
    for name in ("protocol", "nemesis", "workload"):
        table.add_column(name, overflow="fold")
    table.add_column("verdict", no_wrap=True)
    for row in rows:
        table.add_row(
            row.test,
            row.path.name,
            row.protocol,
            row.nemesis,
            row.workload,
            verdict_text(row.valid),
        )
    out.print(table)
    return len(rows)
