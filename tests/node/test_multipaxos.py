"""Unit tests of the Multi-Paxos core, driven by hand: one core, messages fed one by one.

Simulator runs (many seeds, faults, the seeded bugs) are in test_multipaxos_sim.py.
Run: .venv/bin/python -m pytest tests/node/test_multipaxos.py -q
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tobtest.node.protocols import protocol_class
from tobtest.node.protocols.base import (
    ClientBroadcast,
    ClientRead,
    Effects,
    PeerMessage,
    ProtocolConfig,
    Tick,
)
from tobtest.node.protocols.multipaxos import MultiPaxosProtocol
from tobtest.node.protocols.multipaxos_params import lease_params
from tobtest.node.protocols.multipaxos_replica import PROMISE_BATCH

CFG = ProtocolConfig(heartbeat_ms=20.0, election_timeout_ms=150.0, lease_ms=100.0)
NOOP = {"k": "noop"}


def make(
    node: int = 0, n: int = 3, config: ProtocolConfig = CFG, seed: int = 1
) -> MultiPaxosProtocol:
    return MultiPaxosProtocol(node_id=node, n=n, rng=random.Random(seed), config=config)


def sent(fx: Effects, kind: str) -> list[tuple[int, dict[str, Any]]]:
    return [(s.dest, s.body) for s in fx.send if s.body["type"] == kind]


def msg(core: MultiPaxosProtocol, src: int, now_ms: float, **body: Any) -> Effects:
    return core.step(PeerMessage(src=src, body=body), now_ms)


def elect(core: MultiPaxosProtocol, start_ms: float = 0.0) -> tuple[Effects, float]:
    """Ticks until the core starts Phase 1; returns that step's effects and its time."""
    now = start_ms
    while now < start_ms + 10_000:
        fx = core.step(Tick(), now)
        if sent(fx, "prepare"):
            return fx, now
        now += 5.0
    raise AssertionError("no election within 10 s")


def promise(ballot: list[int], lo: int = 0, **fields: Any) -> dict[str, Any]:
    body = {"type": "promise", "ballot": ballot, "from": lo, "accepted": [], "chosen": []}
    return {**body, "max_slot": -1, **fields}


