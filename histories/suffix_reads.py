"""Whole logs from suffix reads: what each read saw, rebuilt without copying logs.

    ops = full_reads(history)        # each ok read's value: the whole log it saw (a LogView)
    ops = full_reads(history, materialize=True)   # the same as plain lists

A read that asked from a position (`node/PROTOCOL.md`, *Reads from a position*) completes
ok with the suffix as its value and `offset: K` (K > 0; a read without `offset` holds the
whole log, as every read of older histories does). Its whole log is the previous ok read
of the same client at the same node (in history order) followed by the suffix; a read's
client is its `client` field (the runner's worker, which outlives its processes), else its
process. A read whose offset is not that previous read's length cannot be rebuilt: it is
`malformed` (its value becomes the string "unrebuildable suffix read ..."), as any
unreadable read is. A rebuilt read loses its `offset` (it is a whole read now), so
rebuilding twice changes nothing.

Why this hides nothing the checkers found with whole-log reads. Let R be a read of client
c at node n with offset K, and P the previous ok read of c at n. The client sent K =
len(log(P)) and the chain digest of log(P) (it moves its cursor by exactly the ok reads
the history records, one op at a time); the node answers a suffix only when its own first
K entries have that digest, else its whole log (offset 0). So when R is a suffix, the
node's log at R was log(P) + suffix (up to a collision of a 128-bit digest), which is what
this module rebuilds; by induction over c's reads at n, every rebuilt read is exactly the
log the node held, i.e. what it would have answered in full. The checkers then run on the
same logs as before and find the same anomalies. A node whose log changed under a client
(a divergent or rewritten prefix, a restart that lost entries) fails the digest and answers
in full, so the checker sees the change as it always did; a client that reads another
node is relative to that node's own earlier answer, never to another node's log. The
comparison lives in the node's shell (`node/read_from.py`), outside the protocol cores and
their seeded bugs.

Memory stays linear in the log, not in the sum of the reads: the rebuilt logs share one
growing list (`_Logs.common`) while they agree with it, and a read is a `LogView` (a list
and a length) over it; only a log that leaves the common one gets a list of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from tobtest.histories.op import NEMESIS, Op


class LogView(Sequence[Any]):
    """The first `length` entries of `base`, a list that only ever grows past them."""

    __slots__ = ("base", "length")

    def __init__(self, base: list[Any], length: int) -> None:
        self.base, self.length = base, length

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            start, stop, step = i.indices(self.length)
            return self.base[start:stop:step]
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError("log view index out of range")
        return self.base[i]

    def __iter__(self) -> Iterator[Any]:
        if self.length == len(self.base):
            return iter(self.base)
        return iter(self.base[: self.length])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LogView):
            if other.base is self.base:
                return other.length == self.length
            return other.length == self.length and self.to_list() == other.to_list()
        if isinstance(other, list):
            return len(other) == self.length and self.to_list() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def to_list(self) -> list[Any]:
        return self.base if self.length == len(self.base) else self.base[: self.length]

    def __repr__(self) -> str:
        return repr(self.to_list())


class _Logs:
    """The logs of (process, node) pairs, as views over shared lists. Lists are only ever
    extended while rebuilding; an op's own list never is."""

    def __init__(self) -> None:
        self.common: list[Any] = []
        self.owned: dict[int, list[Any]] = {}  # the lists made here, by id (kept alive)
        self.last: dict[tuple[Any, ...], LogView] = {}

    def extend(self, previous: LogView, suffix: list[Any]) -> LogView:
        base, n = previous.base, previous.length
        common = self.common
        if id(base) not in self.owned and base is not common:  # an op's whole read
            agreed = min(n, len(common))
            if base[:agreed] == common[:agreed]:  # it agrees with the common log: share it
                common.extend(base[agreed:n])
                base = common
        if base is common:
            end = n + len(suffix)
            if end <= len(common):
                if common[n:end] == suffix:
                    return LogView(common, end)
            elif common[n:] == suffix[: len(common) - n]:
                common.extend(suffix[len(common) - n :])
                return LogView(common, end)
        if id(base) not in self.owned or len(base) != n:
            base = base[:n]  # a log of its own from here
            self.owned[id(base)] = base
        base.extend(suffix)
        return LogView(base, len(base))


def read_key(op: Op) -> tuple[Any, ...]:
    """Whose cursor a read moves: its client's (`client`), else its process's, at its node."""
    if "client" in op.extra:
        return ("client", op.extra["client"], op.node)
    return ("process", op.process, op.node)


def full_reads(history: list[Op], materialize: bool = False) -> list[Op]:
    """The history with every suffix read's value replaced by the whole log it saw (a
    `LogView`, or a list with `materialize`). Returns `history` itself when no read has an
    offset (older histories, nodes without `read-from`), so those check exactly as before."""
    if not any(
        isinstance(op, Op) and op.type == "ok" and op.f == "read" and op.extra.get("offset")
        for op in history
    ):
        return history
    logs = _Logs()
    out: list[Op] = []
    for op in history:
        if not isinstance(op, Op) or op.type != "ok" or op.f != "read" or op.process == NEMESIS:
            out.append(op)
            continue
        key = read_key(op)
        offset = op.extra.get("offset", 0)
        value: Any = op.value
        if isinstance(value, LogView):  # rebuilt already
            logs.last[key] = value
        elif not isinstance(value, list):
            logs.last.pop(key, None)
        elif not offset:
            logs.last[key] = LogView(value, len(value))
        else:
            previous = logs.last.get(key)
            if (
                isinstance(offset, bool)
                or not isinstance(offset, int)
                or previous is None
                or (len(previous) != offset)
            ):
                held = "no read" if previous is None else f"{len(previous)} entries"
                value = f"unrebuildable suffix read at offset {offset!r}: its client held {held}"
                logs.last.pop(key, None)
            else:
                value = logs.last[key] = logs.extend(previous, value)
        if value is not op.value:
            # Without `offset`: a whole read now, as a read of an older history.
            extra = {k: v for k, v in op.extra.items() if k != "offset"}
            op = Op(op.index, op.time_ns, op.type, op.process, op.f, value, op.node, op.error,
                    extra)  # fmt: skip
        out.append(op)
    if materialize:  # only now: the shared lists grew while rebuilding
        for i, op in enumerate(out):
            if isinstance(op.value, LogView):
                out[i] = Op(op.index, op.time_ns, op.type, op.process, op.f, op.value[:],
                            op.node, op.error, op.extra)  # fmt: skip
    return out


def suffix_form(history: list[Op]) -> list[Op]:
    """The history as nodes answering reads from a position would have recorded it: each ok
    read whose client's (else process's) previous ok read at that node is a prefix of it
    holds only the rest, with `offset` (the node's digest check, as a prefix comparison).
    For tests and for measuring what histories cost; `full_reads(suffix_form(h))` has h's
    logs."""
    last: dict[tuple[Any, ...], list[Any]] = {}
    out: list[Op] = []
    for op in history:
        if op.type != "ok" or op.f != "read" or op.process == NEMESIS:
            out.append(op)
            continue
        key, value = read_key(op), op.value
        if not isinstance(value, list) or op.extra.get("offset"):
            last.pop(key, None)
            out.append(op)
            continue
        held = last.get(key, [])
        last[key] = value
        if not held or value[: len(held)] != held:
            out.append(op)
            continue
        out.append(Op(op.index, op.time_ns, op.type, op.process, op.f, value[len(held) :],
                      op.node, op.error, {**op.extra, "offset": len(held)}))  # fmt: skip
    return out
