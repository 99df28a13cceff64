"""Writes the hand-made total-order histories under tests/histories/ (committed data).

    .venv/bin/python -m tests.helpers.total_order_corpus      # rewrites the .jsonl files

Most cases are pairs built by one function: `bad=True` gives the invalid history (named
after the anomaly it must show) and `bad=False` its near miss, which differs in the one
detail that matters and must pass. tests/checker/test_corpus.py checks that the committed
files are what this module writes, so edit here and rerun rather than editing the files.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from tests.helpers.history_builder import HistoryBuilder, write_corpus
from tests.helpers.tob_sim import simulate_tob

CHECKER = "total-order"
ROOT = Path(__file__).resolve().parent.parent / "histories"
NODES = ("n1", "n2", "n3")
FINAL_PROCESS = 100  # final reads come from fresh processes, as the runner's do


def _start() -> HistoryBuilder:
    """Broadcast 1 acked on n1: every case begins with one delivered value."""
    h = HistoryBuilder()
    h.broadcast(0, 1, "n1", position=0)
    return h


def _finals(h: HistoryBuilder, order: list[int], **per_node: list[int]) -> None:
    """Heal, wait, then one final read per node (the whole `order` unless given per node)."""
    h.nemesis("stop-partition")
    h.sleep(1_000_000_000)
    h.final_reads(FINAL_PROCESS, {n: per_node.get(n, order) for n in NODES})


def incompatible_order(bad: bool) -> HistoryBuilder:
    """2 and 3 timed out; n3's final read is [1, 3] (bad) or [1, 2] (a prefix: fine)."""
    h = _start()
    p2 = h.invoke(1, "broadcast", 2, node="n2")
    p3 = h.invoke(2, "broadcast", 3, node="n3")
    h.info(p2)
    h.info(p3)
    h.read(3, "n2", [1, 2])
    _finals(h, [1, 2, 3], n3=[1, 3] if bad else [1, 2])
    return h


def duplicate(bad: bool) -> HistoryBuilder:
    """2 timed out; the nodes deliver it twice (bad) or once (fine)."""
    h = _start()
    h.nemesis("start-partition", {"n2": ["n1", "n3"]})
    p = h.invoke(1, "broadcast", 2, node="n2")
    h.info(p)
    _finals(h, [1, 2, 2] if bad else [1, 2])
    return h


def phantom(bad: bool) -> HistoryBuilder:
    """3 timed out; the reads hold 30, a corrupted 3 (bad), or 3 itself (fine)."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    p = h.invoke(2, "broadcast", 3, node="n3")
    h.info(p)
    _finals(h, [1, 2, 30] if bad else [1, 2, 3])
    return h


def future_read(bad: bool) -> HistoryBuilder:
    """A read returns 2 and completes before 2 is invoked (bad), or overlaps it (fine)."""
    h = _start()
    r = h.invoke(3, "read", None, node="n1", read_mode="local")
    if bad:
        h.ok(r, [1, 2])
    p = h.invoke(1, "broadcast", 2, node="n2")
    if not bad:
        h.ok(r, [1, 2])
    h.ok(p, position=1)
    _finals(h, [1, 2])
    return h


def failed_delivered(bad: bool) -> HistoryBuilder:
    """3 was refused (fail), yet the final reads hold it (bad) or not (fine)."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    p = h.invoke(2, "broadcast", 3, node="n3")
    h.fail(p, error="no quorum")
    _finals(h, [1, 2, 3] if bad else [1, 2])
    return h


def lost(bad: bool) -> HistoryBuilder:
    """n1's final read lacks 3, which was acked (bad) or timed out (fine)."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    h.nemesis("start-partition", {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
    p = h.invoke(2, "broadcast", 3, node="n3")
    h.ok(p, position=2) if bad else h.info(p)
    _finals(h, [1, 2, 3], n1=[1, 2])
    return h


def nonmonotonic(bad: bool) -> HistoryBuilder:
    """n1 reads [1, 2] then [1]: one after the other (bad) or overlapping (fine)."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    first = h.invoke(3, "read", None, node="n1", read_mode="local")
    if bad:
        h.ok(first, [1, 2])
    second = h.invoke(4, "read", None, node="n1", read_mode="local")
    if not bad:
        h.ok(first, [1, 2])
    h.ok(second, [1])
    _finals(h, [1, 2])
    return h


