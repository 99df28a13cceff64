"""Per-slot Paxos: an independent single-decree Paxos instance for every log slot.

Every proposal, in every slot, pays Phase 1 (prepare/promise) and then Phase 2
(accept/accepted); any node proposes. Ballots are `round * n + node_id` with round >= 1, so
no two nodes ever use the same ballot. Values are log entries (JSON dicts):

    {"k": "msg", "id": msg_id, "v": value}   a client broadcast (dedupe key: id)
    {"k": "read", "id": read_id}             a log-read marker: takes no position
    {"k": "noop"}                            fills a hole: takes no position

A proposer takes the lowest slot it knows to be unchosen (skipping slots its own acceptor
has promised to another proposer, to avoid needless duels) and keeps up to MAX_IN_FLIGHT
slots in flight. Within a round it resends to silent peers (lost messages); a round that is
nacked or times out is retried with a higher ballot after a random back-off. Timeouts and
back-offs are the configured ones, stretched on slow links by a smoothed round-trip estimate
and doubled per failed round (up to BACKOFF_MAX), so that duels and slow links still end.

A node delivers chosen slots in slot order with no gaps, each msg id at most once, and
answers a broadcast only once it has delivered it itself. Lost decisions are recovered by
periodic `sync` messages; a hole that stays unfilled is filled by proposing a no-op, which
full Paxos turns into whatever value a majority may already have accepted there. Reads:
`local` at once, `log` through a read marker in the log, `lease` refused with an error.

    core = PaxosProtocol(node_id=0, n=1, rng=random.Random(7))
    fx = core.step(ClientBroadcast(request_id=1, msg_id="m1", value=42), now_ms=0.0)
    fx.deliver  # [Deliver(position=0, msg_id="m1", value=42)]: one node is its own majority

The acceptor and learner (and `restore`, which rebuilds them from the `persist` records)
are in `paxos_replica`; this module is the proposer and the client side. `restore(records)`
treats the contiguous chosen prefix as already delivered (rebuilding the delivered sequence
without emitting `Deliver` again). In-flight proposals, queued client values and waiting
client requests are not persisted: their clients see a lost connection and may retry. The
peer messages are described in PROTOCOL.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from tobtest.node.protocols.base import (
    ClientBroadcast,
    ClientRead,
    Effects,
    Event,
    PeerMessage,
    ProtocolConfig,
    Tick,
)
from tobtest.node.protocols.entries import NOOP, Entry, nat, valid_entry
from tobtest.node.protocols.paxos_replica import PaxosReplica, error_reply

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random

# Deliberate fixture bugs this core can carry (ProtocolConfig.bugs); all off by default.
BUGS: tuple[str, ...] = ("ack-on-choose", "deliver-on-arrival", "no-dedupe")
# A second catalogue: small slips in the Paxos core itself, which today's periodic fault
# runs rarely expose (PROTOCOL.md, "Subtle seeded bugs"). Also off by default.
SUBTLE_BUGS: tuple[str, ...] = (
    "adopt-first-accepted",
    "chosen-from-promises",
    "accept-vs-accepted",
)

MAX_IN_FLIGHT = 32  # client slots a node proposes in at once; the rest wait in the queue
MAX_NOOPS_IN_FLIGHT = 32  # hole-filling no-op proposals on top of that
MAX_QUEUED = 10_000  # client entries waiting for a slot; beyond this, "overloaded"
HOLE_SCAN = 256  # slots examined per hole-fill attempt
BACKOFF_MAX = 8  # a proposal's timeout and jitter double per failed round, up to this factor


# Local guards: mypy loses imported TypeGuards inside the protocols' import cycle (the
# registry's lazy loaders), so the narrowing is restated here.
def is_nat(x: Any) -> TypeGuard[int]:
    return nat(x)


def is_entry(x: Any) -> TypeGuard[Entry]:
    return valid_entry(x)


def _same(a: Entry, b: Entry) -> bool:
    return a.get("k") == b.get("k") and a.get("id") == b.get("id")


@dataclass
class _Proposal:
    """This node's attempt to get `own` chosen in `slot`."""

    slot: int
    own: Entry
    round: int = 1
    ballot: int = 0
    phase: int = 0  # 0: waiting to (re)start after a nack, 1: prepare sent, 2: accept sent
    value: Entry | None = None  # what Phase 2 proposes: adopted from promises, or own
    promises: dict[int, tuple[int, Entry | None]] = field(default_factory=dict)
    accepts: set[int] = field(default_factory=set)
    deadline_ms: float = 0.0
    failures: int = 0  # rounds that timed out or were nacked: backs the retries off
    resend_ms: float = 0.0  # when to repeat this round's message to peers yet to answer
    # When each recent (ballot, message type) first went out: replies, even too late for
    # their round, measure the round trip.
    sent_ms: dict[tuple[int, str], float] = field(default_factory=dict)


