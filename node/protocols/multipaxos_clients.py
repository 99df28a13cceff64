"""The client side of the Multi-Paxos core: broadcasts, the three read modes, and the entries
a node holds for its clients until they are delivered there.

A broadcast or `log` read becomes a *pending* entry of the node it reached. The leader
queues it itself (`_enqueue`, in `multipaxos.MultiPaxosProtocol`); a follower forwards it to
the leader it knows, again after `forward_timeout_ms` while not delivered, and at once to a
new leader. With no known leader it waits. The node acks a broadcast once it delivered it
itself, and answers a log read when its marker is delivered there. Use the full core:

    core = MultiPaxosProtocol(node_id=0, n=3, rng=random.Random(1))
    core.step(ClientRead(request_id=1, mode="lease"), now_ms=0.0).reply  # not-leader
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from tobtest.node.protocols.base import ClientBroadcast, ClientRead, ProtocolConfig
from tobtest.node.protocols.entries import Entry
from tobtest.node.protocols.multipaxos_params import (
    EntryKey,
    entry_key,
)
from tobtest.node.protocols.multipaxos_replica import NEG_INF, MultiPaxosReplica

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random

MAX_PENDING = 10_000  # this node's client entries not yet done; beyond, "overloaded"
FORWARD_BATCH = 64  # entries per forward message
FORWARD_BURST = 1024  # entries (re-)forwarded in one step at most


@dataclass
class _Pending:
    entry: Entry
    forwarded_ms: float


class MultiPaxosClientSide(MultiPaxosReplica):
    """Client requests on top of the acceptor and learner; the leader lives in the subclass."""

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        self._role = "follower"  # or "candidate", "leader"
        self._leader: int | None = None
        self._barrier_slot = -1  # the leader's no-op after the adopted range
        self._lease_until_ms = NEG_INF
        # This node's clients' entries until delivered (or answered) here, in the order
        # they were last forwarded.
        self._pending: OrderedDict[EntryKey, _Pending] = OrderedDict()
        self._waiters: dict[str, list[int]] = {}
        self._read_waiters: dict[str, int] = {}
        self._read_seq = 0

    def _on_broadcast(self, ev: ClientBroadcast) -> None:
        msg_id = ev.msg_id
        if not isinstance(msg_id, str):
            self._reply(ev.request_id, _error("bad-request", "msg_id must be a string"))
        elif msg_id in self._positions:
            self._reply_ok(ev.request_id, msg_id, self._positions[msg_id])
        elif msg_id in self._waiters or ("msg", msg_id) in self._chosen_keys:
            self._waiters.setdefault(msg_id, []).append(ev.request_id)
        elif len(self._pending) >= MAX_PENDING:
            # Refused before it was queued or forwarded: it will never be proposed by us.
            self._reply(ev.request_id, _error("overloaded", "too many pending broadcasts"))
        else:
            self._waiters[msg_id] = [ev.request_id]
            self._add_pending({"k": "msg", "id": msg_id, "v": ev.value})

    def _on_read(self, ev: ClientRead) -> None:
        if ev.mode == "local":
            self._reply_read(ev.request_id, "local")
        elif ev.mode == "log" and len(self._pending) < MAX_PENDING:
            # Random bits keep marker ids unique across restarts of a node (the counter resets).
            self._read_seq += 1
            read_id = f"r{self.node_id}-{self.rng.getrandbits(32):08x}-{self._read_seq}"
            self._read_waiters[read_id] = ev.request_id
            self._add_pending({"k": "read", "id": read_id})
        elif ev.mode == "log":
            self._reply(ev.request_id, _error("overloaded", "too many pending requests"))
        elif ev.mode == "lease":
            self._on_lease_read(ev.request_id)
        else:
            text = f"unknown read mode {ev.mode!r} (use log, lease or local)"
            self._reply(ev.request_id, _error("unsupported-read-mode", text))

    def _on_lease_read(self, request_id: int) -> None:
        if self._role != "leader":
            body = _error("not-leader", "lease reads are served by the leader")
            self._reply(request_id, {**body, "leader": self._leader})
        elif self._now_ms < self._lease_until_ms and (
            self._next_deliver > self._barrier_slot
            # Deliberate fixture bug lease-before-barrier: serves lease reads as soon as the
            # lease holds, before the barrier no-op (and the earlier leaders' values below
            # it) is delivered here.
            or "lease-before-barrier" in self.config.bugs
        ):
            self._counts["lease_reads"] += 1
            self._reply_read(request_id, "lease")
        else:
            # No majority-acked heartbeat recent enough, or our barrier no-op (which puts all
            # earlier leaders' values below it) is not delivered yet.
            self._counts["lease_refusals"] += 1
            body = _error("no-lease", "the leader holds no lease (or is still catching up)")
            self._reply(request_id, {**body, "leader": self.node_id})

    def _add_pending(self, entry: Entry) -> None:
        key = entry_key(entry)
        assert key is not None
        self._pending[key] = _Pending(entry, self._now_ms)
        self._submit([entry])

    def _submit(self, entries: list[Entry]) -> None:
        """Hands entries to the leader: our own queue if we lead, else a forward message.
        With no known leader they stay pending until one is heard of."""
        if self._role == "leader":
            for entry in entries:
                self._enqueue(entry)
        elif self._leader is not None and self._leader != self.node_id:
            for k in range(0, len(entries), FORWARD_BATCH):
                self._counts["forwards"] += 1
                body = {"type": "forward", "entries": entries[k : k + FORWARD_BATCH]}
                self._send(self._leader, body)

    def _reforward(self, every: bool) -> None:
        """Re-submits pending entries: all (a new leader), or those forwarded long ago.
        Dedupe by id at the leader and at delivery makes repeats harmless."""
        due_ms = self._now_ms - self.params.forward_timeout_ms
        batch: list[Entry] = []
        for key, p in list(islice(self._pending.items(), FORWARD_BURST)):
            if not every and p.forwarded_ms > due_ms:
                break  # kept in forwarding order: the rest are younger
            p.forwarded_ms = self._now_ms
            self._pending.move_to_end(key)
            batch.append(p.entry)
        self._submit(batch)

    def _on_delivered(self, entry: Entry, position: int | None) -> None:
        if entry["k"] == "read":
            self._pending.pop(("read", entry["id"]), None)
            request_id = self._read_waiters.pop(entry["id"], None)
            if request_id is not None:
                self._reply_read(request_id, "log")
        elif entry["k"] == "msg" and position is not None:
            self._pending.pop(("msg", entry["id"]), None)
            for request_id in self._waiters.pop(entry["id"], []):
                self._reply_ok(request_id, entry["id"], position)

    def _reply_ok(self, request_id: int, msg_id: str, position: int) -> None:
        body = {"type": "broadcast_ok", "msg_id": msg_id, "position": position}
        self._reply(request_id, body)

    def _reply_read(self, request_id: int, mode: str) -> None:
        self._reply(request_id, {"type": "read_ok", "mode": mode, "value": list(self._values)})

    def _enqueue(self, entry: Entry) -> None:
        """The leader takes `entry` into its proposal queue (unless chosen or queued)."""
        raise NotImplementedError


def _error(code: str, text: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "text": text}
