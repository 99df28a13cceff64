"""report.html: one self-contained page that makes a run understandable in a minute.

    from tobtest.checker.report import write_report
    write_report(Path("store/latest"))        # -> store/latest/report.html

    python -m tobtest.checker.report store/latest      # the same from a shell

The page holds the verdict, the seed and the command that reproduces the run, key figures,
what went wrong (each kind's first anomaly and the faults in force as its ops ran), what the
nemesis explored (faults by kind and move, the protocol situations they struck in, leader
changes, elections, restarts from a log, abstract states reached, and one sentence: "Verdict
VALID after 7 faults: 2 aimed at the leader, ..."), a section per checker with one sentence
per anomaly (a cycle's edges each with its kind; a linearizability failure's longest
linearizable prefix and the op that breaks it), a timeline
of every op per process with the ops of each anomaly outlined and linked (`#op-<index>`),
nemesis faults shaded, latency and throughput plots (PNG data URIs), the configuration, and
links to the run's files and per-node logs and status. No CDN, no external script or style:
it opens from the file system as well as from `tobtest serve`.

It only reads the run folder. A partial run (killed before checking: no results.json, maybe
a torn last history line) gets a report that says so and still shows the history; a section
that cannot be built says why in its place. Only a missing run folder raises.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape

from tobtest.checker.report_data import (
    RUN_STAMP_FORMAT,
    RunData,
    exploration,
    faults_around,
    figures,
    load_run,
    verdict_class,
    verdict_word,
)
from tobtest.checker.report_explain import (
    CheckerView,
    anomaly_ops,
    checker_sections,
    short_value,
)
from tobtest.checker.report_timeline import GUTTER_PX, NEMESIS_LANE_PX, Timeline, build_timeline

log = logging.getLogger("tobtest.report")
TEMPLATES = Path(__file__).parent / "templates"
REPORT_NAME = "report.html"
RUN_FILES = ("history.jsonl", "results.json", "test.yaml", "proxy.log", "proxy.json")
ANOMALIES_OPEN = 3  # per kind shown at once; the rest fold under "more"
NODE_STATUS_KEYS = ("role", "leader", "max_ballot", "delivered", "phase1_rounds", "resends")


def environment() -> Environment:
    """The Jinja environment of tobtest's pages: HTML templates are always autoescaped."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write_report(run_dir: Path) -> Path:
    """Writes `run_dir/report.html` (atomically) and returns its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run folder at {run_dir}")
    target = run_dir / REPORT_NAME
    try:
        page = render_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - a report bug must still leave a page behind
        log.exception("report of %s failed", run_dir)
        page = _fallback_page(run_dir, exc)
    # Unique per process and thread: `tobtest serve` may write from several threads.
    tmp = target.with_name(f".{REPORT_NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target


def render_report(run_dir: Path) -> str:
    run_dir = run_dir.resolve()  # store/latest is a link: name the run it points at
    run = load_run(run_dir)
    notes = list(run.notes)
    sections = _guard(notes, "checker sections", lambda: checker_sections(
        run.results, {op.index: op for op in run.history}, run.t0_ns), [])  # fmt: skip
    marks = anomaly_ops(sections)
    timeline = _guard(notes, "timeline", lambda: build_timeline(run, marks), None)
    fig = figures(run)
    results = run.results or {}
    if results.get("node_note"):
        notes.append(f"Note: {results['node_note']}.")
    context: dict[str, Any] = {
        "verdict": verdict_word(run.valid),
        "verdict_css": verdict_class(run.valid),
        "test_name": run.test_name,
        "run_name": run_dir.name,
        "started": _started(run_dir.name),
        "notes": notes,
        "seed": results.get("seed", run.config.get("seed", "?")),
        "reproduce": results.get("reproduce") or _reproduce_from_config(run.config),
        "fig": fig,
        "latency_all": fig.latency_ms.get("all"),
        "pair_count": len(run.pairs),
        # Maelstrom's figure of merit: node-to-node messages per client op.
        "network": results.get("network") or {},
        "has_results": run.results is not None,
        "sections": sections,
        "glance": _glance(sections, run),
        "explored": _guard(notes, "exploration summary", lambda: exploration(run), None),
        "anomalies_open": ANOMALIES_OPEN,
        "timeline": timeline or Timeline([], [], [], [], 0, 0, 0),
        "shown_ops": timeline.shown_ops if timeline else set(),
        "gutter_px": GUTTER_PX,
        "nemesis_px": NEMESIS_LANE_PX,
        "plots": _plots(run),
        "intervals": _intervals(run),
        "config": [(str(k), short_value(v, 200)) for k, v in run.config.items()],
        "files": [(n, n) for n in RUN_FILES if (run_dir / n).is_file()]
        # A run on other hosts has a proxy per host (tobtest.remote): proxy-<host>.log.
        + [(p.name, p.name) for p in sorted(run_dir.glob("proxy-*")) if p.is_file()],
        "nodes": _nodes(run),
        "node_keys": NODE_STATUS_KEYS,
    }
    return environment().get_template("report.html").render(**context)


def _glance(sections: list[CheckerView], run: RunData) -> list[dict[str, Any]]:
    """The first anomaly of each kind, for the summary at the top of the page, with the
    faults in force while its ops ran."""
    rows = []
    for view in sections:
        for kind in view.kinds:
            if kind.anomalies:
                first = kind.anomalies[0]
                rows.append(
                    {
                        "checker": view.name,
                        "kind": kind.kind,
                        "total": kind.total,
                        "anchor": first.anchor,
                        "explanation": first.explanation,
                        "where": faults_around(run, first.ops),
                    }
                )
    return rows


def _guard(notes: list[str], what: str, build: Any, default: Any) -> Any:
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        log.debug("report section %s failed", what, exc_info=True)
        notes.append(f"The {what} could not be built: {type(exc).__name__}: {exc}")
        return default


def _started(name: str) -> str:
    try:
        stamp = datetime.strptime(name.split("-", 1)[0], RUN_STAMP_FORMAT)
    except ValueError:
        return name
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def _reproduce_from_config(config: dict[str, Any]) -> str:
    seed = config.get("seed")
    return f"tobtest run ... --seed {seed} (see the configuration below)" if seed else ""


def _plots(run: RunData) -> list[tuple[str, str | None, str]]:
    if not run.pairs:
        return [("latency", None, "no client ops"), ("throughput", None, "no client ops")]
    try:
        from tobtest.checker.report_plots import latency_plot, throughput_plot
    except ImportError as exc:
        return [("latency", None, f"matplotlib is missing ({exc})")]
    plots = []
    for name, draw in (("latency", latency_plot), ("throughput", throughput_plot)):
        try:
            uri = draw(run)
            plots.append((name, uri, "" if uri else "no completed ops"))
        except Exception as exc:  # noqa: BLE001 - a plot bug must not hide the report
            log.debug("plot %s failed", name, exc_info=True)
            plots.append((name, None, f"{type(exc).__name__}: {exc}"))
    return plots


def _intervals(run: RunData) -> list[dict[str, Any]]:
    rows = []
    for i in run.intervals:
        rows.append(
            {
                "start_s": f"{run.seconds(i.start):.3f} s",
                "stop_s": f"{run.seconds(i.stop):.3f} s" if i.stop else "never stopped",
                "description": i.description,
                "start_index": i.start.index,
                "stop_index": i.stop.index if i.stop else None,
            }
        )
    return rows


def _nodes(run: RunData) -> list[dict[str, Any]]:
    rows = []
    for name, log_path, status_path in run.node_files():
        fields: dict[str, str] = {}
        if status_path is not None:
            try:
                status = json.loads(status_path.read_text(encoding="utf-8"))
                if isinstance(status, dict):
                    fields = {
                        k: short_value(status[k], 40) for k in NODE_STATUS_KEYS if k in status
                    }
            except (OSError, ValueError):
                fields = {"role": "(unreadable status)"}
        rows.append(
            {
                "name": name,
                "log": f"nodes/{log_path.name}" if log_path else None,
                "status": f"nodes/{status_path.name}" if status_path else None,
                "fields": fields,
            }
        )
    return rows


def _fallback_page(run_dir: Path, exc: BaseException) -> str:
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=6))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>report failed</title></head>"
        f"<body><h1>The report of {escape(str(run_dir))} could not be built</h1>"
        f"<pre>{escape(detail)}</pre><p>The run's files: <a href='history.jsonl'>history.jsonl"
        "</a>, <a href='results.json'>results.json</a>, <a href='test.yaml'>test.yaml</a>.</p>"
        "</body></html>"
    )


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["store/latest"]:
        print(write_report(Path(arg)))
