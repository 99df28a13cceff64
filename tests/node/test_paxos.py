"""Unit tests of the per-slot Paxos core, driven by hand one event at a time."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tobtest.node.protocols.base import (
    ClientBroadcast,
    ClientRead,
    Deliver,
    Effects,
    PeerMessage,
    ProtocolConfig,
    Tick,
)
from tobtest.node.protocols.entries import SYNC_BATCH
from tobtest.node.protocols.paxos import MAX_IN_FLIGHT, PaxosProtocol


def make(node_id: int = 0, n: int = 3, bugs: tuple[str, ...] = (), **cfg: Any) -> PaxosProtocol:
    config = ProtocolConfig(bugs=frozenset(bugs), **cfg)
    return PaxosProtocol(node_id=node_id, n=n, rng=random.Random(1), config=config)


def entry(msg_id: str) -> dict[str, Any]:
    return {"k": "msg", "id": msg_id, "v": msg_id.upper()}


def peer(core: PaxosProtocol, src: int, now_ms: float = 0.0, **body: Any) -> Effects:
    return core.step(PeerMessage(src=src, body=body), now_ms)


def sent(fx: Effects, kind: str) -> list[tuple[int, dict[str, Any]]]:
    return [(s.dest, s.body) for s in fx.send if s.body["type"] == kind]


def delivered(fx: Effects) -> list[str]:
    return [d.msg_id for d in fx.deliver]


def replies(fx: Effects) -> dict[int, dict[str, Any]]:
    return {r.request_id: r.body for r in fx.reply}


def decide(core: PaxosProtocol, slot: int, value: dict[str, Any]) -> Effects:
    return peer(core, (core.node_id + 1) % core.n, type="decide", slot=slot, value=value)


def win_slot(core: PaxosProtocol, fx: Effects, src: int = 1) -> Effects:
    """Answers the prepare in `fx` with a bare promise and the accept with accepted."""
    (_, prepare), *_ = sent(fx, "prepare")
    slot, ballot = prepare["slot"], prepare["ballot"]
    fx = peer(
        core, src, type="promise", slot=slot, ballot=ballot, accepted_ballot=0, accepted_value=None
    )
    assert [b["slot"] for _, b in sent(fx, "accept")] == [slot, slot]
    return peer(core, src, type="accepted", slot=slot, ballot=ballot)


# ---- one node, and the client side ----------------------------------------------------------


def test_a_single_node_is_its_own_majority() -> None:
    core = make(n=1)
    fx = core.step(ClientBroadcast(request_id=1, msg_id="a", value=10), 0.0)
    assert fx.deliver == [Deliver(position=0, msg_id="a", value=10)]
    assert replies(fx) == {1: {"type": "broadcast_ok", "msg_id": "a", "position": 0}}
    assert [r["t"] for r in fx.persist] == ["promise", "accept", "chosen"]
    fx = core.step(ClientBroadcast(request_id=2, msg_id="b", value=20), 1.0)
    assert replies(fx)[2]["position"] == 1
    again = core.step(ClientBroadcast(request_id=3, msg_id="a", value=10), 2.0)
    assert again.deliver == [] and replies(again)[3]["position"] == 0  # delivered: at once


def test_reads_local_log_and_lease() -> None:
    core = make(n=1)
    core.step(ClientBroadcast(request_id=1, msg_id="a", value=10), 0.0)
    local = replies(core.step(ClientRead(request_id=2, mode="local"), 0.0))[2]
    assert local == {"type": "read_ok", "mode": "local", "value": [10]}
    fx = core.step(ClientRead(request_id=3, mode="log"), 0.0)
    assert replies(fx)[3] == {"type": "read_ok", "mode": "log", "value": [10]}
    assert fx.deliver == []  # a read marker takes no position...
    fx = core.step(ClientBroadcast(request_id=4, msg_id="b", value=20), 0.0)
    assert replies(fx)[4]["position"] == 1  # ...so the next message gets the next one
    for mode in ("lease", "bogus"):
        error = replies(core.step(ClientRead(request_id=5, mode=mode), 0.0))[5]
        assert (error["type"], error["code"]) == ("error", "unsupported-read-mode")
    bad = core.step(ClientBroadcast(request_id=6, msg_id=7, value=1), 0.0)
    assert replies(bad)[6]["code"] == "bad-request"


def test_ack_waits_for_delivery_and_answers_every_request_for_the_message() -> None:
    core = make()
    peer(core, 2, type="prepare", slot=0, ballot=5)  # slot 0 is busy: we propose in slot 1
    fx = core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), 0.0)
    assert {b["slot"] for _, b in sent(fx, "prepare")} == {1}
    assert core.step(ClientBroadcast(request_id=2, msg_id="a", value="A"), 0.0).send == []
    fx = win_slot(core, fx)
    assert fx.reply == [] and fx.deliver == []  # chosen, but slot 0 is still unknown
    fx = decide(core, 0, entry("z"))
    assert delivered(fx) == ["z", "a"]
    assert replies(fx) == {
        1: {"type": "broadcast_ok", "msg_id": "a", "position": 1},
        2: {"type": "broadcast_ok", "msg_id": "a", "position": 1},
    }


# ---- proposer ----------------------------------------------------------------------------------


def test_phase_one_then_phase_two_then_decide() -> None:
    core = make(node_id=0, n=3)
    fx = core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), 0.0)
    assert sent(fx, "prepare") == [(d, {"type": "prepare", "slot": 0, "ballot": 3}) for d in (1, 2)]
    fx = peer(core, 1, type="promise", slot=0, ballot=3, accepted_ballot=0, accepted_value=None)
    accept = {"type": "accept", "slot": 0, "ballot": 3, "value": {"k": "msg", "id": "a", "v": "A"}}
    assert sent(fx, "accept") == [(1, accept), (2, accept)]
    fx = peer(core, 1, type="accepted", slot=0, ballot=3)
    decision = {"type": "decide", "slot": 0, "value": accept["value"]}
    assert sent(fx, "decide") == [(1, decision), (2, decision)]
    assert delivered(fx) == ["a"] and replies(fx)[1]["position"] == 0
    status = core.status(0.0)
    assert (status["phase1_rounds"], status["chosen_index"], status["delivered"]) == (1, 1, 1)


def test_nack_makes_the_proposer_jump_past_the_promised_ballot() -> None:
    core = make(node_id=0, n=3)
    core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), 0.0)
    fx = peer(core, 1, type="nack", slot=0, ballot=3, promised=10)
    assert sent(fx, "prepare") == []  # backs off first
    fx = core.step(Tick(), 1_000.0)
    ballots = {b["ballot"] for _, b in sent(fx, "prepare")}
    assert ballots == {12}  # round 4: the first ballot of ours above 10
    assert core.status(1_000.0)["max_ballot"] == 12


def test_timeout_resends_then_retries_with_a_higher_round() -> None:
    core = make(node_id=1, n=3, proposal_timeout_ms=100.0, retry_jitter_ms=50.0)
    core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), 0.0)
    fx = core.step(Tick(), 60.0)  # half a timeout: the same ballot again, to silent peers
    assert sorted(sent(fx, "prepare"), key=lambda x: x[0]) == [
        (0, {"type": "prepare", "slot": 0, "ballot": 4}),
        (2, {"type": "prepare", "slot": 0, "ballot": 4}),
    ]
    fx = core.step(Tick(), 200.0)  # past timeout + jitter: a new round
    assert {b["ballot"] for _, b in sent(fx, "prepare")} == {7}
    assert core.status(200.0)["phase1_rounds"] == 2


def test_proposer_adopts_the_value_with_the_highest_accepted_ballot() -> None:
    core = make(node_id=0, n=5)  # a majority is 3: our own promise and two more
    fx = core.step(ClientBroadcast(request_id=1, msg_id="mine", value="M"), 0.0)
    ballot = sent(fx, "prepare")[0][1]["ballot"]
    peer(
        core, 1, type="promise", slot=0, ballot=ballot, accepted_ballot=6, accepted_value=entry("x")
    )
    fx = peer(
        core, 2, type="promise", slot=0, ballot=ballot, accepted_ballot=8, accepted_value=entry("y")
    )
    assert {b["value"]["id"] for _, b in sent(fx, "accept")} == {"y"}
    peer(core, 1, type="accepted", slot=0, ballot=ballot)
    fx = peer(core, 2, type="accepted", slot=0, ballot=ballot)
    assert delivered(fx) == ["y"] and fx.reply == []
    assert {b["slot"] for _, b in sent(fx, "prepare")} == {1}  # our own value, next slot


def test_a_majority_of_equal_accepted_ballots_is_already_chosen() -> None:
    core = make(node_id=0, n=3)
    core.step(ClientBroadcast(request_id=1, msg_id="mine", value="M"), 0.0)
    fx = peer(core, 2, type="prepare", slot=0, ballot=5)
    fx = peer(core, 2, type="accept", slot=0, ballot=5, value=entry("x"))  # we accept x at 5
    fx = core.step(Tick(), 1_000.0)  # our round times out; a new round sees x twice at 5
    ballot = sent(fx, "prepare")[0][1]["ballot"]
    fx = peer(
        core, 1, type="promise", slot=0, ballot=ballot, accepted_ballot=5, accepted_value=entry("x")
    )
    assert sent(fx, "accept") == [] and delivered(fx) == ["x"]
    assert {b["slot"] for _, b in sent(fx, "decide")} == {0}


def test_losing_a_slot_retries_the_value_in_a_later_slot() -> None:
    core = make(node_id=0, n=3)
    core.step(ClientBroadcast(request_id=1, msg_id="mine", value="M"), 0.0)
    fx = decide(core, 0, entry("other"))
    assert delivered(fx) == ["other"]
    assert {b["slot"] for _, b in sent(fx, "prepare")} == {1}
    fx = win_slot(core, fx)
    assert delivered(fx) == ["mine"]
    assert replies(fx) == {1: {"type": "broadcast_ok", "msg_id": "mine", "position": 1}}


def test_pipelining_is_bounded() -> None:
    core = make(node_id=0, n=3)
    slots = set()
    for k in range(100):
        fx = core.step(ClientBroadcast(request_id=k, msg_id=f"m{k}", value=k), 0.0)
        slots |= {b["slot"] for _, b in sent(fx, "prepare")}
    assert slots == set(range(MAX_IN_FLIGHT))
    status = core.status(0.0)
    assert (status["in_flight"], status["pending"]) == (MAX_IN_FLIGHT, 100)


# ---- acceptor ----------------------------------------------------------------------------------


def test_acceptor_promises_accepts_and_nacks() -> None:
    core = make(node_id=1, n=3)
    fx = peer(core, 2, type="prepare", slot=4, ballot=5)
    assert sent(fx, "promise") == [
        (
            2,
            {
                "type": "promise",
                "slot": 4,
                "ballot": 5,
                "accepted_ballot": 0,
                "accepted_value": None,
            },
        )
    ]
    assert fx.persist == [{"t": "promise", "slot": 4, "ballot": 5}]
    fx = peer(core, 0, type="prepare", slot=4, ballot=3)
    assert sent(fx, "nack") == [(0, {"type": "nack", "slot": 4, "ballot": 3, "promised": 5})]
    fx = peer(core, 2, type="accept", slot=4, ballot=5, value=entry("x"))
    assert sent(fx, "accepted") == [(2, {"type": "accepted", "slot": 4, "ballot": 5})]
    assert fx.persist == [{"t": "accept", "slot": 4, "ballot": 5, "value": entry("x")}]
    again = peer(core, 2, type="accept", slot=4, ballot=5, value=entry("x"))  # duplicate
    assert again.persist == [] and len(sent(again, "accepted")) == 1
    fx = peer(core, 0, type="prepare", slot=4, ballot=6)
    assert sent(fx, "promise")[0][1]["accepted_ballot"] == 5
    assert sent(fx, "promise")[0][1]["accepted_value"] == entry("x")
    fx = peer(core, 2, type="accept", slot=4, ballot=5, value=entry("x"))
    assert sent(fx, "nack") == [(2, {"type": "nack", "slot": 4, "ballot": 5, "promised": 6})]
    decide(core, 4, entry("x"))
    fx = peer(core, 0, type="prepare", slot=4, ballot=9)  # chosen: answers with the decision
    assert sent(fx, "decide") == [(0, {"type": "decide", "slot": 4, "value": entry("x")})]


# ---- learner -----------------------------------------------------------------------------------


def test_a_value_chosen_twice_is_delivered_once() -> None:
    core = make()
    assert delivered(decide(core, 0, entry("x"))) == ["x"]
    assert delivered(decide(core, 1, entry("x"))) == []
    assert delivered(decide(core, 2, {"k": "noop"})) == []
    assert delivered(decide(core, 3, entry("y"))) == ["y"]
    fx = core.step(ClientBroadcast(request_id=1, msg_id="x", value="X"), 0.0)
    assert replies(fx)[1]["position"] == 0 and fx.send == []
    assert core.status(0.0)["chosen_index"] == 4 and core.status(0.0)["delivered"] == 2


def test_a_hole_is_filled_by_a_noop_proposal_through_full_paxos() -> None:
    core = make(hole_timeout_ms=300.0)
    decide(core, 1, entry("a"))
    core.step(Tick(), 10.0)  # notices the hole under slot 1
    assert sent(core.step(Tick(), 200.0), "prepare") == []
    fx = core.step(Tick(), 320.0)
    (_, prepare), *_ = sent(fx, "prepare")
    assert prepare["slot"] == 0 and core.status(320.0)["noops_proposed"] == 1
    fx = peer(
        core,
        1,
        320.0,
        type="promise",
        slot=0,
        ballot=prepare["ballot"],
        accepted_ballot=4,
        accepted_value=entry("b"),
    )
    assert {b["value"]["id"] for _, b in sent(fx, "accept")} == {"b"}  # re-chosen, not noop
    fx = peer(core, 1, 320.0, type="accepted", slot=0, ballot=prepare["ballot"])
    assert delivered(fx) == ["b", "a"]


def test_a_noop_fills_an_empty_hole_and_takes_no_position() -> None:
    core = make(hole_timeout_ms=300.0)
    decide(core, 1, entry("a"))
    core.step(Tick(), 0.0)
    fx = win_slot(core, core.step(Tick(), 400.0))
    assert fx.deliver == [Deliver(position=0, msg_id="a", value="A")]


def test_a_log_read_is_answered_in_log_order() -> None:
    core = make()
    peer(core, 2, type="prepare", slot=0, ballot=5)  # slot 0 is busy: the read goes to slot 1
    fx = win_slot(core, core.step(ClientRead(request_id=7, mode="log"), 0.0))
    assert fx.reply == []  # the read marker is chosen, but slot 0 is not known yet
    decide(core, 2, entry("c"))  # after the read: not in its answer
    fx = decide(core, 0, entry("a"))
    assert replies(fx) == {7: {"type": "read_ok", "mode": "log", "value": ["A"]}}
    assert delivered(fx) == ["a", "c"]


def test_sync_is_sent_every_interval_and_answered_in_batches() -> None:
    core = make(sync_interval_ms=100.0)
    assert [d for d, _ in sent(core.step(Tick(), 0.0), "sync")] == [1, 2]
    assert sent(core.step(Tick(), 50.0), "sync") == []
    assert len(sent(core.step(Tick(), 100.0), "sync")) == 2
    for slot in range(SYNC_BATCH + 44):
        decide(core, slot, entry(f"m{slot}"))
    fx = peer(core, 1, type="sync", next=0, max_chosen=-1)
    (dest, body), *_ = sent(fx, "decisions")
    assert (dest, len(body["decisions"]), body["more"]) == (1, SYNC_BATCH, True)
    body = sent(peer(core, 1, type="sync", next=SYNC_BATCH, max_chosen=-1), "decisions")[0][1]
    assert (len(body["decisions"]), body["more"]) == (44, False)
    assert sent(peer(core, 1, type="sync", next=SYNC_BATCH + 44), "decisions") == []

    laggard = make(node_id=1)
    fx = peer(
        laggard, 0, type="decisions", decisions=json.loads(json.dumps(body["decisions"])), more=True
    )
    assert fx.deliver == []  # slots below the batch are still unknown
    assert sent(fx, "sync") == [(0, {"type": "sync", "next": 0, "max_chosen": SYNC_BATCH + 43})]
    fx = peer(laggard, 2, type="sync", next=5)  # a peer knows more: ask it at once
    assert [d for d, _ in sent(fx, "sync")] == [2]


# ---- restore -----------------------------------------------------------------------------------


def test_restore_rebuilds_acceptor_state_and_chosen_slots() -> None:
    first = make(node_id=1)
    records = []
    records += peer(first, 0, type="prepare", slot=0, ballot=3).persist
    records += peer(first, 0, type="accept", slot=0, ballot=3, value=entry("a")).persist
    records += decide(first, 1, entry("b")).persist
    records += peer(first, 2, type="prepare", slot=2, ballot=5).persist
    again = make(node_id=1)
    again.restore(records + [{"t": "chosen"}, "junk", {"t": "accept", "slot": -1}])
    promise = sent(peer(again, 2, type="prepare", slot=0, ballot=4), "promise")[0][1]
    assert (promise["accepted_ballot"], promise["accepted_value"]) == (3, entry("a"))
    assert sent(peer(again, 0, type="prepare", slot=2, ballot=3), "nack")[0][1]["promised"] == 5
    assert sent(peer(again, 0, type="prepare", slot=1, ballot=9), "decide")
    status = again.status(0.0)
    assert (status["delivered"], status["chosen_index"], status["max_chosen_slot"]) == (0, 0, 1)


def test_restore_counts_the_chosen_prefix_as_delivered() -> None:
    first = make(node_id=1)
    records = decide(first, 0, entry("a")).persist + decide(first, 1, entry("b")).persist
    records += decide(first, 2, {"k": "noop"}).persist + decide(first, 3, entry("a")).persist
    again = make(node_id=1)
    again.restore(records)
    fx = again.step(ClientRead(request_id=1, mode="local"), 0.0)
    assert fx.deliver == [] and replies(fx)[1]["value"] == ["A", "B"]
    assert replies(again.step(ClientBroadcast(2, "b", "B"), 0.0))[2]["position"] == 1
    assert delivered(decide(again, 4, entry("c"))) == ["c"]
    assert again.status(0.0)["delivered"] == 3


# ---- seeded bugs -------------------------------------------------------------------------------


def test_ack_on_choose_bug_acks_before_delivery() -> None:
    for bugs, acked_early in (((), False), (("ack-on-choose",), True)):
        core = make(bugs=bugs)
        peer(core, 2, type="prepare", slot=0, ballot=5)
        fx = win_slot(core, core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), 0.0))
        assert fx.deliver == [] and (1 in replies(fx)) == acked_early


def test_deliver_on_arrival_bug_delivers_out_of_slot_order() -> None:
    for bugs, order in (((), ["a", "b"]), (("deliver-on-arrival",), ["b", "a"])):
        core = make(bugs=bugs)
        fx = decide(core, 1, entry("b"))
        fx.extend(decide(core, 0, entry("a")))
        assert delivered(fx) == order


def test_no_dedupe_bug_delivers_a_value_chosen_twice_twice() -> None:
    core = make(bugs=("no-dedupe",))
    fx = decide(core, 0, entry("x"))
    fx.extend(decide(core, 1, entry("x")))
    assert [(d.position, d.msg_id) for d in fx.deliver] == [(0, "x"), (1, "x")]


# ---- robustness and purity ---------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
SLOTS = st.integers(-1, 3) | JSON
ENTRIES = (
    st.builds(entry, st.sampled_from(["a", "b"]))
    | st.just({"k": "noop"})
    | st.just({"k": "read", "id": "r"})
    | JSON
)
PEER_TYPES = ["prepare", "promise", "accept", "accepted", "nack", "decide", "sync", "decisions"]
BODIES = st.fixed_dictionaries(
    {"type": st.sampled_from([*PEER_TYPES, "bogus"]) | JSON},
    optional={
        "slot": SLOTS,
        "ballot": st.integers(-1, 12) | JSON,
        "promised": st.integers(-1, 40) | JSON,
        "accepted_ballot": st.integers(-1, 12) | JSON,
        "accepted_value": ENTRIES,
        "value": ENTRIES,
        "next": SLOTS,
        "decisions": st.lists(st.lists(SLOTS | ENTRIES, max_size=3), max_size=3) | JSON,
        "more": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3) | JSON, BODIES | JSON), max_size=12))
def test_malformed_peer_messages_are_ignored_without_raising(messages: list[Any]) -> None:
    core = make(node_id=0, n=3)
    core.step(ClientBroadcast(request_id=1, msg_id="a", value="A"), 0.0)
    core.step(ClientRead(request_id=2, mode="log"), 0.0)
    for k, (src, body) in enumerate(messages):
        fx = core.step(PeerMessage(src=src, body=body), float(k))
        json.dumps([s.body for s in fx.send] + fx.persist)  # whatever comes out is JSON
    core.step(Tick(), 10_000.0)
    assert core.status(10_000.0)["protocol"] == "paxos"


def test_messages_from_unknown_sources_are_ignored() -> None:
    core = make(node_id=0, n=3)
    for src in (-1, 0, 3, "1", None):
        fx = core.step(PeerMessage(src=src, body={"type": "prepare", "slot": 0, "ballot": 5}), 0.0)
        assert fx == Effects()


def test_status_reports_the_documented_fields() -> None:
    status = make(node_id=2).status(0.0)
    for key in ("phase1_rounds", "chosen_index", "delivered", "pending", "noops_proposed"):
        assert status[key] == 0
    assert (status["protocol"], status["role"], status["node"]) == ("paxos", "proposer", 2)
    assert status["max_ballot"] == 0
