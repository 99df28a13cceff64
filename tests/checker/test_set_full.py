"""checker/set_full.py: a broadcast checked as a grow-only set, per node."""

from __future__ import annotations

from tobtest.checker.set_full import check
from tobtest.histories.op import Op


class History:
    def __init__(self) -> None:
        self.ops: list[Op] = []

    def op(self, t_ms: int, type_: str, process: int, f: str, value: object, node: str) -> None:
        self.ops.append(Op(len(self.ops), t_ms * 1_000_000, type_, process, f, value, node))

    def add(self, t_ms: int, value: int, node: str = "n1", outcome: str = "ok") -> None:
        self.op(t_ms, "invoke", 0, "broadcast", value, node)
        self.op(t_ms + 1, outcome, 0, "broadcast", value, node)

    def read(self, t_ms: int, node: str, seen: list[int]) -> None:
        self.op(t_ms, "invoke", 1, "read", None, node)
        self.op(t_ms + 1, "ok", 1, "read", seen, node)


def test_elements_that_reach_every_node_are_stable_with_their_latency():
    h = History()
    h.add(0, 1)
    h.read(10, "n1", [1])
    h.read(20, "n2", [])  # stale: it has not arrived yet
    h.read(100, "n2", [1])
    result = check(h.ops)
    assert result["valid"] is True
    counts = result["counts"]
    assert counts["stable"] == 1 and counts["stale_reads"] == 1 and counts["stale_elements"] == 1
    assert result["latency_ms"]["stable"]["1.0"] == 100.0  # reached n2 by the read at 100 ms


def test_an_acked_element_missing_from_a_nodes_last_read_is_lost():
    h = History()
    h.add(0, 1)
    h.add(0, 2)
    h.read(10, "n1", [1, 2])
    h.read(10, "n2", [2, 1])
    h.read(50, "n2", [2])
    result = check(h.ops)
    assert result["valid"] is False and result["anomaly_types"] == ["lost"]
    (lost,) = result["anomalies"]["lost"]
    assert lost["element"] == 1 and lost["nodes"] == ["n2"]
    assert "lacks it" in lost["explanation"]


def test_an_element_nobody_broadcast_is_unexpected():
    h = History()
    h.add(0, 1)
    h.read(10, "n1", [1, 99])
    result = check(h.ops)
    assert result["valid"] is False and result["anomaly_types"] == ["unexpected"]


def test_an_indeterminate_broadcast_may_show_up_or_not_and_unread_ones_are_never_read():
    h = History()
    h.add(0, 1, outcome="info")
    h.add(0, 2, outcome="info")
    h.read(10, "n1", [1])
    h.add(20, 3)  # acked after the last read
    result = check(h.ops)
    assert result["valid"] is True
    counts = result["counts"]
    assert counts["recovered"] == 1 and counts["never_read"] == 1 and result["never_read"] == [3]


def test_an_element_known_only_from_a_read_is_lost_when_a_later_read_lacks_it():
    h = History()
    h.add(0, 1, outcome="info")
    h.read(10, "n1", [1])
    h.read(20, "n1", [])
    assert check(h.ops)["anomaly_types"] == ["lost"]
