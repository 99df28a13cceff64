"""The subtle seeded bugs (PROTOCOL.md, "Subtle seeded bugs") under generic random faults in
the simulator: no scenario is written for any of them.

Every run is the same recipe: random clients (broadcasts, local and log reads, and lease
reads for Multi-Paxos) at random nodes, and two overlapping streams of random faults, one on
the network (partitions, one-way cuts, slow senders) and one on the processes (crashes whose
restarts reload the core from its records, pauses, clock rates within the drift bound). For
each bug, some seeds of a small range must show a violation, and the correct core must pass
those very seeds (same seed, same schedule). The recipe differs between bugs only in its
intensity (nodes, loss, load), never in the kind of fault. A failing seed replays with
`run(bug, case, seed)`.

Run: .venv/bin/python -m pytest tests/node/test_subtle_bugs.py -q
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tobtest.node.protocols import multipaxos, paxos
from tobtest.node.protocols.base import ProtocolConfig
from tobtest.node.sim import NetConfig, Simulation

FAST = {"heartbeat_ms": 20.0, "election_timeout_ms": 150.0, "lease_ms": 100.0}
NETWORK_FAULTS = ("partition", "cut", "slow")
PROCESS_FAULTS = ("crash", "pause", "clock")  # clock: rates in [0.9, 1.1], the drift bound
FAULT_MS = (30.0, 300.0)
END_MS = 2000.0


@dataclass(frozen=True)
class Case:
    protocol: str
    seeds: range
    n: int = 3
    drop: float = 0.05
    count: int = 150  # client requests over END_MS


CASES: dict[str, Case] = {
    "adopt-first-accepted": Case("paxos", range(20), n=5, drop=0.15, count=300),
    "chosen-from-promises": Case("paxos", range(14), drop=0.15, count=400),
    "accept-vs-accepted": Case("paxos", range(24)),
    "commit-any-ballot": Case("multipaxos", range(10)),
    "max-slot-chosen": Case("multipaxos", range(10)),
    "lease-before-barrier": Case("multipaxos", range(60), count=200),
}


def run(bug: str | None, case: Case, seed: int) -> Simulation:
    """One run of the generic recipe, with `bug` on (None: the correct core)."""
    bugs = frozenset([bug] if bug else [])
    if case.protocol == "multipaxos":
        cls: type = multipaxos.MultiPaxosProtocol
        config = ProtocolConfig(bugs=bugs, **FAST)
        modes, read_fraction = ("lease", "lease", "local", "log"), 0.5
    else:
        cls, config = paxos.PaxosProtocol, ProtocolConfig(bugs=bugs)
        modes, read_fraction = ("local", "log"), 0.3
    net = NetConfig(drop=case.drop, duplicate=0.05, delay_ms=(1.0, 10.0), spike=0.02)
    sim = Simulation(cls, n=case.n, seed=seed, config=config, net=net)
    sim.random_clients(case.count, 0.0, END_MS, read_fraction=read_fraction, read_modes=modes)
    sim.random_faults(100.0, END_MS, kinds=NETWORK_FAULTS, duration_ms=FAULT_MS)
    sim.random_faults(
        100.0, END_MS, kinds=PROCESS_FAULTS, duration_ms=FAULT_MS, reload_fraction=1.0
    )
    sim.run(END_MS)
    sim.settle(quiet_ms=2000.0)
    return sim


@pytest.mark.parametrize("bug", list(CASES))
def test_generic_random_faults_catch_the_bug_and_pass_the_correct_core(bug: str) -> None:
    case = CASES[bug]
    caught = [seed for seed in case.seeds if run(bug, case, seed).violations()]
    assert caught, f"{bug}: no violation in seeds {case.seeds}"
    for seed in caught:
        sim = run(None, case, seed)
        assert sim.violations() == [], f"correct {case.protocol} core, seed {seed}"
        assert not sim.truncated


def test_the_catalogue_is_registered_beside_the_loud_one() -> None:
    subtle = {"paxos": paxos.SUBTLE_BUGS, "multipaxos": multipaxos.SUBTLE_BUGS}
    for protocol, names in subtle.items():
        assert sorted(names) == sorted(b for b, c in CASES.items() if c.protocol == protocol)
        assert len(names) >= 3
    assert not set(paxos.SUBTLE_BUGS) & set(paxos.BUGS)
    assert not set(multipaxos.SUBTLE_BUGS) & set(multipaxos.BUGS)


def test_new_fault_kinds_leave_the_old_schedules_alone() -> None:
    """Seeds drawn before the new kinds existed give the same schedule as before."""

    def trace(kinds: tuple[str, ...]) -> list[tuple[object, ...]]:
        sim = Simulation(paxos.PaxosProtocol, n=3, seed=5)
        sim.random_faults(0.0, 1000.0, kinds=kinds, reload_fraction=0.5)
        sim.run(1000.0)
        return [t for t in sim.trace if t[1] != "deliver"]

    old = trace(("partition", "crash", "pause"))
    assert old and all(t[1] in ("blocked", "crash", "restart", "pause", "resume") for t in old)
    kinds = {t[1] for t in trace(("cut", "slow", "clock"))}
    assert kinds <= {"blocked", "slow"} and "slow" in kinds
