"""Readers for recorded histories: tobtest JSON Lines, Jepsen EDN and Jepsen log lines.

    from tobtest.histories.formats import read_history, write_jsonl
    ops = read_history("store/latest/history.jsonl")        # format detected from content
    ops = read_history("knossos/cas-register/bad/cas-failure.edn")
    ops = read_history("porcupine-etcd/etcd_000.log", fmt="jepsen-log")
    write_jsonl(ops, "history.jsonl")

Formats (`fmt`): `jsonl` (one `Op.to_dict` object a line), `edn` (a Jepsen `history.edn`:
one vector or list of op maps, or a stream of op maps, one a line), `jepsen-log` (Jepsen's
`history.txt` or `jepsen.log` lines: `INFO  jepsen.util - 3\\t:invoke\\t:write\\t4`, that is
process, type, f, value and an optional error, tab-separated; log lines without tabs that
start with a log level or a date are skipped as chatter). `auto` looks at the first form.

Jepsen keywords become plain strings (`:invoke` -> "invoke", `:nemesis` -> "nemesis").
An op that has no `:index` gets its position among the file's ops, and `time_ns` is Jepsen's
`:time` (ns) or else the index. Fields other than Op's own (`:key`, ...) go to `Op.extra`.
A non-string `:error` (a keyword becomes a string) is kept as its JSON text.

Malformed input raises ValueError with a one-line message `<path>:<line>: <what is wrong>`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tobtest.histories import edn
from tobtest.histories.op import OP_TYPES, Op

log = logging.getLogger("tobtest.histories")
FORMATS = ("auto", "jsonl", "edn", "jepsen-log")

# Log chatter that a jepsen.log holds besides op lines: a level word or a date first.
_CHATTER = re.compile(r"\s*(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|\d{4}-\d\d-\d\d)\b")
_EDN_FIELDS = {"index", "time", "type", "process", "f", "value", "node", "error"}


def read_history(path: str | Path, fmt: str = "auto") -> list[Op]:
    """Reads a history file in the given format (or the one its content shows)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_history(text, fmt, source=str(path))


