"""The timeline's layout: every op drawn, lanes packed without overlaps."""

from __future__ import annotations

import random
from pathlib import Path

from tests.checker.test_report_runs import simulate_broadcast_run, write_run
from tests.helpers.history_builder import HistoryBuilder
from tobtest.checker.report_data import RunData, index_history, load_run
from tobtest.checker.report_timeline import build_timeline


def test_bars_in_one_lane_never_overlap_and_every_client_op_is_drawn(tmp_path: Path) -> None:
    for seed in (1, 2):
        history = simulate_broadcast_run(random.Random(seed), duration_s=6.0)
        run_dir = write_run(tmp_path / str(seed), "t", "20260101T120000", history, {})
        run = load_run(run_dir)
        timeline = build_timeline(run, {})
        client = [b for b in timeline.bars if "nemesis" not in b.css.split()]
        assert len(client) == len(run.pairs)
        by_lane: dict[int, list[tuple[int, int]]] = {}
        for bar in client:
            by_lane.setdefault(bar.left_px, []).append((bar.top_px, bar.top_px + bar.height_px))
        for spans in by_lane.values():
            spans.sort()
            for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                assert end <= start
        firsts = [int(header[1:].split(",")[0]) for header, _ in timeline.lanes]
        assert firsts == sorted(firsts)  # lanes left to right by their first process
        outcomes = {b.css.split()[1] for b in client}
        assert {"ok", "info"} <= outcomes  # timeouts at the isolated node


def test_successor_processes_share_their_lane() -> None:
    h = HistoryBuilder()
    a = h.invoke(0, "broadcast", 1, node="n1")
    b = h.invoke(1, "broadcast", 2, node="n1")
    h.info(a)
    h.ok(b, position=0)
    c = h.invoke(2, "broadcast", 3, node="n1")  # process 0 + concurrency 2: takes its lane
    h.ok(c, position=1)
    run = index_history(RunData(path=Path("."), config={"concurrency": 2}, history=h.ops))
    timeline = build_timeline(run, {})
    left = {b.ids[0]: b.left_px for b in timeline.bars}
    assert left["op-0"] == left["op-4"] != left["op-1"]
    assert [header for header, _ in timeline.lanes] == ["p0,2", "p1"]
