"""Unit tests of the Raft core, driven by hand: one core, messages fed one by one.

Simulator runs (many seeds, faults, the seeded bugs) are in test_raft_sim.py.
Run: .venv/bin/python -m pytest tests/node/test_raft.py -q
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tobtest.node.protocols import protocol_class
from tobtest.node.protocols import raft as raft_module
from tobtest.node.protocols.base import (
    ClientBroadcast,
    ClientRead,
    Effects,
    PeerMessage,
    ProtocolConfig,
    Tick,
)
from tobtest.node.protocols.raft import MAX_APPEND, RaftProtocol
from tobtest.node.protocols.raft_log import RaftLog

CFG = ProtocolConfig(heartbeat_ms=20.0, election_timeout_ms=150.0, lease_ms=100.0)
NOOP = {"k": "noop"}


def make(
    node: int = 0, n: int = 3, config: ProtocolConfig = CFG, seed: int = 1, bugs: Any = ()
) -> RaftProtocol:
    if bugs:
        config = ProtocolConfig(**{**CFG.__dict__, "bugs": frozenset(bugs)})
    return RaftProtocol(node_id=node, n=n, rng=random.Random(seed), config=config)


def sent(fx: Effects, kind: str) -> list[tuple[int, dict[str, Any]]]:
    return [(s.dest, s.body) for s in fx.send if s.body["type"] == kind]


def msg(core: RaftProtocol, src: int, now_ms: float, **body: Any) -> Effects:
    return core.step(PeerMessage(src=src, body=body), now_ms)


def m(x: str) -> dict[str, Any]:
    return {"k": "msg", "id": x, "v": x}


def append(term: int, prev: int, prev_term: int, entries: list[Any], commit: int = 0) -> Any:
    return {"type": "append", "term": term, "prev_index": prev, "prev_term": prev_term,
            "entries": entries, "commit": commit, "round": 1}  # fmt: skip


def elect(core: RaftProtocol, start_ms: float = 0.0) -> tuple[Effects, float]:
    """Ticks until the core starts an election; returns that step's effects and its time."""
    now = start_ms
    while now < start_ms + 10_000:
        fx = core.step(Tick(), now)
        if sent(fx, "request_vote"):
            return fx, now
        now += 5.0
    raise AssertionError("no election within 10 s")


def make_leader(
    n: int = 3, core: RaftProtocol | None = None
) -> tuple[RaftProtocol, float, Effects]:
    """Node 0 (or `core`) elected by peers 1..; returns core, time and the last effects."""
    core = core or make(n=n)
    fx, now = elect(core)
    term = sent(fx, "request_vote")[0][1]["term"]
    for src in range(1, core.majority):
        fx = msg(core, src, now + 1, type="vote", term=term, granted=True)
    assert core.status(now + 1)["role"] == "leader"
    return core, now + 1, fx


def ack(core: RaftProtocol, src: int, now: float, match: int, round_: int = 1) -> Effects:
    term = core.status(now)["term"]
    return msg(core, src, now, type="append_reply", term=term, round=round_, success=True,
               match=match)  # fmt: skip


# ---- configuration and registry -----------------------------------------------------------


def test_registered_under_its_name_with_its_bugs() -> None:
    assert protocol_class("raft") is RaftProtocol
    assert raft_module.BUGS == ("commit-old-term", "vote-not-persisted", "no-truncate")


def test_an_unsafe_lease_is_refused_when_the_core_is_built() -> None:
    for config in (
        ProtocolConfig(election_timeout_ms=150.0, lease_ms=140.0),  # over 150 * 0.9 / 1.1 - 5
        ProtocolConfig(heartbeat_ms=600.0),  # heartbeats slower than the election timeout
        ProtocolConfig(drift_bound=1.0),
    ):
        with pytest.raises(ValueError):
            RaftProtocol(node_id=0, n=3, rng=random.Random(1), config=config)


