"""The replicated state machine each node runs over its delivered sequence.

    sm = StateMachine()
    sm.apply({"op": "txn", "txn": [["append", 1, 5], ["r", 1, None]]})
    # -> [["append", 1, 5], ["r", 1, [5]]]
    sm.apply({"op": "cas", "key": "x", "from": 0, "to": 1})  # -> {"ok": False, "value": None}
    sm.apply(42)  # -> None: a plain message

Every node applies every delivered message in the same order, so every node computes the
same results; the node returns the result of a broadcast with its ack. Commands:
- `{"op": "txn", "txn": [["append", k, v] | ["r", k, null], ...]}`: Elle's list-append;
  the result is the txn with every read filled in.
- `{"op": "write", "key": k, "value": v}`, `{"op": "cas", "key": k, "from": a, "to": b}`,
  `{"op": "read", "key": k}`: a register per key (initially null). A cas on a register that
  does not hold `from` has no effect and returns `{"ok": false}`.
Anything else is a plain broadcast message: delivered, no effect on the state.
"""

from __future__ import annotations

from typing import Any


def _key(value: Any) -> str:
    # JSON object keys are strings; keep int and str keys apart in the dicts.
    return f"{type(value).__name__}:{value}"


class StateMachine:
    def __init__(self) -> None:
        self.lists: dict[str, list[Any]] = {}
        self.registers: dict[str, Any] = {}
        self.applied = 0

    def apply(self, command: Any) -> Any:
        """Applies one delivered message and returns its result (None for plain messages)."""
        self.applied += 1
        if not isinstance(command, dict):
            return None
        op = command.get("op")
        if op == "txn" and isinstance(command.get("txn"), list):
            return self._txn(command["txn"])
        if op in ("write", "cas", "read") and "key" in command:
            return self._register(op, command)
        return None

    def _txn(self, txn: list[Any]) -> list[Any]:
        result = []
        for micro in txn:
            if not (isinstance(micro, list) and len(micro) == 3):
                result.append(micro)
                continue
            f, k, v = micro
            if f == "append":
                self.lists.setdefault(_key(k), []).append(v)
                result.append(["append", k, v])
            elif f == "r":
                result.append(["r", k, list(self.lists.get(_key(k), []))])
            else:
                result.append(micro)
        return result

    def _register(self, op: str, command: dict[str, Any]) -> dict[str, Any]:
        key = _key(command["key"])
        current = self.registers.get(key)
        if op == "write":
            self.registers[key] = command.get("value")
            return {"ok": True}
        if op == "cas":
            if current == command.get("from"):
                self.registers[key] = command.get("to")
                return {"ok": True}
            return {"ok": False, "value": current}
        return {"ok": True, "value": current}

    def read_register(self, key: Any) -> Any:
        return self.registers.get(_key(key))
