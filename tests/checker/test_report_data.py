"""Reading a run folder leniently: nemesis intervals, figures, the store listing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.checker.test_report_runs import make_run
from tests.helpers.history_builder import HistoryBuilder
from tobtest.checker.report_data import (
    describe_nemesis,
    figures,
    list_runs,
    load_run,
    nemesis_intervals,
    quantile,
)
from tobtest.histories.op import NEMESIS, Op


def _nemesis(index: int, t: int, type_: str, f: str, value: object = None) -> Op:
    return Op(index, t, type_, NEMESIS, f, value)


def test_nemesis_intervals_pair_starts_with_stops_and_heals() -> None:
    ops = [
        _nemesis(0, 0, "invoke", "start-partition"),
        _nemesis(1, 1, "ok", "start-partition", {"shape": "one", "grudge": {"n1": ["n2"]}}),
        _nemesis(2, 2, "invoke", "start-kill"),
        _nemesis(3, 3, "ok", "start-kill", {"target": "one", "nodes": ["n2"]}),
        _nemesis(4, 4, "invoke", "stop-partition"),
        _nemesis(5, 5, "ok", "stop-partition", {"grudge": {}}),
        _nemesis(6, 6, "invoke", "start-pause"),
        _nemesis(7, 7, "info", "start-pause", None),
        _nemesis(8, 8, "invoke", "heal-kill"),
    ]
    intervals = nemesis_intervals(ops)
    by_name = {i.name: i for i in intervals}
    assert by_name["partition"].stop is not None and by_name["partition"].stop.index == 5
    assert by_name["partition"].description == "partition one n1<-x-n2"
    assert by_name["kill"].stop is None  # its heal was invoked but never completed
    assert by_name["kill"].description == "kill n2"
    assert by_name["pause"].ok is False


def test_describe_nemesis_covers_each_fault_shape() -> None:
    clock = Op(0, 0, "ok", NEMESIS, "start-clock", {"fault": {"op": "bump", "delta_ms": 250.0},
               "target": "one", "nodes": ["n3"]})  # fmt: skip
    assert describe_nemesis(clock) == "clock op=bump delta_ms=250.0 n3"
    heal = Op(1, 0, "ok", NEMESIS, "heal-partition", {"grudge": {}})
    assert describe_nemesis(heal) == "heal-partition healed"
    failed = Op(2, 0, "info", NEMESIS, "start-kill", None, error="TimeoutError")
    assert describe_nemesis(failed) == "start-kill info: TimeoutError"
    flip = Op(3, 0, "ok", NEMESIS, "start-flip", {
        "old_leader": "n1", "new_leader": "n2", "elected_after_s": 0.6, "restarted": ["n3"],
        "killed_holding_unchosen": True, "grudge": {"n1": ["n2"], "n2": ["n1", "n3"], "n3": ["n2"]},
    })  # fmt: skip
    assert describe_nemesis(flip) == (
        "flip deposed n1, leader n2, restarted n3: n1<-x-n2 n2<-x-n1,n3 n3<-x-n2"
    )


def test_lenient_history_reading_and_figures(tmp_path: Path) -> None:
    h = HistoryBuilder(step_ns=10_000_000)
    for v in range(10):
        h.broadcast(v % 2, v, node="n1", position=v)
    p = h.invoke(3, "broadcast", 99, node="n2")
    h.fail(p)
    h.invoke(4, "read", None, node="n1")  # never completes
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lines = [op.to_json() for op in h.ops]
    lines.insert(3, "not json")
    (run_dir / "history.jsonl").write_text("\n".join(lines) + '\n{"index": 1')
    run = load_run(run_dir)
    assert len(run.history) == len(h.ops)
    assert any("2 line(s) of history.jsonl are not ops" in n for n in run.notes)
    fig = figures(run)
    assert fig.counts == {("broadcast", "ok"): 10, ("broadcast", "fail"): 1, ("read", "open"): 1}
    p50, p99, count = fig.latency_ms["broadcast"]
    assert (p50, p99, count) == (10.0, 10.0, 10)
    assert round(fig.duration_s, 3) == round((h.ops[-1].time_ns - h.ops[0].time_ns) / 1e9, 3)


def test_quantile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.99) == 99.0
    assert quantile(values, 1.0) == 100.0
    assert quantile([], 0.5) != quantile([], 0.5)  # NaN


def test_list_runs_newest_first_and_links_skipped(tmp_path: Path) -> None:
    make_run(tmp_path, "a", "20260101T120000", seed=1)
    make_run(tmp_path, "b", "20260102T120000", seed=1, bug=True)
    make_run(tmp_path, "a", "20260103T120000", seed=2, partial=True)
    (tmp_path / "not-a-test.txt").write_text("x")
    rows = list_runs(tmp_path)
    assert [r.relative for r in rows] == [
        "a/20260103T120000",
        "b/20260102T120000",
        "a/20260101T120000",
    ]
    assert [r.valid for r in rows] == [None, False, True]
    assert rows[1].started == "2026-01-02 12:00:00"
    assert (rows[1].protocol, rows[1].nemesis, rows[1].workload) == (
        "paxos",
        "partition",
        "broadcast",
    )
    (tmp_path / "b" / "20260102T120000" / "results.json").write_text(json.dumps([1]))
    assert list_runs(tmp_path)[1].valid == "unknown"


def test_describe_nemesis_says_explorer_moves_with_their_situations() -> None:
    def start(f: str, value: dict[str, object]) -> str:
        return describe_nemesis(Op(0, 0, "ok", NEMESIS, f, value))

    assert start("start-kill-leader", {"nodes": ["n2"], "leader": True, "situations": [
        "leader with accepts in flight", "hit the leader", "hit a lease holder"]}) == (
        "kill-leader n2 [hit the leader, hit a lease holder, leader with accepts in flight]"
    )  # fmt: skip
    assert start("start-pause-leader", {"nodes": ["n3"], "leader": False, "situations": []}) == (
        "pause-leader n3 (no leader seen: a random node)"
    )
    assert start("start-isolate-leader", {"nodes": ["n1"], "leader": True, "grudge": {
        "n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}, "situations": ["under load"]}) == (
        "isolate-leader n1: n1<-x-n2,n3 n2<-x-n1 n3<-x-n1 [under load]"
    )  # fmt: skip
    assert start("start-skew-one", {"nodes": {"n1": {"op": "skew", "rate": 0.96}}}) == (
        "skew-one n1 skew rate=0.96"
    )
    assert start("start-lease-race", {"nodes": {"n1": {"op": "skew", "rate": 0.97},
        "n2": {"op": "skew", "rate": 1.03}}, "leader": "n1", "new_leader": "n2"}) == (
        "lease-race n1 skew rate=0.97, n2 skew rate=1.03 leader n1 new leader n2"
    )  # fmt: skip
    assert start("start-delay-leader", {"nodes": ["n2"], "leader": True, "toxic": "delay",
        "faults": [{"src": "n2", "dst": "n1", "delay_ms": 500}]}) == (
        "delay-leader n2 delay on n2->n1"
    )  # fmt: skip
    assert start("start-depose-and-crash", {"old_leader": "n1", "new_leader": "n3",
        "restarted": ["n2"], "situations": ["hit the leader"]}) == (
        "depose-and-crash deposed n1, leader n3, restarted n2 [hit the leader]"
    )  # fmt: skip
    assert start("start-kill-unchosen", {"nodes": ["n3"], "in_window": True}) == (
        "kill-unchosen n3 (holding accepted-unchosen slots)"
    )
    assert start("start-stall-leader", {"nodes": ["n1"], "leader": True,
        "cut_off_awake_s": 0.8}) == "stall-leader n1 cut off 0.8 s after waking"  # fmt: skip


def test_heal_explore_ends_every_fault_still_open() -> None:
    ops = [
        _nemesis(0, 0, "invoke", "start-kill-leader"),
        _nemesis(1, 1, "ok", "start-kill-leader", {"nodes": ["n1"], "situations": []}),
        _nemesis(2, 2, "invoke", "stop-kill-leader"),  # its undo timed out: no completion
        _nemesis(3, 3, "invoke", "heal-explore"),
        _nemesis(4, 4, "ok", "heal-explore", {"resumed": [], "restarted": ["n1"]}),
    ]
    (interval,) = nemesis_intervals(ops)
    assert interval.stop is not None and interval.stop.index == 4
