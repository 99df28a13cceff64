"""The client side of the Raft core: broadcasts, the three read modes, delivery and dedupe.

A broadcast or `log` read becomes a *pending* entry of the node it reached. The leader
appends it to its log (`_propose`, in `raft.RaftProtocol`); a follower forwards it to the
leader it knows, again after `forward_timeout_ms` while it is not delivered, and at once to
a new leader; with no known leader it waits. Committed entries are delivered in log order,
each `msg_id` once (a message appended twice, say re-forwarded across a leader change, takes
the position of its first copy). The node acks a broadcast once it delivered it itself and
answers a log read when its marker is delivered there. Use the full core:

    core = RaftProtocol(node_id=0, n=3, rng=random.Random(1))
    core.step(ClientRead(request_id=1, mode="lease"), now_ms=0.0).reply  # not-leader
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from tobtest.node.protocols.base import (
    ClientBroadcast,
    ClientRead,
    Deliver,
    Effects,
    Protocol,
    ProtocolConfig,
    Reply,
    Send,
)
from tobtest.node.protocols.entries import Entry
from tobtest.node.protocols.multipaxos_params import EntryKey, entry_key, lease_params

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random

MAX_PENDING = 10_000  # this node's client entries not yet done; beyond, "overloaded"
FORWARD_BATCH = 64  # entries per forward message
FORWARD_BURST = 1024  # entries (re-)forwarded in one step at most
COUNTERS = (
    "phase1_rounds",
    "elections_won",
    "step_downs",
    "votes_granted",
    "votes_refused_sticky",
    "noops_proposed",
    "truncations",
    "resends",
    "forwards",
    "lease_reads",
    "lease_refusals",
)


@dataclass
class _Pending:
    entry: Entry
    forwarded_ms: float


class RaftClientSide(Protocol):
    """Client requests, delivery and plumbing; election and the log live in the subclass."""

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        self.params = lease_params(self.config)  # ValueError on an unsafe lease
        self._role = "follower"  # or "candidate", "leader"
        self._leader: int | None = None
        # This node's clients' entries until delivered (or answered) here, in the order
        # they were last forwarded.
        self._pending: OrderedDict[EntryKey, _Pending] = OrderedDict()
        self._waiters: dict[str, list[int]] = {}
        self._read_waiters: dict[str, int] = {}
        self._read_seq = 0
        # Delivery: the delivered sequence, each message's position, every key delivered.
        self._values: list[Any] = []
        self._positions: dict[str, int] = {}
        self._done_keys: set[EntryKey] = set()
        # Counters for status().
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._sent: dict[str, int] = {}
        self._received: dict[str, int] = {}
        # Scratch of the current step.
        self._fx = Effects()
        self._now_ms = 0.0

    # ---- client requests ------------------------------------------------------------------

    def _on_broadcast(self, ev: ClientBroadcast) -> None:
        msg_id = ev.msg_id
        if not isinstance(msg_id, str):
            self._reply(ev.request_id, _error("bad-request", "msg_id must be a string"))
        elif msg_id in self._positions:
            self._reply_ok(ev.request_id, msg_id, self._positions[msg_id])
        elif msg_id in self._waiters:
            self._waiters[msg_id].append(ev.request_id)
        elif len(self._pending) >= MAX_PENDING:
            # Refused before it was appended or forwarded: it will never be proposed by us.
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
        elif self._lease_holds():
            self._counts["lease_reads"] += 1
            self._reply_read(request_id, "lease")
        else:
            # No majority-acked heartbeat recent enough, or no entry of our term committed
            # yet (entries of earlier terms may be committed that we have not applied).
            self._counts["lease_refusals"] += 1
            body = _error("no-lease", "the leader holds no lease (or is still catching up)")
            self._reply(request_id, {**body, "leader": self.node_id})

    def _add_pending(self, entry: Entry) -> None:
        key = entry_key(entry)
        assert key is not None
        self._pending[key] = _Pending(entry, self._now_ms)
        self._submit([entry])

    def _submit(self, entries: list[Entry]) -> None:
        """Hands entries to the leader: our own log if we lead, else a forward message.
        With no known leader they stay pending until one is heard of."""
        if self._role == "leader":
            for entry in entries:
                self._propose(entry)
        elif self._leader is not None and self._leader != self.node_id:
            for k in range(0, len(entries), FORWARD_BATCH):
                self._counts["forwards"] += 1
                body = {"type": "forward", "entries": entries[k : k + FORWARD_BATCH]}
                self._send(self._leader, body)

    def _reforward(self, every: bool) -> None:
        """Re-submits pending entries: all (a new leader), or those forwarded long ago.
        Dedupe by key at the leader and at delivery makes repeats harmless."""
        due_ms = self._now_ms - self.params.forward_timeout_ms
        batch: list[Entry] = []
        for key, p in list(islice(self._pending.items(), FORWARD_BURST)):
            if not every and p.forwarded_ms > due_ms:
                break  # kept in forwarding order: the rest are younger
            p.forwarded_ms = self._now_ms
            self._pending.move_to_end(key)
            batch.append(p.entry)
        self._submit(batch)

    # ---- delivery -------------------------------------------------------------------------

    def _deliver_entry(self, entry: Entry, silent: bool = False) -> None:
        """Delivers one committed entry; `silent` (restore) rebuilds without effects."""
        key = entry_key(entry)
        if key is not None:
            self._done_keys.add(key)
        if entry["k"] != "msg" or entry["id"] in self._positions:
            # A no-op, a read marker, or a message appended twice: no position.
            if not silent and entry["k"] == "read":
                self._pending.pop(("read", entry["id"]), None)
                request_id = self._read_waiters.pop(entry["id"], None)
                if request_id is not None:
                    self._reply_read(request_id, "log")
            return
        position = len(self._values)
        self._values.append(entry["v"])
        self._positions[entry["id"]] = position
        if silent:
            return
        self._fx.deliver.append(Deliver(position=position, msg_id=entry["id"], value=entry["v"]))
        self._pending.pop(("msg", entry["id"]), None)
        for request_id in self._waiters.pop(entry["id"], []):
            self._reply_ok(request_id, entry["id"], position)

    def _reply_ok(self, request_id: int, msg_id: str, position: int) -> None:
        body = {"type": "broadcast_ok", "msg_id": msg_id, "position": position}
        self._reply(request_id, body)

    def _reply_read(self, request_id: int, mode: str) -> None:
        self._reply(request_id, {"type": "read_ok", "mode": mode, "value": list(self._values)})

    # ---- plumbing -------------------------------------------------------------------------

    def _send(self, dest: int, body: dict[str, Any]) -> None:
        kind = body["type"]
        self._sent[kind] = self._sent.get(kind, 0) + 1
        self._fx.send.append(Send(dest=dest, body=body))

    def _reply(self, request_id: int, body: dict[str, Any]) -> None:
        self._fx.reply.append(Reply(request_id=request_id, body=body))

    # ---- hooks for the subclass -----------------------------------------------------------

    def _propose(self, entry: Entry) -> None:
        """The leader appends `entry` to its log (unless it is there or delivered)."""
        raise NotImplementedError

    def _lease_holds(self) -> bool:
        """The leader may answer a lease read from its delivered prefix now."""
        raise NotImplementedError


def _error(code: str, text: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "text": text}
