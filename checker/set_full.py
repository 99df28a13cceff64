"""The set-full checker: a broadcast checked as a grow-only set, as Jepsen's set-full does.

    result = check(history)   # ops f="broadcast" (value: an element), f="read" (value: list)
    result["valid"], result["counts"]["lost"], result["latency_ms"]["stable"]

Each element is *known* from the moment its broadcast was acked, or a read that returned
it completed, whichever is first. Reads are grouped by the node that served them (`node`),
since the question is whether an element reached every node and stayed:

- **lost** (invalid): known, yet the last read on some node invoked after it was known
  lacks it. One anomaly per element, naming the nodes.
- **unexpected** (invalid): a read returned an element that no client ever broadcast.
- **stale**: a read invoked after the element was known lacks it, while a later read on
  the same node has it: allowed for an eventually consistent broadcast, counted.
- **never-read**: acked, but no read on any node was invoked after the ack.
- **stable latency**: per element, from its broadcast's invocation until, on every node
  that read after it was known, every read from then on held it (the latest such start
  over the nodes): how long it took to reach every node. Quantiles in ms.

Elements whose broadcast was `info` or `fail` are only *known* if a read returned them
(`recovered`); reads that failed carry no information and are skipped. Order is ignored.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tobtest.histories.op import Op, pair_ops
from tobtest.histories.suffix_reads import full_reads

ANOMALY_LIMIT = 20
QUANTILES = (0.0, 0.5, 0.95, 0.99, 1.0)


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for q in QUANTILES:
        out[str(q)] = round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)
    return out


def check(history: list[Op], anomaly_limit: int = ANOMALY_LIMIT, **_: Any) -> dict[str, Any]:
    # Suffix reads (`offset`) as the whole logs they saw.
    history = full_reads(history, materialize=True)
    pairs = pair_ops([op for op in history if op.is_client])
    adds: dict[Any, tuple[Op, Op | None]] = {}
    # node -> [(invoke time, completion time, elements, invoke index, completion index)]
    reads: dict[str, list[tuple[int, int, frozenset[Any], int, int]]] = defaultdict(list)
    for invoke, done in pairs:
        if invoke.f == "broadcast":
            adds[_hashable(invoke.value)] = (invoke, done)
        elif (
            invoke.f == "read"
            and done is not None
            and done.type == "ok"
            and isinstance(done.value, list)
        ):
            elements = frozenset(_hashable(v) for v in done.value)
            node = done.node or invoke.node or "?"
            reads[node].append((invoke.time_ns, done.time_ns, elements, invoke.index, done.index))
    for node_reads in reads.values():
        node_reads.sort()

    known: dict[Any, int] = {}
    for value, (_, done) in adds.items():
        if done is not None and done.type == "ok":
            known[value] = done.time_ns
    unexpected: dict[Any, list[int]] = defaultdict(list)
    for node_reads in reads.values():
        for _invoked, completed, elements, _index, read_index in node_reads:
            for value in elements:
                if value not in adds:
                    unexpected[value].append(read_index)
                elif completed < known.get(value, completed + 1):
                    known[value] = completed

    lost: list[dict[str, Any]] = []
    stale_reads = 0
    stale_elements = 0
    never_read: list[Any] = []
    stable_ms: list[float] = []
    for value, known_ns in known.items():
        invoke, done = adds[value]
        missing_on, reach_ns, any_read, was_stale = [], 0, False, False
        for node, node_reads in sorted(reads.items()):
            after = [r for r in node_reads if r[0] >= known_ns]
            if not after:
                continue
            any_read = True
            if value not in after[-1][2]:
                missing_on.append((node, after[-1]))
                continue
            # The start of the run of reads, up to the last, that all hold it.
            first = len(after) - 1
            while first > 0 and value in after[first - 1][2]:
                first -= 1
            absent = sum(1 for r in after[:first] if value not in r[2])
            stale_reads += absent
            was_stale = was_stale or absent > 0
            reach_ns = max(reach_ns, after[first][0])
        stale_elements += was_stale
        if missing_on:
            nodes = ", ".join(n for n, _ in missing_on)
            ops = [invoke.index] + ([done.index] if done is not None else [])
            ops += [r[4] for _, r in missing_on]
            lost.append({
                "ops": ops,
                "element": value,
                "nodes": [n for n, _ in missing_on],
                "explanation": f"{value!r} was known {_s(known_ns, history)} but the last "
                f"read on {nodes} lacks it",
            })  # fmt: skip
        elif not any_read:
            if done is not None and done.type == "ok":
                never_read.append(value)
        else:
            stable_ms.append(max(0.0, (reach_ns - invoke.time_ns) / 1e6))

    anomalies: dict[str, list[dict[str, Any]]] = {}
    if lost:
        anomalies["lost"] = lost[:anomaly_limit]
    if unexpected:
        anomalies["unexpected"] = [
            {"ops": indices[:5], "element": value,
             "explanation": f"reads returned {value!r}, which no client broadcast"}
            for value, indices in list(unexpected.items())[:anomaly_limit]
        ]  # fmt: skip
    acked = sum(1 for _, done in adds.values() if done is not None and done.type == "ok")
    recovered = sum(1 for v, (_, d) in adds.items() if v in known and (d is None or d.type != "ok"))
    counts = {
        "attempts": len(adds),
        "acknowledged": acked,
        "recovered": recovered,
        "stable": len(stable_ms),
        "lost": len(lost),
        "unexpected": len(unexpected),
        "never_read": len(never_read),
        "stale_elements": stale_elements,
        "stale_reads": stale_reads,
        "reads": sum(len(r) for r in reads.values()),
    }
    return {
        "valid": not lost and not unexpected,
        "anomalies": anomalies,
        "anomaly_types": sorted(anomalies),
        "counts": counts,
        "latency_ms": {"stable": _quantiles(stable_ms)},
        "never_read": never_read[:anomaly_limit],
    }


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _s(time_ns: int, history: list[Op]) -> str:
    start = history[0].time_ns if history else 0
    return f"at {(time_ns - start) / 1e9:.3f} s"
