"""Total-order checker: do a TOB history's reads agree on one order, lose nothing acked and
respect real time?

    from tobtest.checker.total_order import check
    result = check(history)                    # history: list[Op] (or Op dicts)
    result["valid"]                            # True, False or "unknown"
    result["anomalies"]["lost"][0]["explanation"]
    # "broadcast 17 was acked at 3.200 s and is missing from n1's final read"

The history is as the runner records it. A broadcast is invoked as `{"f": "broadcast",
"value": V, "node": "n2"}` (V unique, hashable) and completes ok (with `position`), fail
(certainly not broadcast) or info (indeterminate; an invoke never completed counts as info).
A read is invoked as `{"f": "read", "node": "n1", "read_mode": "local" | "log" | "lease"}`
(another or no mode counts as local) and completes ok with the node's delivered sequence as
its value; `final: true` (on the invoke or the ok) marks the reads taken from every node
after healing. Nemesis ops and ops with other `f`s are ignored.
Happens-before is history order: op A precedes op B when A's completion comes before B's
invocation in the list (time_ns is used only to word the explanations).

Anomaly kinds; each anomaly is `{"ops": [op indices], "explanation": str, ...details}`:
  incompatible-order  two ok reads of which neither is a prefix of the other
  duplicate           a value twice in one read
  phantom             a read holds a value that no broadcast ever carried
  future-read         a read completed before the broadcast of one of its values was invoked
  failed-delivered    a broadcast that completed `fail` is in some read
  lost                an acked broadcast is missing from a final read
  not-caught-up       a node the runner marked `caught_up: false` (it had not caught up
                      with the others when quiescence ended) lacks in its final read acked
                      broadcasts that a caught-up node's final read holds: one anomaly per
                      such node (how many it lacks, how far behind it was, its status),
                      instead of one `lost` per broadcast. A liveness failure of that node,
                      not a lost broadcast; it still makes the run invalid, since after the
                      heal and a bounded wait every acked broadcast must be on every node.
                      A broadcast that no caught-up final read holds is still `lost`.
  nonmonotonic        a node's read does not extend a read of that node that completed
                      before it was invoked
  realtime            broadcast A was acked before B was invoked, yet B is ordered before A
  wrong-position      (with `ack_contract=True`) a broadcast acked at node N with position
                      p, while N's reads hold another value at p
  ack-before-delivery (with `ack_contract=True`) a read of node N, invoked after N acked a
                      broadcast at position p, holds p or fewer values: N acked before it
                      delivered
The last two check tobtest's wire contract (an ack means "delivered here, at this
position"), which not every TOB promises; the runner turns them on for its nodes.
  stale-read          a `log`/`lease` read lacks a broadcast acked before it was invoked, or
                      is shorter than a `log`/`lease` read that completed before that
                      (`local` reads are only sequentially consistent and are exempt)
  malformed           an op the checker cannot interpret (read value not a list, unhashable
                      or repeated broadcast value, completion without invocation, ...); it
                      is left out of the other checks
Each kind lists at most `anomaly_limit` anomalies (default 20); `counts["anomalies"]` has
the true totals. Verdict: False when any kind other than `malformed` was found; otherwise
"unknown" when ops were malformed or no final read completed ok (lost broadcasts cannot be
ruled out; `require_final_read=False` skips that check), with `reasons`; otherwise True.

Linear time: the longest ok read is the reference order. One slice comparison per read sorts
reads into prefixes of it and "disagreeing" reads (normally none); prefix reads need only
their length from then on, and only disagreeing reads get element-wise checks. Real-time,
stale-read and monotonicity checks are one sweep in history order carrying running maxima.

Suffix reads (an ok read with `offset`, from nodes that answer reads from a position) are
first rebuilt into the whole logs they saw (`tobtest/histories/suffix_reads.py`, which also
argues why that hides no anomaly): views over shared lists, so memory and the prefix sort
stay linear in the log, not in the sum of the reads' lengths.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tobtest.histories.op import NEMESIS, Op
from tobtest.histories.suffix_reads import LogView, full_reads

ANOMALY_LIMIT = 20
ANOMALY_KINDS = (
    "incompatible-order",
    "duplicate",
    "phantom",
    "future-read",
    "failed-delivered",
    "lost",
    "not-caught-up",
    "nonmonotonic",
    "realtime",
    "stale-read",
    "wrong-position",
    "ack-before-delivery",
    "malformed",
)
LINEARIZABLE_READ_MODES = frozenset({"log", "lease"})
_B_INVOKE, _B_DONE, _R_INVOKE, _R_DONE = range(4)  # event codes: id * 4 + code
_IDLE = object()  # a process with no open op


@dataclass(slots=True)
class _Broadcast:
    value: Any
    inv: Op
    inv_pos: int
    status: str = "open"  # ok | fail | info | open (never completed)
    done: Op | None = None


@dataclass(slots=True)
class _Read:
    node: Any
    inv: Op
    inv_pos: int
    mode: str = "local"
    final: bool = False
    done: Op | None = None
    done_pos: int = -1
    ok: bool = False  # completed ok with a usable list: only these take part in the checks
    caught_up: bool = True  # False: a final read of a node that had not caught up
    value: list[Any] | LogView = field(default_factory=list)
    prefix: bool = False  # a prefix of the reference read


@dataclass
class _Parsed:
    broadcasts: list[_Broadcast] = field(default_factory=list)
    by_value: dict[Any, int] = field(default_factory=dict)
    reads: list[_Read] = field(default_factory=list)
    ok_reads: list[int] = field(default_factory=list)  # read ids in completion order
    events: list[int] = field(default_factory=list)  # in history order
    ignored: int = 0
    t0: Any = None


class _Report:
    """Anomalies by kind: the first `limit` of each kind, and the true totals."""

    def __init__(self, limit: int) -> None:
        self.limit, self.t0 = limit, 0
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.totals: dict[str, int] = {}

    def add(self, kind: str, ops: Iterable[Op | None], explanation: str, **details: Any) -> None:
        n = self.totals.get(kind, 0)
        self.totals[kind] = n + 1
        if n < self.limit:
            indices = [op.index for op in ops if op is not None]
            with contextlib.suppress(TypeError):  # odd indices (Ops built by hand) stay as given
                indices.sort()
            anomaly = {"ops": indices, "explanation": explanation, **details}
            self.found.setdefault(kind, []).append(anomaly)

    def at(self, op: Op | None) -> str:
        """An op's time for humans, in seconds since the history began."""
        try:
            return f"{(op.time_ns - self.t0) / 1e9:.3f} s"  # type: ignore[union-attr]
        except (AttributeError, TypeError):
            return "an unknown time"


