"""The op model, as Jepsen's: one record per invocation or completion.

    >>> op = Op(index=0, time_ns=12, type="invoke", process=0, f="broadcast", value=7)
    >>> Op.from_dict(op.to_dict()) == op
    True

`type` is `invoke`, `ok` (it happened), `fail` (it certainly did not happen) or `info`
(indeterminate: it may or may not have happened, at any time after its invocation). A
process that gets `info` never issues another op. Nemesis ops have `process == "nemesis"`.
Extra fields (for example a read's `read_mode`) travel in `extra` and are written flat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: tuple[str, ...] = ("invoke", "ok", "fail", "info")
NEMESIS = "nemesis"

_CORE_FIELDS = ("index", "time_ns", "type", "process", "f", "value", "node", "error")


@dataclass(frozen=True)
class Op:
    """One history entry. `process` is an int for clients and "nemesis" for the nemesis."""

    index: int
    time_ns: int
    type: str
    process: int | str
    f: str
    value: Any = None
    node: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "time_ns": self.time_ns,
            "type": self.type,
            "process": self.process,
            "f": self.f,
            "value": self.value,
        }
        if self.node is not None:
            d["node"] = self.node
        if self.error is not None:
            d["error"] = self.error
        d.update(self.extra)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        """Builds an op from a dict; raises ValueError with the reason when it is malformed."""
        if not isinstance(d, dict):
            raise ValueError(f"op must be an object, got {type(d).__name__}")
        for name in ("index", "time_ns", "type", "process", "f"):
            if name not in d:
                raise ValueError(f"op is missing field {name!r}")
        if d["type"] not in OP_TYPES:
            raise ValueError(f"op has unknown type {d['type']!r}")
        if not isinstance(d["index"], int) or not isinstance(d["time_ns"], int):
            raise ValueError("op index and time_ns must be integers")
        if not isinstance(d["process"], (int, str)) or not isinstance(d["f"], str):
            raise ValueError("op process must be an int or string and f a string")
        extra = {k: v for k, v in d.items() if k not in _CORE_FIELDS}
        return cls(
            index=d["index"],
            time_ns=d["time_ns"],
            type=d["type"],
            process=d["process"],
            f=d["f"],
            value=d.get("value"),
            node=d.get("node"),
            error=d.get("error"),
            extra=extra,
        )

    @property
    def is_invoke(self) -> bool:
        return self.type == "invoke"

    @property
    def is_client(self) -> bool:
        return self.process != NEMESIS


def pair_ops(history: list[Op]) -> list[tuple[Op, Op | None]]:
    """Pairs each client invocation with its completion (None if it never completed).

    A process runs one op at a time, so its next non-invoke op completes its open invoke.
    Nemesis ops are left out. The result is in invocation order.
    """
    open_by_process: dict[int | str, int] = {}
    pairs: list[tuple[Op, Op | None]] = []
    for op in history:
        if not op.is_client:
            continue
        if op.type == "invoke":
            open_by_process[op.process] = len(pairs)
            pairs.append((op, None))
        else:
            slot = open_by_process.pop(op.process, None)
            if slot is not None:
                pairs[slot] = (pairs[slot][0], op)
    return pairs