def make_leader(
    n: int = 3, config: ProtocolConfig = CFG
) -> tuple[MultiPaxosProtocol, list[int], float, Effects]:
    """Node 0 elected with empty promises; returns core, ballot, time and the last effects."""
    core = make(n=n, config=config)
    fx, now = elect(core)
    ballot = sent(fx, "prepare")[0][1]["ballot"]
    for src in range(1, n // 2 + 1):
        fx = msg(core, src, now + 1, **promise(ballot))
    assert core.status(now)["role"] == "leader"
    return core, ballot, now + 1, fx


def accepts(fx: Effects) -> dict[int, dict[str, Any]]:
    """Slot -> proposed entry, from the accept messages to node 1."""
    return {b["slot"]: b["value"] for dest, b in sent(fx, "accept") if dest == 1}


def choose(core: MultiPaxosProtocol, slot: int, ballot: list[int], now: float) -> Effects:
    """Peers 1.. accept `slot` until a majority (with the leader) has it."""
    fx = Effects()
    for src in range(1, core.majority):
        fx.extend(msg(core, src, now, type="accepted", ballot=ballot, slot=slot))
    return fx


# ---- configuration ------------------------------------------------------------------------


def test_lease_parameters_are_derived_and_checked() -> None:
    params = lease_params(ProtocolConfig())  # the defaults are safe
    assert params.grant_ms == 500.0
    assert params.max_lease_ms == pytest.approx(500.0 * 0.9 / 1.1 - 5.0)
    unsafe = [
        ProtocolConfig(election_timeout_ms=500.0, lease_ms=450.0),  # over 404 ms
        ProtocolConfig(election_timeout_ms=150.0, lease_ms=100.0, drift_bound=0.3),
        ProtocolConfig(heartbeat_ms=600.0),  # heartbeats slower than the election timeout
        ProtocolConfig(drift_bound=1.0),
        ProtocolConfig(lease_ms=0.0),
    ]
    for config in unsafe:
        with pytest.raises(ValueError):
            MultiPaxosProtocol(node_id=0, n=3, rng=random.Random(1), config=config)


def test_registered_under_its_name() -> None:
    assert protocol_class("multipaxos") is MultiPaxosProtocol


def test_a_single_node_elects_itself_and_delivers_at_once() -> None:
    core = make(n=1)
    fx = core.step(ClientBroadcast(request_id=1, msg_id="m1", value=42), 0.0)
    assert [(d.position, d.msg_id, d.value) for d in fx.deliver] == [(0, "m1", 42)]
    assert fx.reply[0].body == {"type": "broadcast_ok", "msg_id": "m1", "position": 0}
    persisted = [r["t"] for r in fx.persist]
    assert persisted[0] == "promise" and "accept" in persisted and "chosen" in persisted


# ---- election -----------------------------------------------------------------------------


def test_election_starts_within_one_to_two_timeouts_and_prepares_every_slot() -> None:
    for seed in range(20):
        core = make(seed=seed)
        fx, now = elect(core)
        assert 150.0 <= now <= 300.0 + 5.0
        prepares = sent(fx, "prepare")
        assert sorted(dest for dest, _ in prepares) == [1, 2]
        assert all(b == {"type": "prepare", "ballot": [1, 0], "from": 0} for _, b in prepares)
        assert fx.persist == [{"t": "promise", "ballot": [1, 0]}]
        status = core.status(now)
        assert (status["role"], status["phase1_rounds"], status["ballot"]) == (
            "candidate",
            1,
            [1, 0],
        )


def test_a_majority_of_promises_makes_a_leader_that_proposes_its_barrier_noop() -> None:
    core, ballot, now, fx = make_leader()
    assert accepts(fx) == {0: NOOP}
    assert [d for d, _ in sent(fx, "heartbeat")] == [1, 2]
    status = core.status(now)
    assert (status["leader"], status["noops_proposed"], status["barrier_slot"]) == (0, 1, 0)
    # New values go after the barrier with Phase 2 alone.
    fx = core.step(ClientBroadcast(request_id=7, msg_id="a", value="A"), now)
    assert accepts(fx) == {1: {"k": "msg", "id": "a", "v": "A"}} and not sent(fx, "prepare")
    choose(core, 0, ballot, now + 2)
    fx = choose(core, 1, ballot, now + 3)
    assert fx.reply[0].body == {"type": "broadcast_ok", "msg_id": "a", "position": 0}
    assert core.status(now + 3)["phase1_rounds"] == 1


def test_new_leader_adopts_highest_ballot_values_and_fills_holes_with_noops() -> None:
    core = make(n=5)
    fx, now = elect(core)
    ballot = sent(fx, "prepare")[0][1]["ballot"]
    a, b, c = ({"k": "msg", "id": x, "v": x} for x in "abc")
    msg(core, 1, now + 1, **promise(ballot, accepted=[[0, [1, 1], a], [2, [1, 1], b]], max_slot=2))
    fx = msg(core, 2, now + 2, **promise(ballot, accepted=[[0, [1, 2], c]], max_slot=0))
    assert core.status(now + 2)["role"] == "leader"
    # Slot 0: c (ballot [1, 2] beats [1, 1]); 1: a hole; 2: b; 3: the barrier.
    assert accepts(fx) == {0: c, 1: NOOP, 2: b, 3: NOOP}
    assert core.status(now + 2)["noops_proposed"] == 2
    fx = core.step(ClientBroadcast(request_id=1, msg_id="d", value="d"), now + 3)
    assert accepts(fx) == {4: {"k": "msg", "id": "d", "v": "d"}}


def test_promises_reported_chosen_are_learned_not_reproposed() -> None:
    core = make()
    fx, now = elect(core)
    ballot = sent(fx, "prepare")[0][1]["ballot"]
    x = {"k": "msg", "id": "x", "v": 1}
    fx = msg(core, 1, now + 1, **promise(ballot, chosen=[[0, x]], max_slot=0))
    assert [d.msg_id for d in fx.deliver] == ["x"]
    assert accepts(fx) == {1: NOOP}  # only the barrier


def test_phase1_asks_for_further_windows_under_the_same_ballot() -> None:
    core = make()
    fx, now = elect(core)
    ballot = sent(fx, "prepare")[0][1]["ballot"]
    fx = msg(core, 1, now + 1, **promise(ballot, max_slot=PROMISE_BATCH + 5))
    again = sent(fx, "prepare")
    assert again and all(b["from"] == PROMISE_BATCH and b["ballot"] == ballot for _, b in again)
    assert core.status(now + 1)["role"] == "candidate"
    late = {"k": "msg", "id": "late", "v": 0}
    entry = [[PROMISE_BATCH + 5, [1, 1], late]]
    fx = msg(core, 1, now + 2, **promise(ballot, PROMISE_BATCH, accepted=entry, max_slot=133))
    status = core.status(now + 2)
    assert (status["role"], status["phase1_rounds"], status["barrier_slot"]) == ("leader", 1, 134)
    assert accepts(fx)[0] == NOOP  # a window of holes, filled from the first unchosen slot


def test_acceptor_promises_once_for_all_slots_and_reports_accepted_values() -> None:
    core = make(node=1)
    value = {"k": "msg", "id": "v", "v": 5}
    fx = msg(core, 0, 0.0, type="accept", ballot=[1, 0], slot=3, value=value, commit=0)
    assert sent(fx, "accepted") == [(0, {"type": "accepted", "ballot": [1, 0], "slot": 3})]
    assert fx.persist == [{"t": "accept", "slot": 3, "ballot": [1, 0], "value": value}]
    fx = msg(core, 2, 1000.0, type="prepare", ballot=[2, 2], **{"from": 0})
    ((dest, body),) = sent(fx, "promise")
    assert dest == 2 and body["accepted"] == [[3, [1, 0], value]] and body["max_slot"] == 3
    assert fx.persist == [{"t": "promise", "ballot": [2, 2]}]
    # The promise covers every slot: an accept of the old ballot anywhere is refused.
    fx = msg(core, 0, 1001.0, type="accept", ballot=[1, 0], slot=9, value=value, commit=0)
    assert sent(fx, "nack") == [(0, {"type": "nack", "ballot": [1, 0], "promised": [2, 2]})]


def test_a_nack_makes_the_leader_step_down_and_the_next_ballot_jump_past_it() -> None:
    core, ballot, now, _ = make_leader()
    msg(core, 1, now + 1, type="nack", ballot=ballot, promised=[7, 2])
    assert core.status(now + 1)["role"] == "follower"
    fx, _ = elect(core, now + 2)
    assert all(b["ballot"] == [8, 0] for _, b in sent(fx, "prepare"))


def test_a_higher_heartbeat_deposes_the_leader() -> None:
    core, ballot, now, _ = make_leader()
    fx = msg(core, 2, now + 1, type="heartbeat", ballot=[ballot[0] + 1, 2], round=1, commit=0)
    status = core.status(now + 1)
    assert (status["role"], status["leader"], status["step_downs"]) == ("follower", 2, 1)
    assert sent(fx, "heartbeat_ack")
    # A stale leader's heartbeat is refused with the promised ballot.
    fx = msg(core, 1, now + 2, type="heartbeat", ballot=[1, 1], round=9, commit=0)
    assert sent(fx, "nack")[0][1]["promised"] == [ballot[0] + 1, 2]


# ---- forwarding ---------------------------------------------------------------------------


def test_followers_forward_to_the_leader_and_ack_once_delivered() -> None:
    core = make(node=2)
    fx = core.step(ClientBroadcast(request_id=5, msg_id="m", value="v"), 0.0)
    assert not fx.send and not fx.reply  # no leader known yet: kept pending
    entry = {"k": "msg", "id": "m", "v": "v"}
    fx = msg(core, 1, 10.0, type="heartbeat", ballot=[1, 1], round=1, commit=0)
    assert sent(fx, "forward") == [(1, {"type": "forward", "entries": [entry]})]
    forward_timeout_ms = core.params.forward_timeout_ms
    assert not sent(core.step(Tick(), 11.0), "forward")
    assert sent(core.step(Tick(), 10.0 + forward_timeout_ms), "forward")  # re-forwarded
    # A new leader gets it at once.
    fx = msg(core, 0, 200.0, type="heartbeat", ballot=[2, 0], round=1, commit=0)
    assert [d for d, _ in sent(fx, "forward")] == [0]
    fx = msg(core, 0, 201.0, type="accept", ballot=[2, 0], slot=0, value=entry, commit=0)
    assert not fx.reply  # accepted is not chosen
    fx = msg(core, 0, 210.0, type="heartbeat", ballot=[2, 0], round=2, commit=1)
    assert fx.reply[0].body == {"type": "broadcast_ok", "msg_id": "m", "position": 0}
    assert [d.msg_id for d in fx.deliver] == ["m"]
    assert core.status(210.0)["pending"] == 0
    # A duplicate broadcast of a delivered message is answered at once, not re-sent.
    fx = core.step(ClientBroadcast(request_id=6, msg_id="m", value="v"), 211.0)
    assert fx.reply[0].body["position"] == 0 and not fx.send


def test_leader_dedupes_forwarded_entries_by_id() -> None:
    core, ballot, now, _ = make_leader()
    entry = {"k": "msg", "id": "f", "v": 1}
    fx = msg(core, 1, now + 1, type="forward", entries=[entry])
    assert accepts(fx) == {1: entry}
    fx = msg(core, 2, now + 2, type="forward", entries=[entry, entry])
    assert accepts(fx) == {}


def test_a_follower_missing_a_value_catches_up() -> None:
    core = make(node=2)
    fx = msg(core, 1, 0.0, type="heartbeat", ballot=[1, 1], round=1, commit=2)
    assert sent(fx, "catchup") == [(1, {"type": "catchup", "from": 0})]
    decisions = [[0, {"k": "msg", "id": "a", "v": 1}], [1, NOOP]]
    fx = msg(core, 1, 1.0, type="decisions", decisions=decisions, more=False)
    assert [d.msg_id for d in fx.deliver] == ["a"] and core.status(1.0)["chosen_index"] == 2
    # And it answers others' catch-up requests from what it knows.
    fx = msg(core, 0, 2.0, type="catchup", **{"from": 1})
    assert sent(fx, "decisions") == [
        (0, {"type": "decisions", "decisions": [decisions[1]], "more": False})
    ]


# ---- lease --------------------------------------------------------------------------------


def test_a_granted_lease_refuses_competing_ballots_until_it_ends() -> None:
    core = make(node=0)
    grant_ms = core.params.grant_ms
    msg(core, 1, 0.0, type="heartbeat", ballot=[1, 1], round=1, commit=0)
    fx = msg(core, 2, grant_ms - 1, type="prepare", ballot=[2, 2], **{"from": 0})
    ((_, nack),) = sent(fx, "nack")
    assert nack["lease"] is True and nack["leader"] == 1 and not sent(fx, "promise")
    # No election of its own meanwhile either.
    assert not sent(core.step(Tick(), grant_ms - 1), "prepare")
    fx = msg(core, 2, grant_ms + 1, type="prepare", ballot=[2, 2], **{"from": 0})
    assert sent(fx, "promise")


def test_leader_lease_runs_from_the_send_time_of_a_majority_acked_round() -> None:
    for bugs, expected_ms in ((frozenset(), 100.0 - 40.0), (frozenset({"lease-from-ack"}), 100.0)):
        config = ProtocolConfig(
            heartbeat_ms=20.0, election_timeout_ms=150.0, lease_ms=100.0, bugs=bugs
        )
        core, ballot, now, fx = make_leader(config=config)
        (_, hb), _ = sent(fx, "heartbeat")
        assert core.status(now)["lease_remaining_ms"] == 0.0  # no ack yet
        msg(core, 1, now + 40, type="heartbeat_ack", ballot=ballot, round=hb["round"])
        assert core.status(now + 40)["lease_remaining_ms"] == pytest.approx(expected_ms)


def test_read_modes() -> None:
    core, ballot, now, fx = make_leader()
    (_, hb), _ = sent(fx, "heartbeat")
    msg(core, 1, now, type="heartbeat_ack", ballot=ballot, round=hb["round"])
    # Lease held, but the barrier no-op is not chosen yet: refused.
    fx = core.step(ClientRead(request_id=1, mode="lease"), now + 1)
    assert fx.reply[0].body["code"] == "no-lease"
    choose(core, 0, ballot, now + 2)
    fx = core.step(ClientBroadcast(request_id=2, msg_id="a", value="A"), now + 3)
    choose(core, 1, ballot, now + 4)
    fx = core.step(ClientRead(request_id=3, mode="lease"), now + 5)
    assert fx.reply[0].body == {"type": "read_ok", "mode": "lease", "value": ["A"]}
    fx = core.step(ClientRead(request_id=4, mode="lease"), now + 200)  # lease ran out
    assert fx.reply[0].body["code"] == "no-lease"
    # A log read is a marker in the log, answered once delivered; it takes no position.
    fx = core.step(ClientRead(request_id=5, mode="log"), now + 6)
    ((slot, marker),) = accepts(fx).items()
    assert marker["k"] == "read" and not fx.reply
    fx = choose(core, slot, ballot, now + 7)
    assert fx.reply[0].body == {"type": "read_ok", "mode": "log", "value": ["A"]} and not fx.deliver
    # Followers: local reads at once, lease reads refused with a leader hint.
    follower = make(node=2)
    msg(follower, 0, 0.0, type="heartbeat", ballot=[1, 0], round=1, commit=0)
    fx = follower.step(ClientRead(request_id=1, mode="lease"), 1.0)
    assert fx.reply[0].body["code"] == "not-leader" and fx.reply[0].body["leader"] == 0
    fx = follower.step(ClientRead(request_id=2, mode="local"), 1.0)
    assert fx.reply[0].body == {"type": "read_ok", "mode": "local", "value": []}
    fx = follower.step(ClientRead(request_id=3, mode="log"), 1.0)
    assert sent(fx, "forward")[0][1]["entries"][0]["k"] == "read"
    fx = follower.step(ClientRead(request_id=4, mode="bogus"), 1.0)
    assert fx.reply[0].body["code"] == "unsupported-read-mode"


# ---- restart ------------------------------------------------------------------------------


def _records() -> list[Any]:
    x = {"k": "msg", "id": "x", "v": "X"}
    return [
        {"t": "promise", "ballot": [3, 2]},
        {"t": "accept", "slot": 1, "ballot": [2, 1], "value": x},
        {"t": "chosen", "slot": 0, "value": {"k": "msg", "id": "w", "v": "W"}},
        "junk",  # ignored
        {"t": "accept", "slot": "1", "ballot": [2, 1], "value": x},  # ignored
    ]


def test_restore_rebuilds_promise_accepted_and_chosen_then_quarantines() -> None:
    core = make(node=0)
    core.restore(_records())
    fx = core.step(ClientRead(request_id=1, mode="local"), 1000.0)
    assert fx.reply[0].body["value"] == ["W"] and not fx.deliver  # re-delivered silently
    status = core.status(1000.0)
    assert (status["promised"], status["chosen_index"]) == ([3, 2], 1)
    assert status["grant_remaining_ms"] == core.params.grant_ms  # a quarantine from restart
    # The old promise holds: an accept of a lower ballot is refused.
    fx = msg(core, 2, 1001.0, type="accept", ballot=[2, 2], slot=5, value=NOOP, commit=0)
    assert sent(fx, "nack")[0][1]["promised"] == [3, 2]
    fx = msg(core, 1, 1001.0, type="prepare", ballot=[4, 1], **{"from": 1})
    assert sent(fx, "nack")[0][1]["lease"] is True
    later = 1000.0 + core.params.grant_ms
    fx = msg(core, 1, later, type="prepare", ballot=[4, 1], **{"from": 1})
    ((_, body),) = sent(fx, "promise")
    assert body["accepted"] == [[1, [2, 1], {"k": "msg", "id": "x", "v": "X"}]]


def test_forget_promise_fixture_accepts_below_its_promise_after_restart() -> None:
    config = ProtocolConfig(heartbeat_ms=20.0, election_timeout_ms=150.0, lease_ms=100.0,
                            bugs=frozenset({"forget-promise"}))  # fmt: skip
    core = make(node=0, config=config)
    core.restore(_records())
    fx = msg(core, 1, 0.0, type="accept", ballot=[2, 1], slot=5, value=NOOP, commit=0)
    assert sent(fx, "accepted")  # the correct core nacks: [2, 1] < promised [3, 2]


# ---- robustness ---------------------------------------------------------------------------


def test_malformed_peer_messages_are_ignored() -> None:
    rng = random.Random(5)
    junk: list[Any] = [None, True, -1, 1.5, "x", [], {}, [1], [1, 2, 3], [0, 0], [1, 99], {"k": 1}]
    junk += [[1, 0], 0, 3, [[0, {"k": "noop"}]], [[0, [1, 1], {"k": "noop"}]], {"k": "noop"}]
    kinds = ["prepare", "promise", "accept", "accepted", "nack", "heartbeat", "heartbeat_ack",
             "forward", "catchup", "decisions", "nope", 7]  # fmt: skip
    fields = ["ballot", "from", "slot", "value", "commit", "round", "promised", "accepted",
              "chosen", "max_slot", "entries", "decisions", "more"]  # fmt: skip
    for role in ("follower", "candidate", "leader"):
        if role == "leader":
            core = make_leader()[0]
        else:
            core = make(node=0)
            if role == "candidate":
                elect(core)
        for k in range(3000):
            body = {f: rng.choice(junk) for f in rng.sample(fields, rng.randint(0, len(fields)))}
            body["type"] = rng.choice(kinds)
            src = rng.choice([1, 2, 0, 5, -1])
            core.step(PeerMessage(src=src, body=body), 400.0 + k)  # must not raise
        core.step(PeerMessage(src=1, body="not a dict"), 9999.0)
        assert core.status(9999.0)["protocol"] == "multipaxos"


def test_a_restarted_single_node_leads_again_at_once_with_a_higher_ballot() -> None:
    first = make(n=1)
    records = first.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), 0.0).persist
    core = make(n=1)
    core.restore(records)
    fx = core.step(ClientBroadcast(request_id=2, msg_id="b", value="B"), 10.0)
    assert [(d.position, d.msg_id) for d in fx.deliver] == [(1, "b")]
    assert core.status(10.0)["ballot"] == [2, 0]