def realtime(bad: bool) -> HistoryBuilder:
    """2 is ordered before 1, though 1 was acked before 2 was invoked (bad) or after (fine)."""
    h = HistoryBuilder()
    p1 = h.invoke(0, "broadcast", 1, node="n1")
    if bad:
        h.ok(p1, position=1)
    p2 = h.invoke(1, "broadcast", 2, node="n2")
    if not bad:
        h.ok(p1, position=1)
    h.ok(p2, position=0)
    _finals(h, [2, 1])
    return h


def stale_log_read(bad: bool) -> HistoryBuilder:
    """After 2 is acked, n3 returns [1] to a log read (bad) or to a local read (fine)."""
    h = _start()
    h.nemesis("start-partition", {"n3": ["n1", "n2"]})
    h.broadcast(1, 2, "n1", position=1)
    h.read(3, "n3", [1], read_mode="log" if bad else "local")
    _finals(h, [1, 2])
    return h


def stale_log_read_concurrent(bad: bool) -> HistoryBuilder:
    """A log read returns [1]; it was invoked after 2's ack (bad) or before it (fine)."""
    h = _start()
    p = h.invoke(1, "broadcast", 2, node="n1")
    if bad:
        h.ok(p, position=1)
    r = h.invoke(3, "read", None, node="n2", read_mode="log")
    if not bad:
        h.ok(p, position=1)
    h.ok(r, [1])
    _finals(h, [1, 2])
    return h


def stale_lease_read(bad: bool) -> HistoryBuilder:
    """With 2 in flight, a lease read returns [1] after one returned [1, 2] (bad) or while
    that one was still running (fine)."""
    h = _start()
    p = h.invoke(1, "broadcast", 2, node="n1")
    first = h.invoke(3, "read", None, node="n1", read_mode="lease")
    if bad:
        h.ok(first, [1, 2])
    second = h.invoke(4, "read", None, node="n2", read_mode="lease")
    if not bad:
        h.ok(first, [1, 2])
    h.ok(second, [1])
    h.ok(p, position=1)
    _finals(h, [1, 2])
    return h


# (invalid name, near-miss name, builder): the invalid name starts with its anomaly kind.
def wrong_position(bad: bool) -> HistoryBuilder:
    """n2 acks 2 at position 1, but its own read puts 3 there (bad) or 2 (fine)."""
    h = _start()
    p3 = h.invoke(2, "broadcast", 3, node="n3")
    h.broadcast(1, 2, "n2", position=1)
    h.info(p3)
    order = [1, 3, 2] if bad else [1, 2, 3]
    h.read(3, "n2", order)
    _finals(h, order)
    return h


def ack_before_delivery(bad: bool) -> HistoryBuilder:
    """n2 acks 2 at position 1; a read of n2 invoked after the ack returns [1] (bad), or
    the short read is of n3, which acked nothing (fine: a node may lag)."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    h.read(3, "n2" if bad else "n3", [1])
    _finals(h, [1, 2])
    return h


def not_caught_up(bad: bool) -> HistoryBuilder:
    """The runner marked n3 not caught up after the heal; its final read lacks the acked 2
    and 3 that n1 and n2 hold (bad), or holds them after all (fine)."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    h.nemesis("start-kill", {"nodes": ["n3"]})
    h.broadcast(2, 3, "n1", position=2)
    h.nemesis("stop-kill", {"nodes": ["n3"]})
    h.sleep(1_000_000_000)
    h.final_reads(FINAL_PROCESS, {"n1": [1, 2, 3], "n2": [1, 2, 3]})
    status = {"role": "follower", "leader": None, "ballot": [1, 2], "chosen_index": 1}
    p = h.invoke(
        FINAL_PROCESS + 2,
        "read",
        None,
        node="n3",
        read_mode="local",
        final=True,
        caught_up=False,
        behind_by=2,
        node_status={**status, "delivered": 1},
    )
    h.ok(p, [1] if bad else [1, 2, 3])
    return h


