"""Checker results as a person reads them: one section per checker, one sentence per anomaly.

    sections = checker_sections(results, ops_by_index)
    sections[0].anomalies[0].explanation   # the checker's own sentence, or one built here
    sections[0].anomalies[0].edges         # a cycle's edges, each with its kind spelled out
    anomaly_ops(results)                   # {op index: [anomaly ids]}, to mark the timeline

Understands the result shapes of total_order, list_append and linearizable (see their
docstrings) and degrades to the generic `{"ops", "explanation"}` shape for any other checker.
Everything is plain data for the template, which escapes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tobtest.checker.report_data import verdict_class, verdict_word
from tobtest.histories.op import Op
from tobtest.histories.suffix_reads import LogView

ANOMALIES_SHOWN_MAX = 200  # over all checkers and kinds: the page stays quick to open
OPS_SHOWN_PER_ANOMALY = 12
PREFIX_SHOWN = 12  # ops of a linearizable prefix named one by one (its tail)
VALUE_CHARS_MAX = 120

# What each dependency kind of an Elle cycle means, for the sentence under each edge.
EDGE_MEANINGS = {
    "ww": "write-write: the second appended after the first's append, in the version order",
    "wr": "write-read: the second read what the first appended",
    "rw": "read-write (anti-dependency): the first read a state the second's append follows",
    "process": "process order: the same process ran the first, then the second",
    "realtime": "real time: the first completed before the second was invoked",
}


@dataclass
class OpLine:
    index: int  # -1 for the "... and N more" line
    detail: str  # "ok process 3 broadcast 219 on n2 at 5.044 s (position 253)"

    @property
    def text(self) -> str:
        return f"op {self.index}: {self.detail}" if self.index >= 0 else self.detail


@dataclass
class AnomalyView:
    anchor: str  # HTML id of this anomaly in the report
    checker: str
    kind: str
    explanation: str
    ops: list[int]
    op_lines: list[OpLine] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)  # from, to, rel, meaning, text
    details: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class KindView:
    kind: str
    shown: int
    total: int
    anomalies: list[AnomalyView]


@dataclass
class CheckerView:
    name: str
    valid: Any
    verdict: str
    css: str
    elapsed_s: Any = None
    error: str | None = None
    traceback: str | None = None
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # consistency models ruled out, prefix, ...
    counts: list[tuple[str, str]] = field(default_factory=list)
    kinds: list[KindView] = field(default_factory=list)


def short_value(value: Any, width: int = VALUE_CHARS_MAX) -> str:
    """A value for humans: long lists as head ... tail with their length."""
    if isinstance(value, LogView) and len(value) <= 12:  # a rebuilt suffix read, short
        value = value.to_list()
    if isinstance(value, (list, LogView)) and len(value) > 12:
        head = ", ".join(json.dumps(v, default=str) for v in value[:6])
        tail = ", ".join(json.dumps(v, default=str) for v in value[-3:])
        text = f"[{head}, ... {tail}] ({len(value)} items)"
    else:
        text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."


def describe_op(op: Op, t0_ns: int) -> str:
    """One op on one line: `ok process 3 broadcast 219 on n2 at 5.044 s (position 253)`."""
    parts = [op.type, f"process {op.process}", op.f]
    if op.value is not None:
        parts.append(short_value(op.value))
    if op.node is not None:
        parts.append(f"on {op.node}")
    parts.append(f"at {(op.time_ns - t0_ns) / 1e9:.3f} s")
    extras = [f"{k} {short_value(v, 40)}" for k, v in op.extra.items() if v not in (None, False)]
    if op.error:
        extras.insert(0, f"error {short_value(op.error, 60)}")
    text = " ".join(parts)
    return f"{text} ({', '.join(extras)})" if extras else text


def _ints(values: Any) -> list[int]:
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _flatten_counts(counts: Any, prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if not isinstance(counts, dict):
        return rows
    for key, value in counts.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten_counts(value, name + "."))
        else:
            rows.append((name, short_value(value, 60)))
    return rows


def _edges(cycle: Any) -> list[dict[str, Any]]:
    edges = []
    for edge in cycle if isinstance(cycle, list) else []:
        if not isinstance(edge, dict):
            continue
        rel = str(edge.get("rel", "?"))
        text = edge.get("explanation") or f"op {edge.get('from')} -{rel}-> op {edge.get('to')}"
        edges.append(
            {
                "from": edge.get("from"),
                "to": edge.get("to"),
                "rel": rel,
                "meaning": EDGE_MEANINGS.get(rel, rel),
                "text": str(text),
            }
        )
    return edges


def _explain(kind: str, case: dict[str, Any], edges: list[dict[str, Any]]) -> str:
    """The checker's sentence when it gave one, else one built from what the case holds."""
    given = case.get("explanation")
    if isinstance(given, str) and given.strip():
        return given
    if edges:
        steps = "; ".join(f"op {e['from']} -{e['rel']}-> op {e['to']}" for e in edges)
        return f"a {kind} cycle: {steps}, and back to the start"
    ops = _ints(case.get("ops"))
    where = f" involving ops {', '.join(map(str, ops))}" if ops else ""
    return f"the checker found a {kind} anomaly{where}"


_DETAIL_SKIP = {"ops", "explanation", "cycle"}


