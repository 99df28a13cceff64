"""Maelstrom's workloads, with its message shapes, run through the shim of each node.

    workload = MAELSTROM_WORKLOADS["lin-kv"](random.Random(7), {})
    workload.next_op()    # {"f": "cas", "value": [1, 3], "key": 2}
    await workload.invoke(client, op, timeout_s=2.0)   # client: a NodeClient of a shim

A request is `{"type": "maelstrom", "body": BODY}` to the shim, which gives BODY a
`msg_id`, hands it to the node and returns the node's reply body (`tobtest.maelstrom.shim`).

- `broadcast`: `broadcast` a unique integer (`message`), `read` the node's `messages`;
  every node gets `topology` (Maelstrom's default grid) right after `init`. Checked as a
  set (`set-full`); add `--checker total-order` for a node that claims a total order.
- `lin-kv`: `read`, `write`, `cas` (`from`, `to`) on a few integer keys, checked for
  linearizability (model `kv`, keys start absent). A read answered with error 20
  (key-does-not-exist) is a read of nothing; a cas answered 20 or 22
  (precondition-failed) did nothing.
- `txn-list-append`: `txn` of `["r", k, null]` and `["append", k, v]` micro-ops, checked by
  the list-append checker (Elle's inference).

Errors follow Maelstrom's table (doc/protocol.md): a definite code (1, 10, 11, 12, 14, 20,
21, 22, 30) means the op did not happen (`fail`); any other code (0 timeout, 13 crash,
custom ones) and a missing reply leave it indeterminate (`info`), except for reads, which
change nothing and so fail.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from tobtest.workloads.base import Outcome, Workload
from tobtest.workloads.client import ClientError, NodeClient
from tobtest.workloads.txn import TxnWorkload

DEFINITE_CODES = frozenset({1, 10, 11, 12, 14, 20, 21, 22, 30})
KEY_DOES_NOT_EXIST, PRECONDITION_FAILED = 20, 22


def grid_topology(names: list[str]) -> dict[str, list[str]]:
    """Maelstrom's default topology: nodes in rows of ceil(sqrt(n)), each linked to the
    nodes above, below, left and right of it.

    >>> grid_topology(["n1", "n2", "n3"])
    {'n1': ['n2', 'n3'], 'n2': ['n1'], 'n3': ['n1']}
    """
    width = max(1, math.ceil(math.sqrt(len(names))))
    topology: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        row, col = divmod(i, width)
        near = [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]
        neighbours = [r * width + c for r, c in near if 0 <= c < width and r >= 0]
        topology[name] = [names[j] for j in sorted(neighbours) if j < len(names)]
    return topology


def setup_bodies(workload: str, n: int) -> tuple[str, ...]:
    """What every shim sends its node after `init` (JSON text): `topology` for broadcast."""
    if workload == "broadcast":
        names = [f"n{i + 1}" for i in range(n)]
        return (json.dumps({"type": "topology", "topology": grid_topology(names)}),)
    return ()


async def rpc(client: NodeClient, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Sends one Maelstrom request through the shim; the node's reply body."""
    reply = await client.request({"type": "maelstrom", "body": body}, timeout_s)
    if reply.get("type") != "maelstrom_ok" or not isinstance(reply.get("body"), dict):
        # The shim refused it (overloaded, malformed): the node never saw it.
        code = reply.get("code", "unexpected-reply")
        return {"type": "error", "code": 11, "text": f"shim: {code}: {reply.get('text', '')}"}
    body_out: dict[str, Any] = reply["body"]
    return body_out


def error_outcome(reply: dict[str, Any], value: Any, idempotent: bool) -> Outcome:
    """A reply that is not the expected `_ok`: fail when definite (or harmless), else info."""
    code = reply.get("code")
    error = f"{code}: {reply.get('text', '')}".strip() if reply.get("type") == "error" else (
        f"unexpected reply {json.dumps(reply)[:200]}"
    )  # fmt: skip
    definite = isinstance(code, int) and code in DEFINITE_CODES
    return Outcome("fail" if definite or idempotent else "info", value, error=error)


