"""Elle's list-append checker (Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from
Experimental Observations"), natively in Python; and the TOB broadcast seen as list-append.

    from tobtest.checker.list_append import check, check_broadcast
    result = check(history)                         # list[Op] of f="txn" ops
    result["valid"]                                 # True, False or "unknown"
    result["anomaly_types"]                         # e.g. ["G-single-realtime"]
    result["anomalies"]["G-single-realtime"][0]["explanation"]
    # "T1 (op 1) completed before T2 (op 3) was invoked (op 2) (realtime); T2 (op 3) read
    #  key 'x' = [], which did not see T1 (op 1)'s append of 1 (rw)"
    result["not"], result["also_not"]               # consistency models ruled out
    check_broadcast(tob_history)                    # broadcast/read ops, one key "log"

A txn op has `f == "txn"` and a value of micro-ops `["append", k, v]` / `["r", k, None]`;
the ok completion fills reads in (`["r", k, [v1, v2]]`; null and [] both mean empty).
Appended values are unique per key. `fail` txns did not happen, `info` ones may have.

`check(history, consistency_models=("strict-serializable",), time_limit_s=30.0, **opts)`
returns `{"valid", "anomaly_types", "anomalies": {kind: [case]}, "not", "also_not",
"counts"}`. A case is `{"ops": [op indices], "explanation": str, ...}`; a cycle case also
has `"cycle": [{"from": op, "to": op, "rel": "ww"|"wr"|"rw"|"process"|"realtime",
"explanation": str}]`. A txn is named by the index of its completion op.
Options: `max_cases_per_kind` (20; `counts["anomalies"]` has the totals),
`local_process_order` (False; see list_append_index). `time_limit_s` bounds the cycle
search; everything before it is linear. `counts` also has the numbers of ops, txns (ok,
info, fail), keys, edges by relation (realtime ones include the barrier links, see
elle_graph) and `elapsed_s`.

Anomaly kinds. Without a graph: `incompatible-order` (two reads of a key that no single
order of appends explains), `duplicate-elements`, `internal` (a read that contradicts the
txn's own earlier reads and appends), `future-read` (a txn reads what it appends only
later), `G1a` (a read shows a failed txn's append), `G1b` (a read ends in a txn's
non-final append), `dirty-update` (a committed append on top of a failed one),
`lost-update` (two committed txns read the same state of a key and both appended to it)
and `garbage-read` (a read shows a value nobody appended; not in Elle). Cycles, named as
Elle does: `G0` (ww only), `G1c` (ww and wr), `G-single` (exactly one rw), `G2-item` (two
or more rw, some adjacent), `G-nonadjacent` (two or more rw, none adjacent), each also with
`-process` or `-realtime` when the cycle needs process or realtime edges.
`cycle-search-timeout` is reported when the search ran out of time, and
`empty-transaction-graph` when no txn committed (as Elle does; both make the verdict
"unknown" unless something else makes it False).

Verdict: False iff some anomaly rules out one of `consistency_models` (see elle_models);
otherwise "unknown" if the cycle search timed out, no txn committed, or the history is
malformed (then with `error`); otherwise True.

The TOB as list-append: `broadcast_as_list_append` turns a broadcast of v into the txn
`[["append", "log", v]]` and a read returning [v1, ...] into `[["r", "log", [v1, ...]]]`.
Reads keep `read_mode` in `extra` (a read without one is `local`, as the total-order checker
has it). A `local` read answers at once from one node's delivered prefix, which may lag, and
the runner sends each op to a random node: so a local read gets no realtime edges in (and
by default no process edges), only the realtime edges out of it (it cannot hold a value
broadcast after it completed). It is still checked for order, duplicates, aborted reads
and data cycles. `log` and `lease` reads get every edge. A final read (`final: true`, taken
from every node after the run healed and quiesced) gets realtime edges in from every
broadcast acked before it, not from other reads: an acked broadcast missing from a final
read is a realtime cycle, as the total-order checker's `lost`, while a final read may still
lag behind another node's.

Cost: linear in the history plus the total length of its reads; the cycle search only
touches what Kahn's algorithm cannot peel off (nothing, in a valid history). About 5 s for
1M history ops (500k txns, 10 clients) on a 2-core machine; benchmark with
`python -m tobtest.checker.list_append_gen N_TXNS [N_CLIENTS]`.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from tobtest.checker.elle_graph import REL_NAMES, Cycle, find_cycles
from tobtest.checker.elle_models import boundary, canonical_model, ruled_out
from tobtest.checker.list_append_cases import find_cases
from tobtest.checker.list_append_gen import generate_history
from tobtest.checker.list_append_index import ListAppendIndex, MalformedHistory, parse_txns
from tobtest.histories.op import NEMESIS, Op
from tobtest.histories.suffix_reads import LogView, full_reads

__all__ = [
    "broadcast_as_list_append",
    "check",
    "check_broadcast",
    "generate_history",
]

DEFAULT_MODELS = ("strict-serializable",)
TIMEOUT_KIND = "cycle-search-timeout"
EMPTY_KIND = "empty-transaction-graph"


def _render_cycle(idx: ListAppendIndex, cycle: Cycle) -> dict[str, Any]:
    names = [f"T{i + 1}" for i in range(len(cycle.nodes))]
    steps = []
    for i, a in enumerate(cycle.nodes):
        j = (i + 1) % len(cycle.nodes)
        rel = REL_NAMES[cycle.rels[i]]
        sentence = idx.explain(a, cycle.nodes[j], rel, names[i], names[j])
        steps.append(
            {
                "from": idx.op(a),
                "to": idx.op(cycle.nodes[j]),
                "rel": rel,
                "explanation": f"{sentence} ({rel})",
            }
        )
    return {
        "ops": [idx.op(n) for n in cycle.nodes],
        "cycle": steps,
        "explanation": "; ".join(s["explanation"] for s in steps),
    }


def check(
    history: list[Op],
    consistency_models: str | tuple[str, ...] | list[str] = DEFAULT_MODELS,
    time_limit_s: float = 30.0,
    **opts: Any,
) -> dict[str, Any]:
    """Checks a list-append history (see module doc); ops may also be given as dicts.
    Raises ValueError only for an unknown consistency model; a malformed history gives
    valid "unknown"."""
    if isinstance(consistency_models, str):
        consistency_models = [consistency_models]
    models = [canonical_model(m) for m in consistency_models]
    if any(not isinstance(op, Op) for op in history):
        try:
            history = [op if isinstance(op, Op) else Op.from_dict(op) for op in history]
        except ValueError as exc:
            return _unknown(str(exc), len(history))
    # The analysis allocates millions of small objects and frees none of them until the
    # end: the cyclic collector would only rescan them, over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _check(history, models, time_limit_s, **opts)
    finally:
        if gc_was_enabled:
            gc.enable()


def _unknown(error: str, n_ops: int) -> dict[str, Any]:
    return {
        "valid": "unknown",
        "error": error,
        "anomaly_types": [],
        "anomalies": {},
        "not": [],
        "also_not": [],
        "counts": {"ops": n_ops},
    }


def _check(history: list[Op], models: list[str], time_limit_s: float, **opts: Any) -> dict:
    started = time.monotonic()
    deadline = started + time_limit_s
    max_cases = int(opts.get("max_cases_per_kind", 20))
    try:
        txns, events = parse_txns(history, bool(opts.get("local_process_order", False)))
        idx = ListAppendIndex(txns)
    except MalformedHistory as exc:
        return _unknown(str(exc), len(history))

    found: dict[str, list[Any]] = dict(find_cases(idx))
    graph = idx.build_graph(events)
    cycles, complete = find_cycles(graph, deadline)
    for c in cycles:
        found.setdefault(c.kind, []).append(c)

    kinds = sorted(found)
    not_models, also_not = boundary(kinds)
    by_type = {"ok": 0, "info": 0, "fail": 0}
    for t in txns:
        by_type[t.type] = by_type.get(t.type, 0) + 1
    extra_types = [] if complete else [TIMEOUT_KIND]
    if not by_type["ok"]:
        extra_types.append(EMPTY_KIND)  # nothing committed: nothing was tested
    valid: bool | str = "unknown" if extra_types else True
    if ruled_out(kinds, models):
        valid = False
    counts: dict[str, Any] = {
        "ops": len(history),
        "txns": len(txns),
        **by_type,
        "keys": len(set(idx.writer) | set(idx.reads) | set(idx.failed)),
        "edges": dict(graph.edge_counts),
        "barriers": len(graph.adj) - graph.n_txns,
        "anomalies": {k: len(v) for k, v in found.items()},
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    result: dict[str, Any] = {
        "valid": valid,
        "anomaly_types": kinds + extra_types,
        "anomalies": {
            k: [_render_cycle(idx, c) if isinstance(c, Cycle) else c for c in found[k][:max_cases]]
            for k in kinds
        },
        "not": not_models,
        "also_not": also_not,
        "counts": counts,
    }
    if not complete:
        result["error"] = f"cycle search stopped after time_limit_s={time_limit_s}"
    return result


def broadcast_as_list_append(history: list[Op], key: str = "log") -> list[Op]:
    """The TOB history as list-append txns over one key (see module doc). Ops other than
    broadcast, read and the nemesis's are dropped."""
    out: list[Op] = []
    invoked: dict[Any, Op] = {}
    for op in history:
        if op.process == NEMESIS:
            out.append(op)
            continue
        if op.f not in ("broadcast", "read"):
            continue
        if op.type == "invoke":
            invoked[op.process] = op
        inv = invoked.get(op.process, op)
        kind = op.type
        extra = dict(op.extra)
        if op.f == "broadcast":
            value: list[list[Any]] = [["append", key, inv.value]]
        else:
            extra["read_mode"] = op.extra.get("read_mode") or inv.extra.get("read_mode") or "local"
            read = op.value if op.type == "ok" else None
            if op.type == "ok" and not isinstance(read, (list, LogView)):
                kind = "info"  # a malformed reply: we do not know what the node held
            value = [["r", key, read if isinstance(read, (list, LogView)) else None]]
        out.append(
            Op(op.index, op.time_ns, kind, op.process, "txn", value, op.node, op.error, extra)
        )
    return out


def check_broadcast(history: list[Op], **opts: Any) -> dict[str, Any]:
    """`check` on `broadcast_as_list_append(history)`; takes the same options."""
    # The mapping allocates an op per op and holds every read list: the cyclic GC would
    # rescan them over and over for nothing (we make no cycles), so it waits until done.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # Suffix reads (`offset`) as the whole logs they saw: views over shared lists.
        mapped = broadcast_as_list_append(full_reads(history))
    finally:
        if gc_was_enabled:
            gc.enable()
    return check(mapped, **opts)
