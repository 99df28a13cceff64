"""The broadcast workload: clients broadcast unique values and now and then read.

    workload = BroadcastWorkload(random.Random(7), {"read_fraction": 0.1, "read_modes": ["local"]})
    workload.next_op()   # {"f": "broadcast", "value": 0} or {"f": "read", "read_mode": "local"}

Every broadcast value is unique (a counter), which is what lets the total-order checker
tell a lost, duplicated or phantom message from another. A broadcast's `msg_id` is derived
from its value, so a node dedupes a retried value. Reads return a node's delivered
sequence, in the mode given (`local`, `log` or `lease`; see the node's PROTOCOL.md).
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.workloads.base import Outcome, Workload, outcome_of_client_error
from tobtest.workloads.client import ClientError, NodeClient

# Error codes after which the node surely did not take the broadcast in.
DEFINITE_ERRORS = frozenset(
    {
        "malformed",
        "bad-request",
        "too-large",
        "unknown-type",
        "overloaded",
        "not-leader",
        "unsupported-read-mode",
    }
)


class BroadcastWorkload(Workload):
    name = "broadcast"
    # The same history judged twice: natively, and mapped onto Elle's list-append.
    checkers = ("total-order", "broadcast-elle")

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.read_fraction = float(self.options.get("read_fraction", 0.1))
        self.read_modes: list[str] = list(self.options.get("read_modes") or ["local"])
        self._next_value = 0

    def next_op(self) -> dict[str, Any]:
        if self.rng.random() < self.read_fraction:
            return {"f": "read", "value": None, "read_mode": self.rng.choice(self.read_modes)}
        value = self._next_value
        self._next_value += 1
        return {"f": "broadcast", "value": value}

    def final_op(self) -> dict[str, Any]:
        # Final reads ask each node for what it delivered: its own view, so `local`.
        return {"f": "read", "value": None, "read_mode": "local", "final": True}

    async def invoke(self, client: NodeClient, op: dict[str, Any], timeout_s: float) -> Outcome:
        if op["f"] == "broadcast":
            request = {"type": "broadcast", "value": op["value"], "msg_id": f"m{op['value']}"}
            expected = "broadcast_ok"
        else:
            request = {"type": "read", "mode": op.get("read_mode", "local")}
            expected = "read_ok"
        idempotent = op["f"] == "read"
        try:
            reply = await client.request(request, timeout_s)
        except ClientError as exc:
            outcome = outcome_of_client_error(exc, idempotent)
            outcome.value = op.get("value")
            return outcome
        if reply.get("type") == expected:
            if op["f"] == "broadcast":
                return Outcome("ok", op["value"], extra={"position": reply.get("position")})
            value = reply.get("value")
            return Outcome("ok", value if isinstance(value, list) else None)
        code = str(reply.get("code", "unexpected-reply"))
        error = f"{code}: {reply.get('text', reply)}"
        definite = code in DEFINITE_ERRORS or idempotent
        return Outcome("fail" if definite else "info", op.get("value"), error=error)
