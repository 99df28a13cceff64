"""bench/failover.py: the failover gap read off a hand-made history, and the schedule files
it names parse."""

from __future__ import annotations

import sys
from pathlib import Path

from tobtest.histories.op import Op
from tobtest.nemesis.schedule_file import load_schedule

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from failover import FAULTS, failover_gaps, longest_stall, summarize  # noqa: E402

S = 1_000_000_000


def history(*rows: tuple[float, str, int | str, str, object]) -> list[Op]:
    return [
        Op(index=i, time_ns=int(t * S), type=type_, process=process, f=f, value=value)
        for i, (t, type_, process, f, value) in enumerate(rows)
    ]


def test_the_gap_runs_from_the_fault_to_the_first_ack_invoked_after_it():
    h = history(
        (0.9, "invoke", 0, "broadcast", 1),  # in flight at the kill, acked just after it
        (1.0, "invoke", "nemesis", "kill", {"nodes": "leader"}),
        (1.1, "ok", "nemesis", "kill", {"nodes": ["n1"], "done": ["n1"]}),
        (1.2, "ok", 0, "broadcast", 1),
        (1.3, "invoke", 1, "broadcast", 2),  # invoked after: fails
        (1.4, "fail", 1, "broadcast", 2),
        (1.5, "invoke", 2, "broadcast", 3),  # invoked after, acked at 1.9: the gap
        (1.9, "ok", 2, "broadcast", 3),
        (5.0, "ok", "nemesis", "restart", {"nodes": ["n1"], "done": ["n1"]}),
    )
    [gap] = failover_gaps(h, "kill")
    assert gap["gap_s"] == 0.8
    assert gap["first_any_s"] == 0.1
    assert gap["under_fault"] is True
    assert gap["targets"] == ["n1"]


def test_a_fault_never_followed_by_an_ack_is_counted_apart():
    h = history(
        (1.0, "ok", "nemesis", "partition", {"isolate": ["n2"]}),
        (1.5, "invoke", 0, "broadcast", 1),
        (3.0, "info", 0, "broadcast", 1),
        (5.0, "ok", "nemesis", "heal", {}),
    )
    gaps = failover_gaps(h, "isolate")
    assert gaps[0]["gap_s"] is None and gaps[0]["under_fault"] is False
    summary = summarize(gaps)
    assert summary["no_ack"] == 1 and summary["gap_s_median"] is None


def test_the_failover_schedules_parse():
    for path, fault_f, repair_f in FAULTS.values():
        schedule = load_schedule(path, 3)
        assert fault_f in schedule.kinds() and repair_f in schedule.kinds()


def test_the_longest_stall_counts_from_the_window_edges():
    assert longest_stall([2 * S, 3 * S], 1 * S, 5 * S) == 2.0  # 3 s to the end at 5 s
    assert longest_stall([], 1 * S, 3 * S) == 2.0
    assert longest_stall([int(1.5 * S)], 1 * S, 2 * S) == 0.5
