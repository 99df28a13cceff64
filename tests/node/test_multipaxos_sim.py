"""Multi-Paxos in the seeded simulator: invariants under faults, cost against per-slot Paxos,
and scenarios in which each seeded bug produces a violation that the correct core avoids.

The simulator's checks include lease reads: a `lease` read must hold every broadcast acked
(anywhere) before it was issued, in the simulator's true time. A failing run names its seed;
replay it with the same schedule and `seed=S`.

Run: .venv/bin/python -m pytest tests/node/test_multipaxos_sim.py -q
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tobtest.node.protocols.base import ProtocolConfig
from tobtest.node.protocols.multipaxos import MultiPaxosProtocol
from tobtest.node.protocols.paxos import PaxosProtocol
from tobtest.node.sim import NetConfig, Simulation

FAST = ProtocolConfig(heartbeat_ms=20.0, election_timeout_ms=150.0, lease_ms=100.0)
LOSSY = NetConfig(drop=0.05, duplicate=0.05, delay_ms=(1.0, 10.0), spike=0.02, spike_ms=200.0)
MODES = ("local", "log", "lease")


def stale_lease_reads(sim: Simulation) -> list[int]:
    """Ids of `lease` reads missing a broadcast acked (anywhere) before they were issued, in
    the simulator's true time. `sim.violations()` checks this too; the tests use this list to
    tell which violations are stale lease reads."""
    acked = [
        (r.reply_ms, r.value)
        for r in sim.requests.values()
        if r.reply is not None and r.reply.get("type") == "broadcast_ok"
    ]
    stale = []
    for req in sim.requests.values():
        if req.mode != "lease" or req.reply is None or req.reply.get("type") != "read_ok":
            continue
        seen = set(req.reply.get("value") or [])
        if any(t is not None and t < req.submitted_ms and v not in seen for t, v in acked):
            stale.append(req.request_id)
    return stale


def config(**changes: Any) -> ProtocolConfig:
    base = {"heartbeat_ms": 20.0, "election_timeout_ms": 150.0, "lease_ms": 100.0}
    return ProtocolConfig(**{**base, **changes})


def poll(
    sim: Simulation, start_ms: float, end_ms: float, every_ms: float, fn: Callable[[], bool]
) -> None:
    """Runs `fn` every `every_ms` from `start_ms` until it returns True or `end_ms` passes."""

    def tick() -> None:
        if not fn() and sim.now_ms + every_ms <= end_ms:
            sim.at(sim.now_ms + every_ms, tick)

    sim.at(start_ms, tick)


def leader(sim: Simulation, exclude: int | None = None) -> int | None:
    """The up node that leads with the highest ballot (other than `exclude`)."""
    leading = [
        (status["ballot"], i)
        for i, status in enumerate(sim.status())
        if status["role"] == "leader" and i != exclude and sim.nodes[i].state == "up"
    ]
    return max(leading)[1] if leading else None


# ---- invariants under faults --------------------------------------------------------------


def run_faulty(seed: int) -> Simulation:
    n = 3 if seed % 2 else 5
    sim = Simulation(MultiPaxosProtocol, n=n, seed=seed, config=FAST, net=LOSSY)
    sim.random_clients(count=60, start_ms=0.0, end_ms=2000.0, read_fraction=0.3, read_modes=MODES)
    # Partitions, pauses and crashes; half the restarts reload the core from its records.
    sim.random_faults(start_ms=200.0, end_ms=2000.0, reload_fraction=0.5)
    sim.run(2000.0)
    sim.settle(quiet_ms=2000.0)
    return sim


def test_random_faults_keep_order_acks_and_lease_reads_safe() -> None:
    failures, acked, lease_reads, elections = [], 0, 0, 0
    for seed in range(160):
        sim = run_faulty(seed)
        problems = sim.violations() + (["truncated"] if sim.truncated else [])
        if problems:
            failures.append(f"seed {seed}: {problems[:3]}")
        for req in sim.requests.values():
            kind = (req.reply or {}).get("type")
            acked += kind == "broadcast_ok"
            lease_reads += kind == "read_ok" and req.mode == "lease"
        elections += sum(s["elections_won"] for s in sim.status())
    assert not failures, "\n".join(failures)
    # The runs did real work: many acks, served lease reads and leader changes.
    assert acked > 160 * 30 and lease_reads > 160 and elections > 2 * 160


def test_every_request_to_a_live_node_is_answered_after_faults_heal() -> None:
    for seed in range(10):
        sim = run_faulty(seed)
        for req in sim.requests.values():
            # Lost: the node was down, or crashed before answering (its client saw that).
            crashed = req.epoch != sim.nodes[req.node].epoch
            assert req.reply is not None or req.lost or crashed, f"seed {seed}: {req}"


def test_same_seed_same_run() -> None:
    first, second = run_faulty(3), run_faulty(3)
    assert first.trace == second.trace and first.sent == second.sent
    assert run_faulty(4).trace != first.trace


# ---- cost against per-slot Paxos ----------------------------------------------------------


def test_stable_run_pays_phase1_once_and_about_half_the_messages_of_paxos() -> None:
    per_broadcast = {}
    for protocol in (MultiPaxosProtocol, PaxosProtocol):
        sim = Simulation(protocol, n=3, seed=11, config=ProtocolConfig())
        sim.random_clients(count=300, start_ms=1500.0, end_ms=4500.0, read_fraction=0.0)
        sim.run(4500.0)
        sim.settle(quiet_ms=1000.0)
        assert sim.violations() == []
        delivered = len(sim.deliveries[0])
        assert delivered == 300
        per_broadcast[protocol.name] = sum(sim.sent.values()) / delivered
        status = sim.status()
        if protocol is MultiPaxosProtocol:
            # One election, one Phase 1, one no-op (the barrier); then Phase 2 alone.
            assert sum(s["phase1_rounds"] for s in status) == 1
            assert sum(s["noops_proposed"] for s in status) == 1
            assert sim.sent.get("prepare", 0) == 2
        else:
            assert sum(s["phase1_rounds"] for s in status) >= 300
    ratio = per_broadcast["multipaxos"] / per_broadcast["paxos"]
    assert ratio < 0.6, per_broadcast


# ---- the seeded bugs: each caught, the correct core passes the same scenario ---------------


def ack_before_majority_run(seed: int, bugs: frozenset[str]) -> Simulation:
    """A broadcast reaches the leader, which is cut off from everyone half a ms later."""
    sim = Simulation(MultiPaxosProtocol, n=3, seed=seed, config=config(bugs=bugs))

    def strike() -> None:
        old = leader(sim)
        assert old is not None
        others = [i for i in range(3) if i != old]
        sim.broadcast(sim.now_ms, old, msg_id="to-the-old-leader")
        sim.partition(sim.now_ms + 0.5, sim.split([old], others))
        sim.heal(sim.now_ms + 1500.0)
        for k in range(40):  # the new leader fills the slots with other values
            sim.broadcast(sim.now_ms + 400.0 + 20.0 * k, others[k % 2])

    sim.at(1000.0, strike)
    sim.run(3000.0)
    sim.settle(quiet_ms=2000.0)
    return sim


def test_ack_before_majority_loses_an_acked_broadcast() -> None:
    seeds = range(4)
    lost = [
        s
        for s in seeds
        if any(
            "to-the-old-leader never delivered" in v
            for v in ack_before_majority_run(s, frozenset({"ack-before-majority"})).violations()
        )
    ]
    assert lost, "the fixture bug went unnoticed"
    for seed in seeds:
        sim = ack_before_majority_run(seed, frozenset())
        assert sim.violations() == [], f"seed {seed}"
        assert "to-the-old-leader" in sim.delivered_ids(0)  # re-forwarded after the heal


def lease_from_ack_run(seed: int, bugs: frozenset[str]) -> Simulation:
    """The leader pauses right after a heartbeat; the acks wait for it. While it is paused it
    is cut off from the others (one way, then both), who elect a new leader and go on; lease
    reads at the old leader follow. No clock misbehaves: pauses are what leases must survive.
    The lease is as long as the grant allows (no drift, one tick of margin)."""
    conf = config(lease_ms=140.0, drift_bound=0.0, bugs=bugs)
    sim = Simulation(MultiPaxosProtocol, n=3, seed=seed, config=conf)
    seen: dict[str, int] = {}

    def pause_after_next_heartbeat() -> bool:
        old = seen["leader"]
        if sim.status()[old]["heartbeat_round"] == seen["round"]:
            return False
        t, others = sim.now_ms, [i for i in range(3) if i != old]
        sim.pause(t, old)  # the heartbeat is out; its acks arrive while paused
        sim.partition(t + 25.0, {(old, o) for o in others})  # later heartbeats are lost
        sim.resume(t + 145.0, old)  # before any grant of that heartbeat ends
        sim.partition(t + 146.0, sim.split([old], others))
        sim.heal(t + 1000.0)
        for k in range(50):
            sim.broadcast(t + 150.0 + 5.0 * k, others[k % 2])
            sim.read(t + 146.0 + 3.0 * k, old, mode="lease")
        return True

    def find_leader() -> None:
        old = leader(sim)
        assert old is not None
        seen.update(leader=old, round=sim.status()[old]["heartbeat_round"])
        poll(sim, sim.now_ms, sim.now_ms + 100.0, 0.25, pause_after_next_heartbeat)

    sim.at(1000.0, find_leader)
    sim.run(2500.0)
    sim.settle(quiet_ms=1000.0)
    return sim


def test_lease_from_ack_serves_stale_lease_reads() -> None:
    seeds = range(10)
    stale = [
        s for s in seeds if stale_lease_reads(lease_from_ack_run(s, frozenset({"lease-from-ack"})))
    ]
    assert stale, "the fixture bug went unnoticed"
    for seed in seeds:
        sim = lease_from_ack_run(seed, frozenset())
        assert sim.violations() == [], f"seed {seed}"


def forget_promise_run(seed: int, bugs: frozenset[str]) -> Simulation:
    """The leader is cut off with five fresh broadcasts it alone accepted. The others elect a
    new leader; the one that is not leader crashes right after it accepts a new value in one
    of the old leader's slots, and restarts from its records with only the old leader to
    talk to, which keeps re-sending its accepts."""
    sim = Simulation(MultiPaxosProtocol, n=3, seed=seed, config=config(bugs=bugs))
    seen: dict[str, Any] = {}

    def strike() -> None:
        old = leader(sim)
        assert old is not None
        seen.update(old=old, checked=[0, 0, 0])
        others = [i for i in range(3) if i != old]
        sim.partition(sim.now_ms, sim.split([old], others))
        for k in range(5):
            sim.broadcast(sim.now_ms + 1.0 + k, old, msg_id=f"old{k}")
        for k in range(40):
            sim.broadcast(sim.now_ms + 200.0 + 10.0 * k, others[k % 2])
        poll(sim, sim.now_ms + 10.0, sim.now_ms + 1500.0, 0.5, crash_an_acceptor)

    def crash_an_acceptor() -> bool:
        old, new = seen["old"], leader(sim, exclude=seen["old"])
        if new is None:
            return False
        slots = {r["slot"] for r in sim.persisted[old] if r["t"] == "accept"}
        acceptor = 3 - old - new
        records = sim.persisted[acceptor]
        fresh, seen["checked"][acceptor] = records[seen["checked"][acceptor] :], len(records)
        if not any(
            r["t"] == "accept" and r["ballot"][1] == new and r["slot"] in slots for r in fresh
        ):
            return False
        t = sim.now_ms
        sim.crash(t, acceptor)
        sim.restart(t + 20.0, acceptor, reload=True)
        sim.partition(t + 20.0, sim.split([old, acceptor], [new]))
        sim.heal(t + 800.0)
        return True

    sim.at(1000.0, strike)
    sim.run(3000.0)
    sim.settle(quiet_ms=2000.0)
    return sim


def test_forget_promise_lets_two_values_be_chosen_in_one_slot() -> None:
    seeds = range(6)
    diverged = [
        s
        for s in seeds
        if forget_promise_run(s, frozenset({"forget-promise"})).check_prefix_compatible()
    ]
    assert diverged, "the fixture bug went unnoticed"
    for seed in seeds:
        sim = forget_promise_run(seed, frozenset())
        assert sim.violations() == [], f"seed {seed}"


# ---- the lease's clock assumption ---------------------------------------------------------


def clock_fault_run(seed: int, fault: str) -> Simulation:
    """The correct core with a clock outside the drift bound: the leader is cut off, then
    either the followers' clocks jump 300 ms ahead (their grants end early) or the leader's
    clock slows to 0.3 (its lease lasts longer). Lease reads at the old leader follow."""
    sim = Simulation(MultiPaxosProtocol, n=3, seed=seed, config=FAST)

    def strike() -> None:
        old, t = leader(sim), sim.now_ms
        assert old is not None
        others = [i for i in range(3) if i != old]
        sim.partition(t, sim.split([old], others))
        if fault == "followers-jump-ahead":
            for other in others:
                sim.set_clock(t, other, jump_ms=300.0)
        else:
            sim.set_clock(t, old, rate=0.3)
        for k in range(60):
            sim.broadcast(t + 5.0 + 5.0 * k, others[k % 2])
            sim.read(t + 2.0 + 5.0 * k, old, mode="lease")
        sim.heal(t + 1000.0)

    sim.at(1000.0, strike)
    sim.run(2500.0)
    sim.settle(quiet_ms=1000.0)
    return sim


def test_clocks_outside_the_drift_bound_break_only_lease_reads() -> None:
    for fault in ("followers-jump-ahead", "leader-runs-slow"):
        stale = 0
        for seed in range(6):
            sim = clock_fault_run(seed, fault)
            lease_problems = stale_lease_reads(sim)
            stale += bool(lease_problems)
            assert len(sim.violations()) == len(lease_problems), f"{fault} seed {seed}"
        assert stale, f"{fault}: expected stale lease reads"


# ---- catching up after a restart ----------------------------------------------------------


def restarted_leader_catch_up_ms(seed: int, deaf_ms: float) -> tuple[float | None, Simulation]:
    """A leader killed under load restarts from its log after the rest chose ~1,000 more
    slots; for `deaf_ms` nothing reaches it (on real processes the proxy reconnects to a
    restarted node with a back-off of up to a second). Returns how long after the restart it
    had the new leader's chosen index and named that leader (None: not within 2 s)."""
    sim = Simulation(MultiPaxosProtocol, n=3, seed=seed, config=ProtocolConfig())
    for k in range(2000):  # 500 broadcasts/s until 4 s, at every node in turn
        sim.broadcast(10.0 + 2.0 * k, k % 3)
    sim.run(2000.0)
    old = leader(sim)
    assert old is not None
    sim.crash(2000.0, old)
    sim.run(4500.0)
    new = leader(sim, exclude=old)
    assert new is not None
    target = sim.status()[new]["chosen_index"]
    assert sim.status()[old]["chosen_index"] < target - 500  # far behind, as in the false alarm
    restart_ms = sim.now_ms
    sim.restart(restart_ms, old, reload=True)
    if deaf_ms:
        sim.partition(restart_ms, {(j, old) for j in range(3) if j != old})
        sim.heal(restart_ms + deaf_ms)
    caught: list[float] = []

    def caught_up() -> bool:
        status = sim.status()[old]
        if status["chosen_index"] >= target and status["leader"] == new:
            caught.append(sim.now_ms - restart_ms)
        return bool(caught)

    poll(sim, restart_ms, restart_ms + 2000.0, 5.0, caught_up)
    sim.run(restart_ms + 2000.0)
    assert leader(sim) == new, "the restarted node deposed a live leader"
    return (caught[0] if caught else None), sim


def test_a_restarted_leader_catches_up_within_a_few_heartbeats_of_hearing_the_leader() -> None:
    heartbeat_ms = ProtocolConfig().heartbeat_ms
    for seed in range(3):
        for deaf_ms in (0.0, 900.0):
            took_ms, sim = restarted_leader_catch_up_ms(seed, deaf_ms)
            assert took_ms is not None, f"seed {seed} deaf {deaf_ms}: never caught up"
            assert took_ms <= deaf_ms + 4 * heartbeat_ms, (seed, deaf_ms, took_ms)
            assert sim.violations() == [], f"seed {seed}"
