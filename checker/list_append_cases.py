"""The list-append anomalies that need no dependency graph, found from a ListAppendIndex.

    idx = ListAppendIndex(parse_txns(history)[0])
    find_cases(idx)   # {"G1a": [{"ops": [3, 8], "key": "x", "element": 4, ...}], ...}

Kinds (see `tobtest.checker.list_append` for what each rules out): incompatible-order,
duplicate-elements, G1a, garbage-read, G1b, internal, future-read, lost-update,
dirty-update. Each case is `{"ops": [op indices], ...details, "explanation": str}`.

Linear in the size of the reads: a read that is a prefix of its key's longest read (all of
them, in a good history) is checked through the places of the bad elements in the version
order; only the others are scanned element by element.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from tobtest.checker.list_append_index import ListAppendIndex, Txn


def _brief(values: Any, at: int | None = None, width: int = 5) -> str:
    """A read for a sentence: whole when short, else the part around `at` (or the end)."""
    seq = list(values)
    if len(seq) <= 2 * width + 2:
        return repr(seq)
    at = len(seq) - 1 if at is None else max(0, min(at, len(seq) - 1))
    lo, hi = max(0, at - width), min(len(seq), at + width + 1)
    inner = ", ".join(repr(x) for x in seq[lo:hi])
    return f"[{'..., ' if lo else ''}{inner}{', ...' if hi < len(seq) else ''}] ({len(seq)} items)"


def _first_difference(a: Any, b: Any) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _case(ops: list[int], explanation: str, **details: Any) -> dict[str, Any]:
    return {"ops": ops, **details, "explanation": explanation}


def incompatible_orders(idx: ListAppendIndex) -> list[dict[str, Any]]:
    out = []
    for k, off in idx.off.items():
        rs = idx.reads[k]
        longest = idx.longest[k]
        by = next(node for node, v in rs if v is longest)
        seen: set[tuple] = set()
        for i in sorted(off):
            node, v = rs[i]
            if tuple(v) in seen:
                continue
            seen.add(tuple(v))
            out.append(
                _case(
                    [idx.op(node), idx.op(by)],
                    f"op {idx.op(node)} read key {k!r} = "
                    f"{_brief(v, _first_difference(v, longest))}, which is not a prefix of "
                    f"{_brief(longest, _first_difference(v, longest))} read by op {idx.op(by)}: "
                    "no order of appends gives both",
                    key=k,
                    values=[list(v), list(longest)],
                )
            )
    return out


def duplicates(idx: ListAppendIndex) -> list[dict[str, Any]]:
    """Reads holding an element twice; a prefix of a repeat-free longest read cannot."""
    out = []
    for k, rs in idx.reads.items():
        for i in sorted(idx.irregular(k)):
            node, v = rs[i]
            if len(set(v)) == len(v):
                continue
            counts: dict[Any, int] = {}
            for e in v:
                counts[e] = counts.get(e, 0) + 1
            dups = [[e, c] for e, c in counts.items() if c > 1]
            out.append(
                _case(
                    [idx.op(node)],
                    f"op {idx.op(node)} read key {k!r} = {_brief(v)}, holding "
                    + ", ".join(f"{e!r} {c} times" for e, c in dups),
                    key=k,
                    duplicates=dups,
                )
            )
    return out


def _bad_elements(
    idx: ListAppendIndex, bad_by_key: dict[Any, set[Any]]
) -> Iterator[tuple[int, Any, Any]]:
    """(reader, key, element) for each element of an ok read that is in bad_by_key[key]."""
    for k, bad in bad_by_key.items():
        pos = idx.position.get(k, {})
        order = idx.order.get(k, ())
        bad_pos = sorted(pos[e] for e in bad if e in pos)
        irregular = idx.irregular(k)
        for i, (node, v) in enumerate(idx.reads.get(k, ())):
            if i in irregular:
                for e in v:
                    if e in bad:
                        yield node, k, e
            elif bad_pos:  # a prefix of the order: its elements are order[:len(v)]
                for j in bad_pos[: bisect.bisect_left(bad_pos, len(v))]:
                    yield node, k, order[j]


def g1a(idx: ListAppendIndex) -> list[dict[str, Any]]:
    bad = {k: set(vs) for k, vs in idx.failed.items()}
    out = []
    for node, k, e in _bad_elements(idx, bad):
        w = idx.failed[k][e]
        out.append(
            _case(
                [idx.op(w), idx.op(node)],
                f"op {idx.op(node)} read {e!r} in key {k!r}, appended by op {idx.op(w)}, which "
                f"failed (aborted read)",
                key=k,
                element=e,
            )
        )
    return out


def garbage_reads(idx: ListAppendIndex) -> list[dict[str, Any]]:
    """Elements that no invocation ever appended (Elle assumes there are none)."""
    bad: dict[Any, set[Any]] = {}
    for k in idx.reads:
        written, failed = idx.writer.get(k, {}), idx.failed.get(k, {})
        elements = set(idx.order[k])
        for i in idx.irregular(k):
            elements.update(idx.reads[k][i][1])
        unknown = {e for e in elements if e not in written and e not in failed}
        if unknown:
            bad[k] = unknown
    return [
        _case(
            [idx.op(node)],
            f"op {idx.op(node)} read {e!r} in key {k!r}, which no op ever appended",
            key=k,
            element=e,
        )
        for node, k, e in _bad_elements(idx, bad)
    ]


def g1b(idx: ListAppendIndex) -> list[dict[str, Any]]:
    out = []
    for k, im in idx.intermediate.items():
        for node, v in idx.reads.get(k, ()):
            w = im.get(v[-1], -1) if v else -1
            if w >= 0 and w != node:
                out.append(
                    _case(
                        [idx.op(w), idx.op(node)],
                        f"op {idx.op(node)} read key {k!r} = {_brief(v)}, ending in {v[-1]!r}, "
                        f"which op {idx.op(w)} appended and then appended to {k!r} again "
                        f"(intermediate read)",
                        key=k,
                        element=v[-1],
                    )
                )
    return out


def _one_txn(t: Txn, internal: list, future: list, first_reads: dict) -> None:
    known: dict[Any, list] = {}  # k -> the whole state the txn expects
    suffix: dict[Any, list[Any]] = {}  # k -> its own appends, when the prefix is unknown
    seen: dict[Any, list[list]] = {}  # k -> its reads so far
    appended: set[Any] = set()
    for f, k, v in t.mops:
        if f == "append":
            if any(v in r for r in seen.get(k, ())):
                future.append(
                    _case(
                        [t.index],
                        f"op {t.index} read {v!r} in key {k!r} before appending it",
                        key=k,
                        element=v,
                    )
                )
            if k not in appended and k in seen:
                first_reads.setdefault((k, tuple(seen[k][0])), []).append(t)
            appended.add(k)
            if k in known:
                known[k] = [*known[k], v]
            else:
                suffix.setdefault(k, []).append(v)
            continue
        if v is None:
            continue
        expected: list[Any] | None = None
        if k in known:
            if known[k] != v:
                expected = list(known[k])
        elif k in suffix:
            tail = suffix[k]
            if len(v) < len(tail) or list(v[len(v) - len(tail) :]) != tail:
                expected = ["...", *tail]
        if expected is not None:
            internal.append(
                _case(
                    [t.index],
                    f"op {t.index} read key {k!r} = {_brief(v)}, but its own earlier reads and "
                    f"appends imply {_brief(expected)}",
                    key=k,
                    read=list(v),
                    expected=expected,
                )
            )
        known[k] = v
        suffix.pop(k, None)
        seen.setdefault(k, []).append(v)


def internal_cases(idx: ListAppendIndex) -> dict[str, list[dict[str, Any]]]:
    """internal, future-read and lost-update: what each ok txn shows on its own, and
    committed txns that read the same state of a key before appending to it."""
    internal: list[dict[str, Any]] = []
    future: list[dict[str, Any]] = []
    first_reads: dict[tuple[Any, tuple], list[Txn]] = {}  # (k, state read) -> txns
    for t in idx.txns:
        mops = t.mops
        # A txn touching each key once can show none of these: skip it cheaply.
        if t.type != "ok" or len(mops) < 2 or len({m[1] for m in mops}) == len(mops):
            continue
        _one_txn(t, internal, future, first_reads)
    lost = []
    for (k, v), ts in first_reads.items():
        if len(ts) > 1:
            ops = [t.index for t in ts]
            lost.append(
                _case(
                    ops,
                    f"ops {ops} all read key {k!r} = {_brief(v)} and then appended to it: all but "
                    f"one of those appends were lost to the others",
                    key=k,
                    value=list(v),
                )
            )
    return {"internal": internal, "future-read": future, "lost-update": lost}


def dirty_updates(idx: ListAppendIndex) -> list[dict[str, Any]]:
    """A committed append right after (past indeterminate ones) a failed one."""
    out = []
    for k, failed in idx.failed.items():
        if not any(v in failed for v in idx.order.get(k, ())):
            continue
        written = idx.writer.get(k, {})
        last_fail = -1
        for v in idx.order[k]:
            if v in failed:
                last_fail = failed[v]
            elif v in written and idx.txns[written[v]].type == "ok":
                if last_fail >= 0:
                    w = written[v]
                    out.append(
                        _case(
                            [idx.op(last_fail), idx.op(w)],
                            f"op {idx.op(w)} appended {v!r} to key {k!r} on top of a state "
                            f"written by op {idx.op(last_fail)}, which failed",
                            key=k,
                            element=v,
                        )
                    )
                last_fail = -1
    return out


def find_cases(idx: ListAppendIndex) -> dict[str, list[dict[str, Any]]]:
    """Every graph-free anomaly, by kind; kinds without cases are left out."""
    found = {
        "incompatible-order": incompatible_orders(idx),
        "duplicate-elements": duplicates(idx),
        "G1a": g1a(idx),
        "garbage-read": garbage_reads(idx),
        "G1b": g1b(idx),
        **internal_cases(idx),
        "dirty-update": dirty_updates(idx),
    }
    return {kind: cases for kind, cases in found.items() if cases}
