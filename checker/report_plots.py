"""Latency and throughput plots of a run, as PNG data URIs for a self-contained report.

    uri = latency_plot(run)        # "data:image/png;base64,..." or None if nothing to plot
    uri = throughput_plot(run)

Latency: every client op as a point (x: when it was invoked, y: how long it took, log
scale), coloured by f and shaped by outcome, with p50/p95/p99 lines of the ok ops per f over
time windows. Throughput: completions per second per f and outcome. Nemesis faults are
shaded and named in both. matplotlib's object API on the Agg canvas (no pyplot): no global
state, so `tobtest serve` may draw from several threads.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from matplotlib.figure import Figure

from tobtest.checker.report_data import RunData, quantile

WIDTH_IN, HEIGHT_IN, DPI = 11.0, 3.8, 96
WINDOWS = 30  # time windows of the quantile lines and the throughput curves
QUANTILES = ((0.5, "-", "p50"), (0.95, "--", "p95"), (0.99, ":", "p99"))
MARKERS = {"ok": "o", "fail": "x", "info": "^"}
LINESTYLES = {"ok": "-", "fail": "--", "info": ":"}
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22")
NEMESIS_COLOURS = ("#f4a3a3", "#f6c98e", "#b9d7a8", "#a8c6e8", "#d4b5e6", "#e6d98f")


def _colours(run: RunData) -> dict[str, str]:
    fs = sorted({p.invoke.f for p in run.pairs})
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(fs)}


def _shade(ax: Any, run: RunData, end_s: float) -> None:
    names = sorted({i.name for i in run.intervals})
    colour = {n: NEMESIS_COLOURS[k % len(NEMESIS_COLOURS)] for k, n in enumerate(names)}
    labelled: set[str] = set()
    for interval in run.intervals:
        start = run.seconds(interval.start)
        stop = run.seconds(interval.stop) if interval.stop is not None else end_s
        label = None if interval.name in labelled else interval.name
        labelled.add(interval.name)
        ax.axvspan(start, stop, color=colour[interval.name], alpha=0.35, lw=0, label=label)
        ax.text(
            start,
            1.0,
            " " + interval.description[:40],
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            va="top",
            ha="left",
            color="#7a2020",
            clip_on=True,
        )


def _to_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _end_s(run: RunData) -> float:
    return run.seconds(run.history[-1]) if run.history else 0.0


def latency_plot(run: RunData) -> str | None:
    done = [p for p in run.pairs if p.done is not None]
    if not done:
        return None
    colours = _colours(run)
    end_s = max(_end_s(run), 1e-3)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    ax = fig.add_subplot()
    _shade(ax, run, end_s)
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for p in done:
        xs, ys = groups.setdefault((p.invoke.f, p.outcome), ([], []))
        xs.append(run.seconds(p.invoke))
        ys.append(max((p.latency_ns or 0) / 1e6, 1e-3))
    for (f, outcome), (xs, ys) in sorted(groups.items()):
        marker = MARKERS.get(outcome, "s")
        ax.scatter(
            xs, ys, s=9, marker=marker, color=colours[f], alpha=0.45, label=f"{f} {outcome}", lw=0.8
        )
    width_s = end_s / WINDOWS
    for f in sorted(colours):
        points = sorted(
            (run.seconds(p.invoke), (p.latency_ns or 0) / 1e6)
            for p in done
            if p.invoke.f == f and p.outcome == "ok"
        )
        if len(points) < 2:
            continue
        buckets: dict[int, list[float]] = {}
        for x, y in points:
            buckets.setdefault(min(int(x / width_s), WINDOWS - 1), []).append(y)
        # Empty windows are NaN, so a line breaks there instead of bridging the gap.
        centres = [(k + 0.5) * width_s for k in range(WINDOWS)]
        for q, style, name in QUANTILES:
            ys = [
                max(quantile(sorted(buckets[k]), q), 1e-3) if k in buckets else math.nan
                for k in range(WINDOWS)
            ]
            ax.plot(centres, ys, style, color=colours[f], lw=1.4, label=f"{f} ok {name}")
    ax.set_yscale("log")
    ax.set_xlim(0, end_s)
    ax.set_xlabel("time since the history began (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency of client ops (points: each op; lines: quantiles of ok ops)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _to_uri(fig)


def throughput_plot(run: RunData) -> str | None:
    done = [p for p in run.pairs if p.done is not None]
    if not done:
        return None
    colours = _colours(run)
    end_s = max(_end_s(run), 1e-3)
    # Whole-second windows when the run is long enough: rates read as ops/s directly.
    width_s = max(end_s / WINDOWS, 1.0) if end_s >= WINDOWS else end_s / WINDOWS
    bins = max(1, math.ceil(end_s / width_s))
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    ax = fig.add_subplot()
    _shade(ax, run, end_s)
    counts: dict[tuple[str, str], list[int]] = {}
    for p in done:
        assert p.done is not None
        row = counts.setdefault((p.invoke.f, p.outcome), [0] * bins)
        row[min(int(run.seconds(p.done) / width_s), bins - 1)] += 1
    xs = [(k + 0.5) * width_s for k in range(bins)]
    for (f, outcome), row in sorted(counts.items()):
        ax.plot(
            xs,
            [c / width_s for c in row],
            LINESTYLES.get(outcome, "-."),
            color=colours[f],
            lw=1.5,
            label=f"{f} {outcome}",
        )
    ax.set_xlim(0, end_s)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time since the history began (s)")
    ax.set_ylabel("completions per second")
    ax.set_title(f"Throughput (windows of {width_s:.2f} s)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _to_uri(fig)
