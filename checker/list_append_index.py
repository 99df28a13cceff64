"""What a list-append history says before any cycle search: its txns, the version order of
each key, and the dependency graph those imply.

    txns, events = parse_txns(history)
    idx = ListAppendIndex(txns)
    idx.order["x"]                  # ("a", "b", "c"): the version order of key x
    graph = idx.build_graph(events) # elle_graph.DepGraph: ww, wr, rw, process, realtime
    idx.explain(a, b, "rw", "T1", "T2")

Used by `tobtest.checker.list_append` (the public `check`); `list_append_cases` finds the
anomalies that need no graph from the same index. Txns are numbered in invocation order
and that number is their graph node. A txn is reported by the index of its completion op
(of its invocation when it never completed).

Inference, as Elle's: the version order of a key is its longest ok read (distinct
elements), and every other read should be a prefix of it. ww: the writers of successive
versions; wr: the writer of a read's last element -> the reader; rw: a reader -> the writer
of the version after the one it read (not drawn for a read that is no prefix of the order:
the order does not explain it). An ok or info append that no read shows still comes after
every shown version, so it gets ww and rw edges from the last one, as in Elle. Only ok
txns' reads count (an info completion carries no trustworthy reads); failed txns are no
nodes of the graph but feed G1a, G1b and dirty-update. A txn with `read_mode: "local"` (in
its invocation or completion) answers from one node's state at once, which may lag: it
gets no realtime edges in (one from it, to txns invoked after it completed, still holds:
it read a state that existed by then) and, unless `local_process_order`, no process edges.
If it is also `final: true` (taken after the run healed and quiesced), it gets realtime
edges in from the txns that append, but not from other reads: it must hold every write
acked before it began, and may still lag behind another node's final read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tobtest.checker.elle_graph import (
    _SHIFT,
    PROCESS,
    RT_ALL,
    RT_DONE,
    RT_WRITES,
    RW,
    WR,
    WW,
    DepGraph,
    link_realtime,
)
from tobtest.histories.op import NEMESIS, Op
from tobtest.histories.suffix_reads import LogView

Mop = tuple[str, Any, Any]  # ("append", k, v) or ("r", k, list | None)
_SCALARS = (int, str)


class MalformedHistory(ValueError):
    """The history cannot be checked as list-append (the verdict is then unknown)."""


class _Init:
    """The empty state of a key, before any append: the 'version' an empty read saw."""

    def __repr__(self) -> str:
        return "init"


INIT: Any = _Init()


@dataclass(slots=True)
class Txn:
    node: int
    type: str  # "ok", "info" (also: never completed) or "fail"
    process: int | str
    invoke_index: int
    index: int
    mops: list[Mop]
    rt_in: int  # the realtime chain its invocation hangs off: RT_ALL, RT_WRITES or 0
    process_order: bool  # takes part in process order


def _hashable(x: Any, op: Op, mop: Any) -> None:
    try:
        hash(x)
    except TypeError:
        raise MalformedHistory(f"op {op.index}: unhashable key or value in {mop!r}") from None


def _mops(value: Any, op: Op, with_reads: bool) -> list[Mop]:
    if not isinstance(value, (list, tuple)):
        raise MalformedHistory(f"op {op.index}: txn value must be a list of micro-ops")
    out: list[Mop] = []
    for mop in value:
        try:
            f, k, v = mop
        except (TypeError, ValueError):
            raise MalformedHistory(f"op {op.index}: bad micro-op {mop!r}") from None
        if k.__class__ not in _SCALARS:
            _hashable(k, op, mop)
        if f == "r":
            if not with_reads:
                v = None
            elif v.__class__ is list or v.__class__ is LogView:
                pass  # shared with the history, never changed: a copy of every read of a
                # long log would cost gigabytes. Elements are checked in ListAppendIndex.
                # (A LogView: a rebuilt suffix read, histories/suffix_reads.py.)
            elif v.__class__ is tuple:
                v = list(v)
            elif v is None:
                v = []
            else:
                raise MalformedHistory(f"op {op.index}: read of {k!r} returned {v!r}")
        elif f == "append":
            if v.__class__ not in _SCALARS:
                _hashable(v, op, mop)
        else:
            raise MalformedHistory(f"op {op.index}: bad micro-op {mop!r}")
        out.append((f, k, v))
    return out


def _locality(t: Txn, inv: Op, done: Op | None, local_process_order: bool) -> None:
    """Sets what a `local` read is held to (see the module doc)."""
    extras = [op.extra for op in (inv, done) if op is not None and op.extra]
    if any(x.get("read_mode") == "local" for x in extras):
        # A final read of a node the runner saw lagging (caught_up: false) is held to no
        # more than any local read: total-order reports that node as not caught up.
        final = any(x.get("final") for x in extras)
        lagging = any(x.get("caught_up") is False for x in extras)
        t.rt_in = RT_WRITES if final and not lagging else 0
        t.process_order = local_process_order


def parse_txns(history: list[Op], local_process_order: bool = False) -> tuple[list[Txn], list[int]]:
    """Pairs `txn` invocations with completions. Returns the txns (in invocation order) and
    the realtime events for `elle_graph.link_realtime`. Other `f`s and the nemesis are
    skipped. Raises MalformedHistory."""
    txns: list[Txn] = []
    invokes: list[Op] = []
    open_by_process: dict[Any, int] = {}
    marks: list[int] = []  # node * 2 (+1 for an ok completion), in history order
    for op in history:
        if op.f != "txn" or op.process == NEMESIS:
            continue
        process = op.process
        if op.type == "invoke":
            if process in open_by_process:
                prev = invokes[open_by_process[process]].index
                raise MalformedHistory(
                    f"op {op.index}: process {process!r} invoked again before op {prev} completed"
                )
            node = len(txns)
            open_by_process[process] = node
            invokes.append(op)
            # Filled in at completion; one that never completes stays info.
            txns.append(Txn(node, "info", process, op.index, op.index, [], RT_ALL, True))
            marks.append(node * 2)
            continue
        node = open_by_process.pop(process, -1)
        if node < 0:
            raise MalformedHistory(f"op {op.index}: completion without an invocation")
        inv = invokes[node]
        t = txns[node]
        t.type = op.type
        t.index = op.index
        if op.type == "ok":
            ok_value = op.value
            t.mops = _mops(
                inv.value if ok_value is None else ok_value, op, with_reads=ok_value is not None
            )
            marks.append(node * 2 + 1)
        else:
            value = op.value if isinstance(op.value, (list, tuple)) else inv.value
            t.mops = _mops(value, op, with_reads=False)
        _locality(t, inv, op, local_process_order)
    for node in open_by_process.values():  # never completed: indeterminate
        inv = invokes[node]
        t = txns[node]
        t.mops = _mops(inv.value, inv, with_reads=False)
        _locality(t, inv, None, local_process_order)
    return txns, _realtime_events(txns, marks)


def _realtime_events(txns: list[Txn], marks: list[int]) -> list[int]:
    """Events for elle_graph.link_realtime. Every ok completion joins the chain of all
    completions, and that of writes if the txn appends; a failed txn is no graph node."""
    events = []
    chain_of_writes = any(t.rt_in == RT_WRITES for t in txns)  # only final reads need it
    for m in marks:
        t = txns[m >> 1]
        if m & 1:
            writes = chain_of_writes and any(f == "append" for f, _, _ in t.mops)
            events.append((t.node << 3) | RT_DONE | RT_ALL | (RT_WRITES if writes else 0))
        elif t.rt_in and t.type != "fail":
            events.append((t.node << 3) | t.rt_in)
    return events


def _prefix_of(v: Any, longest: Any, agree: dict[int, int]) -> bool:
    """Is read `v` a prefix of `longest`? A view of a shared log (a rebuilt suffix read) is
    one when its length is within how far its log agrees with `longest`, which is measured
    once per log (`agree`: id of the log -> that length)."""
    if v is longest:
        return True
    if v.__class__ is not LogView:
        return bool(v == longest[: len(v)])
    base = v.base
    n = agree.get(id(base))
    if n is None:
        whole = longest.to_list() if longest.__class__ is LogView else longest
        m = min(len(base), len(whole))
        if base is whole or base[:m] == whole[:m]:
            n = m
        else:
            n = next(i for i in range(m) if base[i] != whole[i])
        agree[id(base)] = n
    return len(v) <= n


class ListAppendIndex:
    """Indexes of appends and reads, per key; see the module doc."""

    def __init__(self, txns: list[Txn]) -> None:
        self.txns = txns
        self.writer: dict[Any, dict[Any, int]] = {}  # ok/info appends: k -> v -> node
        self.failed: dict[Any, dict[Any, int]] = {}  # failed appends: k -> v -> node
        self.intermediate: dict[Any, dict[Any, int]] = {}  # a txn's non-final appends to k
        self.reads: dict[Any, list[tuple[int, list]]] = {}  # ok reads: k -> [(node, value)]
        writer, failed, intermediate, reads = (
            self.writer,
            self.failed,
            self.intermediate,
            self.reads,
        )
        for t in txns:
            node = t.node
            ok = t.type == "ok"
            table = failed if t.type == "fail" else writer
            appended: dict[Any, Any] | None = None
            for f, k, v in t.mops:
                if f == "append":
                    d = table.get(k)
                    if d is None:
                        d = table[k] = {}
                    if v in d:
                        self._repeated(k, v, d[v], node)
                    d[v] = node
                    if appended is None:
                        appended = {k: v}
                    else:
                        if k in appended:
                            intermediate.setdefault(k, {})[appended[k]] = node
                        appended[k] = v
                elif ok and v is not None:
                    r = reads.get(k)
                    if r is None:
                        reads[k] = [(node, v)]
                    else:
                        r.append((node, v))
        for k, d in failed.items():
            for v, node in d.items():
                if v in writer.get(k, ()):
                    self._repeated(k, v, writer[k][v], node)
        self.longest: dict[Any, list] = {}  # k -> its longest ok read
        self.order: dict[Any, tuple] = {}  # k -> version order (distinct elements of longest)
        self.position: dict[Any, dict[Any, int]] = {}  # k -> v -> place in the order
        self.off: dict[Any, set[int]] = {}  # k -> places in reads[k] of reads no prefix of it
        for k, rs in reads.items():
            longest = max((v for _, v in rs), key=len)
            self.longest[k] = longest
            try:  # hashes every element of the longest read, so of every prefix of it
                order = tuple(dict.fromkeys(longest))
            except TypeError:
                raise MalformedHistory(f"a read of key {k!r} holds an unhashable value") from None
            self.order[k] = order
            self.position[k] = {v: i for i, v in enumerate(order)}
            agree: dict[int, int] = {}
            off = {i for i, (_, v) in enumerate(rs) if not _prefix_of(v, longest, agree)}
            if off:
                self.off[k] = off
                for i in off:
                    try:
                        hash(tuple(rs[i][1]))
                    except TypeError:
                        raise MalformedHistory(
                            f"op {txns[rs[i][0]].index}: a read of {k!r} holds an unhashable value"
                        ) from None

    def _repeated(self, k: Any, v: Any, first: int, second: int) -> None:
        ops = sorted((self.txns[first].index, self.txns[second].index))
        raise MalformedHistory(
            f"value {v!r} appended to key {k!r} more than once (ops {ops[0]} and {ops[1]}): "
            f"list-append needs unique appends"
        )

    def op(self, node: int) -> int:
        return self.txns[node].index

    def irregular(self, k: Any) -> set[int]:
        """Places in reads[k] of the reads that need element-wise checks: those that are no
        prefix of the longest read, or all of them when the longest read repeats itself."""
        if len(self.order.get(k, ())) != len(self.longest.get(k, ())):
            return set(range(len(self.reads[k])))
        return self.off.get(k, set())

    # ---- the graph ------------------------------------------------------------------------

    def prev_version(self, k: Any, v: Any) -> Any:
        """The version just before appended value v: INIT if v came first; for a value no
        read shows, the last shown version (or INIT)."""
        order = self.order.get(k, ())
        i = self.position.get(k, {}).get(v)
        if i is None:
            return order[-1] if order else INIT
        return order[i - 1] if i > 0 else INIT

    def build_graph(self, events: list[int]) -> DepGraph:
        g = DepGraph(len(self.txns))
        adj = g.adj
        n_ww = n_wr = n_rw = n_process = 0
        for k, order in self.order.items():  # ww along the version order
            written = self.writer.get(k, {})
            prev = -1
            for v in order:
                w = written.get(v, -1)
                if w >= 0 and prev >= 0 and prev != w:
                    adj[prev].append((w << _SHIFT) | WW)
                    n_ww += 1
                prev = w
        for k, rs in self.reads.items():  # wr and rw from every ok read
            written = self.writer.get(k, {})
            order = self.order[k]
            pos = self.position[k]
            n_order = len(order)
            off = self.off.get(k, ())
            final_readers: list[int] = []
            for i, (node, v) in enumerate(rs):
                if v:
                    w = written.get(v[-1], -1)
                    if w >= 0 and w != node:
                        adj[w].append((node << _SHIFT) | WR)
                        n_wr += 1
                    j = pos.get(v[-1], n_order) + 1
                else:
                    j = 0
                if i in off:
                    continue
                if j < n_order:
                    w = written.get(order[j], -1)
                    if w >= 0 and w != node:
                        adj[node].append((w << _SHIFT) | RW)
                        n_rw += 1
                elif j == n_order:
                    final_readers.append(node)
            unseen = [w for v, w in written.items() if v not in pos]
            if unseen:  # appends no read shows come after every shown version
                last = written.get(order[-1], -1) if order else -1
                for w in unseen:
                    if last >= 0 and last != w:
                        adj[last].append((w << _SHIFT) | WW)
                        n_ww += 1
                    for r in final_readers:
                        if r != w:
                            adj[r].append((w << _SHIFT) | RW)
                            n_rw += 1
        last_by_process: dict[Any, int] = {}
        for t in self.txns:
            if t.type == "fail" or not t.process_order:
                continue
            prev = last_by_process.get(t.process, -1)
            if prev >= 0:
                adj[prev].append((t.node << _SHIFT) | PROCESS)
                n_process += 1
            last_by_process[t.process] = t.node
        counts = g.edge_counts
        counts["ww"] += n_ww
        counts["wr"] += n_wr
        counts["rw"] += n_rw
        counts["process"] += n_process
        link_realtime(g, events)
        return g

    # ---- explaining edges -----------------------------------------------------------------

    def explain(self, a: int, b: int, rel: str, name_a: str, name_b: str) -> str:
        """Why b depends on a by relation `rel`, in one sentence."""
        ta, tb = self.txns[a], self.txns[b]
        na, nb = f"{name_a} (op {ta.index})", f"{name_b} (op {tb.index})"
        if rel == "ww":
            for f, k, v in tb.mops:
                if f == "append":
                    p = self.prev_version(k, v)
                    if p is not INIT and self.writer.get(k, {}).get(p) == a:
                        return f"{na} appended {p!r} to key {k!r} before {nb} appended {v!r}"
        elif rel == "wr":
            for f, k, v in tb.mops:
                if f == "r" and v and self.writer.get(k, {}).get(v[-1]) == a:
                    return f"{nb} read key {k!r} = {short(v)}, ending in {na}'s append"
        elif rel == "rw":
            for f, k, v in tb.mops:
                if f != "append":
                    continue
                p = self.prev_version(k, v)
                for g, k2, r in ta.mops:
                    if g == "r" and k2 == k and r is not None and (r[-1] if r else INIT) == p:
                        return (
                            f"{na} read key {k!r} = {short(r)}, which did not see "
                            f"{nb}'s append of {v!r}"
                        )
        elif rel == "process":
            return f"process {ta.process!r} ran {na} before {nb}"
        elif rel == "realtime":
            return f"{na} completed before {nb} was invoked (op {tb.invoke_index})"
        return f"{na} -> {nb}"


def short(v: list) -> str:
    """A read value for an explanation: whole when short, else its last elements."""
    if len(v) <= 4:
        return repr(list(v))
    return "[..., " + ", ".join(repr(e) for e in v[-3:]) + "]"
