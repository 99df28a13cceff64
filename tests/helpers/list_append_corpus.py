"""Writes the hand-made list-append histories under tests/histories/ (committed data).

    .venv/bin/python -m tests.helpers.list_append_corpus      # rewrites the .jsonl files

Each case is a pair built by one function: `bad=True` gives the invalid history (named after
the anomaly kind it must show) and `bad=False` its near miss, which differs in the one detail
that matters and must pass. tests/checker/test_list_append.py checks that the committed files
are what this module writes, so edit here and rerun rather than editing the files.

Txns are written as Jepsen's list-append: `f = "txn"`, micro-ops `["append", k, v]` and
`["r", k, null]`, reads filled in on the ok completion. Here a txn is given as
("a", k, v) appends and ("r", k, value) reads.

| invalid (kind first) | near miss in valid/ | the one detail |
| --- | --- | --- |
| G0-write-cycle | G0-near-miss-same-order | y read as [2, 1] vs [1, 2] |
| G0-realtime-reordered-appends | G0-realtime-near-miss-in-order | x read as [2, 1] vs [1, 2] |
| G1a-aborted-read | G1a-near-miss-failed-append-unseen | the failed append is read or not |
| G1b-intermediate-read | G1b-near-miss-final-state | x read as [1] vs [1, 2] |
| G1c-circular-info-flow | G1c-near-miss-one-way-flow | T1 reads y = [2] vs [] |
| G-single-read-skew | G-single-near-miss-consistent-snapshot | x read as [] vs [1] |
| G-single-realtime-stale-read | G-single-realtime-near-miss-concurrent-read | after vs during |
| G-single-process-missed-own-append | G-single-process-near-miss-read-own-append | [] vs [1] |
| G2-item-write-skew | G2-item-near-miss-serial | T2 reads x = [] vs [1] |
| G2-item-process-skew-across-a-session | G2-item-process-near-miss | T2 reads y = [] vs [3] |
| G-nonadjacent-two-readers | G-nonadjacent-near-miss | T3 reads y = [] vs [4] |
| internal-read-misses-own-append | internal-near-miss-reads-own-append | [] vs [1] |
| duplicate-elements-repeated-append | duplicate-elements-near-miss | [1, 1, 2] vs [1, 2] |
| incompatible-order-diverged-reads | incompatible-order-near-miss-prefix | [2, 1] vs [1] |
| lost-update-both-read-same-state | lost-update-near-miss | T2 reads [1] vs [1, 2] |
| dirty-update-on-failed-append | dirty-update-near-miss-indeterminate | T1 fail vs info |
| future-read-sees-own-later-append | future-read-near-miss | [1] vs [] before appending 1 |
| garbage-read-value-never-appended | garbage-read-near-miss | [1, 99] vs [1] |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers.history_builder import HistoryBuilder, write_corpus

CHECKER = "list-append"
ROOT = Path(__file__).resolve().parent.parent / "histories"

Mops = list[tuple[str, Any, Any]]


class Txns:
    """HistoryBuilder for list-append txns."""

    def __init__(self) -> None:
        self.h = HistoryBuilder()

    def start(self, process: int, mops: Mops) -> tuple[int, Mops]:
        value = [["append", k, v] if f == "a" else ["r", k, None] for f, k, v in mops]
        return self.h.invoke(process, "txn", value), mops

    def finish(self, pending: tuple[int, Mops], kind: str = "ok") -> None:
        handle, mops = pending
        if kind == "ok":
            self.h.ok(handle, [["append", k, v] if f == "a" else ["r", k, v] for f, k, v in mops])
        elif kind == "fail":
            self.h.fail(handle)
        else:
            self.h.info(handle)

    def txn(self, process: int, mops: Mops, kind: str = "ok") -> None:
        self.finish(self.start(process, mops), kind)


def g0(bad: bool) -> Txns:
    """T1 and T2 overlap, each appending to x and y; a later read orders them both ways."""
    t = Txns()
    t1 = t.start(0, [("a", "x", 1), ("a", "y", 1)])
    t2 = t.start(1, [("a", "x", 2), ("a", "y", 2)])
    t.finish(t1)
    t.finish(t2)
    t.txn(2, [("r", "x", [1, 2]), ("r", "y", [2, 1] if bad else [1, 2])])
    return t


def g0_realtime(bad: bool) -> Txns:
    """T2 appends after T1 completed, yet x shows 2 before 1."""
    t = Txns()
    t.txn(0, [("a", "x", 1)])
    t.txn(1, [("a", "x", 2)])
    t.txn(2, [("r", "x", [2, 1] if bad else [1, 2])])
    return t


def g1a(bad: bool) -> Txns:
    """A failed append is read (bad) or not (fine)."""
    t = Txns()
    t.txn(0, [("a", "x", 1)], "fail")
    t.txn(1, [("r", "x", [1] if bad else None)])
    return t


def g1b(bad: bool) -> Txns:
    """T1 appends 1 then 2 to x; a concurrent read sees [1] (an intermediate state)."""
    t = Txns()
    t1 = t.start(0, [("a", "x", 1), ("a", "x", 2)])
    t2 = t.start(1, [("r", "x", [1] if bad else [1, 2])])
    t.finish(t1)
    t.finish(t2)
    return t


def g1c(bad: bool) -> Txns:
    """Each of two concurrent txns reads the other's append (bad), or only one does."""
    t = Txns()
    t1 = t.start(0, [("a", "x", 1), ("r", "y", [2] if bad else [])])
    t2 = t.start(1, [("a", "y", 2), ("r", "x", [1])])
    t.finish(t1)
    t.finish(t2)
    return t