def test_a_single_node_elects_itself_at_its_first_tick_and_delivers_at_once() -> None:
    core = make(n=1)
    fx = core.step(ClientBroadcast(request_id=1, msg_id="m1", value=42), 0.0)
    assert fx.reply == [] and fx.persist == []  # no term before the first tick
    fx.extend(core.step(Tick(), 0.0))
    assert [(d.position, d.msg_id, d.value) for d in fx.deliver] == [(0, "m1", 42)]
    assert fx.reply[0].body == {"type": "broadcast_ok", "msg_id": "m1", "position": 0}
    kinds = [r["t"] for r in fx.persist]
    assert kinds[0] == "term" and "log" in kinds and kinds[-1] == "commit"
    status = core.status(0.0)
    assert (status["role"], status["term"], status["chosen_index"]) == ("leader", 1, 2)
    fx = core.step(ClientBroadcast(request_id=2, msg_id="m2", value=43), 1.0)
    assert fx.reply[0].body == {"type": "broadcast_ok", "msg_id": "m2", "position": 1}


def test_a_restarted_single_node_leads_again_with_a_higher_term_at_its_first_tick() -> None:
    core = make(n=1)
    records = core.step(Tick(), 0.0).persist
    records += core.step(ClientBroadcast(request_id=1, msg_id="m1", value=42), 1.0).persist
    restarted = make(n=1)
    restarted.restore(records)
    read = restarted.step(ClientRead(request_id=1, mode="local"), 0.0)
    assert read.reply[0].body["value"] == [42] and read.persist == []
    fx = restarted.step(Tick(), 5.0)
    assert fx.persist[0] == {"t": "term", "term": 2, "vote": 0}
    assert restarted.status(5.0)["role"] == "leader"


# ---- elections ----------------------------------------------------------------------------


def test_election_starts_within_one_to_two_timeouts_with_its_vote_persisted() -> None:
    for seed in range(20):
        core = make(seed=seed)
        fx, now = elect(core)
        assert 150.0 <= now <= 300.0 + 5.0
        votes = sent(fx, "request_vote")
        assert sorted(dest for dest, _ in votes) == [1, 2]
        body = {"type": "request_vote", "term": 1, "last_index": 0, "last_term": 0}
        assert all(b == body for _, b in votes)
        assert fx.persist == [{"t": "term", "term": 1, "vote": 0}]
        status = core.status(now)
        assert (status["role"], status["phase1_rounds"], status["ballot"]) == ("candidate", 1, [1])


def test_a_majority_of_votes_makes_a_leader_that_appends_a_noop_of_its_term() -> None:
    core, now, fx = make_leader()
    appends = sent(fx, "append")
    assert sorted(d for d, _ in appends) == [1, 2]
    assert all(b["entries"] == [[1, NOOP]] and b["prev_index"] == 0 for _, b in appends)
    assert {"t": "log", "from": 1, "entries": [[1, NOOP]]} in fx.persist
    status = core.status(now)
    assert (status["leader"], status["noop_index"], status["elections_won"]) == (0, 1, 1)


def test_a_voter_votes_once_per_term_and_persists_the_vote_with_the_reply() -> None:
    core = make(node=1)
    fx = msg(core, 0, 0.0, type="request_vote", term=3, last_index=0, last_term=0)
    assert sent(fx, "vote") == [(0, {"type": "vote", "term": 3, "granted": True})]
    assert fx.persist[-1] == {"t": "term", "term": 3, "vote": 0}
    fx = msg(core, 2, 1.0, type="request_vote", term=3, last_index=5, last_term=2)
    assert sent(fx, "vote") == [(2, {"type": "vote", "term": 3, "granted": False})]
    fx = msg(core, 0, 2.0, type="request_vote", term=3, last_index=0, last_term=0)
    assert sent(fx, "vote")[0][1]["granted"] is True  # a repeat of the same request


