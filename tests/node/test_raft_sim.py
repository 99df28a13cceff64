"""Raft in the seeded simulator: safety under generic random faults, and for each seeded bug
a run that shows it while the correct core passes the very same schedule.

The generic recipe is the one of test_subtle_bugs.py: random clients (broadcasts, local, log
and lease reads) at random nodes, one stream of network faults (partitions, one-way cuts,
slow senders) and one of process faults (crashes that restart from the node's records,
pauses, clock rates within the drift bound), over a lossy, duplicating, reordering network.
A failing run names its seed; replay it with `generic(bug, seed, n)` or the scenario's
function and the same seed.

Run: .venv/bin/python -m pytest tests/node/test_raft_sim.py -q
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tobtest.node.protocols.base import ProtocolConfig
from tobtest.node.protocols.multipaxos import MultiPaxosProtocol
from tobtest.node.protocols.raft import MAX_APPEND, RaftProtocol
from tobtest.node.sim import NetConfig, Simulation

FAST = {"heartbeat_ms": 20.0, "election_timeout_ms": 150.0, "lease_ms": 100.0}
LOSSY = NetConfig(drop=0.05, duplicate=0.05, delay_ms=(1.0, 10.0), spike=0.02, spike_ms=200.0)
MODES = ("lease", "lease", "local", "log")
END_MS = 2000.0


def config(bugs: Any = ()) -> ProtocolConfig:
    return ProtocolConfig(bugs=frozenset(bugs), **FAST)


def poll(sim: Simulation, start_ms: float, every_ms: float, fn: Callable[[], bool]) -> None:
    """Runs `fn` every `every_ms` from `start_ms` until it returns True (or the run ends)."""

    def tick() -> None:
        if not fn():
            sim.at(sim.now_ms + every_ms, tick)

    sim.at(start_ms, tick)


def leader(sim: Simulation, among: list[int] | None = None) -> int | None:
    """The up node (of `among`) that leads with the highest term."""
    leading = [
        (status["term"], i)
        for i, status in enumerate(sim.status())
        if status["role"] == "leader"
        and sim.nodes[i].state == "up"
        and (among is None or i in among)
    ]
    return max(leading)[1] if leading else None


# ---- safety under generic random faults ---------------------------------------------------


def generic(bug: str | None, seed: int, n: int = 3) -> Simulation:
    sim = Simulation(RaftProtocol, n=n, seed=seed, config=config([bug] if bug else []), net=LOSSY)
    sim.random_clients(150, 0.0, END_MS, read_fraction=0.5, read_modes=MODES)
    sim.random_faults(100.0, END_MS, kinds=("partition", "cut", "slow"), duration_ms=(30.0, 300.0))
    sim.random_faults(
        100.0, END_MS, kinds=("crash", "pause", "clock"), duration_ms=(30.0, 300.0),
        reload_fraction=1.0,
    )  # fmt: skip
    sim.run(END_MS)
    sim.settle(quiet_ms=2000.0)
    return sim


def test_generic_random_faults_keep_order_acks_and_every_read_mode_safe() -> None:
    failures, acked, lease_reads, elections, truncations = [], 0, 0, 0, 0
    seeds = range(100)
    for seed in seeds:
        sim = generic(None, seed, n=3 if seed % 4 else 5)
        problems = sim.violations() + (["truncated"] if sim.truncated else [])
        if problems:
            failures.append(f"seed {seed}: {problems[:3]}")
        for req in sim.requests.values():
            kind = (req.reply or {}).get("type")
            acked += kind == "broadcast_ok"
            lease_reads += kind == "read_ok" and req.mode == "lease"
        status = sim.status()
        elections += sum(s["elections_won"] for s in status)
        truncations += sum(s["truncations"] for s in status)
    assert not failures, "\n".join(failures)
    # The runs did real work: acks, served lease reads, leader changes, logs cut back.
    assert acked > len(seeds) * 30 and lease_reads > len(seeds) and elections > 1.5 * len(seeds)
    assert truncations > 0


def test_every_request_to_a_live_node_is_answered_after_faults_heal() -> None:
    for seed in range(10):
        sim = generic(None, seed)
        for req in sim.requests.values():
            crashed = req.epoch != sim.nodes[req.node].epoch  # its client saw the crash
            assert req.reply is not None or req.lost or crashed, f"seed {seed}: {req}"


def test_same_seed_same_run() -> None:
    first, second = generic(None, 3), generic(None, 3)
    assert first.trace == second.trace and first.sent == second.sent
    assert generic(None, 4).trace != first.trace


def test_a_stable_run_elects_once_and_costs_about_what_multipaxos_costs() -> None:
    per_broadcast = {}
    for protocol in (RaftProtocol, MultiPaxosProtocol):
        sim = Simulation(protocol, n=3, seed=11, config=ProtocolConfig())
        sim.random_clients(count=300, start_ms=1500.0, end_ms=4500.0, read_fraction=0.0)
        sim.run(4500.0)
        sim.settle(quiet_ms=1000.0)
        assert sim.violations() == [] and len(sim.deliveries[0]) == 300
        per_broadcast[protocol.name] = sum(sim.sent.values()) / 300
        if protocol is RaftProtocol:
            status = sim.status()
            assert sum(s["phase1_rounds"] for s in status) == 1
            assert sum(s["noops_proposed"] for s in status) == 1
    # Both send Phase 2 alone per broadcast: within half of each other, heartbeats included.
    ratio = per_broadcast["raft"] / per_broadcast["multipaxos"]
    assert 0.5 < ratio < 1.5, per_broadcast


# ---- the seeded bugs ----------------------------------------------------------------------


def test_no_truncate_is_caught_by_the_generic_recipe() -> None:
    seeds = range(6)
    caught = [s for s in seeds if generic("no-truncate", s).violations()]
    assert caught, "no-truncate went unnoticed"
    for seed in caught:
        assert generic(None, seed).violations() == [], f"correct core, seed {seed}"


def figure8_run(seed: int, bugs: Any = ()) -> Simulation:
    """Figure 8 of the Raft paper, with the no-op each leader appends. Leader A is cut off
    with more fresh broadcasts than one append carries. M is elected by F, and cut off at
    once, so only M holds its no-op, at A's first fresh index. A, back with F, wins the
    next term and sends F its old entries one batch per answer, its own no-op last; as soon
    as A's commit index moves, A is cut off again, and M, whose last term beats F's, leads
    with F's vote and makes F's log its own."""
    sim = Simulation(RaftProtocol, n=3, seed=seed, config=config(bugs))
    seen: dict[str, Any] = {}

    def strike() -> bool:
        a = leader(sim)
        if a is None:
            return False
        others = [i for i in range(3) if i != a]
        seen.update(a=a, others=others)
        sim.partition(sim.now_ms, sim.split([a], others))
        for k in range(3 * MAX_APPEND):
            sim.broadcast(sim.now_ms + 1.0 + k, a, msg_id=f"old{k}")
        poll(sim, sim.now_ms + 1.0, 0.5, cut_m)
        return True

    def cut_m() -> bool:
        m = leader(sim, among=seen["others"])
        if m is None:
            return False
        a = seen["a"]
        f = 3 - a - m
        seen.update(m=m, f=f, commit=sim.status()[a]["chosen_index"])
        sim.partition(sim.now_ms, sim.split([m], [a, f]))  # M's no-op to F is still on its way
        poll(sim, sim.now_ms + 0.5, 0.5, cut_a)
        return True

    def cut_a() -> bool:
        a = seen["a"]
        if sim.status()[a]["chosen_index"] <= seen["commit"]:
            return False
        sim.partition(sim.now_ms, sim.split([a], [seen["m"], seen["f"]]))
        for k in range(10):
            sim.broadcast(sim.now_ms + 400.0 + 20.0 * k, seen["m"], msg_id=f"new{k}")
        sim.heal(sim.now_ms + 1500.0)
        return True

    poll(sim, 500.0, 10.0, strike)
    sim.run(4000.0)
    sim.settle(quiet_ms=2000.0)
    return sim


def test_commit_old_term_is_caught_in_figure_8_and_the_correct_core_passes_it() -> None:
    seeds = range(8)
    caught = [s for s in seeds if figure8_run(s, ["commit-old-term"]).violations()]
    assert caught, "commit-old-term went unnoticed"
    for seed in seeds:
        sim = figure8_run(seed)
        assert sim.violations() == [] and not sim.truncated, f"seed {seed}"


def double_vote_run(seed: int, bugs: Any = ()) -> Simulation:
    """A and C campaign in the same term, unable to hear each other; B, paused until both
    do, votes for A, crashes at once and restarts from its records. A cannot reach B; C's
    request for the same term can. Each then takes broadcasts."""
    sim = Simulation(RaftProtocol, n=3, seed=seed, config=config(bugs), hold_arrived=True)
    a, b, c = 0, 1, 2
    sim.pause(0.0, b)  # before its first tick: its election timer is not running yet
    sim.partition(0.0, {(a, c), (c, a), (c, b)})

    def both_campaign() -> bool:
        status = sim.status()
        if not all(status[i]["role"] == "candidate" and status[i]["term"] == 1 for i in (a, c)):
            return False
        t = sim.now_ms
        sim.partition(t, {(a, c), (c, a), (c, b), (a, b)})  # A's request is in B's buffer
        sim.resume(t, b)
        sim.crash(t + 0.5, b)
        sim.restart(t + 1.0, b, reload=True)
        sim.partition(t + 1.5, {(a, c), (c, a), (a, b)})
        for k in range(10):
            sim.broadcast(t + 100.0 + 10.0 * k, a, msg_id=f"a{k}")
            sim.broadcast(t + 100.0 + 10.0 * k, c, msg_id=f"c{k}")
        sim.heal(t + 400.0)
        return True

    poll(sim, 1.0, 1.0, both_campaign)
    sim.run(2500.0)
    sim.settle(quiet_ms=2000.0)
    return sim


def test_vote_not_persisted_elects_two_leaders_in_a_term_and_the_correct_core_does_not() -> None:
    seeds = range(8)
    caught = [s for s in seeds if double_vote_run(s, ["vote-not-persisted"]).violations()]
    assert caught, "vote-not-persisted went unnoticed"
    for seed in seeds:
        sim = double_vote_run(seed)
        assert sim.violations() == [] and not sim.truncated, f"seed {seed}"


# ---- the lease and its clock assumption ---------------------------------------------------


def stale_lease_reads(sim: Simulation) -> list[int]:
    """Ids of served `lease` reads missing a broadcast acked (anywhere) before they were
    issued, in the simulator's true time (`sim.violations()` checks this among the rest)."""
    acked = [(r.reply_ms, r.value) for r in sim.requests.values()
             if r.reply is not None and r.reply.get("type") == "broadcast_ok"]  # fmt: skip
    stale = []
    for req in sim.requests.values():
        if req.mode != "lease" or req.reply is None or req.reply.get("type") != "read_ok":
            continue
        seen = set(req.reply.get("value") or [])
        if any(t is not None and t < req.submitted_ms and v not in seen for t, v in acked):
            stale.append(req.request_id)
    return stale