def checker_sections(
    results: dict[str, Any] | None, ops_by_index: dict[int, Op], t0_ns: int = 0
) -> list[CheckerView]:
    """One view per checker in results["checkers"], anomalies capped overall."""
    if not results or not isinstance(results.get("checkers"), dict):
        return []
    budget = ANOMALIES_SHOWN_MAX
    views = []
    for name, result in results["checkers"].items():
        if not isinstance(result, dict):
            result = {"valid": "unknown", "error": f"result is not an object: {result!r}"}
        valid = result.get("valid", "unknown")
        view = CheckerView(
            name=str(name),
            valid=valid,
            verdict=verdict_word(valid if valid is not None else "unknown"),
            css=verdict_class(valid if valid is not None else "unknown"),
            elapsed_s=result.get("elapsed_s"),
            error=str(result["error"]) if result.get("error") else None,
            traceback=str(result["traceback"]) if result.get("traceback") else None,
            reasons=[str(r) for r in result.get("reasons") or []],
            counts=_flatten_counts(result.get("counts")),
        )
        view.notes.extend(_linearizable_notes(result, ops_by_index))
        if result.get("not"):
            view.notes.append(f"Rules out: {', '.join(map(str, result['not']))}.")
        if result.get("also_not"):
            view.notes.append(f"And so also: {', '.join(map(str, result['also_not']))}.")
        budget = _add_kinds(view, result, ops_by_index, t0_ns, budget)
        views.append(view)
    return views


def _add_kinds(
    view: CheckerView, result: dict[str, Any], ops_by_index: dict[int, Op], t0: int, budget: int
) -> int:
    anomalies = result.get("anomalies")
    if not isinstance(anomalies, dict):
        return budget
    totals = (result.get("counts") or {}).get("anomalies") or {}
    for kind, cases in anomalies.items():
        cases = cases if isinstance(cases, list) else []
        total = totals.get(kind, len(cases)) if isinstance(totals, dict) else len(cases)
        shown: list[AnomalyView] = []
        for number, case in enumerate(cases):
            if budget <= 0:
                break
            case = case if isinstance(case, dict) else {"explanation": str(case)}
            shown.append(_anomaly(view.name, str(kind), number, case, ops_by_index, t0))
            budget -= 1
        total_int = total if isinstance(total, int) else len(cases)
        view.kinds.append(KindView(str(kind), len(shown), max(total_int, len(shown)), shown))
    return budget


def _anomaly(
    checker: str, kind: str, number: int, case: dict[str, Any], ops_by_index: dict[int, Op], t0: int
) -> AnomalyView:
    edges = _edges(case.get("cycle"))
    ops = _ints(case.get("ops"))
    for edge in edges:  # a cycle's ops are its txns: make sure every one is listed
        for end in (edge["from"], edge["to"]):
            if isinstance(end, int) and end not in ops:
                ops.append(end)
    lines = [
        OpLine(i, describe_op(ops_by_index[i], t0) if i in ops_by_index else "not in the history")
        for i in ops[:OPS_SHOWN_PER_ANOMALY]
    ]
    if len(ops) > OPS_SHOWN_PER_ANOMALY:
        lines.append(OpLine(-1, f"... and {len(ops) - OPS_SHOWN_PER_ANOMALY} more ops"))
    details = [(str(k), short_value(v)) for k, v in case.items() if k not in _DETAIL_SKIP]
    return AnomalyView(
        anchor=_anchor(checker, kind, number),
        checker=checker,
        kind=kind,
        explanation=_explain(kind, case, edges),
        ops=ops,
        op_lines=lines,
        edges=edges,
        details=details,
    )


def _anchor(checker: str, kind: str, number: int) -> str:
    safe = "".join(c if c.isalnum() else "-" for c in f"{checker}-{kind}")
    return f"anomaly-{safe}-{number}"


def _linearizable_notes(result: dict[str, Any], ops_by_index: dict[int, Op]) -> list[str]:
    """For a linearizability failure: the longest linearizable prefix and the op breaking it."""
    notes = []
    prefix = _ints(result.get("linearized"))
    failed = result.get("failed_op")
    if "linearized" in result:
        tail = prefix[-PREFIX_SHOWN:]
        named = ", ".join(f"op {i}" for i in tail)
        more = f"... {len(prefix) - len(tail)} ops, then " if len(prefix) > len(tail) else ""
        state = result.get("final_state")
        notes.append(
            f"Longest linearizable prefix: {len(prefix)} ops ({more}{named or 'none'})"
            + (f", after which {state}." if state else ".")
        )
    if isinstance(failed, dict):
        what = failed.get("description") or f"op {failed.get('index')}"
        notes.append(f"The op that breaks it: {what}.")
    elif failed is not None:
        notes.append(f"The op that breaks it: {short_value(failed)}.")
    return notes


def anomaly_ops(sections: list[CheckerView]) -> dict[int, list[str]]:
    """Op index -> the anchors of the anomalies it is part of (shown ones only)."""
    marks: dict[int, list[str]] = {}
    for view in sections:
        for kind in view.kinds:
            for anomaly in kind.anomalies:
                for i in anomaly.ops:
                    marks.setdefault(i, []).append(anomaly.anchor)
    return marks
