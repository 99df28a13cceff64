"""Which checker fits a history, read from its ops, for `tobtest check FILE` with none named.

    from tobtest.checker.infer import infer_checker
    choice = infer_checker(history)
    choice.checker, choice.options, choice.reason
    # "linearizable", {"model": "cas-register"}, "ops read, write, cas: a register with cas"

Rules, first match wins, on the client ops' `f` and values:
- txn ops whose micro-ops append (`[:append k v]`, `[:r k list]`): `list-append` (Elle's);
- txn ops of `[:read k v]`/`[:write k v]` micro-ops (Knossos's multi-register):
  `linearizable` with model `multi-register`;
- txn ops of `[:r k v]`/`[:w k v]` (Elle's rw-register): `elle` (unknown without its jar);
- txn ops of `[:r k v]`/`[:w k v]` (Elle's rw-register): `elle` (unknown without its jar);
- read/write/cas (get/put/append) ops: `linearizable`, model `kv` when ops carry a key
  (a `:key` field, or get/put/append), `cas-register` when any op is a cas, else `register`;
- acquire/release: `linearizable`, model `mutex`;
- broadcast (and the reads of a broadcast workload): `total-order`.
Anything else gets `total-order`, the default of a history file, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tobtest.histories.op import Op

REGISTER_FS = frozenset({"read", "write", "cas"})
KV_FS = frozenset({"get", "put", "append", "read", "write", "cas"})


@dataclass(frozen=True)
class Choice:
    checker: str
    options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def describe(self) -> str:
        model = f" (model {self.options['model']})" if "model" in self.options else ""
        return f"{self.checker}{model}, inferred from the ops: {self.reason}"


def infer_checker(history: list[Op]) -> Choice:
    """The checker (and linearizability model) that the history's client ops call for."""
    client = [op for op in history if op.is_client]
    fs = sorted({op.f for op in client})
    named = ", ".join(fs) or "none"
    if "txn" in fs:
        mop_fs = {m[0] for op in client if op.f == "txn" for m in _mops(op.value)}
        if "append" in mop_fs:
            return Choice("list-append", {}, f"txn micro-ops {', '.join(sorted(mop_fs))}")
        if mop_fs and mop_fs <= {"read", "write"}:
            return Choice("linearizable", {"model": "multi-register"}, "txn micro-ops read, write")
        if mop_fs and mop_fs <= {"r", "w"}:  # Elle's rw-register: only Elle itself checks it
            return Choice("elle", {"model": "rw-register"}, "txn micro-ops r, w (needs --elle-jar)")
    if fs and set(fs) <= KV_FS:
        keyed = any("key" in op.extra for op in client) or bool({"get", "put", "append"} & set(fs))
        if keyed:
            return Choice("linearizable", {"model": "kv"}, f"ops {named} on keys")
        model = "cas-register" if "cas" in fs else "register"
        return Choice("linearizable", {"model": model}, f"ops {named}")
    if fs and set(fs) <= {"acquire", "release"}:
        return Choice("linearizable", {"model": "mutex"}, f"ops {named}")
    if "broadcast" in fs:
        return Choice("total-order", {}, f"ops {named}")
    return Choice("total-order", {}, f"ops {named}: no closer fit, the default")


def _mops(value: Any) -> list[tuple[Any, ...]]:
    if not isinstance(value, (list, tuple)):
        return []
    return [tuple(m) for m in value if isinstance(m, (list, tuple)) and m]