def g_single(bad: bool) -> Txns:
    """Read skew: T2 sees T1's append to y but not its append to x."""
    t = Txns()
    t1 = t.start(0, [("a", "x", 1), ("a", "y", 1)])
    t2 = t.start(1, [("r", "x", [] if bad else [1]), ("r", "y", [1])])
    t.finish(t1)
    t.finish(t2)
    return t


def g_single_realtime(bad: bool) -> Txns:
    """A read of [] invoked after the append of 1 completed (bad) or during it (fine)."""
    t = Txns()
    if bad:
        t.txn(0, [("a", "x", 1)])
        t.txn(1, [("r", "x", [])])
    else:
        read = t.start(1, [("r", "x", [])])
        t.txn(0, [("a", "x", 1)])
        t.finish(read)
    return t


def g_single_process(bad: bool) -> Txns:
    """A process appends 1 to x, then reads x without it (bad) or with it."""
    t = Txns()
    t.txn(0, [("a", "x", 1)])
    t.txn(0, [("r", "x", [] if bad else [1])])
    return t


def g2_item(bad: bool) -> Txns:
    """Write skew: both read x and y empty, then append to one each."""
    t = Txns()
    t1 = t.start(0, [("r", "x", []), ("r", "y", []), ("a", "x", 1)])
    t2 = t.start(1, [("r", "x", [] if bad else [1]), ("r", "y", []), ("a", "y", 2)])
    t.finish(t1)
    t.finish(t2)
    t.txn(2, [("r", "x", [1]), ("r", "y", [2])])
    return t


def g2_item_process(bad: bool) -> Txns:
    """T1 -rw-> T2 -rw-> T3 -process-> T1: process 0 runs T3 then T1 while T2 spans both."""
    t = Txns()
    t2 = t.start(1, [("r", "y", [] if bad else [3]), ("a", "x", 2)])
    t.txn(0, [("a", "y", 3)])
    t.txn(0, [("r", "x", [])])
    t.finish(t2)
    t.txn(2, [("r", "x", [2]), ("r", "y", [3])])
    return t


def g_nonadjacent(bad: bool) -> Txns:
    """T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1: two rw edges, never side by side."""
    t = Txns()
    pending = [
        t.start(0, [("r", "x", []), ("r", "w", [4])]),
        t.start(1, [("a", "x", 2), ("a", "z", 2)]),
        t.start(2, [("r", "z", [2]), ("r", "y", [] if bad else [4])]),
        t.start(3, [("a", "y", 4), ("a", "w", 4)]),
    ]
    for p in pending:
        t.finish(p)
    t.txn(4, [("r", "x", [2]), ("r", "y", [4])])
    return t


def internal(bad: bool) -> Txns:
    """A txn appends 1 to x and then reads x without it."""
    t = Txns()
    t.txn(0, [("a", "x", 1), ("r", "x", [] if bad else [1])])
    return t


