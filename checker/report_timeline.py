"""The timeline of a run, as Jepsen's timeline.html: one column per client lane, time going
down, each op a bar from its invocation to its completion, coloured by outcome; the nemesis in
a column of its own, and its faults shaded across every lane.

    tl = build_timeline(run, marks={506: ["anomaly-total-order-realtime-0"]})
    tl.bars[0].top_px, tl.bars[0].css, tl.bars[0].title      # positioned by the template

The vertical axis is history order, not wall time: each history entry is one row of
`ROW_PX` pixels. That keeps every op visible however short (a 2 ms op next to a 2 s
timeout) and shows happens-before exactly (an op that completed before another was invoked
ends above it), which is what the checkers reason about; ticks on the left give the time.
A process runs one op at a time and a process that got `info` never runs again, so
processes are packed into lanes: a lane holds one process after another (the successor of
process p, p + concurrency, when it is free), and its header names them.

At most `ENTRIES_MAX` history entries are drawn: past that, a window of them around the first
anomaly (or the start), and `note` says so. Pure data; the template escapes every string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tobtest.checker.report_data import Interval, RunData
from tobtest.checker.report_explain import describe_op, short_value
from tobtest.histories.op import Op

ENTRIES_MAX = 3000  # history entries drawn (about 1500 ops): a page a browser opens at once
ROW_PX = 8  # per history entry; ROW_PX_DENSE past DENSE_ROWS entries
ROW_PX_DENSE = 5
DENSE_ROWS = 1200
LANES_WIDTH_PX = 1000  # the lanes share this width, each between the bounds below
LANE_PX_MIN, LANE_PX_MAX = 28, 150
NEMESIS_LANE_PX = 150  # its ops' bars on the left, what each fault did beside them
NEMESIS_BAR_PX = 38
GUTTER_PX = 64  # the time ticks' column
TICK_EVERY_ROWS = 25
LABEL_MIN_PX = 12  # bars at least this tall carry their op as text


@dataclass
class Bar:
    ids: list[str]  # HTML ids: op-<invocation index>, op-<completion index>
    left_px: int
    top_px: int
    height_px: int
    width_px: int
    css: str
    title: str
    label: str
    anomalies: list[str] = field(default_factory=list)


@dataclass
class Band:
    top_px: int
    height_px: int
    css: str
    label: str
    title: str


@dataclass
class Timeline:
    lanes: list[tuple[str, str]]  # (header, title) per client lane
    bars: list[Bar]
    bands: list[Band]
    ticks: list[tuple[int, str]]  # (top px, label)
    height_px: int
    width_px: int
    lanes_left_px: int
    lane_px: int = LANE_PX_MAX
    note: str = ""
    shown_ops: set[int] = field(default_factory=set)  # op indices drawn (for links)


def _window(run: RunData, marks: dict[int, list[str]]) -> tuple[int, int]:
    """[lo, hi) positions of the history entries to draw."""
    n = len(run.history)
    if n <= ENTRIES_MAX:
        return 0, n
    positions = [p for p, op in enumerate(run.history) if op.index in marks]
    focus = positions[0] if positions else 0
    lo = max(0, min(focus - ENTRIES_MAX // 4, n - ENTRIES_MAX))
    return lo, lo + ENTRIES_MAX


def _lanes(pairs: list[tuple[Op, Op | None, int, int]], concurrency: int) -> dict[Any, int]:
    """Process -> lane: a lane is free once its last process is done for good."""
    spans: dict[Any, list[int]] = {}
    for inv, _done, top, bottom in pairs:
        span = spans.setdefault(inv.process, [top, bottom])
        span[0], span[1] = min(span[0], top), max(span[1], bottom)
    lane_of: dict[Any, int] = {}
    lane_end: list[int] = []  # last row used per lane
    for process, (top, bottom) in sorted(spans.items(), key=lambda kv: (kv[1][0], str(kv[0]))):
        prefer = None
        if isinstance(process, int) and concurrency > 0:
            prefer = lane_of.get(process - concurrency)
        free = [i for i, end in enumerate(lane_end) if end < top]
        if prefer is not None and prefer in free:
            lane = prefer
        elif free:
            lane = free[0]
        else:
            lane = len(lane_end)
            lane_end.append(-1)
        lane_of[process] = lane
        lane_end[lane] = bottom
    # Left to right by the first process of each lane, as Jepsen orders its columns.
    first: dict[int, tuple[int, Any]] = {}
    for process, lane in lane_of.items():
        key = (0, process) if isinstance(process, int) else (1, str(process))
        first[lane] = min(first.get(lane, key), key)
    order = {lane: rank for rank, lane in enumerate(sorted(first, key=first.__getitem__))}
    return {process: order[lane] for process, lane in lane_of.items()}


def _title(inv: Op, done: Op | None, t0: int) -> str:
    lines = [f"op {inv.index}: {describe_op(inv, t0)}"]
    if done is not None:
        ms = (done.time_ns - inv.time_ns) / 1e6
        lines.append(f"op {done.index}: {describe_op(done, t0)}")
        lines.append(f"latency {ms:.1f} ms")
    else:
        lines.append("never completed (indeterminate)")
    return "\n".join(lines)


def build_timeline(run: RunData, marks: dict[int, list[str]]) -> Timeline:
    lo, hi = _window(run, marks)
    row_of = {run.history[p].index: p - lo for p in range(lo, hi)}
    last_row = hi - lo - 1
    client: list[tuple[Op, Op | None, int, int]] = []
    for pair in run.pairs:
        inv, done = pair.invoke, pair.done
        top = row_of.get(inv.index)
        bottom = row_of.get(done.index) if done is not None else None
        inv_before = inv.time_ns < run.history[lo].time_ns if top is None else False
        if top is None and bottom is None:
            continue
        if top is None:
            if not inv_before:
                continue
            top = 0
        if bottom is None:
            bottom = last_row
        client.append((inv, done, top, bottom))
    concurrency = run.config.get("concurrency")
    lane_of = _lanes(client, concurrency if isinstance(concurrency, int) else 0)
    rows = hi - lo
    row_px = ROW_PX if rows <= DENSE_ROWS else ROW_PX_DENSE
    lane_count = max(lane_of.values(), default=-1) + 1
    lane_px = max(LANE_PX_MIN, min(LANE_PX_MAX, LANES_WIDTH_PX // max(lane_count, 1)))
    lanes_left = GUTTER_PX + NEMESIS_LANE_PX
    t0 = run.t0_ns
    bars: list[Bar] = []
    shown: set[int] = set()
    lane_processes: dict[int, list[str]] = {}
    for inv, done, top, bottom in client:
        lane = lane_of[inv.process]
        if str(inv.process) not in lane_processes.setdefault(lane, []):
            lane_processes[lane].append(str(inv.process))
        bar = _client_bar(inv, done, top, bottom, marks, t0, row_px)
        bar.left_px, bar.width_px = lanes_left + lane * lane_px, lane_px - 4
        bars.append(bar)
        shown.update(i for i in (inv.index, done.index if done else None) if i is not None)
    nemesis_bars = _nemesis_bars(run, row_of, marks, t0, row_px)
    shown.update(int(i[3:]) for b in nemesis_bars for i in b.ids)
    lanes = []
    for lane in range(lane_count):
        names = lane_processes.get(lane, [])
        header = "p" + ",".join(names[:3]) + ("..." if len(names) > 3 else "")
        lanes.append((header, "processes " + ", ".join(names)))
    ticks = [
        (r * row_px, f"{(run.history[lo + r].time_ns - t0) / 1e9:.2f} s")
        for r in range(0, rows, TICK_EVERY_ROWS)
    ]
    note = ""
    if (lo, hi) != (0, len(run.history)):
        where = "around the first anomaly" if marks else "from the start"
        note = (
            f"The timeline shows history entries {lo}..{hi - 1} of {len(run.history)} "
            f"(capped at {ENTRIES_MAX}, {where}); history.jsonl has them all."
        )
    return Timeline(
        lanes=lanes,
        bars=nemesis_bars + bars,
        bands=_bands(run, row_of, lo, hi, row_px),
        ticks=ticks,
        height_px=max(rows, 1) * row_px,
        width_px=lanes_left + lane_count * lane_px,
        lane_px=lane_px,
        lanes_left_px=lanes_left,
        note=note,
        shown_ops=shown,
    )


def _client_bar(
    inv: Op,
    done: Op | None,
    top: int,
    bottom: int,
    marks: dict[int, list[str]],
    t0: int,
    row_px: int,
) -> Bar:
    outcome = done.type if done is not None else "open"
    indices = [inv.index] + ([done.index] if done is not None else [])
    ids = [f"op-{i}" for i in indices]
    anomalies = sorted({a for i in indices for a in marks.get(i, [])})
    height = (bottom - top + 1) * row_px - 1
    value = done.value if done is not None and done.type == "ok" else inv.value
    label = f"{inv.f} {short_value(value, 20)}" if value is not None else inv.f
    css = f"op {outcome}" + (" anomaly" if anomalies else "")
    return Bar(
        ids=ids,
        left_px=0,
        top_px=top * row_px,
        height_px=max(height, row_px - 1),
        width_px=0,
        css=css,
        title=_title(inv, done, t0),
        label=label if height >= LABEL_MIN_PX else "",
        anomalies=anomalies,
    )


def _nemesis_bars(
    run: RunData, row_of: dict[int, int], marks: dict[int, list[str]], t0: int, row_px: int
) -> list[Bar]:
    bars = []
    pending: dict[str, Op] = {}
    for op in run.nemesis_ops:
        if op.type == "invoke":
            pending[op.f] = op
            continue
        inv = pending.pop(op.f, op)
        top, bottom = row_of.get(inv.index), row_of.get(op.index)
        if top is None or bottom is None:
            continue
        ids = [f"op-{inv.index}"] + ([f"op-{op.index}"] if op is not inv else [])
        title = f"op {inv.index}: nemesis {inv.f}\nop {op.index}: {describe_op(op, t0)}"
        bars.append(
            Bar(
                ids=ids,
                left_px=GUTTER_PX + 2,
                top_px=top * row_px,
                height_px=max((bottom - top + 1) * row_px - 1, row_px - 1),
                width_px=NEMESIS_BAR_PX,
                css=f"op nemesis {op.type}",
                title=title,
                label=op.f.partition("-")[0],
                anomalies=marks.get(op.index, []),
            )
        )
    return bars


def _bands(run: RunData, row_of: dict[int, int], lo: int, hi: int, row_px: int) -> list[Band]:
    first_ns, last_ns = run.history[lo].time_ns, run.history[hi - 1].time_ns
    bands = []
    for interval in run.intervals:
        stop_ns = interval.stop.time_ns if interval.stop is not None else last_ns + 1
        if stop_ns < first_ns or interval.start.time_ns > last_ns:
            continue
        top = row_of.get(interval.start.index, 0)
        bottom = row_of.get(interval.stop.index, hi - lo) if interval.stop else hi - lo
        band = _band(interval, top * row_px, bottom * row_px)
        if band is not None:
            bands.append(band)
    return bands


def _band(interval: Interval, top_px: int, bottom_px: int) -> Band | None:
    if bottom_px <= top_px:
        return None
    safe = "".join(c if c.isalnum() else "-" for c in interval.name)
    stop = "" if interval.stop is not None else " (never stopped)"
    return Band(
        top_px=top_px,
        height_px=bottom_px - top_px,
        css=f"band band-{safe}" + ("" if interval.ok else " band-uncertain"),
        label=interval.description,
        title=f"{interval.description}{stop}",
    )
