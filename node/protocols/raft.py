"""Raft: terms and votes, a leader that replicates its log with AppendEntries alone.

A follower that hears no leader within its election timeout (drawn in [T, 2T] from the
core's rng, T = election_timeout_ms, re-drawn at each reset) becomes a candidate: the next
term, its own vote, `request_vote` to the others. A node votes once per term (persisted
before the reply), for a candidate whose log is at least as up to date as its own, and
refuses (without taking up the candidate's term) while it heard a leader within the last T
ms: that *grant* is what the leader's lease rests on, and it keeps a node cut off from the
leader from deposing it. With a majority of votes the candidate leads, appends a no-op of
its term, and replicates with `append` (AppendEntries): entries after `prev_index`, whose
term must be `prev_term` at the follower, else it refuses and says where to retry; a
follower cuts off a conflicting suffix before it appends. The leader commits an index once
a majority holds it and the entry there is of its own term (Figure 8 of the Raft paper);
everything below goes with it. Votes and appends received are in `raft_replica`, the
client side and delivery in `raft_clients`, the log in `raft_log`; lease timing and its
check are Multi-Paxos's (`multipaxos_params`).

    core = RaftProtocol(node_id=0, n=1, rng=random.Random(7))
    fx = core.step(ClientBroadcast(request_id=1, msg_id="m1", value=42), now_ms=0.0)
    fx.deliver  # [Deliver(position=0, msg_id="m1", value=42)]: alone, it elects itself at once

Persisted (the shell makes these durable before it sends): {"t": "term", "term", "vote"}
when the term or the vote changes, {"t": "log", "from", "entries"} when the log changes
(from index `from` on it is exactly `entries`) and {"t": "commit", "index"} when the commit
index rises (so a restart re-delivers the committed prefix at once). `restore(records)`
rebuilds them and, for a grant period after the restart, refuses every vote and starts no
election (the grant it may have given before the crash is not on disk).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
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
from tobtest.node.protocols.multipaxos_params import entry_key
from tobtest.node.protocols.raft_clients import FORWARD_BATCH
from tobtest.node.protocols.raft_replica import MAX_APPEND, NEG_INF, RaftReplica

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random

# Deliberate fixture bugs this core can carry (ProtocolConfig.bugs); all off by default.
BUGS: tuple[str, ...] = ("commit-old-term", "vote-not-persisted", "no-truncate")
# The second catalogue (PROTOCOL.md, "Subtle seeded bugs"): none for Raft yet.
SUBTLE_BUGS: tuple[str, ...] = ()

MAX_AHEAD = 256  # entries sent to a follower and not yet acknowledged by it
MAX_UNCOMMITTED = 10_000  # the leader's log above its commit index; more are dropped
ROUNDS_KEPT = 8  # heartbeat rounds whose replies still count towards a lease


@dataclass
class _Round:
    """One heartbeat round: when it left, who answered in our term (ourselves included)."""

    sent_ms: float
    acks: set[int]
    counted: bool = False


class RaftProtocol(RaftReplica):
    """Raft core: election with sticky votes, log replication, commit, the leader lease."""

    name = "raft"
    # Declared again for mypy (see RaftReplica).
    _leader: int | None
    _role: str
    _max_term: int
    _commit_urgent: bool

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        # Candidate.
        self._votes: set[int] = set()
        self._vote_sent_ms = NEG_INF
        # Leader.
        self._next: dict[int, int] = {}  # next index to send to each follower
        self._match: dict[int, int] = {}  # highest index known replicated at each follower
        self._progress_ms: dict[int, float] = {}  # when each follower's match last rose
        # Followers that refused our last append: one append in flight to each until one
        # is accepted (else every step would send them another batch from the same place).
        self._probing: set[int] = set()
        self._noop_index = 0  # the no-op of our term: once committed, lease reads are safe
        self._rounds: OrderedDict[int, _Round] = OrderedDict()
        self._round = 0
        self._lease_until_ms = NEG_INF
        self._quorum_ms = NEG_INF  # send time of the latest round a majority answered
        self._next_heartbeat_ms = NEG_INF
        self._commit_sent = 0  # highest commit index any of our appends carried

    # ---- the contract ---------------------------------------------------------------------

    def step(self, event: Event, now_ms: float) -> Effects:
        self._fx, self._now_ms = Effects(), now_ms
        if self._restored:
            self._after_restart()
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
            # Timers fire on ticks only: a step for a client request changes no term (the
            # shell's read of the restored prefix after a restart keeps no effects).
            self._check_election()
        if self._role == "leader":
            self._replicate_new()
            self._maybe_commit()
        fx, self._fx = self._fx, Effects()
        return fx

    def status(self, now_ms: float) -> dict[str, Any]:
        leading = self._role == "leader"
        return {
            "protocol": self.name,
            "role": self._role,
            "node": self.node_id,
            "term": self._term,
            # Raft's ballot is its term; a list, so that it compares like Multi-Paxos's.
            "ballot": [self._term],
            "max_ballot": [max(self._max_term, self._term)],
            "voted_for": self._voted_for,
            "leader": self._leader,
            "lease_remaining_ms": max(0.0, self._lease_until_ms - now_ms) if leading else 0.0,
            "grant_remaining_ms": max(0.0, self._grant_until_ms - now_ms),
            "drift_bound": self.params.drift_bound,
            # The commit index: entries 1..chosen_index are committed (and delivered here).
            "chosen_index": self._commit,
            "last_index": self._log.last_index,
            "last_term": self._log.last_term,
            # Entries in our log above the commit index (a new leader may still cut them).
            "accepted_unchosen": self._log.last_index - self._commit,
            "delivered": len(self._values),
            "pending": len(self._pending),
            # The leader's entries sent for replication and not committed yet.
            "in_flight": self._log.last_index - self._commit if leading else 0,
            "noop_index": self._noop_index if leading else None,
            "heartbeat_round": self._round,
            **self._counts,
            "messages_sent": dict(self._sent),
            "messages_received": dict(self._received),
        }

    # ---- terms and elections --------------------------------------------------------------

    def _step_down(self) -> None:
        if self._role == "follower":
            return
        self._counts["step_downs"] += 1
        self._role = "follower"
        self._next.clear()
        self._match.clear()
        self._rounds.clear()
        self._log_keys.clear()
        self._lease_until_ms = NEG_INF
        if self._grant_holder == self.node_id:
            self._grant_until_ms = NEG_INF  # our own grant goes with the leadership
        self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()

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
        self._term += 1
        self._max_term = max(self._max_term, self._term)
        self._voted_for = self.node_id
        self._persist_term()
        self._role, self._leader = "candidate", None
        self._votes = {self.node_id}
        self._counts["phase1_rounds"] += 1
        self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()
        self._vote_sent_ms = self._now_ms
        for peer in self.peers():
            self._send(peer, self._vote_request())
        if len(self._votes) >= self.majority:
            self._become_leader()

    def _vote_request(self) -> dict[str, Any]:
        return {"type": "request_vote", "term": self._term,
                "last_index": self._log.last_index, "last_term": self._log.last_term}  # fmt: skip

    def _on_vote(self, src: int, body: dict[str, Any]) -> None:
        term, granted = as_nat(body.get("term")), body.get("granted")
        if term is None or not isinstance(granted, bool):
            return
        if term > self._term:
            self._adopt_term(term)
        elif self._role == "candidate" and term == self._term and granted:
            self._votes.add(src)
            if len(self._votes) >= self.majority:
                self._become_leader()

    def _become_leader(self) -> None:
        self._role, self._leader = "leader", self.node_id
        self._counts["elections_won"] += 1
        last = self._log.last_index
        self._next = dict.fromkeys(self.peers(), last + 1)
        self._match = dict.fromkeys(self.peers(), 0)
        self._progress_ms = dict.fromkeys(self.peers(), self._now_ms)
        self._probing.clear()
        self._log_keys = {
            key
            for index in range(self._commit + 1, last + 1)
            if (key := entry_key(self._log.entry_at(index))) is not None
        }
        self._rounds.clear()
        self._lease_until_ms = NEG_INF
        self._quorum_ms = self._now_ms
        # A no-op of our term: committing it commits every entry of earlier terms below it,
        # and until then we serve no lease read.
        self._append(NOOP)
        self._noop_index = self._log.last_index
        self._counts["noops_proposed"] += 1
        self._heartbeat()
        self._submit([p.entry for p in self._pending.values()])

    # ---- leader: replication, commit, heartbeats ------------------------------------------

    def _append(self, entry: Entry) -> None:
        self._fx.persist.append(self._log.append(self._term, entry))
        key = entry_key(entry)
        if key is not None:
            self._log_keys.add(key)

    def _propose(self, entry: Entry) -> None:
        key = entry_key(entry)
        if key is None or key in self._done_keys or key in self._log_keys:
            return
        if self._log.last_index - self._commit < MAX_UNCOMMITTED:  # else its origin retries
            self._append(entry)

    def _send_append(self, peer: int) -> None:
        """Sends `peer` what it lacks from its next index (at most MAX_APPEND entries, and
        none past MAX_AHEAD unacknowledged ones): also a heartbeat, with the commit index."""
        nxt = self._next[peer]
        count = 0
        if nxt - 1 - self._match[peer] < MAX_AHEAD:
            count = min(MAX_APPEND, self._log.last_index - nxt + 1)
        body = {"type": "append", "term": self._term, "prev_index": nxt - 1,
                "prev_term": self._log.term_at(nxt - 1), "entries": self._log.wire(nxt, count),
                "commit": self._commit, "round": self._round}  # fmt: skip
        self._next[peer] = nxt + count
        self._commit_sent = max(self._commit_sent, self._commit)
        self._send(peer, body)

    def _replicate_new(self) -> None:
        """At the end of a step, one batch to each follower whose next entry exists (and
        that is not probing): new entries go out at once, and a follower that is behind
        gets one more batch at each step, up to MAX_AHEAD unacknowledged entries."""
        last = self._log.last_index
        for peer in self.peers():
            nxt = self._next[peer]
            if (
                nxt <= last
                and nxt - 1 - self._match[peer] < MAX_AHEAD
                and peer not in self._probing
            ):
                self._send_append(peer)

    def _on_append_reply(self, src: int, body: dict[str, Any]) -> None:
        term, round_ = as_nat(body.get("term")), as_nat(body.get("round"))
        success = body.get("success")
        # A success names how far the follower matches us, a refusal where to retry.
        where = as_nat(body.get("match" if success is True else "hint"))
        if term is None or round_ is None or not isinstance(success, bool) or where is None:
            return
        if term > self._term:
            self._adopt_term(term)
            return
        if self._role != "leader" or term != self._term:
            return
        if success and where > self._log.last_index:
            return
        r = self._rounds.get(round_)
        if r is not None:  # it answered in our term: its grant to us began after r's send
            r.acks.add(src)
            self._count_round(r)
        if success:
            if where > self._match[src]:
                self._match[src], self._progress_ms[src] = where, self._now_ms
            self._next[src] = max(self._next[src], where + 1)
            self._probing.discard(src)
        elif where >= 1 and (src not in self._probing or where <= self._next[src]):
            # Back to where its log may match, one append at a time until one is accepted.
            # (A refusal of an older append, from further on, says nothing new: ignored.)
            self._next[src] = max(self._match[src] + 1, min(self._next[src], where))
            self._probing.add(src)
            self._send_append(src)

    def _maybe_commit(self) -> None:
        """Commits the highest index a majority holds, if its entry is of our own term."""
        matches = sorted([self._log.last_index, *self._match.values()], reverse=True)
        index = matches[self.majority - 1]
        if index <= self._commit:
            return
        # Deliberate fixture bug commit-old-term: without this check an entry of an earlier
        # term is committed by counting replicas, and a later leader may overwrite it.
        if self._log.term_at(index) == self._term or "commit-old-term" in self.config.bugs:
            self._commit_to(index)

    def _lease_holds(self) -> bool:
        return self._now_ms < self._lease_until_ms and self._commit >= self._noop_index

    def _heartbeat(self) -> None:
        self._round += 1
        self._rounds[self._round] = _Round(self._now_ms, {self.node_id})
        while len(self._rounds) > ROUNDS_KEPT:
            self._rounds.popitem(last=False)
        # We count ourselves in the majority, so we grant ourselves too.
        self._grant_holder = self.node_id
        self._grant_until_ms = self._now_ms + self.params.grant_ms
        self._next_heartbeat_ms = self._now_ms + self.params.heartbeat_ms
        for peer in self.peers():
            if self._match[peer] < self._log.last_index and (
                self._now_ms - self._progress_ms[peer] >= self.params.resend_ms
            ):
                # Nothing acknowledged for a while: what we sent may be lost; send it again.
                self._next[peer] = self._match[peer] + 1
                self._progress_ms[peer] = self._now_ms
                self._counts["resends"] += 1
            self._send_append(peer)
        self._count_round(self._rounds[self._round])

    def _count_round(self, r: _Round) -> None:
        if r.counted or len(r.acks) < self.majority:
            return
        r.counted = True
        # Every acker's grant began after the round left: the lease runs from its send.
        self._quorum_ms = max(self._quorum_ms, r.sent_ms)
        self._lease_until_ms = max(self._lease_until_ms, r.sent_ms + self.params.lease_ms)

    def _on_forward(self, src: int, body: dict[str, Any]) -> None:
        entries = body.get("entries")
        if self._role == "leader" and isinstance(entries, list):
            for entry in entries[:FORWARD_BATCH]:
                if valid_entry(entry) and entry["k"] != "noop":
                    self._propose(entry)

    # ---- timers ---------------------------------------------------------------------------

    def _on_tick(self) -> None:
        now = self._now_ms
        if self._role == "leader":
            if now - self._quorum_ms > 2 * self.params.election_timeout_ms:
                # No majority answered for longer than any follower waits: somebody else may
                # lead by now, or nobody can hear us. Stand down so that an election can run.
                self._step_down()
                self._leader = None
            elif now >= self._next_heartbeat_ms:
                self._heartbeat()
            elif self._commit_urgent and self._commit > self._commit_sent:
                # A follower's client waits for an entry just committed: tell them now, not
                # at the next heartbeat.
                for peer in self.peers():
                    self._send_append(peer)
            self._commit_urgent = False
        elif self._role == "candidate" and now - self._vote_sent_ms >= self.params.resend_ms:
            self._vote_sent_ms = now
            for peer in self.peers():
                if peer not in self._votes:
                    self._counts["resends"] += 1
                    self._send(peer, self._vote_request())
        if self._pending:
            self._reforward(every=False)

    # ---- the simulator's hook ---------------------------------------------------------------

    def next_timer_ms(self, now_ms: float) -> float | None:
        """When a tick next acts: stepping down, the heartbeat, an urgent commit or another
        batch to a follower that is behind (leader), the vote resend (candidate), the
        election (not leader), a re-forward of the oldest pending entry."""
        if self._restored or (self._election_deadline_ms is None and self._role != "leader"):
            return now_ms  # the first step after a restart, or the first deadline to draw
        params, due = self.params, float("inf")
        if self._role == "leader":
            if self._commit_urgent:
                return now_ms  # a tick sends the commit, or at least clears the flag
            last = self._log.last_index
            for peer, nxt in self._next.items():  # what `_replicate_new` sends at each step
                behind = nxt <= last and nxt - 1 - self._match[peer] < MAX_AHEAD
                if behind and peer not in self._probing:
                    return now_ms
            # Steps down once more than twice the election timeout passed (strictly).
            due = min(self._next_heartbeat_ms, self._quorum_ms + 2 * params.election_timeout_ms)
        else:
            assert self._election_deadline_ms is not None
            due = max(self._election_deadline_ms, self._grant_until_ms)
            if self._role == "candidate":
                due = min(due, self._vote_sent_ms + params.resend_ms)
        if self._pending:  # kept in forwarding order: the first is the oldest
            oldest = next(iter(self._pending.values()))
            due = min(due, oldest.forwarded_ms + params.forward_timeout_ms)
        return due

    _handlers: dict[str, Any] = {
        "request_vote": RaftReplica._on_request_vote,
        "vote": _on_vote,
        "append": RaftReplica._on_append,
        "append_reply": _on_append_reply,
        "forward": _on_forward,
    }


__all__ = ["BUGS", "MAX_APPEND", "SUBTLE_BUGS", "RaftProtocol"]