def test_a_voter_refuses_a_candidate_whose_log_is_behind() -> None:
    core = make(node=1)
    msg(core, 0, 0.0, **append(2, 0, 0, [[1, m("a")], [2, m("b")]]))
    # A candidate of the leader's own term (no vote given in it yet): only its log counts.
    fx = msg(core, 2, 1.0, type="request_vote", term=2, last_index=9, last_term=1)
    assert sent(fx, "vote")[0][1] == {"type": "vote", "term": 2, "granted": False}
    fx = msg(core, 2, 2.0, type="request_vote", term=2, last_index=2, last_term=2)
    assert sent(fx, "vote")[0][1] == {"type": "vote", "term": 2, "granted": True}


def test_a_follower_that_heard_a_leader_refuses_votes_without_taking_up_the_term() -> None:
    core = make(node=1)
    msg(core, 0, 0.0, **append(1, 0, 0, [[1, NOOP]]))
    fx = msg(core, 2, 100.0, type="request_vote", term=2, last_index=1, last_term=1)
    assert sent(fx, "vote") == [(2, {"type": "vote", "term": 1, "granted": False})]
    assert fx.persist == [] and core.status(100.0)["term"] == 1
    assert core.status(100.0)["votes_refused_sticky"] == 1


def test_a_higher_term_deposes_the_leader() -> None:
    core, now, _ = make_leader()
    fx = msg(core, 1, now + 1, type="append_reply", term=7, round=1, success=False, hint=0)
    status = core.status(now + 1)
    assert (status["role"], status["term"], status["step_downs"]) == ("follower", 7, 1)
    assert fx.persist == [{"t": "term", "term": 7, "vote": None}]


# ---- replication and commit ---------------------------------------------------------------


def test_the_leader_commits_at_a_majority_and_acks_its_client() -> None:
    core, now, _ = make_leader()
    fx = core.step(ClientBroadcast(request_id=9, msg_id="a", value="A"), now)
    assert [b["entries"] for _, b in sent(fx, "append")] == [[[1, m("a") | {"v": "A"}]]] * 2
    fx = ack(core, 1, now + 1, match=2)
    assert fx.reply[0].body == {"type": "broadcast_ok", "msg_id": "a", "position": 0}
    assert {"t": "commit", "index": 2} in fx.persist
    assert core.status(now + 1)["chosen_index"] == 2


def test_a_follower_commits_only_what_the_leader_showed_it_matches() -> None:
    core = make(node=1)
    msg(core, 0, 0.0, **append(1, 0, 0, [[1, m("a")], [1, m("stale")]]))
    # The leader commits 2 but this append covers index 1 only: index 2 may not be its.
    fx = msg(core, 0, 1.0, **append(1, 0, 0, [[1, m("a")]], commit=2))
    assert [d.msg_id for d in fx.deliver] == ["a"]
    assert sent(fx, "append_reply")[0][1]["match"] == 1
    assert core.status(1.0)["chosen_index"] == 1


def test_the_log_matching_check_refuses_and_hints_where_to_retry() -> None:
    core = make(node=1)
    msg(core, 0, 0.0, **append(1, 0, 0, [[1, m("a")], [1, m("b")], [1, m("c")]]))
    fx = msg(core, 2, 1.0, **append(3, 5, 3, []))  # we are shorter: retry after our end
    assert sent(fx, "append_reply")[0][1] == {"type": "append_reply", "term": 3, "round": 1,
                                              "success": False, "hint": 4}  # fmt: skip
    fx = msg(core, 2, 2.0, **append(3, 3, 2, []))  # term 1 there: skip the whole term
    assert sent(fx, "append_reply")[0][1]["hint"] == 1


def test_a_conflicting_suffix_is_cut_and_a_stale_append_never_shortens_the_log() -> None:
    core = make(node=1)
    msg(core, 0, 0.0, **append(1, 0, 0, [[1, m("a")], [1, m("b")], [1, m("c")]]))
    fx = msg(core, 2, 1.0, **append(2, 1, 1, [[2, m("x")]]))
    assert fx.persist[-1] == {"t": "log", "from": 2, "entries": [[2, m("x")]]}
    status = core.status(1.0)
    assert (status["last_index"], status["last_term"], status["truncations"]) == (2, 2, 1)
    fx = msg(core, 2, 2.0, **append(2, 2, 2, [[2, m("y")]]))
    fx = msg(core, 2, 3.0, **append(2, 1, 1, [[2, m("x")]]))  # a late copy of the first
    assert fx.persist == [] and core.status(3.0)["last_index"] == 3


