"""The txn workload: Elle's list-append, run over the broadcast as a replicated state machine.

    workload = TxnWorkload(random.Random(7), {"key_count": 3, "max_txn_length": 4})
    workload.next_op()  # {"f": "txn", "value": [["append", 0, 1], ["r", 1, None]]}

Each op broadcasts a transaction of micro-ops `["append", k, v]` and `["r", k, null]`;
every node applies delivered transactions in order, and the ack returns the transaction
with its reads filled in, computed at delivery. Values are unique per key. As in Elle's
generator, a small pool of active keys is kept, and a key that has taken
`max_writes_per_key` appends is retired for a fresh one, so reads stay short.
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.workloads.base import Outcome, Workload, outcome_of_client_error
from tobtest.workloads.broadcast import DEFINITE_ERRORS
from tobtest.workloads.client import ClientError, NodeClient


class TxnWorkload(Workload):
    name = "txn"
    checkers = ("list-append",)

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.key_count = int(self.options.get("key_count", 3))
        self.max_txn_length = int(self.options.get("max_txn_length", 4))
        self.max_writes_per_key = int(self.options.get("max_writes_per_key", 32))
        self._active_keys = list(range(self.key_count))
        self._next_key = self.key_count
        self._writes: dict[int, int] = {}
        self._txn_count = 0

    def _append_value(self, key: int) -> int:
        count = self._writes.get(key, 0) + 1
        self._writes[key] = count
        if count >= self.max_writes_per_key:
            slot = self._active_keys.index(key)
            self._active_keys[slot] = self._next_key
            self._next_key += 1
        return count

    def next_op(self) -> dict[str, Any]:
        txn: list[list[Any]] = []
        for _ in range(self.rng.randint(1, self.max_txn_length)):
            key = self.rng.choice(self._active_keys)
            if self.rng.random() < 0.5:
                txn.append(["append", key, self._append_value(key)])
            else:
                txn.append(["r", key, None])
        self._txn_count += 1
        return {"f": "txn", "value": txn, "msg_id": f"t{self._txn_count}"}

    async def invoke(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        request = {
            "type": "broadcast",
            "value": {"op": "txn", "txn": op["value"]},
            "msg_id": op["msg_id"],
        }
        try:
            reply = await client.request(request, timeout_s)
        except ClientError as exc:
            outcome = outcome_of_client_error(exc, idempotent=False)
            outcome.value = op["value"]
            return outcome
        if reply.get("type") == "broadcast_ok" and isinstance(reply.get("result"), list):
            return Outcome("ok", reply["result"], extra={"position": reply.get("position")})
        if reply.get("type") == "broadcast_ok":
            # Acked without a result: the node acked before applying (a seeded bug) or is
            # not this protocol; the txn happened but its reads are unknown.
            return Outcome("info", op["value"], error="ack without a result")
        code = str(reply.get("code", "unexpected-reply"))
        kind = "fail" if code in DEFINITE_ERRORS else "info"
        return Outcome(kind, op["value"], error=f"{code}: {reply.get('text', reply)}")
