"""The broadcast workload: clients broadcast unique values and now and then read.

    workload = BroadcastWorkload(random.Random(7), {"read_fraction": 0.1, "read_modes": ["local"]})
    workload.next_op()   # {"f": "broadcast", "value": 0} or {"f": "read", "read_mode": "local"}

Every broadcast value is unique (a counter), which is what lets the total-order checker
tell a lost, duplicated or phantom message from another. A broadcast's `msg_id` is derived
from its value, so a node dedupes a retried value. Reads return a node's delivered
sequence, in the mode given (`local`, `log` or `lease`; see the node's PROTOCOL.md).
With `read_from` (the node kind's capability `read-from`), a read op that names its
`client` (the runner's worker) asks only for what that client has not read from that node
yet (`read_cursor.py`); its ok op then records the suffix as its value and the suffix's
place as `offset`, so a read costs the history what is new, not the whole log
(`tobtest/histories/suffix_reads.py` rebuilds the whole).
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.workloads.base import Outcome, Workload, leader_named
from tobtest.workloads.client import ClientError, NodeClient
from tobtest.workloads.read_cursor import ReadCursors

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
    retries = True

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.read_fraction = float(self.options.get("read_fraction", 0.1))
        self.read_modes: list[str] = list(self.options.get("read_modes") or ["local"])
        self.retry = bool(self.options.get("retry", True))
        self.read_from = bool(self.options.get("read_from", False))
        self._cursors = ReadCursors()
        self._next_value = 0

    def next_op(self) -> dict[str, Any]:
        if self.rng.random() < self.read_fraction:
            return {"f": "read", "value": None, "read_mode": self.rng.choice(self.read_modes)}
        value = self._next_value
        self._next_value += 1
        return {"f": "broadcast", "value": value}

    def next_read(self) -> dict[str, Any] | None:
        # A reader's reads are the ones a node answers without the log (a `log` read waits
        # for consensus, as a write does, and would hold the reader up with the writers).
        modes = [m for m in self.read_modes if m != "log"] or self.read_modes
        if self.read_fraction <= 0:
            return None
        return {"f": "read", "value": None, "read_mode": self.rng.choice(modes)}

    def final_op(self) -> dict[str, Any]:
        # Final reads ask each node for what it delivered: its own view, so `local`.
        return {"f": "read", "value": None, "read_mode": "local", "final": True}

    async def invoke(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        if op["f"] == "broadcast":
            return await self._broadcast(client, op, timeout_s, fallback)
        request = {"type": "read", "mode": op.get("read_mode", "local")}
        # A read without a client (a final read) asks for the whole log.
        cursor = (op["client"], client.host, client.port) if "client" in op else None
        if self.read_from and cursor is not None:
            request.update(self._cursors.request_fields(cursor))
        try:
            reply = await client.request(request, timeout_s)
        except ClientError as exc:
            return Outcome("fail", op.get("value"), error=str(exc))
        if reply.get("type") == "read_ok":
            if not self.read_from or cursor is None:
                value = reply.get("value")
                return Outcome("ok", value if isinstance(value, list) else None)
            taken = self._cursors.take(cursor, reply)
            if taken is None:
                return Outcome("ok", None)  # the checker calls it malformed, as before
            value, offset = taken
            return Outcome("ok", value, extra={"offset": offset} if offset else {})
        error = f"{reply.get('code')}: {reply.get('text', reply)}"
        leader = leader_named(reply)
        return Outcome("fail", None, error=error, extra={"leader": leader} if leader else {})

    async def _broadcast(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None,
    ) -> Outcome:
        # A broadcast that times out is retried once on another node with the same msg_id,
        # as an at-least-once client would: the node's dedupe must make that safe.
        request = {"type": "broadcast", "value": op["value"], "msg_id": f"m{op['value']}"}
        attempts: list[tuple[str | None, NodeClient]] = [(None, client)]
        if fallback is not None and self.retry:
            attempts.append(fallback)
        budget_s = timeout_s / len(attempts)
        failure = Outcome("info", op["value"])
        for node, target in attempts:
            try:
                reply = await target.request(request, budget_s)
            except ClientError as exc:
                if exc.definite and node is None and len(attempts) == 1:
                    return Outcome("fail", op["value"], error=str(exc))
                failure = Outcome("info", op["value"], error=str(exc))
                continue
            if reply.get("type") == "broadcast_ok":
                extra = {"position": reply.get("position")}
                if node is not None:
                    extra["retried"] = True
                return Outcome("ok", op["value"], extra=extra, node=node)
            code = str(reply.get("code", "unexpected-reply"))
            error = f"{code}: {reply.get('text', reply)}"
            if code in DEFINITE_ERRORS and node is None and len(attempts) == 1:
                return Outcome("fail", op["value"], error=error)
            failure = Outcome("info", op["value"], error=error)
        # Once a retry was sent, a failure of either attempt leaves the fate unknown.
        return failure