def test_no_truncate_fixture_keeps_the_conflicting_entry() -> None:
    core = make(node=1, bugs=["no-truncate"])
    msg(core, 0, 0.0, **append(1, 0, 0, [[1, m("a")], [1, m("b")]]))
    fx = msg(core, 2, 1.0, **append(2, 1, 1, [[2, m("x")], [2, m("y")]], commit=3))
    assert fx.persist[1] == {"t": "log", "from": 3, "entries": [[2, m("y")]]}
    assert [d.msg_id for d in fx.deliver] == ["a", "b", "y"]  # b where the leader has x


def _leader_with_old_entry(bugs: Any = ()) -> tuple[RaftProtocol, float]:
    """Node 0 holds an entry of term 1 (index 1), then leads term 2 with its no-op at 2."""
    core = make(bugs=bugs)
    msg(core, 1, 0.0, **append(1, 0, 0, [[1, m("old")]]))
    _, now, _ = make_leader(core=core)
    assert core.status(now)["term"] == 2 and core.status(now)["noop_index"] == 2
    return core, now


def test_an_entry_of_an_earlier_term_is_not_committed_by_counting_replicas() -> None:
    core, now = _leader_with_old_entry()
    fx = ack(core, 2, now + 1, match=1)  # a majority holds index 1, of term 1
    assert fx.deliver == [] and core.status(now + 1)["chosen_index"] == 0
    fx = ack(core, 2, now + 2, match=2)  # the no-op of term 2 commits both
    assert [d.msg_id for d in fx.deliver] == ["old"]


def test_commit_old_term_fixture_commits_it_by_counting() -> None:
    core, now = _leader_with_old_entry(bugs=["commit-old-term"])
    fx = ack(core, 2, now + 1, match=1)
    assert [d.msg_id for d in fx.deliver] == ["old"]


def test_a_follower_behind_gets_the_log_in_batches_after_a_refusal() -> None:
    core, now, _ = make_leader()
    for k in range(3 * MAX_APPEND):
        core.step(ClientBroadcast(request_id=k, msg_id=f"c{k}", value=k), now)
    fx = msg(core, 1, now + 1, type="append_reply", term=1, round=1, success=False, hint=1)
    [(_, batch)] = [(d, b) for d, b in sent(fx, "append") if d == 1]
    assert batch["prev_index"] == 0 and len(batch["entries"]) == MAX_APPEND
    fx = ack(core, 1, now + 2, match=MAX_APPEND)
    [(_, batch)] = [(d, b) for d, b in sent(fx, "append") if d == 1]
    assert batch["prev_index"] == MAX_APPEND and len(batch["entries"]) == MAX_APPEND


# ---- clients ------------------------------------------------------------------------------


def test_followers_forward_to_the_leader_which_dedupes_by_id() -> None:
    follower = make(node=1)
    msg(follower, 0, 0.0, **append(1, 0, 0, [[1, NOOP]]))
    fx = follower.step(ClientBroadcast(request_id=4, msg_id="f", value="F"), 1.0)
    assert sent(fx, "forward") == [(0, {"type": "forward", "entries": [m("f") | {"v": "F"}]})]
    core, now, _ = make_leader()
    fx = msg(core, 1, now, type="forward", entries=[m("f")])
    again = msg(core, 1, now + 1, type="forward", entries=[m("f"), {"k": "noop"}, "junk"])
    assert len(sent(fx, "append")) == 2 and sent(again, "append") == []
    assert core.status(now + 1)["last_index"] == 2


