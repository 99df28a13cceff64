"""The follower half of the Raft core: term, vote and log, votes given, appends taken.

`RaftReplica` holds what every node does whatever its role: keep its term and vote
(persisted before any reply that depends on them), vote for candidates (once per term,
sticky while it heard a leader within its grant), take a leader's appends (the log matching
check, a conflicting suffix cut off), commit what the leader showed it holds, and rebuild
all of that from its `persist` records. `raft.RaftProtocol` adds elections and the leader;
the client side and delivery are in `raft_clients`. Use the full core:

    core = RaftProtocol(node_id=1, n=3, rng=random.Random(1))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tobtest.node.protocols.base import ProtocolConfig
from tobtest.node.protocols.entries import as_nat, nat
from tobtest.node.protocols.multipaxos_params import EntryKey, entry_key
from tobtest.node.protocols.raft_clients import RaftClientSide
from tobtest.node.protocols.raft_log import RaftLog, parse_entries

if TYPE_CHECKING:  # the core draws randomness only from the generator it is given
    import random

MAX_APPEND = 8  # entries per append message
NEG_INF = float("-inf")


class RaftReplica(RaftClientSide):
    """Term, vote, log and commit index; votes and appends received. Leader in the subclass."""

    # Declared again: the protocol modules form an import cycle for mypy (the registry
    # imports the cores lazily), which then infers this from our `None` assignments.
    _leader: int | None
    _role: str

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        super().__init__(node_id, n, rng, config)
        # Persistent state.
        self._term = 0
        self._voted_for: int | None = None
        self._log = RaftLog()
        self._commit = 0  # entries 1..commit are committed, and delivered here
        # Election.
        self._max_term: int = 0  # highest term seen in any message (status only)
        self._election_deadline_ms: float | None = None
        self._grant_holder: int | None = None  # the leader our grant protects (None: nobody)
        self._grant_until_ms = NEG_INF  # no vote for anyone else, no election, until then
        self._restored = False
        # What a commit tells the leader: its entries above the commit index, by key, and
        # whether one that a follower forwarded was just committed.
        self._log_keys: set[EntryKey] = set()
        self._commit_urgent: bool = False

    # ---- restart --------------------------------------------------------------------------

    def restore(self, records: Iterable[dict[str, Any]]) -> None:
        """Rebuilds term, vote and log from `persist` records, re-delivers the committed
        prefix silently; the first step after it starts a grant-long quarantine."""
        commit = 0
        for rec in records:
            if not isinstance(rec, dict):
                continue
            kind = rec.get("t")
            if kind == "term" and nat(rec.get("term")):
                vote = rec.get("vote")
                vote = vote if nat(vote) and vote < self.n else None
                if rec["term"] > self._term:
                    self._term, self._voted_for = rec["term"], vote
                elif rec["term"] == self._term and vote is not None:
                    self._voted_for = vote
            elif kind == "log":
                self._log.replay(rec, limit=1 << 30)
            elif kind == "commit" and nat(rec.get("index")):
                commit = max(commit, rec["index"])
        self._max_term = self._term
        for index in range(1, min(commit, self._log.last_index) + 1):
            self._deliver_entry(self._log.entry_at(index), silent=True)
            self._commit = index
        self._restored = True

    def _after_restart(self) -> None:
        """First step after `restore`: a grant we gave before the crash may still run (its
        end was not persisted), so refuse every vote and start no election for a grant."""
        self._restored = False
        if self.n > 1:
            self._grant_holder, self._grant_until_ms = None, self._now_ms + self.params.grant_ms

    # ---- terms and votes ------------------------------------------------------------------

    def _draw_timeout_ms(self) -> float:
        t = self.params.election_timeout_ms
        return self.rng.uniform(t, 2 * t)

    def _persist_term(self, vote_persisted: bool = True) -> None:
        vote = self._voted_for if vote_persisted else None
        self._fx.persist.append({"t": "term", "term": self._term, "vote": vote})

    def _adopt_term(self, term: int) -> None:
        """A message of a higher term: take it up, with no vote in it yet, as a follower."""
        self._term, self._voted_for = term, None
        self._max_term = max(self._max_term, term)
        self._persist_term()
        self._step_down()
        self._leader = None

    def _on_request_vote(self, src: int, body: dict[str, Any]) -> None:
        term, last_index = as_nat(body.get("term")), as_nat(body.get("last_index"))
        last_term = as_nat(body.get("last_term"))
        if term is None or last_index is None or last_term is None or term < 1:
            return
        self._max_term = max(self._max_term, term)
        if term > self._term and self._now_ms < self._grant_until_ms and self._grant_holder != src:
            # We heard a leader within the grant (or restarted within one): the candidate's
            # term is not taken up and no vote is given, so a live lease stays valid.
            self._counts["votes_refused_sticky"] += 1
            self._send(src, {"type": "vote", "term": self._term, "granted": False})
            return
        if term > self._term:
            self._adopt_term(term)
        mine = (self._log.last_term, self._log.last_index)
        granted = (
            term == self._term
            and self._voted_for in (None, src)
            and (last_term, last_index) >= mine  # at least as up to date as our log
        )
        if granted:
            if self._voted_for is None:
                self._voted_for = src
                # Deliberate fixture bug vote-not-persisted: the vote is not written down,
                # so after a restart this node may vote again, for another, in this term.
                self._persist_term(vote_persisted="vote-not-persisted" not in self.config.bugs)
            self._counts["votes_granted"] += 1
            self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()
        self._send(src, {"type": "vote", "term": self._term, "granted": granted})

    # ---- appends --------------------------------------------------------------------------

    def _on_append(self, src: int, body: dict[str, Any]) -> None:
        term, prev_index = as_nat(body.get("term")), as_nat(body.get("prev_index"))
        prev_term, commit = as_nat(body.get("prev_term")), as_nat(body.get("commit"))
        round_, entries = as_nat(body.get("round")), parse_entries(body.get("entries"), MAX_APPEND)
        if None in (term, prev_index, prev_term, commit, round_) or entries is None:
            return
        assert term is not None and prev_index is not None and prev_term is not None
        assert commit is not None and round_ is not None
        if term < 1 or any(t > term for t, _ in entries):
            return  # a leader appends only entries of its term or earlier ones
        reply: dict[str, Any] = {"type": "append_reply", "term": self._term, "round": round_}
        if term < self._term:
            self._send(src, {**reply, "success": False, "hint": 0})  # the sender steps down
            return
        if term > self._term:
            self._adopt_term(term)
            reply["term"] = term
        if self._role == "leader":
            return  # two leaders of one term: only a lost vote (a fixture bug) makes that
        self._step_down()  # a candidate of this term: somebody else won it
        self._hear_leader(src)
        if not self._log.matches(prev_index, prev_term):
            hint = self._log.conflict_hint(prev_index, floor=self._commit + 1)
            self._send(src, {**reply, "success": False, "hint": hint})
            return
        last = self._log.last_index
        record = self._log.merge(prev_index, entries, "no-truncate" not in self.config.bugs)
        if record is not None:
            self._counts["truncations"] += record["from"] <= last  # a conflicting suffix cut
            self._fx.persist.append(record)
        match = prev_index + len(entries)  # entries up to here are the leader's
        if commit > self._commit:
            self._commit_to(min(commit, match))
        self._send(src, {**reply, "success": True, "match": match})

    def _hear_leader(self, src: int) -> None:
        # The grant: until it ends we vote for nobody else and start no election.
        self._grant_holder, self._grant_until_ms = src, self._now_ms + self.params.grant_ms
        self._election_deadline_ms = self._now_ms + self._draw_timeout_ms()
        if self._leader != src:
            self._leader = src
            self._reforward(every=True)

    def _commit_to(self, index: int) -> None:
        if index <= self._commit:
            return
        for i in range(self._commit + 1, index + 1):
            entry = self._log.entry_at(i)
            key = entry_key(entry)
            if key is not None and key in self._log_keys:
                self._log_keys.discard(key)
                self._commit_urgent = self._commit_urgent or key not in self._pending
            self._deliver_entry(entry)
        self._commit = index
        self._fx.persist.append({"t": "commit", "index": index})

    # ---- hooks for the subclass -----------------------------------------------------------

    def _step_down(self) -> None:
        """We lead or campaign no more (a higher term, or another's append in ours)."""
        raise NotImplementedError