def parse_history(text: str, fmt: str = "auto", source: str = "<string>") -> list[Op]:
    """Parses history text; `source` names it in error messages."""
    if fmt not in FORMATS:
        raise ValueError(f"{source}: unknown history format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "jsonl":
        return _parse_jsonl(text, source)
    if fmt == "edn":
        return _parse_edn(text, source)
    return _parse_jepsen_log(text, source)


def detect_format(text: str) -> str:
    """Guesses the format from the first meaningful line (empty text reads as JSON Lines)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(";"):
            continue
        if "\t" in line and re.search(r"\t:(?:invoke|ok|fail|info)\t", line):
            return "jepsen-log"
        if stripped.startswith("{") and stripped[1:].lstrip().startswith('"'):
            return "jsonl"
        if stripped[0] in "[({#":
            return "edn"
        if _CHATTER.match(line):
            return "jepsen-log"
        return "jsonl"  # whatever it is, the JSONL reader will say what is wrong with it
    return "jsonl"


def write_jsonl(ops: Iterable[Op], path: str | Path) -> None:
    """Writes ops as JSON Lines, one `Op.to_dict` a line."""
    with Path(path).open("w", encoding="utf-8") as out:
        for op in ops:
            out.write(op.to_json())
            out.write("\n")


def _parse_jsonl(text: str, source: str) -> list[Op]:
    ops: list[Op] = []
    lines = text.splitlines()
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ops.append(Op.from_dict(json.loads(line)))
        except json.JSONDecodeError as exc:
            if line_no == len(lines) and not text.endswith("\n"):
                # The recorder writes whole lines: an unterminated last one was torn by a
                # crash mid-write. Everything before it is still a checkable history.
                log.warning("%s:%d: dropped a torn last line (a crash mid-write)", source, line_no)
                break
            raise ValueError(f"{source}:{line_no}: not JSON ({exc.msg})") from None
        except ValueError as exc:
            raise ValueError(f"{source}:{line_no}: {exc}") from None
    return ops


def _parse_edn(text: str, source: str) -> list[Op]:
    # Either one collection of op maps, or a stream of op maps: iter_elements reads both.
    ops: list[Op] = []
    try:
        for position, (form, line) in enumerate(edn.iter_elements(text)):
            ops.append(_edn_op(form, line, position, source))
    except edn.EdnError as exc:
        raise ValueError(f"{source}:{exc.line}: malformed EDN: {exc.reason}") from None
    return ops


def _edn_op(form: Any, line: int, position: int, source: str) -> Op:
    if not isinstance(form, dict):
        raise ValueError(f"{source}:{line}: expected an op map, found {_edn_kind(form)}")
    try:
        return op_from_jepsen(form, position)
    except ValueError as exc:
        raise ValueError(f"{source}:{line}: op {position}: {exc}") from None


def op_from_jepsen(m: dict[Any, Any], position: int) -> Op:
    """Builds an Op from a Jepsen op map (keywords already read as strings)."""
    if "type" not in m:
        raise ValueError("missing :type")
    if "f" not in m or "process" not in m:
        m = _elle_defaults(m)
    if m["type"] not in OP_TYPES:
        raise ValueError(f"unknown :type {m['type']!r}")
    process = m["process"]
    if not isinstance(process, (int, str)) or isinstance(process, bool):
        raise ValueError(f":process must be an integer or keyword, found {process!r}")
    f = m["f"]
    if not isinstance(f, str):
        raise ValueError(f":f must be a keyword, found {f!r}")
    index = m.get("index", position)
    time_ns = m.get("time", index)
    if not isinstance(index, int) or not isinstance(time_ns, int):
        raise ValueError(":index and :time must be integers")
    error = m.get("error")
    if error is not None and not isinstance(error, str):
        error = json.dumps(error, default=str)
    node = m.get("node")
    extra = {str(k): v for k, v in m.items() if k not in _EDN_FIELDS}
    return Op(
        index=index,
        time_ns=time_ns,
        type=m["type"],
        process=process,
        f=f,
        value=m.get("value"),
        node=None if node is None else str(node),
        error=error,
        extra=extra,
    )


def _elle_defaults(m: dict[Any, Any]) -> dict[Any, Any]:
    """Elle's own example histories leave out `:f` (every op is a txn) and sometimes
    `:process`; Elle then reads every op as one process's (nil). So do we: a missing `:f`
    with a list of micro-ops is `txn`, a missing `:process` is the process "nil"."""
    m = dict(m)
    if "f" not in m:
        if not isinstance(m.get("value"), list):
            raise ValueError("missing :f (and the value is no list of micro-ops)")
        m["f"] = "txn"
    m.setdefault("process", "nil")
    return m


def _parse_jepsen_log(text: str, source: str) -> list[Op]:
    ops: list[Op] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            if _CHATTER.match(line):
                continue
            raise ValueError(f"{source}:{line_no}: not a Jepsen op line (no tab-separated fields)")
        fields = line.split("\t")
        if len(fields) < 4:
            raise ValueError(
                f"{source}:{line_no}: expected process, type, f and value separated by tabs"
            )
        prefix = fields[0].split()
        try:
            process = _edn_field(prefix[-1]) if prefix else None
            op_type = _edn_field(fields[1])
            f = _edn_field(fields[2])
            value = _edn_field(fields[3])
            error = _edn_field(fields[4]) if len(fields) > 4 and fields[4].strip() else None
        except edn.EdnError as exc:
            raise ValueError(f"{source}:{line_no}: malformed EDN field: {exc.reason}") from None
        m = {"process": process, "type": op_type, "f": f, "value": value}
        if error is not None:
            m["error"] = error
        try:
            ops.append(op_from_jepsen(m, len(ops)))
        except ValueError as exc:
            raise ValueError(f"{source}:{line_no}: {exc}") from None
    return ops


_SIMPLE_INT = re.compile(r"-?\d+")
_SIMPLE_KEYWORD = re.compile(r":[\w.*+!?$%&=<>/-]+")
_SIMPLE_PAIR = re.compile(r"\[(-?\d+) (-?\d+)\]")


def _edn_field(text: str) -> Any:
    """One EDN field of a log line; the common forms skip the general reader (3x faster)."""
    text = text.strip()
    if text == "nil":
        return None
    if _SIMPLE_KEYWORD.fullmatch(text):
        return text[1:]
    if _SIMPLE_INT.fullmatch(text):
        return int(text)
    pair = _SIMPLE_PAIR.fullmatch(text)
    if pair:
        return [int(pair[1]), int(pair[2])]
    return edn.loads(text)


def _edn_kind(form: Any) -> str:
    if form is None:
        return "nil"
    if isinstance(form, list):
        return "a vector or list"
    if isinstance(form, str):
        return "a keyword, symbol or string"
    return type(form).__name__
