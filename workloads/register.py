"""The register workload: read, write and cas on a few keys, checked for linearizability.

    workload = RegisterWorkload(random.Random(7), {"key_count": 3, "read_modes": ["log"]})
    workload.next_op()  # {"f": "cas", "value": [1, 3], "key": 2}

Writes and cas go through the broadcast: every node applies them in delivered order to a
register per key (initially null). Reads go through the read mode drawn for them: `log`
(a read command broadcast through the log: linearizable in both protocols), `lease` (the
Multi-Paxos leader's lease read) or `local` (any node's current state: only sequentially
consistent, so the linearizability checker is expected to flag it under faults). A cas
whose register does not hold `from` did nothing: it is recorded as `fail`.
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.workloads.base import Outcome, Workload, leader_named, outcome_of_client_error
from tobtest.workloads.broadcast import DEFINITE_ERRORS
from tobtest.workloads.client import ClientError, NodeClient

VALUES = range(5)


class RegisterWorkload(Workload):
    name = "register"
    checkers = ("linearizable",)
    checker_options = {"linearizable": {"model": "kv", "initial": None}}

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.key_count = int(self.options.get("key_count", 3))
        self.read_fraction = float(self.options.get("read_fraction", 0.4))
        self.read_modes: list[str] = list(self.options.get("read_modes") or ["log"])
        self._count = 0

    def next_op(self) -> dict[str, Any]:
        self._count += 1
        key = self.rng.randrange(self.key_count)
        msg_id = f"r{self._count}"
        if self.rng.random() < self.read_fraction:
            mode = self.rng.choice(self.read_modes)
            return {"f": "read", "value": None, "key": key, "read_mode": mode, "msg_id": msg_id}
        if self.rng.random() < 0.5:
            return {"f": "write", "value": self.rng.choice(VALUES), "key": key, "msg_id": msg_id}
        pair = [self.rng.choice(VALUES), self.rng.choice(VALUES)]
        return {"f": "cas", "value": pair, "key": key, "msg_id": msg_id}

    def _request(self, op: dict[str, Any]) -> dict[str, Any]:
        key = op["key"]
        if op["f"] == "read" and op["read_mode"] != "log":
            return {"type": "read", "mode": op["read_mode"], "key": key}
        if op["f"] == "read":
            command: dict[str, Any] = {"op": "read", "key": key}
        elif op["f"] == "write":
            command = {"op": "write", "key": key, "value": op["value"]}
        else:
            command = {"op": "cas", "key": key, "from": op["value"][0], "to": op["value"][1]}
        return {"type": "broadcast", "value": command, "msg_id": op["msg_id"]}

    async def invoke(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        is_read = op["f"] == "read"
        try:
            reply = await client.request(self._request(op), timeout_s)
        except ClientError as exc:
            outcome = outcome_of_client_error(exc, idempotent=is_read)
            outcome.value = op["value"]
            return outcome
        kind = reply.get("type")
        if kind == "read_ok":
            return Outcome("ok", reply.get("value"))
        if kind == "broadcast_ok":
            result = reply.get("result")
            if not isinstance(result, dict):
                return Outcome("info", op["value"], error="ack without a result")
            if is_read:
                return Outcome("ok", result.get("value"))
            if result.get("ok"):
                return Outcome("ok", op["value"])
            return Outcome("fail", op["value"], error="cas: register did not hold from")
        code = str(reply.get("code", "unexpected-reply"))
        definite = code in DEFINITE_ERRORS or is_read
        leader = leader_named(reply) if is_read else None
        extra = {"leader": leader} if leader else {}
        return Outcome("fail" if definite else "info", op["value"], error=f"{code}", extra=extra)