def transport_outcome(exc: ClientError, value: Any, idempotent: bool) -> Outcome:
    if exc.definite or idempotent:
        return Outcome("fail", value, error=str(exc))
    return Outcome("info", value, error=str(exc))


class MaelstromBroadcast(Workload):
    name = "broadcast"
    checkers = ("set-full",)
    # After the heal, gossip needs time to reach every node before the final reads.
    settle_s = 5.0

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        fraction = self.options.get("read_fraction")
        self.read_fraction = 0.3 if fraction is None else float(fraction)
        self._next_value = 0

    def next_op(self) -> dict[str, Any]:
        if self.rng.random() < self.read_fraction:
            return {"f": "read", "value": None}
        self._next_value += 1
        return {"f": "broadcast", "value": self._next_value}

    def final_op(self) -> dict[str, Any]:
        return {"f": "read", "value": None, "final": True}

    async def invoke(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        is_read = op["f"] == "read"
        body = {"type": "read"} if is_read else {"type": "broadcast", "message": op["value"]}
        try:
            reply = await rpc(client, body, timeout_s)
        except ClientError as exc:
            return transport_outcome(exc, op["value"], idempotent=is_read)
        if is_read and reply.get("type") == "read_ok" and isinstance(reply.get("messages"), list):
            return Outcome("ok", reply["messages"])
        if not is_read and reply.get("type") == "broadcast_ok":
            return Outcome("ok", op["value"])
        return error_outcome(reply, op["value"], idempotent=is_read)


class MaelstromLinKV(Workload):
    name = "lin-kv"
    checkers = ("linearizable",)
    checker_options = {"linearizable": {"model": "kv", "initial": None}}

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.key_count = int(self.options.get("key_count", 3))
        fraction = self.options.get("read_fraction")
        self.read_fraction = 0.4 if fraction is None else float(fraction)

    def next_op(self) -> dict[str, Any]:
        key = self.rng.randrange(self.key_count)
        if self.rng.random() < self.read_fraction:
            return {"f": "read", "value": None, "key": key}
        if self.rng.random() < 0.5:
            return {"f": "write", "value": self.rng.randrange(5), "key": key}
        return {"f": "cas", "value": [self.rng.randrange(5), self.rng.randrange(5)], "key": key}

    async def invoke(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        f, key, value = op["f"], op["key"], op["value"]
        if f == "read":
            body: dict[str, Any] = {"type": "read", "key": key}
        elif f == "write":
            body = {"type": "write", "key": key, "value": value}
        else:
            body = {"type": "cas", "key": key, "from": value[0], "to": value[1]}
        try:
            reply = await rpc(client, body, timeout_s)
        except ClientError as exc:
            return transport_outcome(exc, value, idempotent=f == "read")
        kind = reply.get("type")
        if f == "read" and kind == "read_ok":
            return Outcome("ok", reply.get("value"))
        if f == "read" and reply.get("code") == KEY_DOES_NOT_EXIST:
            return Outcome("ok", None)  # definite: the key holds nothing
        if kind == f"{f}_ok":
            return Outcome("ok", value)
        return error_outcome(reply, value, idempotent=f == "read")


class MaelstromTxn(TxnWorkload):
    """Elle's list-append generator (tobtest.workloads.txn), sent as Maelstrom's `txn`."""

    name = "txn-list-append"

    async def invoke(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        try:
            reply = await rpc(client, {"type": "txn", "txn": op["value"]}, timeout_s)
        except ClientError as exc:
            return transport_outcome(exc, op["value"], idempotent=False)
        txn = reply.get("txn")
        if reply.get("type") == "txn_ok" and isinstance(txn, list) and len(txn) == len(op["value"]):
            return Outcome("ok", txn)
        if reply.get("type") == "txn_ok":
            return Outcome("info", op["value"], error="txn_ok without the transaction")
        return error_outcome(reply, op["value"], idempotent=False)


MAELSTROM_WORKLOADS: dict[str, type[Workload]] = {
    "broadcast": MaelstromBroadcast,
    "lin-kv": MaelstromLinKV,
    "txn-list-append": MaelstromTxn,
}