def test_read_modes() -> None:
    core, now, _ = make_leader()
    refused = core.step(ClientRead(request_id=1, mode="lease"), now).reply[0].body
    assert refused["code"] == "no-lease"  # no majority answered yet, no-op not committed
    ack(core, 1, now + 1, match=1)  # round 1 answered by a majority: lease, no-op committed
    served = core.step(ClientRead(request_id=2, mode="lease"), now + 2).reply[0].body
    assert served == {"type": "read_ok", "mode": "lease", "value": []}
    expired = core.step(ClientRead(request_id=3, mode="lease"), now + 200).reply[0].body
    assert expired["code"] == "no-lease"
    follower = make(node=2)
    msg(follower, 0, 0.0, **append(1, 0, 0, [[1, NOOP]]))
    body = follower.step(ClientRead(request_id=4, mode="lease"), 1.0).reply[0].body
    assert (body["code"], body["leader"]) == ("not-leader", 0)
    local = follower.step(ClientRead(request_id=5, mode="local"), 1.0).reply[0].body
    assert local == {"type": "read_ok", "mode": "local", "value": []}
    fx = follower.step(ClientRead(request_id=6, mode="log"), 1.0)
    assert fx.reply == [] and sent(fx, "forward")[0][1]["entries"][0]["k"] == "read"
    bad = follower.step(ClientRead(request_id=7, mode="nope"), 1.0).reply[0].body
    assert bad["code"] == "unsupported-read-mode"


def test_a_lease_is_anchored_at_the_send_of_the_round_a_majority_answered() -> None:
    core, now, _ = make_leader()
    ack(core, 1, now + 90, match=1, round_=1)  # the answer comes late
    assert core.status(now + 90)["lease_remaining_ms"] == pytest.approx(10.0)


# ---- restart ------------------------------------------------------------------------------


def test_restore_rebuilds_term_vote_log_and_delivered_prefix_then_quarantines() -> None:
    core = make()
    fx, now = elect(core)
    records = list(fx.persist)
    records += msg(core, 1, now, type="vote", term=1, granted=True).persist
    records += core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), now).persist
    records += ack(core, 1, now + 1, match=2).persist
    records += core.step(ClientBroadcast(request_id=2, msg_id="b", value="B"), now + 2).persist
    restarted = make()
    restarted.restore([{"t": "junk"}, "junk", *records])  # type: ignore[list-item]
    status = restarted.status(0.0)
    assert (status["term"], status["voted_for"], status["role"]) == (1, 0, "follower")
    assert (status["last_index"], status["chosen_index"], status["delivered"]) == (3, 2, 1)
    local = restarted.step(ClientRead(request_id=1, mode="local"), 0.0).reply[0].body
    assert local["value"] == ["A"]
    # Whatever grant it gave before the crash is unknown: no vote for a grant period.
    fx = msg(restarted, 2, 10.0, type="request_vote", term=2, last_index=3, last_term=1)
    assert sent(fx, "vote")[0][1]["granted"] is False
    fx = msg(restarted, 2, 200.0, type="request_vote", term=2, last_index=3, last_term=1)
    assert sent(fx, "vote")[0][1]["granted"] is True


@pytest.mark.parametrize("bugs", [(), ("vote-not-persisted",)])
def test_a_restarted_voter_votes_again_in_a_term_only_with_the_fixture(bugs: Any) -> None:
    core = make(node=1, bugs=bugs)
    fx = msg(core, 0, 0.0, type="request_vote", term=4, last_index=0, last_term=0)
    assert sent(fx, "vote")[0][1]["granted"] is True
    restarted = make(node=1, bugs=bugs)
    restarted.restore(fx.persist)
    later = 1000.0  # past the quarantine
    restarted.step(Tick(), 0.0)
    fx = msg(restarted, 2, later, type="request_vote", term=4, last_index=0, last_term=0)
    assert sent(fx, "vote")[0][1]["granted"] is bool(bugs)


# ---- robustness and purity ----------------------------------------------------------------

