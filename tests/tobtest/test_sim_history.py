"""Tests of the simulated run -> tobtest history conversion (tobtest/sim_history.py)."""

from __future__ import annotations

import pytest

from tobtest.checker.compose import check_all
from tobtest.sim_history import (
    Outcome,
    SimHistory,
    broadcast_outcome,
    nemesis_ops,
    node_name,
    read_outcome,
)

ACK = {"type": "broadcast_ok", "msg_id": "m0", "position": 0}


def test_outcomes_follow_the_broadcast_workload() -> None:
    assert broadcast_outcome(0, ACK, attempt=0, attempts=2) == Outcome(
        "ok", 0, extra={"position": 0}
    )
    retried = broadcast_outcome(0, ACK, attempt=1, attempts=2)
    assert retried.extra == {"position": 0, "retried": True}
    assert broadcast_outcome(0, None, 0, 1) == Outcome("info", 0, error="timeout")
    refused = {"type": "error", "code": "overloaded", "text": "full"}
    assert broadcast_outcome(0, refused, 0, 1).type == "fail"  # surely not taken in
    assert broadcast_outcome(0, refused, 1, 2).type == "info"  # the first try may land
    odd = {"type": "error", "code": "mystery"}
    assert broadcast_outcome(0, odd, 0, 1).type == "info"
    assert read_outcome({"type": "read_ok", "value": [1, 2]}) == Outcome("ok", [1, 2])
    assert read_outcome(None).type == "info"
    assert read_outcome({"type": "error", "code": "not-leader", "text": "x"}) == Outcome(
        "fail", None, error="not-leader: x"
    )


def test_ops_have_the_runner_shape_in_ns_of_virtual_time() -> None:
    h = SimHistory(nodes=2)
    h.invoke(1.5, process=0, f="broadcast", node=0, value=7)
    h.invoke(2.0, process=1, f="read", node=1, read_mode="log")
    h.complete(3.25, process=0, outcome=broadcast_outcome(7, ACK, 1, 2), node=1)
    h.complete(4.0, process=1, outcome=read_outcome({"type": "read_ok", "value": [7]}))
    h.nemesis(2.0, "start-kill", {"nodes": ["n1"]})
    ops = [op.to_dict() for op in h.ops()]
    assert [op["index"] for op in ops] == list(range(6))
    assert ops[0] == {"index": 0, "time_ns": 1_500_000, "type": "invoke", "process": 0,
                      "f": "broadcast", "value": 7, "node": "n1"}  # fmt: skip
    # Nemesis ops come before client ops of the same instant, invoke then ok.
    assert [(op["process"], op["type"]) for op in ops[1:3]] == [("nemesis", "invoke"),
                                                                ("nemesis", "ok")]  # fmt: skip
    assert ops[2]["value"] == {"nodes": ["n1"]}
    assert ops[3] == {"index": 3, "time_ns": 2_000_000, "type": "invoke", "process": 1,
                      "f": "read", "value": None, "node": "n2", "read_mode": "log"}  # fmt: skip
    # A retried broadcast names the node that acked it, as the runner does.
    assert ops[4]["node"] == "n2" and ops[4]["retried"] is True and ops[4]["position"] == 0
    assert ops[5]["value"] == [7] and ops[5]["read_mode"] == "log"
    assert h.open_processes == []


def test_a_process_has_one_op_open() -> None:
    h = SimHistory(nodes=1)
    h.invoke(0.0, 0, "broadcast", 0, 1)
    with pytest.raises(ValueError):
        h.invoke(1.0, 0, "broadcast", 0, 2)
    assert h.open_processes == [0]


def test_trace_faults_become_nemesis_ops() -> None:
    trace = [
        (1.0, "blocked", [(0, 1), (0, 2)]),
        (2.0, "deliver", 0, 0, "m1"),
        (3.0, "crash", 2),
        (4.0, "restart", 2, True),
        (5.0, "pause", 1),
        (6.0, "resume", 1),
        (7.0, "blocked", []),
        (8.0, "slow", 1, 30.0),
        (9.0, "slow", 1, 0.0),
        (10.0, "jump", 1),  # kinds it does not know are left out
    ]
    assert nemesis_ops(trace) == [
        (1.0, "start-partition", {"grudge": {"n2": ["n1"], "n3": ["n1"]}}),
        (3.0, "start-kill", {"nodes": ["n3"]}),
        (4.0, "stop-kill", {"nodes": ["n3"], "reload": True}),
        (5.0, "start-pause", {"nodes": ["n2"]}),
        (6.0, "stop-pause", {"nodes": ["n2"]}),
        (7.0, "stop-partition", {"grudge": {}}),
        (8.0, "start-slow", {"nodes": ["n2"], "delay_ms": 30.0}),
        (9.0, "stop-slow", {"nodes": ["n2"], "delay_ms": 0.0}),
    ]
    assert node_name(0) == "n1"


def _final_reads(h: SimHistory, t: float, values: list[list[int]], first_process: int) -> None:
    for i, value in enumerate(values):
        p = first_process + i
        h.invoke(t, p, "read", i, None, read_mode="local", final=True)
        h.complete(t + 0.1, p, read_outcome({"type": "read_ok", "value": value}))


def test_the_broadcast_checkers_judge_a_converted_history() -> None:
    good = SimHistory(nodes=2)
    good.invoke(0.0, 0, "broadcast", 0, 0)
    good.complete(1.0, 0, broadcast_outcome(0, ACK, 0, 2))
    good.invoke(2.0, 1, "broadcast", 1, 1)
    good.complete(3.0, 1, broadcast_outcome(1, None, 1, 2))  # info: never answered
    _final_reads(good, 10.0, [[0], [0]], first_process=10)
    result = check_all(good.ops(), ["total-order", "broadcast-elle"])
    assert result["valid"] is True, result
    bad = SimHistory(nodes=2)
    bad.invoke(0.0, 0, "broadcast", 0, 0)
    bad.complete(1.0, 0, broadcast_outcome(0, ACK, 0, 2))
    _final_reads(bad, 10.0, [[0], []], first_process=10)
    result = check_all(bad.ops(), ["total-order", "broadcast-elle"])
    assert result["valid"] is False
    assert "lost" in result["checkers"]["total-order"]["anomalies"]
