"""Multi-Paxos with a leader lease: Phase 1 once per leadership, then Phase 2 alone per slot.

A node that hears no live leader within its election timeout (drawn in [T, 2T] from the
core's rng, T = election_timeout_ms, re-drawn each time) runs Phase 1 once, with ballot
(round, node_id), for every slot from its first unchosen one. Acceptors answer with what
they accepted (or know chosen) there, in windows of PROMISE_BATCH slots. The new leader
adopts per slot the value of the highest ballot, fills holes with no-ops, re-proposes all of
them under its ballot, proposes one more no-op (its *barrier*), and only then proposes client
entries, with Phase 2 alone (accept/accepted), up to MAX_IN_FLIGHT slots at once. Followers
forward their clients' entries to the leader and learn chosen slots from the commit index
that the leader's accepts and heartbeats carry; heartbeats also carry the lease (see
`multipaxos_params` and the "Multi-Paxos" section of PROTOCOL.md). Acceptor and learner are
in `multipaxos_replica`, the client side in `multipaxos_clients`.

    core = MultiPaxosProtocol(node_id=0, n=1, rng=random.Random(7))
    fx = core.step(ClientBroadcast(request_id=1, msg_id="m1", value=42), now_ms=0.0)
    fx.deliver  # [Deliver(position=0, msg_id="m1", value=42)]: alone, it elects itself at once

Persisted (the shell makes these durable before sending): {"t": "promise", "ballot"} when
the node-wide promised ballot rises, {"t": "accept", "slot", "ballot", "value"} and
{"t": "chosen", "slot", "value"}. `restore(records)` rebuilds them, re-delivers the chosen
prefix silently, and refuses competing ballots for a grant period after the restart (the
lease it may have granted before the crash is not on disk). Client entries waiting at a node
are not persisted: their clients see a lost connection and may retry. Broadcasts are never
refused for want of a leader: they wait (at most MAX_PENDING) and go to the next leader.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tobtest.node.protocols.base import (
    ClientBroadcast,
    ClientRead,
    Effects,
    Event,
    PeerMessage,
    ProtocolConfig,
    Tick,
)
from tobtest.node.protocols.entries import NOOP, Entry, as_nat, nat, valid_entry
from tobtest.node.protocols.multipaxos_clients import FORWARD_BATCH, MultiPaxosClientSide
from tobtest.node.protocols.multipaxos_params import (
    ZERO,
    Ballot,
    EntryKey,
    entry_key,
    parse_ballot,
)
from tobtest.node.protocols.multipaxos_replica import (
    NEG_INF,
    PROMISE_BATCH,
    MultiPaxosReplica,
)

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random

# Deliberate fixture bugs this core can carry (ProtocolConfig.bugs); all off by default.
BUGS: tuple[str, ...] = ("ack-before-majority", "lease-from-ack", "forget-promise")
# A second catalogue: small slips in recovery, commit and the lease, which today's periodic
# fault runs rarely expose (PROTOCOL.md, "Subtle seeded bugs"). Also off by default.
SUBTLE_BUGS: tuple[str, ...] = ("commit-any-ballot", "max-slot-chosen", "lease-before-barrier")

MAX_IN_FLIGHT = 64  # slots the leader has proposed and not yet seen chosen
MAX_QUEUED = 10_000  # entries waiting at the leader for a slot; more are dropped (re-forwarded)
INF = float("inf")
ROUNDS_KEPT = 8  # heartbeat rounds whose acks still count towards a lease


@dataclass
class _InFlight:
    entry: Entry
    sent_ms: float
    acks: set[int] = field(default_factory=set)


@dataclass
class _Phase1:
    start: int  # first unchosen slot when the election began
    lo: int  # window being asked for: [lo, lo + PROMISE_BATCH)
    sent_ms: float
    max_slot: int = -1  # highest slot any promiser accepted or knows chosen
    replies: dict[int, tuple[list[Any], list[Any], int]] = field(default_factory=dict)
    adopted: dict[int, tuple[Ballot, Entry]] = field(default_factory=dict)


@dataclass
class _Round:
    """One heartbeat round: when it left, who acked (ourselves included)."""

    sent_ms: float
    acks: set[int]
    counted: bool = False


class MultiPaxosProtocol(MultiPaxosClientSide):
    """Multi-Paxos core: election with a lease, the leader's Phase 2 pipeline, forwarding."""

    name = "multipaxos"
    # Declared again: the protocol modules form an import cycle for mypy (the registry
    # imports the cores lazily), which then infers this from our `None` assignments.
    _leader: int | None

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        # Role and election (role, leader and lease are in MultiPaxosClientSide).
        self._ballot: Ballot = ZERO  # our own ballot while candidate or leader
        self._commit_sent = 0  # highest commit index any of our messages has carried
        self._commit_due_ms = INF  # when an uncarried commit index goes out on its own
        self._commit_urgent = False  # a forwarded entry was chosen and followers don't know
        self._forwarded: set[Any] = set()  # keys of entries followers forwarded to us
        self._election_deadline_ms: float | None = None
        self._p1: _Phase1 | None = None
        # Leader.
        self._queue: deque[Entry] = deque()
        self._queued: set[EntryKey] = set()  # queued or proposed in this leadership
        self._in_flight: dict[int, _InFlight] = {}
        self._adopted: dict[int, Entry] = {}
        self._next_slot = 0
        self._rounds: OrderedDict[int, _Round] = OrderedDict()
        self._round = 0
        self._next_heartbeat_ms = NEG_INF

    # ---- the contract ---------------------------------------------------------------------

    def step(self, event: Event, now_ms: float) -> Effects:
        self._fx, self._now_ms = Effects(), now_ms
        if self._restored:
            self._after_restart()
            wait_ms = self._draw_timeout_ms() if self.n > 1 else 0.0
            self._election_deadline_ms = max(self._grant_until_ms, now_ms) + wait_ms
        if isinstance(event, PeerMessage):
            src, body = event.src, event.body
            if nat(src) and src < self.n and src != self.node_id and isinstance(body, dict):
                kind = body.get("type")
                if isinstance(kind, str) and kind in self._handlers:
                    self._received[kind] = self._received.get(kind, 0) + 1
                    self._handlers[kind](self, src, body)
        elif isinstance(event, ClientBroadcast):
            self._on_broadcast(event)
        elif isinstance(event, ClientRead):
            self._on_read(event)
        elif isinstance(event, Tick):
            self._on_tick()
        self._check_election()
        while True:  # our own acceptor answers through the inbox
            while self._inbox:
                body = self._inbox.popleft()
                self._handlers[body["type"]](self, self.node_id, body)
            if not self._propose_more():
                break
        self._send_commit_if_news()
        fx, self._fx = self._fx, Effects()
        return fx

    def _send_commit_if_news(self) -> None:
        # Followers learn chosen slots from the commit index that accepts and heartbeats
        # carry. When a slot that a follower's client waits for (a forwarded entry) was
        # chosen and nothing carried the news: with nothing else in flight, tell them now
        # (the follower would otherwise wait for a heartbeat); under load, wait up to a tick
        # for an accept to carry it, then send one commit for every slot chosen meanwhile.
        # Nobody waits on the followers for the leader's own clients: the heartbeat will do.
        if self._role != "leader" or self._next_deliver <= self._commit_sent:
            self._commit_due_ms, self._commit_urgent = INF, False
            return
        if not self._commit_urgent:
            return
        if self._in_flight and self._now_ms < self._commit_due_ms:
            if self._commit_due_ms == INF:
                self._commit_due_ms = self._now_ms + self.config.tick_ms
            return
        self._commit_sent, self._commit_due_ms = self._next_deliver, INF
        self._commit_urgent = False
        body = {"type": "commit", "ballot": list(self._ballot), "commit": self._next_deliver}
        for peer in self.peers():
            self._send(peer, body)

    def status(self, now_ms: float) -> dict[str, Any]:
        leading = self._role == "leader"
        return {
            "protocol": self.name,
            "role": self._role,
            "node": self.node_id,
            "ballot": list(self._ballot if self._role != "follower" else self._promised),
            "promised": list(self._promised),
            "max_ballot": list(max(self._max_ballot, self._promised)),
            "leader": self._leader,
            "lease_remaining_ms": max(0.0, self._lease_until_ms - now_ms) if leading else 0.0,
            "grant_remaining_ms": max(0.0, self._grant_until_ms - now_ms),
            # Length of the contiguous chosen prefix: slots 0..chosen_index-1 are all chosen.
            "chosen_index": self._next_deliver,
            "max_chosen_slot": self._max_chosen,
            # Slots this acceptor accepted and does not know chosen (its promise guards them).
            "accepted_unchosen": len(self._accepted),
            "delivered": len(self._values),
            "pending": len(self._pending),
            "queued": len(self._queue),
            "in_flight": len(self._in_flight),
            "barrier_slot": self._barrier_slot if leading else None,
            "heartbeat_round": self._round,
            **self._counts,
            "messages_sent": dict(self._sent),
            "messages_received": dict(self._received),
        }

    # ---- election -------------------------------------------------------------------------

    def _draw_timeout_ms(self) -> float:
        t = self.params.election_timeout_ms
        return self.rng.uniform(t, 2 * t)

    def _check_election(self) -> None:
        if self._role == "leader":
            return
        if self._election_deadline_ms is None:
            # Alone, nobody can compete: elect at once. Otherwise wait a first timeout.
            wait_ms = 0.0 if self.n == 1 else self._draw_timeout_ms()
            self._election_deadline_ms = self._now_ms + wait_ms
        if self._now_ms >= self._election_deadline_ms and self._now_ms >= self._grant_until_ms:
            self._start_election()

    def _start_election(self) -> None:
        round_ = max(self._max_ballot, self._promised)[0] + 1  # past every ballot seen
        self._ballot = (round_, self.node_id)
        self._raise_max_ballot(self._ballot)
        self._role = "candidate"
        self._leader = None
        self._counts["phase1_rounds"] += 1
        self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()
        start = self._next_deliver
        self._p1 = _Phase1(start=start, lo=start, sent_ms=self._now_ms)
        self._broadcast(self._prepare_body(start))

    def _prepare_body(self, lo: int) -> dict[str, Any]:
        return {"type": "prepare", "ballot": list(self._ballot), "from": lo}

    def _on_promise(self, src: int, body: dict[str, Any]) -> None:
        p1, lo = self._p1, as_nat(body.get("from"))
        if self._role != "candidate" or p1 is None or lo != p1.lo:
            return
        if parse_ballot(body.get("ballot"), self.n) != self._ballot:
            return
        accepted, chosen, max_slot = body.get("accepted"), body.get("chosen"), body.get("max_slot")
        if not (isinstance(accepted, list) and isinstance(chosen, list)):
            return
        if not isinstance(max_slot, int) or isinstance(max_slot, bool) or max_slot < -1:
            return
        p1.replies[src] = (accepted[:PROMISE_BATCH], chosen[:PROMISE_BATCH], max_slot)
        if len(p1.replies) >= self.majority:
            self._finish_window(p1)

    def _finish_window(self, p1: _Phase1) -> None:
        """A majority promised for slots [lo, lo + PROMISE_BATCH): learn what they know
        chosen, keep the highest-ballot value of each slot, then ask for the next window or
        take the lead."""
        hi = p1.lo + PROMISE_BATCH
        for accepted, chosen, max_slot in p1.replies.values():
            p1.max_slot = max(p1.max_slot, max_slot)
            for item in chosen:
                ok = isinstance(item, list) and len(item) == 2 and nat(item[0])
                if ok and p1.lo <= item[0] < hi and valid_entry(item[1]):
                    self._learn(item[0], item[1])
            for item in accepted:
                ok = isinstance(item, list) and len(item) == 3 and nat(item[0])
                ballot = parse_ballot(item[1], self.n) if ok else None
                if ballot is None or not p1.lo <= item[0] < hi or not valid_entry(item[2]):
                    continue
                if item[0] not in p1.adopted or ballot > p1.adopted[item[0]][0]:
                    p1.adopted[item[0]] = (ballot, item[2])
        p1.lo, p1.replies = hi, {}
        if p1.lo <= p1.max_slot:  # promisers know of later slots: ask for the next window
            p1.sent_ms = self._now_ms
            self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()
            self._broadcast(self._prepare_body(p1.lo))
        else:
            self._become_leader(p1)

    def _become_leader(self, p1: _Phase1) -> None:
        self._role, self._p1 = "leader", None
        self._leader = self.node_id
        self._counts["elections_won"] += 1
        self._adopted = {s: e for s, (_, e) in p1.adopted.items() if s not in self._chosen}
        self._next_slot = p1.start
        self._barrier_slot = max(p1.max_slot + 1, p1.start)
        self._queue.clear()
        self._queued = {k for e in self._adopted.values() if (k := entry_key(e)) is not None}
        self._in_flight.clear()
        self._rounds.clear()
        self._lease_until_ms = NEG_INF
        self._heartbeat()
        self._submit([p.entry for p in self._pending.values()])

    def _step_down(self) -> None:
        """A higher ballot exists: stop leading (or campaigning). Our clients' entries stay
        pending and go to whichever leader we hear of next; others' are re-forwarded by
        their own nodes."""
        if self._role == "follower":
            return
        self._counts["step_downs"] += 1
        self._role, self._p1 = "follower", None
        self._leader = None
        self._queue.clear()
        self._queued.clear()
        self._in_flight.clear()
        self._adopted.clear()
        self._rounds.clear()
        self._lease_until_ms = NEG_INF
        if self._grant_holder == self.node_id:
            self._grant_until_ms = NEG_INF  # our own lease is gone with the leadership
        self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()

    def _hear_leader(self, src: int, ballot: Ballot) -> None:
        if self._role != "follower" and ballot != self._ballot:
            self._step_down()
        self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()
        if self._leader != src:
            self._leader = src
            self._reforward(every=True)

    def _promised_other(self) -> None:
        self._step_down()
        self._leader = None  # a candidate is not a leader yet
        self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()

    def _on_nack(self, src: int, body: dict[str, Any]) -> None:
        promised = parse_ballot(body.get("promised"), self.n)
        if promised is None:
            return
        self._raise_max_ballot(promised)  # our next ballot jumps past it
        ballot = parse_ballot(body.get("ballot"), self.n)
        if self._role != "follower" and ballot == self._ballot and promised > self._ballot:
            self._step_down()

    # ---- leader: Phase 2 pipeline and heartbeats ------------------------------------------

    def _enqueue(self, entry: Entry) -> None:
        key = entry_key(entry)
        if key is None or key in self._chosen_keys or key in self._queued:
            return
        if len(self._queue) < MAX_QUEUED:  # else dropped: its origin re-forwards it later
            self._queued.add(key)
            self._queue.append(entry)

    def _propose_more(self) -> bool:
        """Fills the pipeline: adopted values and no-ops up to the barrier, then the queue."""
        if self._role != "leader":
            return False
        proposed = False
        while len(self._in_flight) < MAX_IN_FLIGHT:
            slot = self._next_slot
            if slot in self._chosen:
                self._adopted.pop(slot, None)
                self._next_slot += 1
                continue
            if slot <= self._barrier_slot:
                entry = self._adopted.pop(slot, None)
                if entry is None:  # a hole below the barrier, or the barrier itself
                    entry = NOOP
                    self._counts["noops_proposed"] += 1
            elif self._queue:
                entry = self._queue.popleft()
                if entry_key(entry) in self._chosen_keys:
                    continue  # chosen meanwhile (adopted, or through an earlier leader)
            else:
                break
            self._next_slot += 1
            self._in_flight[slot] = _InFlight(entry, self._now_ms)
            self._broadcast(self._accept_body(slot, entry))
            proposed = True
        return proposed

    def _accept_body(self, slot: int, entry: Entry) -> dict[str, Any]:
        body = {"type": "accept", "ballot": list(self._ballot), "slot": slot, "value": entry}
        self._commit_sent = max(self._commit_sent, self._next_deliver)
        return {**body, "commit": self._next_deliver}

    def _on_accepted(self, src: int, body: dict[str, Any]) -> None:
        slot = as_nat(body.get("slot"))
        p = self._in_flight.get(slot) if slot is not None and self._role == "leader" else None
        if p is None or slot is None or parse_ballot(body.get("ballot"), self.n) != self._ballot:
            return
        p.acks.add(src)
        if src == self.node_id and "ack-before-majority" in self.config.bugs:
            self._ack_early(slot, p.entry)
        if len(p.acks) >= self.majority:
            self._learn(slot, p.entry)

    def _ack_early(self, slot: int, entry: Entry) -> None:
        """Deliberate fixture bug "ack-before-majority": acks our client as soon as our own
        acceptor took the entry, guessing its position, and forgets the request (as if
        done). If a new leader never learns the entry, an acked broadcast is lost."""
        if entry["k"] != "msg" or entry["id"] not in self._waiters:
            return
        self._pending.pop(("msg", entry["id"]), None)
        guess = len(self._values) + slot - self._next_deliver
        for request_id in self._waiters.pop(entry["id"]):
            self._reply_ok(request_id, entry["id"], guess)

    def _on_chosen(self, slot: int, entry: Entry) -> None:
        key = entry_key(entry)
        if key is not None and key in self._forwarded:
            # A follower's client waits for this one: tell the followers without delay.
            self._forwarded.discard(key)
            self._commit_urgent = True
        p = self._in_flight.pop(slot, None)
        own = entry_key(p.entry) if p is not None and p.entry != entry else None
        if own is not None and self._role == "leader":
            # Our value lost its slot (Paxos rules it out after Phase 1; defensive).
            assert p is not None
            self._queued.discard(own)
            self._enqueue(p.entry)

    def _heartbeat(self) -> None:
        self._round += 1
        self._rounds[self._round] = _Round(self._now_ms, {self.node_id})
        while len(self._rounds) > ROUNDS_KEPT:
            self._rounds.popitem(last=False)
        # We count ourselves in the majority, so our own acceptor grants too.
        self._grant_holder = self.node_id
        self._grant_until_ms = self._now_ms + self.params.grant_ms
        self._next_heartbeat_ms = self._now_ms + self.params.heartbeat_ms
        body = {"type": "heartbeat", "ballot": list(self._ballot), "round": self._round}
        body["commit"] = self._next_deliver
        self._commit_sent = max(self._commit_sent, self._next_deliver)
        for peer in self.peers():
            self._send(peer, body)
        self._count_round(self._rounds[self._round])

    def _on_heartbeat_ack(self, src: int, body: dict[str, Any]) -> None:
        round_ = as_nat(body.get("round"))
        r = self._rounds.get(round_) if round_ is not None and self._role == "leader" else None
        if r is not None and parse_ballot(body.get("ballot"), self.n) == self._ballot:
            r.acks.add(src)
            self._count_round(r)

    def _count_round(self, r: _Round) -> None:
        if r.counted or len(r.acks) < self.majority:
            return
        r.counted = True
        start_ms = r.sent_ms  # every acker's grant began after this: it arrived later
        if "lease-from-ack" in self.config.bugs:
            # Deliberate fixture bug: the lease starts when the acks arrive, not when the
            # heartbeat left; delayed acks then stretch it past the followers' grants.
            start_ms = self._now_ms
        self._lease_until_ms = max(self._lease_until_ms, start_ms + self.params.lease_ms)

    def _on_forward(self, src: int, body: dict[str, Any]) -> None:
        entries = body.get("entries")
        if self._role == "leader" and isinstance(entries, list):
            for entry in entries[:FORWARD_BATCH]:
                if valid_entry(entry) and entry["k"] != "noop":
                    key = entry_key(entry)
                    if key is not None and len(self._forwarded) < MAX_QUEUED:
                        self._forwarded.add(key)
                    self._enqueue(entry)

    # ---- timers ---------------------------------------------------------------------------

    def _on_tick(self) -> None:
        now = self._now_ms
        if self._role == "leader":
            if now >= self._next_heartbeat_ms:
                self._heartbeat()
            for slot, p in self._in_flight.items():  # at most MAX_IN_FLIGHT
                if now - p.sent_ms >= self.params.resend_ms:
                    p.sent_ms = now
                    self._resend(self._accept_body(slot, p.entry), p.acks)
        elif self._p1 is not None and now - self._p1.sent_ms >= self.params.resend_ms:
            self._p1.sent_ms = now
            self._resend(self._prepare_body(self._p1.lo), self._p1.replies)
        if self._pending:
            self._reforward(every=False)
        if self._next_deliver < self._commit_known and self._commit_src is not None:
            self._ask_catchup(self._commit_src)

    def _resend(self, body: dict[str, Any], answered: Iterable[int]) -> None:
        done = set(answered)
        for peer in self.peers():
            if peer not in done:
                self._counts["resends"] += 1
                self._send(peer, body)

    # ---- the simulator's hook ---------------------------------------------------------------

    def next_timer_ms(self, now_ms: float) -> float | None:
        """When a tick next acts: the heartbeat and accept resends (leader), the prepare
        resend (candidate), the election (not leader), the commit held for an accept to
        carry, a re-forward of the oldest pending entry, a catch-up request."""
        if self._restored or self._election_deadline_ms is None:
            return now_ms  # the first step after a restart, or before the first one
        params, due = self.params, INF
        if self._role == "leader":
            due = self._next_heartbeat_ms
            for p in self._in_flight.values():  # a plain loop: the fastest here
                if p.sent_ms + params.resend_ms < due:
                    due = p.sent_ms + params.resend_ms
            if self._commit_urgent and self._next_deliver > self._commit_sent:
                due = min(due, self._commit_due_ms)
        else:
            due = max(self._election_deadline_ms, self._grant_until_ms)
            if self._p1 is not None:
                due = min(due, self._p1.sent_ms + params.resend_ms)
        if self._pending:  # kept in forwarding order: the first is the oldest
            oldest = next(iter(self._pending.values()))
            due = min(due, oldest.forwarded_ms + params.forward_timeout_ms)
        if self._next_deliver < self._commit_known and self._commit_src is not None:
            due = min(due, self._catchup_after_ms)
        return due

    _handlers: dict[str, Any] = {
        "prepare": MultiPaxosReplica._on_prepare,
        "promise": _on_promise,
        "accept": MultiPaxosReplica._on_accept,
        "accepted": _on_accepted,
        "nack": _on_nack,
        "heartbeat": MultiPaxosReplica._on_heartbeat,
        "commit": MultiPaxosReplica._on_commit,
        "heartbeat_ack": _on_heartbeat_ack,
        "forward": _on_forward,
        "catchup": MultiPaxosReplica._on_catchup,
        "decisions": MultiPaxosReplica._on_decisions,
    }