def duplicate_elements(bad: bool) -> Txns:
    t = Txns()
    t.txn(0, [("a", "x", 1)])
    t.txn(1, [("a", "x", 2)])
    t.txn(2, [("r", "x", [1, 1, 2] if bad else [1, 2])])
    return t


def incompatible_order(bad: bool) -> Txns:
    """While 2 is being appended, a read shows [2, 1]; a later one shows [1, 2]."""
    t = Txns()
    t1 = t.start(0, [("a", "x", 1)])
    t2 = t.start(1, [("a", "x", 2)])
    t.finish(t1)
    t.txn(3, [("r", "x", [2, 1] if bad else [1])])
    t.finish(t2)
    t.txn(2, [("r", "x", [1, 2])])
    return t


def lost_update(bad: bool) -> Txns:
    """Two concurrent txns both read x = [1] and append to it."""
    t = Txns()
    t.txn(0, [("a", "x", 1)])
    t1 = t.start(1, [("r", "x", [1]), ("a", "x", 2)])
    t2 = t.start(2, [("r", "x", [1] if bad else [1, 2]), ("a", "x", 3)])
    t.finish(t1)
    t.finish(t2)
    return t


def dirty_update(bad: bool) -> Txns:
    """A committed append on top of a failed (bad) or indeterminate (fine) one."""
    t = Txns()
    t.txn(0, [("a", "x", 1)], "fail" if bad else "info")
    t.txn(1, [("a", "x", 2)])
    t.txn(2, [("r", "x", [1, 2])])
    return t


def future_read(bad: bool) -> Txns:
    t = Txns()
    t.txn(0, [("r", "x", [1] if bad else []), ("a", "x", 1)])
    return t


def garbage_read(bad: bool) -> Txns:
    t = Txns()
    t.txn(0, [("a", "x", 1)])
    t.txn(1, [("r", "x", [1, 99] if bad else [1])])
    return t


PAIRS: list[tuple[str, str, Callable[[bool], Txns]]] = [
    ("G0-write-cycle", "G0-near-miss-same-order", g0),
    ("G0-realtime-reordered-appends", "G0-realtime-near-miss-in-order", g0_realtime),
    ("G1a-aborted-read", "G1a-near-miss-failed-append-unseen", g1a),
    ("G1b-intermediate-read", "G1b-near-miss-final-state", g1b),
    ("G1c-circular-info-flow", "G1c-near-miss-one-way-flow", g1c),
    ("G-single-read-skew", "G-single-near-miss-consistent-snapshot", g_single),
    (
        "G-single-realtime-stale-read",
        "G-single-realtime-near-miss-concurrent-read",
        g_single_realtime,
    ),
    (
        "G-single-process-missed-own-append",
        "G-single-process-near-miss-read-own-append",
        g_single_process,
    ),
    ("G2-item-write-skew", "G2-item-near-miss-serial", g2_item),
    ("G2-item-process-skew-across-a-session", "G2-item-process-near-miss", g2_item_process),
    ("G-nonadjacent-two-readers", "G-nonadjacent-near-miss", g_nonadjacent),
    ("internal-read-misses-own-append", "internal-near-miss-reads-own-append", internal),
    ("duplicate-elements-repeated-append", "duplicate-elements-near-miss", duplicate_elements),
    (
        "incompatible-order-diverged-reads",
        "incompatible-order-near-miss-prefix",
        incompatible_order,
    ),
    ("lost-update-both-read-same-state", "lost-update-near-miss", lost_update),
    ("dirty-update-on-failed-append", "dirty-update-near-miss-indeterminate", dirty_update),
    ("future-read-sees-own-later-append", "future-read-near-miss", future_read),
    ("garbage-read-value-never-appended", "garbage-read-near-miss", garbage_read),
]


def histories() -> dict[Path, HistoryBuilder]:
    """Every corpus file (relative to tests/histories/) and the history it holds."""
    out: dict[Path, HistoryBuilder] = {}
    for invalid, valid, build in PAIRS:
        out[Path("invalid", CHECKER, invalid + ".jsonl")] = build(True).h
        out[Path("valid", CHECKER, valid + ".jsonl")] = build(False).h
    return out


def write(root: Path = ROOT) -> list[Path]:
    return write_corpus(histories(), root)


if __name__ == "__main__":
    for path in write():
        print(path)