def cut_off_leader_run(seed: int, fault: str) -> Simulation:
    """The leader is cut off while lease reads keep coming to it and broadcasts to the
    others, who elect a new leader. `fault`: none, the followers' clocks jump 300 and 160 ms
    ahead (their grants end early), or the leader's clock slows to 0.3 (its lease lasts
    longer): the last two break the drift bound."""
    sim = Simulation(RaftProtocol, n=3, seed=seed, config=config())

    def strike() -> bool:
        old, t = leader(sim), sim.now_ms
        if old is None:
            return False
        others = [i for i in range(3) if i != old]
        sim.partition(t, sim.split([old], others))
        if fault == "followers-jump-ahead":
            # By different amounts: both grants end at once, but only one election timer,
            # so that a new leader is elected at once rather than after a split vote.
            sim.set_clock(t, others[0], jump_ms=300.0)
            sim.set_clock(t, others[1], jump_ms=160.0)
        elif fault == "leader-runs-slow":
            sim.set_clock(t, old, rate=0.3)
        for k in range(60):
            sim.broadcast(t + 5.0 + 5.0 * k, others[k % 2])
            sim.read(t + 2.0 + 5.0 * k, old, mode="lease")
        sim.heal(t + 1000.0)
        return True

    poll(sim, 1000.0, 5.0, strike)
    sim.run(2500.0)
    sim.settle(quiet_ms=1000.0)
    return sim


def test_a_cut_off_leader_serves_no_stale_lease_read_within_the_drift_bound() -> None:
    served = 0
    for seed in range(6):
        sim = cut_off_leader_run(seed, "none")
        assert sim.violations() == [], f"seed {seed}"
        served += sum(
            1 for r in sim.requests.values()
            if r.mode == "lease" and (r.reply or {}).get("type") == "read_ok"
        )  # fmt: skip
    assert served > 6  # it did serve reads from its lease after the cut


def test_clocks_outside_the_drift_bound_break_only_lease_reads() -> None:
    for fault in ("followers-jump-ahead", "leader-runs-slow"):
        stale = 0
        for seed in range(6):
            sim = cut_off_leader_run(seed, fault)
            lease_problems = stale_lease_reads(sim)
            stale += bool(lease_problems)
            assert len(sim.violations()) == len(lease_problems), f"{fault} seed {seed}"
        assert stale, f"{fault}: expected stale lease reads"