PAIRS: list[tuple[str, str, Callable[[bool], HistoryBuilder]]] = [
    ("incompatible-order-final-reads-diverge", "final-read-strict-prefix", incompatible_order),
    ("duplicate-delivered-twice-after-timeout", "info-broadcast-delivered-once", duplicate),
    ("phantom-corrupted-value", "info-broadcast-delivered", phantom),
    ("future-read-completed-before-invoke", "read-overlapping-broadcast", future_read),
    ("failed-delivered-in-final-reads", "failed-broadcast-absent", failed_delivered),
    ("lost-acked-missing-from-final", "info-broadcast-missing-from-final", lost),
    ("not-caught-up-lagging-node-lacks-acked", "lagging-node-caught-up-by-its-read", not_caught_up),
    ("nonmonotonic-node-read-shrinks", "overlapping-reads-same-node", nonmonotonic),
    ("realtime-acked-before-invoked", "concurrent-broadcasts-either-order", realtime),
    ("stale-read-log-read-misses-acked", "stale-local-read", stale_log_read),
    ("stale-read-log-read-after-ack", "log-read-concurrent-with-ack", stale_log_read_concurrent),
    ("stale-read-lease-read-shorter", "lease-reads-overlapping", stale_lease_read),
    ("wrong-position-ack-disagrees-with-read", "ack-position-agrees", wrong_position),
    ("ack-before-delivery-read-after-ack", "lagging-node-without-ack", ack_before_delivery),
]


def incomplete_broadcast_delivered() -> HistoryBuilder:
    """3's client never heard back before the run ended; the nodes delivered it: fine."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    h.invoke(2, "broadcast", 3, node="n3")
    _finals(h, [1, 2, 3])
    return h


def no_final_read() -> HistoryBuilder:
    """A correct run whose final reads all failed: lost broadcasts cannot be ruled out."""
    h = _start()
    h.broadcast(1, 2, "n2", position=1)
    h.read(3, "n1", [1, 2])
    for i, node in enumerate(NODES):
        p = h.invoke(FINAL_PROCESS + i, "read", None, node=node, read_mode="log", final=True)
        h.fail(p, error="timeout")
    return h


def malformed_read_value() -> HistoryBuilder:
    """A read that completed ok with a string for a value: the runner's bug, not the TOB's."""
    h = _start()
    h.ok(h.invoke(3, "read", None, node="n2", read_mode="local"), "timeout")
    _finals(h, [1])
    return h


def simulated_run() -> HistoryBuilder:
    """A longer correct run from the simulated TOB (overlapping clients, fail and info)."""
    h = HistoryBuilder()
    h.ops = simulate_tob(random.Random(7), steps=150, processes=4)
    return h


# (verdict folder, name, builder) for the histories that are not pairs.
SINGLES: list[tuple[str, str, Callable[[], HistoryBuilder]]] = [
    ("valid", "incomplete-broadcast-delivered", incomplete_broadcast_delivered),
    ("valid", "simulated-correct-run", simulated_run),
    ("unknown", "no-final-read", no_final_read),
    ("unknown", "malformed-read-value", malformed_read_value),
]


def histories() -> dict[Path, HistoryBuilder]:
    """Every corpus file (relative to tests/histories/) and the history it holds."""
    out: dict[Path, HistoryBuilder] = {}
    for invalid, valid, build in PAIRS:
        out[Path("invalid", CHECKER, f"{invalid}.jsonl")] = build(True)
        out[Path("valid", CHECKER, f"{valid}.jsonl")] = build(False)
    for verdict, name, make in SINGLES:
        out[Path(verdict, CHECKER, f"{name}.jsonl")] = make()
    return out


def write(root: Path = ROOT) -> list[Path]:
    return write_corpus(histories(), root)


if __name__ == "__main__":
    for path in write():
        print(path)
