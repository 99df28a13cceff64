"""The acceptor and learner half of the per-slot Paxos core, and its plumbing.

`PaxosReplica` holds what every node does whatever it proposes: promise and accept per slot
(ballots `round * n + node_id`), learn chosen slots from `decide` messages and `sync`
catch-up, deliver them in slot order with each msg id at most once, answer the clients that
wait on a delivery, and rebuild all that from its `persist` records. `paxos.PaxosProtocol`
adds the proposer and the client requests, through the `_on_chosen` hook. Use that one:

    core = PaxosProtocol(node_id=0, n=3, rng=random.Random(1))

Two of the core's fixture bugs live in the learner (`ack-on-choose`, `deliver-on-arrival`)
and one in delivery (`no-dedupe`); see PROTOCOL.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeGuard

from tobtest.node.protocols.base import (
    Deliver,
    Effects,
    Protocol,
    ProtocolConfig,
    Reply,
    Send,
)
from tobtest.node.protocols.entries import Entry, chosen_batch, nat, parse_decisions, valid_entry

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random


# Local guards: mypy loses imported TypeGuards inside the protocols' import cycle (the
# registry's lazy loaders), so the narrowing is restated here.
def is_nat(x: Any) -> TypeGuard[int]:
    return nat(x)


def is_entry(x: Any) -> TypeGuard[Entry]:
    return valid_entry(x)


class PaxosReplica(Protocol):
    """Acceptor, learner and plumbing; the proposer and client requests live in the
    subclass."""

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        # Acceptor state, kept only for slots not yet known to be chosen.
        self._promised: dict[int, int] = {}
        self._accepted: dict[int, tuple[int, Entry]] = {}
        self._max_ballot = 0  # highest ballot seen: proposed, promised or refused
        # Learner state.
        self._chosen: dict[int, Entry] = {}
        self._chosen_ids: set[str] = set()
        self._max_chosen = -1
        self._next_deliver = 0  # every slot below is chosen and has been delivered
        self._values: list[Any] = []  # the delivered sequence
        self._positions: dict[str, int] = {}  # msg id -> position in it
        # Clients waiting on a delivery.
        self._waiters: dict[str, list[int]] = {}  # msg id -> request ids to answer
        self._read_waiters: dict[str, int] = {}  # read marker id -> request id
        # Scratch of the current step.
        self._fx = Effects()
        self._now_ms = 0.0
        self._inbox: deque[dict[str, Any]] = deque()  # messages to ourselves

    # ---- restart --------------------------------------------------------------------------

    def restore(self, records: Iterable[dict[str, Any]]) -> None:
        """Rebuilds acceptor state, chosen slots and the delivered prefix (without emitting
        `Deliver` again); in-flight proposals and waiting clients are not persisted."""
        for rec in records:
            if not isinstance(rec, dict) or not is_nat(rec.get("slot")):
                continue
            slot, ballot, kind = rec["slot"], rec.get("ballot"), rec.get("t")
            if kind == "chosen" and is_entry(rec.get("value")):
                self._chosen.setdefault(slot, rec["value"])
            elif kind in ("promise", "accept") and is_nat(ballot):
                self._promised[slot] = max(self._promised.get(slot, 0), ballot)
                self._max_ballot = max(self._max_ballot, ballot)
                old_ballot = self._accepted.get(slot, (0, None))[0]
                if kind == "accept" and is_entry(rec.get("value")) and ballot >= old_ballot:
                    self._accepted[slot] = (ballot, rec["value"])
        for slot, entry in self._chosen.items():
            self._promised.pop(slot, None)
            self._accepted.pop(slot, None)
            if entry["k"] != "noop":
                self._chosen_ids.add(entry["id"])
            self._max_chosen = max(self._max_chosen, slot)
        while self._next_deliver in self._chosen:
            entry = self._chosen[self._next_deliver]
            if entry["k"] == "msg" and entry["id"] not in self._positions:
                self._positions[entry["id"]] = len(self._values)
                self._values.append(entry["v"])
            self._next_deliver += 1

    # ---- acceptor -------------------------------------------------------------------------

    def _on_prepare(self, src: int, body: dict[str, Any]) -> None:
        slot, ballot = body.get("slot"), body.get("ballot")
        if not (is_nat(slot) and is_nat(ballot) and ballot > 0):
            return
        self._max_ballot = max(self._max_ballot, ballot)
        if slot in self._chosen:
            self._send(src, {"type": "decide", "slot": slot, "value": self._chosen[slot]})
            return
        promised = self._promised.get(slot, 0)
        if ballot < promised:
            self._send(src, {"type": "nack", "slot": slot, "ballot": ballot, "promised": promised})
            return
        if ballot > promised:
            self._promised[slot] = ballot
            self._fx.persist.append({"t": "promise", "slot": slot, "ballot": ballot})
        accepted_ballot, accepted_value = self._accepted.get(slot, (0, None))
        reply = {"type": "promise", "slot": slot, "ballot": ballot}
        reply.update(accepted_ballot=accepted_ballot, accepted_value=accepted_value)
        self._send(src, reply)

    def _on_accept(self, src: int, body: dict[str, Any]) -> None:
        slot, ballot, value = body.get("slot"), body.get("ballot"), body.get("value")
        if not (is_nat(slot) and is_nat(ballot) and ballot > 0 and is_entry(value)):
            return
        self._max_ballot = max(self._max_ballot, ballot)
        if slot in self._chosen:
            self._send(src, {"type": "decide", "slot": slot, "value": self._chosen[slot]})
            return
        promised = self._promised.get(slot, 0)
        if "accept-vs-accepted" in self.config.bugs:
            # Deliberate fixture bug accept-vs-accepted: checks the accept against the ballot
            # this slot last accepted, not the one it promised, so a promise given to a
            # newer proposer no longer stops an older one's value.
            promised = self._accepted.get(slot, (0, None))[0]
        if ballot < promised:
            self._send(src, {"type": "nack", "slot": slot, "ballot": ballot, "promised": promised})
            return
        if self._accepted.get(slot) != (ballot, value):
            self._promised[slot] = ballot
            self._accepted[slot] = (ballot, value)
            record = {"t": "accept", "slot": slot, "ballot": ballot, "value": value}
            self._fx.persist.append(record)
        self._send(src, {"type": "accepted", "slot": slot, "ballot": ballot})

    # ---- learner --------------------------------------------------------------------------

    def _on_decide(self, src: int, body: dict[str, Any]) -> None:
        slot, value = body.get("slot"), body.get("value")
        if is_nat(slot) and is_entry(value):
            self._learn(slot, value)

    def _send_sync(self, peer: int) -> None:
        body = {"type": "sync", "next": self._next_deliver, "max_chosen": self._max_chosen}
        self._send(peer, body)

    def _on_sync(self, src: int, body: dict[str, Any]) -> None:
        their_next = body.get("next")
        if not is_nat(their_next):
            return
        if their_next > self._next_deliver:
            self._send_sync(src)  # they know more: ask now rather than at our next interval
        if self._max_chosen < their_next:
            return
        decisions, more = chosen_batch(self._chosen, their_next, self._max_chosen)
        if decisions:
            self._send(src, {"type": "decisions", "decisions": decisions, "more": more})

    def _on_decisions(self, src: int, body: dict[str, Any]) -> None:
        for slot, entry in parse_decisions(body):
            self._learn(slot, entry)
        if body.get("more") is True:
            self._send_sync(src)  # a full batch: pull the next one at once

    def _learn(self, slot: int, entry: Entry) -> None:
        if slot in self._chosen:
            return
        self._chosen[slot] = entry
        if entry["k"] != "noop":
            self._chosen_ids.add(entry["id"])
        self._promised.pop(slot, None)  # a chosen slot needs no acceptor state any more
        self._accepted.pop(slot, None)
        self._fx.persist.append({"t": "chosen", "slot": slot, "value": entry})
        self._max_chosen = max(self._max_chosen, slot)
        self._on_chosen(slot, entry)
        bugs = self.config.bugs
        if "ack-on-choose" in bugs and entry["k"] == "msg" and slot > self._next_deliver:
            # Deliberate fixture bug: acks a broadcast as soon as its slot is chosen, before
            # the lower slots (and so the message itself) are delivered at this node.
            guess = len(self._values) + slot - self._next_deliver
            for request_id in self._waiters.pop(entry["id"], []):
                self._reply_ok(request_id, entry["id"], guess)
        if "deliver-on-arrival" in bugs:
            # Deliberate fixture bug: delivers decisions in the order they arrive here, not in
            # slot order, so nodes that hear decisions in different orders disagree.
            self._deliver_entry(entry)
        while self._next_deliver in self._chosen:
            if "deliver-on-arrival" not in bugs:
                self._deliver_entry(self._chosen[self._next_deliver])
            self._next_deliver += 1

    def _deliver_entry(self, entry: Entry) -> None:
        if entry["k"] == "read":
            request_id = self._read_waiters.pop(entry["id"], None)
            if request_id is not None:
                body = {"type": "read_ok", "mode": "log", "value": list(self._values)}
                self._reply(request_id, body)
            return
        if entry["k"] != "msg":
            return  # a no-op takes no position
        msg_id = entry["id"]
        if msg_id in self._positions and "no-dedupe" not in self.config.bugs:
            return  # chosen twice (a retry): delivered once
        # With the "no-dedupe" fixture bug a message chosen twice is delivered twice.
        position = len(self._values)
        self._values.append(entry["v"])
        self._positions.setdefault(msg_id, position)
        self._fx.deliver.append(Deliver(position=position, msg_id=msg_id, value=entry["v"]))
        for request_id in self._waiters.pop(msg_id, []):
            self._reply_ok(request_id, msg_id, position)

    # ---- plumbing -------------------------------------------------------------------------

    def _send(self, dest: int, body: dict[str, Any]) -> None:
        if dest == self.node_id:
            self._inbox.append(body)
            return
        self._fx.send.append(Send(dest=dest, body=body))

    def _broadcast(self, body: dict[str, Any]) -> None:
        for dest in range(self.n):
            self._send(dest, body)

    def _dispatch_local(self, body: dict[str, Any]) -> None:
        self._handlers[body["type"]](self, self.node_id, body)

    def _reply(self, request_id: int, body: dict[str, Any]) -> None:
        self._fx.reply.append(Reply(request_id=request_id, body=body))

    def _reply_ok(self, request_id: int, msg_id: str, position: int) -> None:
        body = {"type": "broadcast_ok", "msg_id": msg_id, "position": position}
        self._reply(request_id, body)

    # ---- hooks for the subclass -----------------------------------------------------------

    def _on_chosen(self, slot: int, entry: Entry) -> None:
        """`slot` was just learned chosen with `entry` (before anything is delivered)."""

    _handlers: dict[str, Any] = {}  # message type -> handler, filled in by the subclass


def error_reply(code: str, text: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "text": text}