def _show(values: list[Any], around: int = 0, width: int = 6) -> str:
    """A read for humans: whole if short, else a window around position `around`."""
    if len(values) <= 2 * width:
        return repr(values)
    lo = max(0, around - width // 2)
    inner = ", ".join(repr(v) for v in values[lo : lo + width])
    return f"[{'..., ' if lo else ''}{inner}{', ...' if lo + width < len(values) else ''}]"


def _who(r: _Read) -> str:
    return f"{r.node}'s final read" if r.final else f"a {r.mode} read on {r.node}"


def _parse(history: Iterable[Any], rep: _Report) -> _Parsed:
    """One pass: pairs invocations with completions per process and records events."""
    h = _Parsed()
    open_by_process: dict[Any, Any] = {}  # process -> (is_read, id), or None for ignored ops
    for pos, raw in enumerate(history):
        op = raw
        if not isinstance(op, Op):
            try:
                op = Op.from_dict(raw)
            except (ValueError, TypeError) as exc:
                rep.add("malformed", [], f"entry {pos} is not an op: {exc}", entry=pos)
                continue
        if h.t0 is None:
            h.t0 = op.time_ns
        if op.process == NEMESIS:
            continue
        try:
            current = open_by_process.pop(op.process, _IDLE)
        except TypeError:
            rep.add("malformed", [op], f"op {op.index} has an unhashable process")
            continue
        node = op.node if isinstance(op.node, (str, int)) else None
        if op.type == "invoke":
            if current is not _IDLE:
                why = f"process {op.process} invoked op {op.index} with an op still open"
                rep.add("malformed", [op], why)
            open_by_process[op.process] = _invoke(h, op, pos, node, rep)
        elif current is None or (current is _IDLE and op.f not in ("broadcast", "read")):
            h.ignored += 1
        elif current is _IDLE:
            why = f"op {op.index} completes nothing: process {op.process} has no open op"
            rep.add("malformed", [op], why)
        elif op.f != ("read" if current[0] else "broadcast"):
            rep.add("malformed", [op], f"op {op.index} ({op.f}) completes an op of another f")
        elif current[0]:
            _complete_read(h, current[1], op, pos, node, rep)
        else:
            b = h.broadcasts[current[1]]
            b.status, b.done = op.type, op
            if op.type == "ok":
                h.events.append(current[1] * 4 + _B_DONE)
    return h


def _invoke(h: _Parsed, op: Op, pos: int, node: Any, rep: _Report) -> Any:
    """Records an invocation; returns what its process now has open."""
    if op.f == "read":
        rid = len(h.reads)
        mode = op.extra.get("read_mode")
        h.reads.append(_Read(node, op, pos, mode if isinstance(mode, str) else "local"))
        h.events.append(rid * 4 + _R_INVOKE)
        return (True, rid)
    if op.f != "broadcast":
        h.ignored += 1
        return None
    try:
        repeated = op.value in h.by_value
    except TypeError:
        rep.add("malformed", [op], f"broadcast op {op.index} has an unhashable value")
        return None
    if repeated:
        rep.add("malformed", [op], f"value {op.value!r} is broadcast twice (op {op.index})")
        return None
    bid = len(h.broadcasts)
    h.by_value[op.value] = bid
    h.broadcasts.append(_Broadcast(op.value, op, pos))
    h.events.append(bid * 4 + _B_INVOKE)
    return (False, bid)


def _complete_read(h: _Parsed, rid: int, op: Op, pos: int, node: Any, rep: _Report) -> None:
    r = h.reads[rid]
    r.done, r.done_pos = op, pos
    if op.type != "ok":
        return
    if not isinstance(op.value, (list, tuple, LogView)):
        why = f"read op {op.index} returned {type(op.value).__name__}, not a list"
        if isinstance(op.value, str):  # a suffix read that could not be rebuilt says why
            why = f"read op {op.index}: {op.value}"
        rep.add("malformed", [op], why)
        return
    r.ok = True
    # Read, never mutated; a rebuilt suffix read stays a view over its shared log.
    r.value = op.value if isinstance(op.value, (list, LogView)) else list(op.value)
    r.final = bool(op.extra.get("final") or r.inv.extra.get("final"))
    r.caught_up = op.extra.get("caught_up", r.inv.extra.get("caught_up")) is not False
    if "read_mode" not in r.inv.extra and isinstance(op.extra.get("read_mode"), str):
        r.mode = op.extra["read_mode"]
    r.node = node if r.node is None else r.node
    h.ok_reads.append(rid)
    h.events.append(rid * 4 + _R_DONE)


def _drop_unhashable(h: _Parsed, rid: int, rep: _Report) -> None:
    r = h.reads[rid]
    r.ok, r.prefix = False, False
    h.ok_reads.remove(rid)
    rep.add("malformed", [r.done], f"read op {r.done.index} holds unhashable values")  # type: ignore[union-attr]


def _reference(h: _Parsed, rep: _Report) -> tuple[list[Any], dict[Any, int]]:
    """The longest ok read (the first, among equals), and each value's first position in it."""
    while h.ok_reads:
        best = max(h.ok_reads, key=lambda rid: len(h.reads[rid].value))
        best_value = h.reads[best].value
        ref = best_value.to_list() if isinstance(best_value, LogView) else best_value
        try:
            pos = dict(zip(ref, range(len(ref)), strict=True))
        except TypeError:
            _drop_unhashable(h, best, rep)
            continue
        if len(pos) < len(ref):  # duplicates: keep each value's first position
            pos = {}
            for p, v in enumerate(ref):
                pos.setdefault(v, p)
        return ref, pos
    return [], {}


def _mark_prefixes(h: _Parsed, ref: list[Any]) -> None:
    """Sets each ok read's `prefix`: is it a prefix of the reference read? A rebuilt suffix
    read is a view of a shared log: the shared log is compared once, its views by length."""
    agree: dict[int, int] = {}  # id of a shared log -> how long it agrees with ref
    for rid in h.ok_reads:
        r = h.reads[rid]
        if not isinstance(r.value, LogView):
            r.prefix = r.value == ref[: len(r.value)]
            continue
        base = r.value.base
        n = agree.get(id(base))
        if n is None:
            n = agree[id(base)] = _agreeing_length(base, ref)
        r.prefix = len(r.value) <= n


def _agreeing_length(a: list[Any], b: list[Any]) -> int:
    """The length of the longest common prefix of `a` and `b`."""
    if a is b:
        return len(a)
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    return next(i for i in range(n) if a[i] != b[i])


def _value_checks(h: _Parsed, ref: list[Any], pos: dict[Any, int], rep: _Report) -> dict:
    """duplicate, phantom, future-read, failed-delivered. Returns value -> earliest reader."""
    reads = h.reads
    first_cover: list[int] = []  # position -> earliest-completing prefix read that reaches it
    for rid in h.ok_reads:
        n = len(reads[rid].value)
        if reads[rid].prefix and n > len(first_cover):
            first_cover.extend([rid] * (n - len(first_cover)))
    seen = {v: first_cover[p] for v, p in pos.items()}
    dup_reader: dict[Any, int] = {}
    if len(pos) < len(ref):
        for p, v in enumerate(ref):
            if pos[v] != p:
                dup_reader.setdefault(v, first_cover[p])
    for rid in [i for i in h.ok_reads if not reads[i].prefix]:
        r = reads[rid]
        try:
            if len(set(r.value)) < len(r.value):
                once: set[Any] = set()
                for v in r.value:
                    if v in once:
                        dup_reader.setdefault(v, rid)
                    once.add(v)
        except TypeError:
            _drop_unhashable(h, rid, rep)
            continue
        for v in r.value:
            first = seen.get(v)
            if first is None or reads[first].done_pos > r.done_pos:
                seen[v] = rid
    for v, rid in dup_reader.items():
        r = reads[rid]
        rep.add(
            "duplicate", [r.inv, r.done], f"{_who(r)} holds {v!r} twice: {_show(r.value)}", value=v
        )
    for v, rid in seen.items():
        r = reads[rid]
        bid = h.by_value.get(v)
        if bid is None:
            why = f"{_who(r)} holds {v!r}, which was never broadcast"
            rep.add("phantom", [r.inv, r.done], why, value=v)
            continue
        b = h.broadcasts[bid]
        if r.done_pos < b.inv_pos:
            why = (
                f"{_who(r)} returned {v!r} at {rep.at(r.done)}, before its broadcast was "
                f"invoked at {rep.at(b.inv)}"
            )
            rep.add("future-read", [r.inv, r.done, b.inv], why, value=v)
        if b.status == "fail":
            why = f"broadcast {v!r} failed at {rep.at(b.done)} yet {_who(r)} holds it"
            rep.add("failed-delivered", [b.inv, b.done, r.inv, r.done], why, value=v)
    return seen


def _order_checks(h: _Parsed, ref: list[Any], rep: _Report) -> None:
    """incompatible-order: one anomaly per distinct content of the reads that disagree."""
    reads = h.reads
    prefixes = sorted(
        (len(reads[i].value), reads[i].done_pos, i) for i in h.ok_reads if reads[i].prefix
    )
    lengths = [n for n, _, _ in prefixes]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for rid in h.ok_reads:
        if not reads[rid].prefix:
            groups.setdefault(tuple(reads[rid].value), []).append(rid)
    for content, rids in groups.items():
        k = next((i for i, (a, b) in enumerate(zip(content, ref, strict=False)) if a != b), 0)
        # The shortest prefix read that reaches past k is the least witness of the conflict.
        o = reads[prefixes[min(bisect.bisect_right(lengths, k), len(prefixes) - 1)][2]]
        r = reads[rids[0]]
        why = (
            f"{_who(r)} has {r.value[k]!r} at position {k} where {_who(o)} has "
            f"{o.value[k]!r}: {_show(r.value, k)} vs {_show(o.value, k)}"
        )
        rep.add(
            "incompatible-order",
            [r.inv, r.done, o.inv, o.done],
            why,
            position=k,
            reads_with_this_content=len(rids),
        )


def _sweep(h: _Parsed, pos: dict[Any, int], rep: _Report) -> None:
    """realtime, stale-read and nonmonotonic, in one pass in history order."""
    reads, bcasts = h.reads, h.broadcasts
    max_acked_p, max_acked = -1, -1  # highest reference position among acked broadcasts
    absent_acked = -1  # first acked broadcast that the reference read lacks
    acked: list[int] = []  # broadcast ids in ack order
    lin_best = -1  # longest completed log/lease read
    node_best: dict[Any, int] = {}  # node -> longest completed read there
    snaps: dict[int, tuple[int, int, int, int, int, int]] = {}
    for code in h.events:
        kind, i = code & 3, code >> 2
        if kind == _B_INVOKE:
            p = pos.get(bcasts[i].value)
            if p is not None and p < max_acked_p:
                a, b = bcasts[max_acked], bcasts[i]
                why = (
                    f"broadcast {a.value!r} was acked at {rep.at(a.done)}, before "
                    f"{b.value!r} was invoked at {rep.at(b.inv)}, yet {b.value!r} is "
                    f"ordered first (position {p} < {max_acked_p})"
                )
                rep.add("realtime", [a.inv, a.done, b.inv], why, values=[a.value, b.value])
        elif kind == _B_DONE:
            p = pos.get(bcasts[i].value)
            if p is None:
                absent_acked = i if absent_acked < 0 else absent_acked
            elif p > max_acked_p:
                max_acked_p, max_acked = p, i
            acked.append(i)
        elif not reads[i].ok:
            continue
        elif kind == _R_INVOKE:
            prev = node_best.get(reads[i].node, -1)
            snaps[i] = (max_acked_p, max_acked, absent_acked, len(acked), lin_best, prev)
        else:
            r = reads[i]
            _check_read(h, r, snaps[i], acked, rep)
            n = len(r.value)
            if r.mode in LINEARIZABLE_READ_MODES and (
                lin_best < 0 or n > len(reads[lin_best].value)
            ):
                lin_best = i
            best = node_best.get(r.node)
            if r.node is not None and (best is None or n > len(reads[best].value)):
                node_best[r.node] = i


def _check_read(h: _Parsed, r: _Read, snap: tuple, acked: list[int], rep: _Report) -> None:
    """nonmonotonic and stale-read for one read, given the state when it was invoked."""
    reads, bcasts, value = h.reads, h.broadcasts, r.value
    max_acked_p, max_acked, absent_acked, n_acked, lin_best, prev = snap
    if prev >= 0:
        e = reads[prev]
        if r.prefix and e.prefix:
            shrank = len(value) < len(e.value)
        else:
            shrank = len(value) < len(e.value) or value[: len(e.value)] != e.value
        if shrank:
            why = (
                f"{r.node} read {_show(e.value, len(value))} by {rep.at(e.done)}, then "
                f"{_show(value, len(value))} at {rep.at(r.done)}, which does not extend it"
            )
            rep.add("nonmonotonic", [e.inv, e.done, r.inv, r.done], why, node=r.node)
    if r.mode not in LINEARIZABLE_READ_MODES:
        return
    missing = -1
    if r.prefix:
        if absent_acked >= 0:
            missing = absent_acked
        elif max_acked_p >= len(value):
            missing = max_acked
    else:
        held = set(value)
        # Each hit is a distinct value of this read, so this stops within len(value) + 1 steps.
        missing = next((b for b in acked[:n_acked] if bcasts[b].value not in held), -1)
    if missing >= 0:
        b = bcasts[missing]
        why = f"{_who(r)} invoked at {rep.at(r.inv)} lacks {b.value!r}, acked at {rep.at(b.done)}"
        rep.add("stale-read", [b.inv, b.done, r.inv, r.done], why, value=b.value)
    elif lin_best >= 0 and len(value) < len(reads[lin_best].value):
        e = reads[lin_best]
        why = (
            f"{_who(r)} invoked at {rep.at(r.inv)} returned a shorter log ({len(value)}) "
            f"than {_who(e)} had returned ({len(e.value)}) at {rep.at(e.done)}"
        )
        rep.add("stale-read", [e.inv, e.done, r.inv, r.done], why)


def _ack_position(b: _Broadcast) -> tuple[Any, int] | None:
    """(node, position) of an acked broadcast whose ack names both, else None."""
    done = b.done
    if b.status != "ok" or done is None:
        return None
    position = done.extra.get("position") if isinstance(done, Op) else None
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        return None
    return done.node or b.inv.node, position


def _ack_checks(h: _Parsed, rep: _Report) -> None:
    """wrong-position and ack-before-delivery: an ack says the node delivered the value at
    that position, so the node's reads must agree, and a later read there must hold it."""
    longest: dict[Any, _Read] = {}
    for rid in h.ok_reads:
        r = h.reads[rid]
        best = longest.get(r.node)
        if r.node is not None and (best is None or len(r.value) > len(best.value)):
            longest[r.node] = r
    for b in h.broadcasts:
        acked = _ack_position(b)
        if acked is None:
            continue
        node, p = acked
        longest_read = longest.get(node)
        if longest_read is None:
            continue
        r = longest_read
        if p < len(r.value) and r.value[p] != b.value:
            why = (
                f"broadcast {b.value!r} was acked by {node} at position {p}, but {_who(r)} "
                f"has {r.value[p]!r} there"
            )
            rep.add("wrong-position", [b.inv, b.done, r.inv, r.done], why, value=b.value)
    # In history order: the highest acked position per node, checked at each read's invoke.
    best_ack: dict[Any, tuple[int, int]] = {}  # node -> (position, broadcast id)
    snap: dict[int, tuple[int, int] | None] = {}
    for code in h.events:
        kind, i = code & 3, code >> 2
        if kind == _B_DONE:
            acked = _ack_position(h.broadcasts[i])
            if acked is not None:
                node, p = acked
                if p > best_ack.get(node, (-1, -1))[0]:
                    best_ack[node] = (p, i)
        elif kind == _R_INVOKE and h.reads[i].ok:
            snap[i] = best_ack.get(h.reads[i].node)
        elif kind == _R_DONE and h.reads[i].ok and snap.get(i) is not None:
            r = h.reads[i]
            p, bid = snap[i]  # type: ignore[misc]
            if len(r.value) <= p:
                b = h.broadcasts[bid]
                why = (
                    f"{r.node} acked broadcast {b.value!r} at position {p} at {rep.at(b.done)}, "
                    f"yet {_who(r)} invoked at {rep.at(r.inv)} returned only {len(r.value)} values"
                )
                rep.add("ack-before-delivery", [b.inv, b.done, r.inv, r.done], why, value=b.value)


def _lost_check(h: _Parsed, pos: dict[Any, int], rep: _Report) -> int:
    """lost and not-caught-up: every final read must hold every acked broadcast. One lacking
    only from final reads of nodes that had not caught up is charged to those nodes
    (not-caught-up) when a caught-up node's final read holds it. Returns the acked
    broadcasts that every final read holds."""
    finals = [h.reads[i] for i in h.ok_reads if h.reads[i].final]
    if not finals:
        return 0
    # A prefix final read of length n holds exactly the values at reference positions < n.
    shortest_prefix = min((len(f.value) for f in finals if f.prefix), default=len(pos) + 1)
    others = [(f, set(f.value)) for f in finals if not f.prefix]
    held_by_caught_up = {v for f in finals if f.caught_up for v in f.value}
    lagging: dict[int, list[_Broadcast]] = {}  # id of a lagging final read -> what it lacks
    found = 0
    for b in h.broadcasts:
        if b.status != "ok":
            continue
        p = pos.get(b.value, shortest_prefix)
        lacking = [f for f, held in others if b.value not in held]
        if p >= shortest_prefix:
            lacking += [f for f in finals if f.prefix and p >= len(f.value)]
        if not lacking:
            found += 1
            continue
        if all(not f.caught_up for f in lacking) and b.value in held_by_caught_up:
            for f in lacking:
                lagging.setdefault(id(f), []).append(b)
            continue
        nodes = ", ".join(_who(f) for f in lacking)
        why = f"broadcast {b.value!r} was acked at {rep.at(b.done)} and is missing from {nodes}"
        ops = [b.inv, b.done, *(op for f in lacking for op in (f.inv, f.done))]
        rep.add("lost", ops, why, value=b.value, nodes=[f.node for f in lacking])
    for f in finals:
        if id(f) in lagging:
            _not_caught_up(f, lagging[id(f)], rep)
    return found


def _not_caught_up(r: _Read, missing: list[_Broadcast], rep: _Report) -> None:
    """One anomaly for a lagging node's final read: what it lacks, how far behind it was."""
    extra = {**r.inv.extra, **(r.done.extra if r.done is not None else {})}
    behind, status = extra.get("behind_by"), extra.get("node_status")
    said = ""
    if isinstance(status, dict):
        keys = ("role", "leader", "ballot", "chosen_index", "delivered", "uptime_s")
        said = ", ".join(f"{k} {status[k]!r}" for k in keys if k in status)
        said = f"; its status then: {said}" if said else ""
    why = (
        f"{r.node} had not caught up with the other nodes when the runner stopped waiting"
        f"{f' ({behind} behind)' if behind is not None else ''}{said}: its final read "
        f"(invoked at {rep.at(r.inv)}) holds {len(r.value)} values and lacks {len(missing)} "
        f"acked broadcasts that a caught-up node's final read holds (first {missing[0].value!r})"
        ": a liveness failure of this node, not lost broadcasts"
    )
    rep.add(
        "not-caught-up",
        [r.inv, r.done, *(op for b in missing[:3] for op in (b.inv, b.done))],
        why,
        node=r.node,
        missing=len(missing),
        missing_values=[b.value for b in missing[:10]],
        behind_by=behind,
        status=status,
    )


def check(
    history: list[Op],
    anomaly_limit: int = ANOMALY_LIMIT,
    require_final_read: bool = True,
    ack_contract: bool = True,
    **_opts: Any,
) -> dict[str, Any]:
    """Checks a TOB history; see the module docstring for kinds and verdicts."""
    # The history holds large read lists; the cyclic GC would rescan them again and again as
    # we allocate, for nothing (we make no cycles), tripling the run time. Pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # Suffix reads (`offset`, histories/suffix_reads.py) as the whole logs they saw.
        history = full_reads(history)
        return _check(history, anomaly_limit, require_final_read, ack_contract)
    finally:
        if gc_was_enabled:
            gc.enable()


def _check(
    history: list[Op], anomaly_limit: int, require_final_read: bool, ack_contract: bool = False
) -> dict[str, Any]:
    rep = _Report(anomaly_limit)
    h = _parse(history, rep)
    rep.t0 = h.t0
    ref, pos = _reference(h, rep)
    _mark_prefixes(h, ref)
    seen = _value_checks(h, ref, pos, rep)
    _order_checks(h, ref, rep)
    _sweep(h, pos, rep)
    if ack_contract:
        _ack_checks(h, rep)
    acked_in_final = _lost_check(h, pos, rep)
    finals = sum(1 for i in h.ok_reads if h.reads[i].final)

    reasons: list[str] = []
    if rep.totals.get("malformed"):
        reasons.append(f"{rep.totals['malformed']} malformed ops were left out of the checks")
    if finals == 0 and require_final_read:
        reasons.append("no final read completed ok, so lost broadcasts cannot be ruled out")
    real = [k for k in rep.totals if k != "malformed"]
    valid: bool | str = False if real else ("unknown" if reasons else True)
    status = [b.status for b in h.broadcasts]
    undecided = {b.value for b in h.broadcasts if b.status in ("info", "open")}
    counts = {
        "broadcasts": len(status),
        "broadcasts_ok": status.count("ok"),
        "broadcasts_fail": status.count("fail"),
        "broadcasts_info": len(undecided),
        "reads": len(h.reads),
        "reads_ok": len(h.ok_reads),
        "final_reads": finals,
        "final_reads_not_caught_up": sum(
            1 for i in h.ok_reads if h.reads[i].final and not h.reads[i].caught_up
        ),
        "delivered_values": len(seen),
        "acked_in_final_reads": acked_in_final,
        "info_delivered": sum(1 for v in undecided if v in seen),
        "ignored_ops": h.ignored,
        "anomalies": dict(sorted(rep.totals.items())),
    }
    return {
        "valid": valid,
        "anomalies": {k: rep.found[k] for k in sorted(rep.found)},
        "anomaly_types": sorted(rep.totals),
        "counts": counts,
        "reasons": reasons,
    }
