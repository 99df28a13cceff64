"""The acceptor and learner half of the Multi-Paxos core, and its plumbing.

`MultiPaxosReplica` holds what every node does whatever its role: promise (one ballot for
the whole log), accept per slot, grant leases on heartbeats, learn chosen slots from commit
indexes and catch-up replies, deliver them in slot order, and rebuild all that from its
`persist` records. `multipaxos_clients` adds the client side, and
`multipaxos.MultiPaxosProtocol` election and the leader's pipeline, through the hooks at the
end of this class. Use the latter, not this one:

    core = MultiPaxosProtocol(node_id=0, n=3, rng=random.Random(1))
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tobtest.node.protocols.base import (
    Deliver,
    Effects,
    Protocol,
    ProtocolConfig,
    Reply,
    Send,
)
from tobtest.node.protocols.entries import Entry, as_nat, chosen_batch, parse_decisions, valid_entry
from tobtest.node.protocols.multipaxos_params import (
    ZERO,
    Ballot,
    EntryKey,
    entry_key,
    lease_params,
    parse_ballot,
)

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random

PROMISE_BATCH = 128  # slots one promise reports on (Phase 1 then asks for the next window)
NEG_INF = float("-inf")
COUNTERS = (
    "phase1_rounds",
    "elections_won",
    "step_downs",
    "noops_proposed",
    "resends",
    "forwards",
    "lease_reads",
    "lease_refusals",
    "catchups",
)


class MultiPaxosReplica(Protocol):
    """Acceptor, learner and plumbing; the leader and client side live in the subclass."""

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        self.params = lease_params(self.config)  # ValueError on an unsafe lease
        # Acceptor (promised is node-wide: Phase 1 covers every slot from `from` on).
        self._promised: Ballot = ZERO
        self._accepted: dict[int, tuple[Ballot, Entry]] = {}  # only slots not known chosen
        self._max_slot = -1  # highest slot accepted or known chosen here
        self._max_ballot: Ballot = ZERO
        self._grant_holder: int | None = None  # whom our lease grant protects (None: all)
        self._grant_until_ms = NEG_INF
        self._restored = False
        # Learner.
        self._chosen: dict[int, Entry] = {}
        self._chosen_keys: set[EntryKey] = set()
        self._max_chosen = -1
        self._next_deliver = 0  # slots below are chosen and delivered: the commit index
        self._values: list[Any] = []
        self._positions: dict[str, int] = {}
        self._commit_known = 0  # highest commit index a leader told us
        self._commit_src: int | None = None
        self._catchup_after_ms = NEG_INF
        # Counters for status().
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._sent: dict[str, int] = {}
        self._received: dict[str, int] = {}
        # Scratch of the current step.
        self._fx = Effects()
        self._now_ms = 0.0
        self._inbox: deque[dict[str, Any]] = deque()  # messages to ourselves

    # ---- restart --------------------------------------------------------------------------

    def restore(self, records: Iterable[dict[str, Any]]) -> None:
        """Rebuilds promised/accepted/chosen from `persist` records and re-delivers the chosen
        prefix silently; the first step after it starts a grant-long quarantine."""
        forget = "forget-promise" in self.config.bugs
        for rec in records:
            if not isinstance(rec, dict):
                continue
            kind, slot = rec.get("t"), as_nat(rec.get("slot"))
            ballot, value = parse_ballot(rec.get("ballot"), self.n), rec.get("value")
            if kind == "promise" and ballot is not None and not forget:
                # With the "forget-promise" fixture bug (deliberate) this record is skipped:
                # the node may then accept a ballot below one it promised before the crash.
                self._promised = max(self._promised, ballot)
                self._raise_max_ballot(ballot)
            elif kind == "accept" and ballot is not None and slot is not None:
                old = self._accepted.get(slot)
                if valid_entry(value) and (old is None or ballot >= old[0]):
                    self._accepted[slot] = (ballot, value)
                self._raise_max_ballot(ballot)
                if not forget:  # an accept is also a promise (the fixture forgets it too)
                    self._promised = max(self._promised, ballot)
            elif kind == "chosen" and slot is not None and valid_entry(value):
                self._chosen.setdefault(slot, value)
        for slot, entry in self._chosen.items():
            self._accepted.pop(slot, None)
            key = entry_key(entry)
            if key is not None:
                self._chosen_keys.add(key)
            self._max_chosen = max(self._max_chosen, slot)
        self._max_slot = max([self._max_chosen, *self._accepted])
        while self._next_deliver in self._chosen:
            entry = self._chosen[self._next_deliver]
            if entry["k"] == "msg" and entry["id"] not in self._positions:
                self._positions[entry["id"]] = len(self._values)
                self._values.append(entry["v"])
            self._next_deliver += 1
        self._restored = True

    def _after_restart(self) -> None:
        """First step after `restore`: a lease we granted before the crash may still run (its
        expiry was not persisted), so refuse competing ballots for a whole grant from now."""
        self._restored = False
        if self.n == 1:
            return  # alone: nobody else can hold a lease
        self._grant_holder = self._promised[1] if self._promised != ZERO else None
        self._grant_until_ms = self._now_ms + self.params.grant_ms

    # ---- acceptor -------------------------------------------------------------------------

    def _on_prepare(self, src: int, body: dict[str, Any]) -> None:
        ballot, lo = parse_ballot(body.get("ballot"), self.n), as_nat(body.get("from"))
        if ballot is None or ballot[1] != src or lo is None:
            return
        self._raise_max_ballot(ballot)
        if ballot < self._promised:
            self._nack(src, ballot)
            return
        if ballot > self._promised:
            if self._now_ms < self._grant_until_ms and self._grant_holder != src:
                # The lease we granted is live: a competing ballot must wait for it to end.
                self._nack(src, ballot, lease=True)
                return
            self._raise_promise(ballot)
            if src != self.node_id:
                self._promised_other()
        hi = lo + PROMISE_BATCH
        accepted: list[list[Any]] = []
        for slot in range(lo, hi):  # bounded: one window, whatever the log's length
            if slot in self._accepted:
                accepted_ballot, value = self._accepted[slot]
                accepted.append([slot, list(accepted_ballot), value])
        chosen = [[s, self._chosen[s]] for s in range(lo, hi) if s in self._chosen]
        reply = {"type": "promise", "ballot": list(ballot), "from": lo, "accepted": accepted}
        max_slot = self._max_slot
        if "max-slot-chosen" in self.config.bugs:
            # Deliberate fixture bug max-slot-chosen: reports the highest slot known chosen,
            # not the highest accepted, so the new leader's barrier sits below accepted
            # values it then proposes client entries over.
            max_slot = self._max_chosen
        self._send(src, {**reply, "chosen": chosen, "max_slot": max_slot})

    def _on_accept(self, src: int, body: dict[str, Any]) -> None:
        ballot, slot = parse_ballot(body.get("ballot"), self.n), as_nat(body.get("slot"))
        value = body.get("value")
        if ballot is None or ballot[1] != src or slot is None or not valid_entry(value):
            return
        if ballot < self._promised:
            self._nack(src, ballot)
            return
        if src != self.node_id:
            self._hear_leader(src, ballot)
        if slot in self._chosen:
            self._send(src, {"type": "decisions", "decisions": [[slot, self._chosen[slot]]]})
        else:
            if self._accepted.get(slot) != (ballot, value):
                self._raise_promise(ballot, persist=False)  # the accept record implies it
                self._accepted[slot] = (ballot, value)
                self._max_slot = max(self._max_slot, slot)
                record = {"t": "accept", "slot": slot, "ballot": list(ballot), "value": value}
                self._fx.persist.append(record)
            self._send(src, {"type": "accepted", "ballot": list(ballot), "slot": slot})
        commit = as_nat(body.get("commit"))
        if src != self.node_id and commit is not None:
            self._apply_commit(src, ballot, commit)

    def _on_heartbeat(self, src: int, body: dict[str, Any]) -> None:
        ballot, round_ = parse_ballot(body.get("ballot"), self.n), as_nat(body.get("round"))
        commit = as_nat(body.get("commit"))
        if ballot is None or ballot[1] != src or round_ is None or commit is None:
            return
        if ballot < self._promised:
            self._nack(src, ballot)
            return
        self._raise_promise(ballot)
        self._hear_leader(src, ballot)
        # The grant: until it ends we promise no other node's ballot and start no election.
        self._grant_holder = src
        self._grant_until_ms = self._now_ms + self.params.grant_ms
        self._send(src, {"type": "heartbeat_ack", "ballot": list(ballot), "round": round_})
        self._apply_commit(src, ballot, commit)

    def _on_commit(self, src: int, body: dict[str, Any]) -> None:
        """The leader's commit index alone: sent when no accept or heartbeat carries it
        soon, so a follower delivers (and acks its clients) without waiting a heartbeat."""
        ballot, commit = parse_ballot(body.get("ballot"), self.n), as_nat(body.get("commit"))
        if ballot is None or ballot[1] != src or commit is None or ballot < self._promised:
            return
        self._apply_commit(src, ballot, commit)

    def _raise_promise(self, ballot: Ballot, persist: bool = True) -> None:
        self._raise_max_ballot(ballot)
        if ballot > self._promised:
            self._promised = ballot
            if persist:
                self._fx.persist.append({"t": "promise", "ballot": list(ballot)})

    def _raise_max_ballot(self, ballot: Ballot) -> None:
        self._max_ballot = max(self._max_ballot, ballot)

    def _nack(self, src: int, ballot: Ballot, lease: bool = False) -> None:
        """Refuses `ballot`, saying what we promised so the proposer can jump past it."""
        body: dict[str, Any] = {"type": "nack", "ballot": list(ballot)}
        body["promised"] = list(self._promised)
        if lease:
            body.update(lease=True, leader=self._grant_holder)
        self._send(src, body)

    # ---- learner --------------------------------------------------------------------------

    def _apply_commit(self, src: int, ballot: Ballot, commit: int) -> None:
        """The leader of `ballot` says slots below `commit` are chosen. One we accepted in
        that very ballot holds the chosen value (a leader proposes once per slot and ballot)."""
        self._commit_known, self._commit_src = max(self._commit_known, commit), src
        while self._next_deliver < commit:
            accepted = self._accepted.get(self._next_deliver)
            if accepted is None:
                break
            if accepted[0] != ballot and "commit-any-ballot" not in self.config.bugs:
                # Deliberate fixture bug commit-any-ballot (when this check is skipped): a
                # value accepted from an earlier leader is taken as the one chosen below
                # the commit index, though the committing leader may have chosen another.
                break
            self._learn(self._next_deliver, accepted[1])
        if self._next_deliver < self._commit_known:
            self._ask_catchup(src)

    def _ask_catchup(self, dest: int) -> None:
        if self._now_ms >= self._catchup_after_ms:
            self._catchup_after_ms = self._now_ms + self.params.catchup_ms
            self._counts["catchups"] += 1
            self._send(dest, {"type": "catchup", "from": self._next_deliver})

    def _on_catchup(self, src: int, body: dict[str, Any]) -> None:
        lo = as_nat(body.get("from"))
        if lo is None or lo > self._max_chosen:
            return
        decisions, more = chosen_batch(self._chosen, lo, self._max_chosen)
        if decisions:
            self._send(src, {"type": "decisions", "decisions": decisions, "more": more})

    def _on_decisions(self, src: int, body: dict[str, Any]) -> None:
        for slot, entry in parse_decisions(body):
            self._learn(slot, entry)
        if body.get("more") is True:
            self._catchup_after_ms = NEG_INF  # a full batch: pull the next one at once
            self._ask_catchup(src)

    def _learn(self, slot: int, entry: Entry) -> None:
        if slot in self._chosen:
            return
        self._chosen[slot] = entry
        key = entry_key(entry)
        if key is not None:
            self._chosen_keys.add(key)
        self._accepted.pop(slot, None)  # a chosen slot needs no acceptor state any more
        self._fx.persist.append({"t": "chosen", "slot": slot, "value": entry})
        self._max_chosen = max(self._max_chosen, slot)
        self._max_slot = max(self._max_slot, slot)
        self._on_chosen(slot, entry)
        while self._next_deliver in self._chosen:
            self._deliver_entry(self._chosen[self._next_deliver])
            self._next_deliver += 1

    def _deliver_entry(self, entry: Entry) -> None:
        if entry["k"] != "msg" or entry["id"] in self._positions:
            # A no-op, a read marker, or a message chosen twice (a re-forward): no position.
            self._on_delivered(entry, None)
            return
        position = len(self._values)
        self._values.append(entry["v"])
        self._positions[entry["id"]] = position
        self._fx.deliver.append(Deliver(position=position, msg_id=entry["id"], value=entry["v"]))
        self._on_delivered(entry, position)

    # ---- plumbing -------------------------------------------------------------------------

    def _send(self, dest: int, body: dict[str, Any]) -> None:
        if dest == self.node_id:
            self._inbox.append(body)
            return
        kind = body["type"]
        self._sent[kind] = self._sent.get(kind, 0) + 1
        self._fx.send.append(Send(dest=dest, body=body))

    def _broadcast(self, body: dict[str, Any]) -> None:
        for dest in range(self.n):
            self._send(dest, body)

    def _reply(self, request_id: int, body: dict[str, Any]) -> None:
        self._fx.reply.append(Reply(request_id=request_id, body=body))

    # ---- hooks for the subclass -----------------------------------------------------------

    def _hear_leader(self, src: int, ballot: Ballot) -> None:
        """A heartbeat or accept of `ballot` (>= promised, already raised) from `src`."""
        raise NotImplementedError

    def _promised_other(self) -> None:
        """We just promised another node's higher ballot."""
        raise NotImplementedError

    def _on_chosen(self, slot: int, entry: Entry) -> None:
        """`slot` was just learned chosen (before it is delivered)."""

    def _on_delivered(self, entry: Entry, position: int | None) -> None:
        """`entry` was delivered; `position` is None unless it is a message taking one."""
