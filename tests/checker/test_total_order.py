"""The total-order checker, kind by kind, then against simulated correct TOB runs."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.helpers.history_builder import HistoryBuilder
from tests.helpers.tob_sim import simulate_tob
from tobtest.checker.total_order import check
from tobtest.histories.op import Op, pair_ops

NODES = ("n1", "n2", "n3")


def finals(h: HistoryBuilder, value: list, nodes=NODES) -> None:
    h.final_reads(100, {n: list(value) for n in nodes})


def two_acked() -> HistoryBuilder:
    """1 then 2, each acked before the next is invoked."""
    h = HistoryBuilder()
    h.broadcast(0, 1, "n1", position=0)
    h.broadcast(1, 2, "n2", position=1)
    return h


def kinds(h: HistoryBuilder, **opts) -> list[str]:
    return check(h.ops, **opts)["anomaly_types"]


def test_a_correct_history_is_valid_and_counted():
    h = two_acked()
    p = h.invoke(2, "broadcast", 3, node="n3")
    h.info(p)
    p = h.invoke(3, "broadcast", 4, node="n1")
    h.fail(p)
    p = h.invoke(4, "broadcast", 5, node="n2")  # never completes: indeterminate
    h.nemesis("start-partition", {"n1": ["n2"]})
    h.read(6, "n1", [1], read_mode="local")
    h.read(6, "n1", [1, 2], read_mode="log")
    finals(h, [1, 2, 3])
    result = check(h.ops)
    assert result["valid"] is True, result
    assert result["anomalies"] == {} and result["anomaly_types"] == []
    counts = result["counts"]
    assert counts["broadcasts"] == 5
    assert (counts["broadcasts_ok"], counts["broadcasts_fail"], counts["broadcasts_info"]) == (
        2,
        1,
        2,
    )
    assert (counts["reads"], counts["reads_ok"], counts["final_reads"]) == (5, 5, 3)
    assert counts["delivered_values"] == 3
    assert counts["acked_in_final_reads"] == 2
    assert counts["info_delivered"] == 1


def test_incompatible_order_names_both_reads():
    h = two_acked()
    a = h.read(5, "n2", [2, 1])
    b = h.read(6, "n3", [1, 2])
    finals(h, [1, 2])
    result = check(h.ops)
    assert result["valid"] is False
    [anomaly] = result["anomalies"]["incompatible-order"]
    assert a.index in anomaly["ops"] and b.index in anomaly["ops"]
    assert anomaly["position"] == 0
    assert "n2" in anomaly["explanation"] and "n3" in anomaly["explanation"]
    assert "[2, 1]" in anomaly["explanation"]


def test_incompatible_order_is_witnessed_by_the_shortest_conflicting_read():
    h = HistoryBuilder()
    for v in range(4):
        h.broadcast(v, v, "n1")
    h.read(5, "n1", [0])  # agrees with everyone
    short = h.read(5, "n1", [0, 1])
    h.read(5, "n1", [0, 1, 2])
    odd = h.read(6, "n2", [0, 2, 1])
    finals(h, [0, 1, 2, 3])
    [anomaly] = check(h.ops)["anomalies"]["incompatible-order"]
    assert {short.index, odd.index} <= set(anomaly["ops"])


def test_a_strict_prefix_is_not_incompatible():
    h = two_acked()
    h.read(5, "n3", [1])
    finals(h, [1, 2])
    assert check(h.ops)["valid"] is True


def test_duplicate_within_one_read():
    h = two_acked()
    h.read(5, "n2", [1, 2, 1])
    finals(h, [1, 2])
    result = check(h.ops)
    assert "duplicate" in result["anomaly_types"]
    assert result["anomalies"]["duplicate"][0]["value"] == 1


def test_duplicate_in_the_longest_read_is_pinned_on_the_first_read_showing_it():
    h = two_acked()
    h.read(5, "n2", [1, 2])
    first = h.read(5, "n2", [1, 2, 2])
    h.read(5, "n2", [1, 2, 2, 1])
    finals(h, [1, 2, 2, 1])
    [dup_1, dup_2] = sorted(check(h.ops)["anomalies"]["duplicate"], key=lambda a: a["value"])
    assert first.index in dup_2["ops"]
    assert dup_1["value"] == 1


def test_phantom_value_never_broadcast():
    h = two_acked()
    finals(h, [1, 2, 99])
    result = check(h.ops)
    assert result["anomaly_types"] == ["phantom"]
    assert "99" in result["anomalies"]["phantom"][0]["explanation"]


def test_future_read_returns_a_value_before_its_broadcast_was_invoked():
    h = HistoryBuilder()
    early = h.read(5, "n1", [1])
    h.broadcast(0, 1, "n1")
    finals(h, [1])
    result = check(h.ops)
    assert result["anomaly_types"] == ["future-read"]
    assert early.index in result["anomalies"]["future-read"][0]["ops"]


def test_a_read_concurrent_with_the_broadcast_may_see_it():
    h = HistoryBuilder()
    p = h.invoke(0, "broadcast", 1, node="n1")
    h.read(5, "n1", [1])
    h.ok(p, position=0)
    finals(h, [1])
    assert check(h.ops)["valid"] is True


def test_failed_broadcast_that_was_delivered():
    h = two_acked()
    p = h.invoke(2, "broadcast", 3, node="n3")
    h.fail(p)
    finals(h, [1, 2, 3])
    assert kinds(h) == ["failed-delivered"]


def test_lost_acked_broadcast_is_explained_with_its_ack_time():
    h = HistoryBuilder(step_ns=100_000_000)
    h.broadcast(0, 16, "n1")
    h.sleep(2_900_000_000)  # so 17 is invoked at 3.1 s and acked at 3.2 s
    h.broadcast(1, 17, "n2")
    h.final_reads(100, {"n1": [16], "n2": [16, 17], "n3": [16, 17]})
    result = check(h.ops)
    assert "lost" in result["anomaly_types"]
    [lost] = result["anomalies"]["lost"]
    assert lost["explanation"] == (
        "broadcast 17 was acked at 3.200 s and is missing from n1's final read"
    )
    assert lost["value"] == 17 and lost["nodes"] == ["n1"]


def lagging_final(h: HistoryBuilder, node: str, value: list, caught_up: bool | None) -> None:
    """A final read of `node`, marked by the runner as caught up or not (None: unmarked)."""
    mark = {} if caught_up is None else {"caught_up": caught_up}
    if caught_up is False:
        mark |= {"behind_by": 7, "node_status": {"role": "follower", "leader": None}}
    p = h.invoke(103, "read", None, node=node, read_mode="local", final=True, **mark)
    h.ok(p, value)


def test_a_lagging_node_is_one_not_caught_up_anomaly_not_a_lost_per_broadcast():
    h = two_acked()
    h.broadcast(2, 3, "n1", position=2)
    h.final_reads(100, {"n1": [1, 2, 3], "n2": [1, 2, 3]})
    lagging_final(h, "n3", [1], caught_up=False)
    result = check(h.ops)
    assert result["valid"] is False and result["anomaly_types"] == ["not-caught-up"]
    [anomaly] = result["anomalies"]["not-caught-up"]
    assert anomaly["node"] == "n3" and anomaly["missing"] == 2
    assert anomaly["missing_values"] == [2, 3] and anomaly["behind_by"] == 7
    assert anomaly["status"] == {"role": "follower", "leader": None}
    assert "liveness failure" in anomaly["explanation"] and "(7 behind)" in anomaly["explanation"]
    assert result["counts"]["final_reads_not_caught_up"] == 1


def test_the_same_read_unmarked_or_marked_caught_up_is_lost():
    for caught_up in (None, True):
        h = two_acked()
        h.broadcast(2, 3, "n1", position=2)
        h.final_reads(100, {"n1": [1, 2, 3], "n2": [1, 2, 3]})
        lagging_final(h, "n3", [1], caught_up=caught_up)
        result = check(h.ops)
        assert result["anomaly_types"] == ["lost"], caught_up
        assert result["counts"]["anomalies"] == {"lost": 2}


def test_a_broadcast_no_caught_up_final_read_holds_is_still_lost():
    # 3 is missing from n2's final read too, and n2 had caught up: the lag excuses nothing.
    h = two_acked()
    h.broadcast(2, 3, "n1", position=2)
    h.final_reads(100, {"n1": [1, 2, 3], "n2": [1, 2]})
    lagging_final(h, "n3", [1], caught_up=False)
    result = check(h.ops)
    assert result["anomaly_types"] == ["lost", "not-caught-up"]
    [lost] = result["anomalies"]["lost"]
    assert lost["value"] == 3 and lost["nodes"] == ["n2", "n3"]
    [lag] = result["anomalies"]["not-caught-up"]
    assert lag["missing_values"] == [2]


def test_when_every_final_read_lags_nothing_excuses_a_missing_broadcast():
    h = two_acked()
    lagging_final(h, "n1", [1], caught_up=False)
    assert kinds(h) == ["lost"]


def test_info_and_failed_broadcasts_may_be_missing_from_final_reads():
    h = two_acked()
    p = h.invoke(2, "broadcast", 3, node="n3")
    h.info(p)
    p = h.invoke(3, "broadcast", 4, node="n3")
    h.fail(p)
    finals(h, [1, 2])
    assert check(h.ops)["valid"] is True


def test_without_a_final_read_lost_cannot_be_ruled_out():
    h = two_acked()
    h.read(5, "n1", [1, 2])
    result = check(h.ops)
    assert result["valid"] == "unknown"
    assert "final read" in result["reasons"][0]
    assert check(h.ops, require_final_read=False)["valid"] is True


def test_a_failed_final_read_does_not_count_as_one():
    h = two_acked()
    p = h.invoke(5, "read", None, node="n1", read_mode="local")
    h.fail(p, final=True)
    assert check(h.ops)["valid"] == "unknown"


def test_other_anomalies_make_it_false_even_without_final_reads():
    h = two_acked()
    h.read(5, "n1", [2, 1])
    h.read(5, "n2", [1, 2])
    assert check(h.ops)["valid"] is False


def test_nonmonotonic_read_on_one_node():
    h = two_acked()
    first = h.read(5, "n1", [1, 2])
    second = h.read(5, "n1", [1])
    finals(h, [1, 2])
    result = check(h.ops)
    assert result["anomaly_types"] == ["nonmonotonic"]
    assert {first.index, second.index} <= set(result["anomalies"]["nonmonotonic"][0]["ops"])


def test_overlapping_reads_on_one_node_may_come_back_in_any_order():
    h = two_acked()
    a = h.invoke(5, "read", None, node="n1", read_mode="local")
    b = h.invoke(6, "read", None, node="n1", read_mode="local")
    h.ok(a, [1, 2])
    h.ok(b, [1])
    finals(h, [1, 2])
    assert check(h.ops)["valid"] is True


def test_a_shorter_read_on_another_node_is_not_nonmonotonic():
    h = two_acked()
    h.read(5, "n1", [1, 2])
    h.read(5, "n3", [1])
    finals(h, [1, 2])
    assert check(h.ops)["valid"] is True


def test_realtime_acked_first_must_be_ordered_first():
    h = two_acked()
    finals(h, [2, 1])
    # The acks' positions contradict the finals too; this test is about real time alone.
    result = check(h.ops, ack_contract=False)
    assert result["anomaly_types"] == ["realtime"]
    [anomaly] = result["anomalies"]["realtime"]
    assert anomaly["values"] == [1, 2]
    assert anomaly["ops"] == [0, 1, 2]


def test_concurrent_broadcasts_may_be_ordered_either_way():
    h = HistoryBuilder()
    p1 = h.invoke(0, "broadcast", 1, node="n1")
    p2 = h.invoke(1, "broadcast", 2, node="n2")
    h.ok(p1, position=1)
    h.ok(p2, position=0)
    finals(h, [2, 1])
    assert check(h.ops)["valid"] is True


@pytest.mark.parametrize("mode", ["log", "lease"])
def test_stale_linearizable_read_lacks_an_acked_broadcast(mode):
    h = two_acked()
    stale = h.read(5, "n3", [1], read_mode=mode)
    finals(h, [1, 2])
    result = check(h.ops)
    assert result["anomaly_types"] == ["stale-read"]
    [anomaly] = result["anomalies"]["stale-read"]
    assert anomaly["value"] == 2 and stale.index in anomaly["ops"]


def test_stale_local_read_is_fine():
    h = two_acked()
    h.read(5, "n3", [1], read_mode="local")
    finals(h, [1, 2])
    assert check(h.ops)["valid"] is True


def test_linearizable_read_shorter_than_an_earlier_one_is_stale():
    h = HistoryBuilder()
    p1 = h.invoke(0, "broadcast", 1, node="n1")
    p2 = h.invoke(1, "broadcast", 2, node="n1")
    h.read(5, "n1", [1, 2], read_mode="log")
    h.read(6, "n2", [1], read_mode="lease")
    h.ok(p1)
    h.ok(p2)
    finals(h, [1, 2])
    result = check(h.ops)
    assert result["anomaly_types"] == ["stale-read"]
    assert "shorter" in result["anomalies"]["stale-read"][0]["explanation"]


def test_stale_read_is_found_in_a_read_that_also_disagrees():
    h = two_acked()
    h.read(5, "n3", [9, 1], read_mode="log")  # lacks 2, and disagrees with everyone
    finals(h, [1, 2])
    assert {"stale-read", "incompatible-order", "phantom"} <= set(kinds(h))


def test_anomalies_are_capped_with_true_totals():
    h = HistoryBuilder()
    for v in range(30):
        h.broadcast(v, v, "n1")
    finals(h, [], nodes=["n1"])
    result = check(h.ops, anomaly_limit=5)
    assert len(result["anomalies"]["lost"]) == 5
    assert result["counts"]["anomalies"]["lost"] == 30


def test_nemesis_and_other_ops_are_ignored():
    h = two_acked()
    h.nemesis("kill", ["n2"])
    p = h.invoke(4, "txn", [["append", 1, 2]], node="n1")
    h.ok(p)
    finals(h, [1, 2])
    result = check(h.ops)
    assert result["valid"] is True
    assert result["counts"]["ignored_ops"] == 2


def test_op_dicts_are_accepted_like_ops():
    h = two_acked()
    finals(h, [2, 1])
    assert kinds(h) == check([op.to_dict() for op in h.ops])["anomaly_types"]


def _replace(op: Op, **changes) -> Op:
    return Op.from_dict(op.to_dict() | changes)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda ops: ops + [{"index": 99, "type": "ok"}],  # missing fields
        lambda ops: ops + ["not an op"],
        lambda ops: ops[:-1] + [_replace(ops[-1], value=None)],  # read value not a list
        lambda ops: ops[:-1] + [_replace(ops[-1], value=[[1], 2])],  # unhashable read value
        lambda ops: ops + [_replace(ops[0], index=99, process=42)],  # repeated broadcast
        lambda ops: ops + [_replace(ops[1], index=99, process=43)],  # ok with no invoke
        lambda ops: ops + [_replace(ops[0], index=99, value=[1])],  # unhashable broadcast
        lambda ops: ops[:1] + [_replace(ops[1], f="read")] + ops[2:],  # completes other f
    ],
)
def test_malformed_ops_are_reported_and_make_the_verdict_unknown(mangle):
    h = two_acked()
    finals(h, [1, 2])
    result = check(mangle(list(h.ops)))
    assert result["valid"] == "unknown"
    assert "malformed" in result["anomaly_types"]
    assert "malformed" in result["reasons"][0]


def test_malformed_ops_do_not_hide_real_anomalies():
    h = two_acked()
    h.read(5, "n1", [1, 2, 1])
    finals(h, [1, 2])
    result = check([*h.ops, "junk"])
    assert result["valid"] is False
    assert {"malformed", "duplicate"} <= set(result["anomaly_types"])


def test_empty_history_is_unknown():
    assert check([])["valid"] == "unknown"


# ---- against simulated correct TOB runs -----------------------------------------------------

SIM = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def correct_runs(draw, max_steps: int = 120) -> list[Op]:
    rng = draw(st.randoms(use_true_random=False))
    steps = draw(st.integers(min_value=0, max_value=max_steps))
    processes = draw(st.integers(min_value=1, max_value=6))
    return simulate_tob(rng, steps, processes=processes)


def ok_reads(ops: list[Op], final: bool | None = None) -> list[int]:
    """Positions of ok reads (optionally only final or only non-final ones)."""
    return [
        i
        for i, op in enumerate(ops)
        if op.f == "read"
        and op.type == "ok"
        and (final is None or bool(op.extra.get("final")) == final)
    ]


def with_read_value(ops: list[Op], i: int, value: list) -> list[Op]:
    return [*ops[:i], dataclasses.replace(ops[i], value=value), *ops[i + 1 :]]


@SIM
@given(correct_runs())
def test_a_correct_tob_always_passes(ops):
    result = check(ops)
    assert result["valid"] is True, result["anomalies"]
    assert result["counts"]["acked_in_final_reads"] == result["counts"]["broadcasts_ok"]


@SIM
@given(correct_runs(), st.data())
def test_swapping_two_values_in_one_read_breaks_the_order(ops, data):
    candidates = [i for i in ok_reads(ops) if len(ops[i].value) >= 2]
    assume(candidates)
    i = data.draw(st.sampled_from(candidates))
    value = list(ops[i].value)
    a, b = sorted(
        data.draw(st.lists(st.sampled_from(range(len(value))), min_size=2, max_size=2, unique=True))
    )
    value[a], value[b] = value[b], value[a]
    # Every node's final read holds the whole order, so some read always disagrees.
    assert "incompatible-order" in check(with_read_value(ops, i, value))["anomaly_types"]


@SIM
@given(correct_runs(), st.data())
def test_dropping_an_acked_value_from_a_final_read_is_lost(ops, data):
    acked = {op.value for op in ops if op.f == "broadcast" and op.type == "ok"}
    assume(acked)
    i = data.draw(st.sampled_from(ok_reads(ops, final=True)))
    gone = data.draw(st.sampled_from(sorted(acked)))
    value = [v for v in ops[i].value if v != gone]
    assert "lost" in check(with_read_value(ops, i, value))["anomaly_types"]


@SIM
@given(correct_runs(), st.data())
def test_duplicating_a_value_in_a_read_is_flagged(ops, data):
    candidates = [i for i in ok_reads(ops) if ops[i].value]
    assume(candidates)
    i = data.draw(st.sampled_from(candidates))
    value = list(ops[i].value)
    copy = data.draw(st.sampled_from(value))
    value.insert(data.draw(st.integers(min_value=0, max_value=len(value))), copy)
    assert "duplicate" in check(with_read_value(ops, i, value))["anomaly_types"]


# ---- against a brute-force oracle, on mutated runs -----------------------------------------


def oracle_kinds(ops: list[Op]) -> set[str]:
    """Each kind straight from its definition, pair by pair: quadratic, and obviously so.

    Happens-before is op index order (the simulator's indices are positions). The order for
    `realtime` is the longest read's, as in the checker (the first of the longest, by index).
    """
    pairs = [(inv, done) for inv, done in pair_ops(ops) if done is not None]
    bcasts = {inv.value: (inv, done) for inv, done in pair_ops(ops) if inv.f == "broadcast"}
    reads = [(i, d) for i, d in pairs if i.f == "read" and d.type == "ok"]
    acked = [(i, d) for i, d in pairs if i.f == "broadcast" and d.type == "ok"]
    found: set[str] = set()

    def prefix(a: list, b: list) -> bool:
        return b[: len(a)] == a

    for _, r in reads:
        if len(set(r.value)) < len(r.value):
            found.add("duplicate")
        for v in r.value:
            if v not in bcasts:
                found.add("phantom")
            else:
                inv, done = bcasts[v]
                if r.index < inv.index:
                    found.add("future-read")
                if done is not None and done.type == "fail":
                    found.add("failed-delivered")
    for _, r in reads:
        for _, s in reads:
            if not prefix(r.value, s.value) and not prefix(s.value, r.value):
                found.add("incompatible-order")
    for ri, r in reads:
        for _, e in reads:
            if ri.node == e.node and e.index < ri.index and not prefix(e.value, r.value):
                found.add("nonmonotonic")
    for ri, r in reads:
        if ri.extra.get("read_mode") not in ("log", "lease"):
            continue
        if any(d.index < ri.index and i.value not in r.value for i, d in acked):
            found.add("stale-read")
        for ei, e in reads:
            lin = ei.extra.get("read_mode") in ("log", "lease")
            if lin and e.index < ri.index and len(r.value) < len(e.value):
                found.add("stale-read")
    finals = [r for i, r in reads if r.extra.get("final")]
    if any(i.value not in f.value for i, _ in acked for f in finals):
        found.add("lost")
    if reads:
        longest = max(len(r.value) for _, r in reads)
        ref = next(r.value for _, r in reads if len(r.value) == longest)
        where = {v: ref.index(v) for v in ref}
        for a_inv, a_ok in acked:
            for b_inv, _ in bcasts.values():
                ordered = a_inv.value in where and b_inv.value in where
                if ordered and a_ok.index < b_inv.index and where[b_inv.value] < where[a_inv.value]:
                    found.add("realtime")
    return found


def mutate(ops: list[Op], rng: random.Random) -> list[Op]:
    """One random corruption of the kind a buggy TOB or a buggy runner could produce."""
    ops = list(ops)
    reads = ok_reads(ops)
    i = rng.choice(reads)
    value = list(ops[i].value)
    how = rng.randrange(7)
    if how == 0 and len(value) >= 2:  # swap two neighbours
        k = rng.randrange(len(value) - 1)
        value[k], value[k + 1] = value[k + 1], value[k]
    elif how == 1 and value:  # drop one
        del value[rng.randrange(len(value))]
    elif how == 2 and value:  # duplicate one
        value.insert(rng.randrange(len(value) + 1), rng.choice(value))
    elif how == 3:  # a value nobody broadcast
        value.insert(rng.randrange(len(value) + 1), -1)
    elif how == 4:  # lose a suffix
        value = value[: rng.randrange(len(value) + 1)]
    elif how == 5:  # swap two values everywhere: consistent, but maybe against real time
        universe = sorted({v for j in reads for v in ops[j].value})
        if len(universe) < 2:
            return ops
        x, y = rng.sample(universe, 2)
        swap = {x: y, y: x}
        for j in reads:
            ops[j] = dataclasses.replace(ops[j], value=[swap.get(v, v) for v in ops[j].value])
        return ops
    else:  # an ack that turns into a fail
        oks = [j for j, op in enumerate(ops) if op.f == "broadcast" and op.type == "ok"]
        if oks:
            j = rng.choice(oks)
            ops[j] = dataclasses.replace(ops[j], type="fail")
        return ops
    ops[i] = dataclasses.replace(ops[i], value=value)
    return ops


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    correct_runs(max_steps=80),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=3),
)
def test_mutated_runs_get_the_kinds_a_brute_force_oracle_finds(ops, rng, n_mutations):
    for _ in range(n_mutations):
        ops = mutate(ops, rng)
    # The oracle knows the kinds that need no ack positions.
    got = set(check(ops, ack_contract=False)["anomaly_types"])
    expected = oracle_kinds(ops)
    # nonmonotonic compares a read with the longest earlier read of its node only, which is
    # exact unless that node's reads also disagree among themselves (incompatible-order).
    if "incompatible-order" in expected:
        got.discard("nonmonotonic")
        expected.discard("nonmonotonic")
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "index": st.integers(0, 5),
                "time_ns": st.integers(0, 5),
                "type": st.sampled_from(["invoke", "ok", "fail", "info", "odd"]),
                "process": st.one_of(st.integers(0, 3), st.just("nemesis"), st.none()),
                "f": st.sampled_from(["broadcast", "read", "txn"]),
                "value": st.recursive(
                    st.one_of(st.none(), st.integers(0, 4), st.text(max_size=2)),
                    lambda inner: st.lists(inner, max_size=4),
                    max_leaves=8,
                ),
                "node": st.one_of(st.sampled_from(NODES), st.none(), st.integers(0, 2)),
                "read_mode": st.sampled_from(["local", "log", "lease", "other"]),
                "final": st.booleans(),
            },
        ),
        max_size=30,
    )
)
def test_junk_never_crashes_the_checker(entries):
    result = check(entries)
    assert result["valid"] in (True, False, "unknown")
    assert result["anomaly_types"] == sorted(result["counts"]["anomalies"])


def test_a_50k_op_run_checks_in_well_under_a_few_seconds():
    ops = simulate_tob(random.Random(50), steps=200_000, read_weight=0.01)
    assert len(ops) > 45_000
    started = time.perf_counter()
    result = check(ops)
    elapsed_s = time.perf_counter() - started
    assert result["valid"] is True
    # Generous for a shared 2-core machine; a quadratic step would take minutes here.
    assert elapsed_s < 5.0, f"{len(ops)} ops took {elapsed_s:.2f} s"


# ---- suffix reads (reads from a position: value = the part past `offset`) ----------------


def suffix_read(h: HistoryBuilder, process: int, node: str, suffix: list, offset: int,
                read_mode: str = "local", final: bool = False) -> Op:  # fmt: skip
    """A read answered from a position: the node's entries from `offset` on."""
    extra = {"read_mode": read_mode, **({"final": True} if final else {})}
    p = h.invoke(process, "read", None, node=node, **extra)
    return h.ok(p, suffix, offset=offset)


def three_acked() -> HistoryBuilder:
    h = two_acked()
    h.broadcast(2, 3, "n3", position=2)
    return h


@pytest.mark.parametrize(
    ("n2_suffix", "expected"), [([2, 3], []), ([3, 2], ["incompatible-order"])]
)
def test_a_divergent_order_behind_a_suffix_read_is_caught(n2_suffix, expected):
    """n2's log diverges from n1's only past what process 7 had read there: the suffix
    rebuilt onto that prefix shows the other order."""
    h = three_acked()
    h.read(7, "n1", [1, 2, 3])
    h.read(7, "n2", [1])
    suffix_read(h, 7, "n2", n2_suffix, offset=1)
    finals(h, [1, 2, 3], nodes=("n1", "n3"))
    found = kinds(h, ack_contract=False)  # n2's early read [1] lags its own ack of 2
    assert [k for k in expected if k not in found] == [] and (found == []) == (expected == [])


@pytest.mark.parametrize(("final_suffix", "lost"), [([2, 3], False), ([2], True)])
def test_a_lost_entry_behind_a_suffix_read_is_caught(final_suffix, lost):
    h = three_acked()
    h.read(9, "n1", [1])
    suffix_read(h, 9, "n1", final_suffix, offset=1, final=True)
    finals(h, [1, 2, 3], nodes=("n2", "n3"))
    result = check(h.ops)
    assert ("lost" in result["anomaly_types"]) == lost
    if lost:
        assert "3" in result["anomalies"]["lost"][0]["explanation"]


@pytest.mark.parametrize(("second", "reordered"), [([2], False), ([1], True)])
def test_a_reordered_entry_behind_a_suffix_read_is_caught(second, reordered):
    """1 is acked before 2 is invoked; a node that puts 2 first breaks real time."""
    h = two_acked()
    h.read(7, "n1", [1] if not reordered else [2])
    suffix_read(h, 7, "n1", second, offset=1)
    finals(h, [1, 2] if not reordered else [2, 1])
    found = kinds(h)
    assert ("realtime" in found) == reordered and (found == []) == (not reordered)


def test_a_stale_log_read_behind_a_suffix_is_caught():
    h = three_acked()
    h.read(7, "n1", [1], read_mode="log")
    suffix_read(h, 7, "n1", [2], offset=1, read_mode="log")  # lacks 3, acked before
    finals(h, [1, 2, 3])
    assert kinds(h) == ["stale-read"]


def test_a_suffix_read_that_cannot_be_rebuilt_is_malformed_and_unknown():
    h = three_acked()
    suffix_read(h, 7, "n1", [3], offset=2)  # process 7 held nothing from n1
    finals(h, [1, 2, 3])
    result = check(h.ops)
    assert result["valid"] == "unknown" and result["anomaly_types"] == ["malformed"]
    assert "unrebuildable" in result["anomalies"]["malformed"][0]["explanation"]


def comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "elapsed_s"}


def test_old_whole_log_corpus_histories_check_the_same_in_suffix_form():
    """Every total-order corpus history (whole-log reads) gets the same result as before,
    and the same again recorded as nodes answering from positions would record it."""
    from tests.checker.test_corpus import TOTAL_ORDER
    from tobtest.histories.suffix_reads import full_reads, suffix_form

    for rel, builder in TOTAL_ORDER.items():
        whole = builder.ops
        assert full_reads(whole) is whole  # no offsets: checked exactly as before
        assert comparable(check(suffix_form(whole))) == comparable(check(whole)), rel


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(20, 200))
def test_simulated_histories_check_the_same_in_suffix_form(seed, steps):
    from tobtest.histories.suffix_reads import suffix_form

    # Few processes that read much: many reads extend their process's last read there.
    whole = simulate_tob(random.Random(seed), steps, processes=2, read_weight=0.8)
    assert comparable(check(suffix_form(whole))) == comparable(check(whole))