class PaxosProtocol(PaxosReplica):
    """Per-slot Paxos core: the proposer and client requests, on top of `PaxosReplica`."""

    name = "paxos"
    # Declared again: the protocol modules form an import cycle for mypy, which then cannot
    # see the type of this attribute of the base class.
    _max_ballot: int

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        # Proposer state.
        self._queue: deque[Entry] = deque()
        self._in_flight: dict[int, _Proposal] = {}
        self._free_slot = 0  # lowest slot not known chosen, not ours, not promised to others
        self._read_seq = 0
        # Timers.
        self._next_sync_ms: float | None = None
        self._hole_slot = -1
        self._hole_since_ms = 0.0
        # Counters for status().
        self._phase1_rounds = 0
        self._noops_proposed = 0
        self._resends = 0
        self._srtt_ms = 0.0  # smoothed round trip to acceptors, from promise/accepted replies

    # ---- the contract ---------------------------------------------------------------------

    def step(self, event: Event, now_ms: float) -> Effects:
        self._fx = Effects()
        self._now_ms = now_ms
        if isinstance(event, PeerMessage):
            src, body = event.src, event.body
            if is_nat(src) and src < self.n and src != self.node_id and isinstance(body, dict):
                kind = body.get("type")
                if isinstance(kind, str) and kind in self._handlers:
                    self._handlers[kind](self, src, body)
        elif isinstance(event, ClientBroadcast):
            self._on_broadcast(event)
        elif isinstance(event, ClientRead):
            self._on_read(event)
        elif isinstance(event, Tick):
            self._on_tick()
        # Our own acceptor answers through the inbox; with a majority of one (n = 1) a whole
        # proposal completes here, which frees the window for the next queued entry.
        while True:
            while self._inbox:
                self._dispatch_local(self._inbox.popleft())
            if not self._start_queued():
                break
        fx, self._fx = self._fx, Effects()
        return fx

    def status(self, now_ms: float) -> dict[str, Any]:
        pending = sum(1 for p in self._in_flight.values() if p.own["k"] != "noop")
        return {
            "protocol": self.name,
            "role": "proposer",
            "node": self.node_id,
            "phase1_rounds": self._phase1_rounds,
            # Length of the contiguous chosen prefix: slots 0..chosen_index-1 are all chosen.
            "chosen_index": self._next_deliver,
            "max_chosen_slot": self._max_chosen,
            # Slots this acceptor accepted and does not know chosen (its promises guard them).
            "accepted_unchosen": len(self._accepted),
            "delivered": len(self._values),
            "pending": len(self._queue) + pending,
            "in_flight": len(self._in_flight),
            "noops_proposed": self._noops_proposed,
            "resends": self._resends,
            "rtt_ms": round(self._srtt_ms, 3),
            "max_ballot": self._max_ballot,
        }

    def restore(self, records: Iterable[dict[str, Any]]) -> None:
        super().restore(records)
        self._advance_free_slot()

    # ---- client requests ------------------------------------------------------------------

    def _on_broadcast(self, ev: ClientBroadcast) -> None:
        msg_id = ev.msg_id
        if not isinstance(msg_id, str):
            self._reply(ev.request_id, error_reply("bad-request", "msg_id must be a string"))
        elif msg_id in self._positions:
            self._reply_ok(ev.request_id, msg_id, self._positions[msg_id])
        elif msg_id in self._waiters:
            self._waiters[msg_id].append(ev.request_id)
        elif msg_id in self._chosen_ids:
            self._waiters[msg_id] = [ev.request_id]  # chosen, delivered once the gap closes
        elif len(self._queue) >= MAX_QUEUED:
            self._reply(ev.request_id, error_reply("overloaded", "too many pending broadcasts"))
        else:
            self._waiters[msg_id] = [ev.request_id]
            self._queue.append({"k": "msg", "id": msg_id, "v": ev.value})

    def _on_read(self, ev: ClientRead) -> None:
        if ev.mode == "local":
            body = {"type": "read_ok", "mode": "local", "value": list(self._values)}
            self._reply(ev.request_id, body)
        elif ev.mode == "log" and len(self._queue) < MAX_QUEUED:
            # Random bits keep marker ids unique across restarts of a node (the counter resets).
            self._read_seq += 1
            read_id = f"r{self.node_id}-{self.rng.getrandbits(32):08x}-{self._read_seq}"
            self._read_waiters[read_id] = ev.request_id
            self._queue.append({"k": "read", "id": read_id})
        elif ev.mode == "log":
            self._reply(ev.request_id, error_reply("overloaded", "too many pending requests"))
        else:
            text = f"read mode {ev.mode!r} is not served by per-slot paxos (use log or local)"
            self._reply(ev.request_id, error_reply("unsupported-read-mode", text))

    # ---- proposer -------------------------------------------------------------------------

    def _start_queued(self) -> bool:
        started = False
        while self._queue and len(self._in_flight) < MAX_IN_FLIGHT:
            entry = self._queue.popleft()
            if entry["id"] in self._chosen_ids:
                continue  # chosen meanwhile through another node
            self._advance_free_slot()  # our acceptor may have promised the slot meanwhile
            self._begin(self._free_slot, entry)
            started = True
        return started

    def _begin(self, slot: int, own: Entry) -> None:
        proposal = _Proposal(slot=slot, own=own)
        self._in_flight[slot] = proposal
        self._advance_free_slot()
        self._prepare(proposal, max(1, self._promised.get(slot, 0) // self.n + 1))

    def _prepare(self, p: _Proposal, round_: int) -> None:
        p.round, p.ballot, p.phase = round_, round_ * self.n + self.node_id, 1
        p.promises, p.accepts, p.value = {}, set(), None
        # A round that failed before gets longer: when round trips are slower than the
        # timeout, a fixed timeout would restart (and so defeat) every round for ever. Lost
        # messages are covered by resending within the round instead.
        backoff = min(2**p.failures, BACKOFF_MAX)
        jitter_ms = self.rng.uniform(0.0, self._jitter_ms() * backoff)
        p.deadline_ms = self._now_ms + self._timeout_ms() * backoff + jitter_ms
        p.resend_ms = self._now_ms + self._timeout_ms() / 2
        self._note_sent(p, "prepare")
        self._phase1_rounds += 1
        self._max_ballot = max(self._max_ballot, p.ballot)
        self._broadcast({"type": "prepare", "slot": p.slot, "ballot": p.ballot})

    def _on_promise(self, src: int, body: dict[str, Any]) -> None:
        self._sample_rtt(src, body, "prepare")
        p = self._matching(body, phase=1)
        ab, av = body.get("accepted_ballot"), body.get("accepted_value")
        if p is None or not is_nat(ab) or (ab > 0 and not is_entry(av)):
            return
        p.promises[src] = (ab, av if ab > 0 else None)
        if len(p.promises) < self.majority:
            return
        best_ballot, best_value = max(p.promises.values(), key=lambda bv: bv[0])
        bugs = self.config.bugs
        if "adopt-first-accepted" in bugs:
            # Deliberate fixture bug adopt-first-accepted: adopts the first accepted value
            # reported (our own acceptor answers first) instead of the highest-ballot one, so
            # a value chosen in a later ballot can be overwritten by an older one.
            reported = [bv for bv in p.promises.values() if bv[0] > 0]
            best_ballot, best_value = reported[0] if reported else (0, None)
        value = best_value if best_ballot > 0 and best_value is not None else p.own
        p.phase, p.value = 2, value
        ballots = [b for b, _ in p.promises.values()]
        if "chosen-from-promises" in bugs:
            # Deliberate fixture bug chosen-from-promises: the "already chosen" shortcut
            # skips promises that report nothing accepted, so a value that one acceptor of
            # the majority took is decided without a majority ever accepting it.
            ballots = [b for b in ballots if b > 0]
        if best_ballot > 0 and all(b == best_ballot for b in ballots):
            # A majority accepted this value in one ballot: it is chosen already (its
            # proposer's `accepted` replies were lost). Decide without another round trip.
            self._decide(p)
            return
        self._note_sent(p, "accept")
        self._broadcast({"type": "accept", "slot": p.slot, "ballot": p.ballot, "value": value})

    def _on_accepted(self, src: int, body: dict[str, Any]) -> None:
        self._sample_rtt(src, body, "accept")
        p = self._matching(body, phase=2)
        if p is None:
            return
        p.accepts.add(src)
        if len(p.accepts) >= self.majority:
            self._decide(p)

    def _decide(self, p: _Proposal) -> None:
        assert p.value is not None
        for peer in self.peers():
            self._send(peer, {"type": "decide", "slot": p.slot, "value": p.value})
        self._learn(p.slot, p.value)

    def _on_nack(self, src: int, body: dict[str, Any]) -> None:
        p = self._matching(body, phase=None)
        promised = body.get("promised")
        if p is None or p.phase == 0 or not is_nat(promised) or promised <= p.ballot:
            return
        # Jump past the competing ballot, after a random back-off so duellers separate.
        self._max_ballot = max(self._max_ballot, promised)
        p.phase, p.round = 0, max(p.round + 1, promised // self.n + 1)
        p.failures += 1
        backoff = min(2**p.failures, BACKOFF_MAX)
        p.deadline_ms = self._now_ms + self.rng.uniform(0.0, self._jitter_ms() * backoff)

    def _resend(self, p: _Proposal) -> None:
        """Repeats the round's message (same ballot: acceptors answer it again) to silent peers."""
        p.resend_ms = self._now_ms + self._timeout_ms() / 2
        body: dict[str, Any] = {"type": "prepare", "slot": p.slot, "ballot": p.ballot}
        answered: Iterable[int] = p.promises
        if p.phase == 2:
            body.update(type="accept", value=p.value)
            answered = p.accepts
        for peer in self.peers():
            if peer not in answered:
                self._resends += 1
                self._send(peer, body)

    def _timeout_ms(self) -> float:
        """The configured proposal timeout, stretched to 3 round trips on slow links (two
        phases and a margin), so that slow links do not make every round time out."""
        return max(self.config.proposal_timeout_ms, 3.0 * self._srtt_ms)

    def _jitter_ms(self) -> float:
        """The configured retry jitter, stretched to 2 round trips on slow links: a duelling
        proposer must stay away long enough for the other to finish both phases."""
        return max(self.config.retry_jitter_ms, 2.0 * self._srtt_ms)

    def _note_sent(self, p: _Proposal, kind: str) -> None:
        p.sent_ms[(p.ballot, kind)] = self._now_ms
        if len(p.sent_ms) > 4:
            del p.sent_ms[next(iter(p.sent_ms))]

    def _sample_rtt(self, src: int, body: dict[str, Any], kind: str) -> None:
        slot, ballot = body.get("slot"), body.get("ballot")
        p = self._in_flight.get(slot) if is_nat(slot) and is_nat(ballot) else None
        sent_ms = p.sent_ms.get((ballot, kind)) if p is not None and is_nat(ballot) else None
        if sent_ms is not None and src != self.node_id:
            # Measured from the first send, so a reply to a resend overestimates: safe here.
            sample_ms = max(0.0, self._now_ms - sent_ms)
            self._srtt_ms += (sample_ms - self._srtt_ms) / 8  # TCP's smoothing

    def _matching(self, body: dict[str, Any], phase: int | None) -> _Proposal | None:
        slot = body.get("slot")
        p = self._in_flight.get(slot) if is_nat(slot) else None
        if p is None or body.get("ballot") != p.ballot or (phase is not None and p.phase != phase):
            return None
        return p

    def _on_tick(self) -> None:
        for p in list(self._in_flight.values()):
            if self._now_ms >= p.deadline_ms:
                retry = p.round  # phase 0: a nack already chose the round and counted it
                if p.phase != 0:
                    p.failures, retry = p.failures + 1, p.round + 1
                self._prepare(p, max(retry, self._promised.get(p.slot, 0) // self.n + 1))
            elif p.phase != 0 and self._now_ms >= p.resend_ms:
                self._resend(p)
        if self._next_sync_ms is None or self._now_ms >= self._next_sync_ms:
            self._next_sync_ms = self._now_ms + self.config.sync_interval_ms
            for peer in self.peers():
                self._send_sync(peer)
        self._fill_holes()

    def _fill_holes(self) -> None:
        if self._max_chosen < self._next_deliver:
            self._hole_slot = -1
            return
        if self._hole_slot != self._next_deliver:
            self._hole_slot, self._hole_since_ms = self._next_deliver, self._now_ms
            return
        if self._now_ms - self._hole_since_ms < self.config.hole_timeout_ms:
            return
        self._hole_since_ms = self._now_ms  # re-arm: the next attempt waits a full timeout
        limit = MAX_IN_FLIGHT + MAX_NOOPS_IN_FLIGHT
        for slot in range(
            self._next_deliver, min(self._max_chosen, self._next_deliver + HOLE_SCAN)
        ):
            if len(self._in_flight) >= limit:
                break
            if slot not in self._chosen and slot not in self._in_flight:
                self._noops_proposed += 1
                self._begin(slot, NOOP)

    def _advance_free_slot(self) -> None:
        # A slot our acceptor has promised to another proposer is probably about to be
        # chosen: proposing there too would only duel. If that proposer dies, the slot
        # becomes a hole under later chosen slots and hole filling settles it.
        while (
            self._free_slot in self._chosen
            or self._free_slot in self._in_flight
            or self._promised.get(self._free_slot, self.node_id) % self.n != self.node_id
        ):
            self._free_slot += 1

    # ---- learner hook ---------------------------------------------------------------------

    def _on_chosen(self, slot: int, entry: Entry) -> None:
        p = self._in_flight.pop(slot, None)
        if p is not None and not _same(p.own, entry):
            self._requeue(p.own)
        self._advance_free_slot()

    def _requeue(self, own: Entry) -> None:
        """Our value lost its slot to another: retry it in a later slot, unless chosen."""
        if own["k"] != "noop" and own["id"] not in self._chosen_ids:
            self._queue.appendleft(own)

    # ---- the simulator's hook ---------------------------------------------------------------

    def next_timer_ms(self, now_ms: float) -> float | None:
        """When a tick next acts (`_on_tick`): a proposal's deadline or resend, the next
        sync, or the hole timer (which also acts at once when a hole opens or closes)."""
        if self._next_sync_ms is None:
            return now_ms
        due = self._next_sync_ms
        for p in self._in_flight.values():  # a plain loop: the fastest here
            if p.deadline_ms < due:
                due = p.deadline_ms
            if p.phase != 0 and p.resend_ms < due:  # resent in phases 1 and 2
                due = p.resend_ms
        if self._max_chosen < self._next_deliver:
            return now_ms if self._hole_slot != -1 else due
        if self._hole_slot != self._next_deliver:
            return now_ms
        return min(due, self._hole_since_ms + self.config.hole_timeout_ms)

    _handlers: dict[str, Any] = {
        "prepare": PaxosReplica._on_prepare,
        "promise": _on_promise,
        "accept": PaxosReplica._on_accept,
        "accepted": _on_accepted,
        "nack": _on_nack,
        "decide": PaxosReplica._on_decide,
        "sync": PaxosReplica._on_sync,
        "decisions": PaxosReplica._on_decisions,
    }