GARBAGE: list[Any] = [None, -1, 1.5, "x", True, {}, [1], [[1]], [[0, NOOP]], [[1, {"k": 1}]]]
GOOD: dict[str, dict[str, Any]] = {
    "request_vote": {"term": 2, "last_index": 0, "last_term": 0},
    "vote": {"term": 1, "granted": True},
    "append": {"term": 1, "prev_index": 0, "prev_term": 0, "entries": [], "commit": 0, "round": 1},
    "append_reply": {"term": 1, "round": 1, "success": True, "match": 1},
}


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_garbage_bodies_are_ignored_by_every_handler(kind: str) -> None:
    good = GOOD[kind]
    for field in good:
        for junk in GARBAGE:
            if junk is True and field in ("granted", "success"):
                continue  # a valid value there
            follower = make(node=1)
            leader, now, _ = make_leader()
            for core, at_ms in ((follower, 0.0), (leader, now)):
                before = core.status(at_ms)
                fx = msg(core, 2, at_ms, **{**good, "type": kind, field: junk})
                after = core.status(at_ms)
                assert fx.send == [] and fx.persist == [] and fx.deliver == [] and fx.reply == []
                for key in ("term", "role", "last_index", "chosen_index", "voted_for"):
                    assert after[key] == before[key], (kind, field, junk, key)


def test_garbage_forwarded_entries_are_skipped_one_by_one() -> None:
    core, now, _ = make_leader()
    for junk in [None, "x", {}, 7, {"entries": [m("a")]}]:
        assert msg(core, 1, now, type="forward", entries=junk).send == []
    fx = msg(core, 1, now, type="forward", entries=[*GARBAGE, NOOP, m("b")])
    assert [b["entries"] for d, b in sent(fx, "append") if d == 1] == [[[1, m("b")]]]


def test_messages_from_unknown_sources_or_without_a_type_are_ignored() -> None:
    core = make()
    for src in (-1, 0, 3, "1", None):
        fx = core.step(PeerMessage(src=src, body={"type": "vote", "term": 1, "granted": True}), 0.0)  # type: ignore[arg-type]
        assert fx == Effects()
    assert msg(core, 1, 0.0, type="nope") == Effects()
    assert core.step(PeerMessage(src=1, body=[]), 0.0) == Effects()  # type: ignore[arg-type]


def test_the_log_merge_and_replay_agree() -> None:
    log, copy = RaftLog(), RaftLog()
    records = [log.append(1, m("a")), log.append(1, m("b"))]
    records.append(log.merge(1, [(2, m("x")), (2, m("y"))]))
    for record in records:
        assert record is not None and copy.replay(record, limit=10)
    assert copy.entries == log.entries == [(1, m("a")), (2, m("x")), (2, m("y"))]
    assert not copy.replay({"t": "log", "from": 9, "entries": []}, limit=10)


def test_status_carries_the_fields_the_harness_reads_with_their_meaning() -> None:
    core, now, _ = make_leader()
    core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), now)
    status = core.status(now)
    # quiesce.py: chosen_index, delivered, leader; observe.py and explore.py: role,
    # accepted_unchosen, lease_remaining_ms, phase1_rounds, step_downs, in_flight,
    # drift_bound; schedule_run.py and sim_run.py: ballot (a list), heartbeat_round.
    expected = {
        "protocol": "raft", "role": "leader", "leader": 0, "term": 1, "ballot": [1],
        "chosen_index": 0, "delivered": 0, "accepted_unchosen": 2, "in_flight": 2,
        "lease_remaining_ms": 0.0, "phase1_rounds": 1, "step_downs": 0, "drift_bound": 0.1,
        "heartbeat_round": 1,
    }  # fmt: skip
    assert {k: status[k] for k in expected} == expected
    ack(core, 1, now + 1, match=2)
    status = core.status(now + 1)
    assert (status["chosen_index"], status["delivered"], status["accepted_unchosen"]) == (2, 1, 0)
    assert status["lease_remaining_ms"] == pytest.approx(CFG.lease_ms - 1.0)
