"""Tests of one `tobtest sim` seed (tobtest/sim_run.py): its default faults, clients, replay."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tobtest import cli_sim, sim_run
from tobtest.sim_run import SimSpec, run_seed

SHORT = {"time_ms": 3_000.0, "settle_ms": 1_500.0}


def nemesis_fs(result: sim_run.SeedResult) -> set[str]:
    return {op.f for op in result.history if op.process == "nemesis" and op.type == "ok"}


def test_the_cli_names_the_simulators_faults_and_timings() -> None:
    assert cli_sim.FAULT_KINDS == sim_run.FAULTS
    assert set(cli_sim.TIMINGS) == set(sim_run.TIMINGS)
    assert SimSpec("paxos", 1).faults == sim_run.FAULTS  # every kind, by default
    assert set(sim_run.NETWORK_FAULTS) | set(sim_run.PROCESS_FAULTS) | {"clock"} == set(
        sim_run.FAULTS
    )


def test_the_default_stream_injects_every_kind_it_claims() -> None:
    """Network and process faults overlap: a crash or pause while a partition holds."""
    result = run_seed(SimSpec("multipaxos", seed=3))  # the defaults: 10 s of faults
    fs = nemesis_fs(result)
    for f in ("start-partition", "start-kill", "stop-kill", "start-pause", "start-clock",
              "start-slow", "start-weather"):  # fmt: skip
        assert f in fs, (f, sorted(fs))
    nem = [op for op in result.history if op.process == "nemesis" and op.type == "ok"]
    kills = [op for op in nem if op.f == "stop-kill"]
    assert kills and all(op.value["reload"] for op in kills)  # restarts from the records
    cut, overlaps = False, 0
    for op in nem:
        if op.f in ("start-partition", "stop-partition"):
            cut = op.f == "start-partition"
        overlaps += cut and op.f in ("start-kill", "start-pause")
    assert overlaps > 0
    assert result.valid is True, result.kinds


def test_stall_and_flip_strike_the_leader() -> None:
    stall = run_seed(SimSpec("multipaxos", seed=5, faults=("stall",), **SHORT))
    assert {"start-pause", "start-partition"} <= nemesis_fs(stall)
    flip = run_seed(SimSpec("multipaxos", seed=5, faults=("flip",), **SHORT))
    assert {"start-partition", "start-kill"} <= nemesis_fs(flip)  # a new leader was seen


def test_a_seed_with_the_defaults_replays_exactly() -> None:
    spec = SimSpec("multipaxos", seed=8, bugs=("forget-promise",), **SHORT)
    first, again = run_seed(spec), run_seed(spec)
    assert [op.to_dict() for op in first.history] == [op.to_dict() for op in again.history]
    assert first.events == again.events and first.kinds == again.kinds
    other = run_seed(replace(spec, seed=9))
    assert [op.to_dict() for op in other.history] != [op.to_dict() for op in first.history]


@pytest.mark.parametrize(
    ("protocol", "bugs"),
    [("paxos", ()), ("paxos", ("accept-vs-accepted",)), ("multipaxos", ()),
     ("multipaxos", ("lease-from-ack",)), ("raft", ()), ("raft", ("commit-old-term",))],
)  # fmt: skip
def test_ticks_skipped_by_the_cores_timers_change_nothing(
    protocol: str, bugs: tuple[str, ...]
) -> None:
    """Each core's `next_timer_ms`: a run ticked only from when a core says a tick could
    act is the very run ticked every tick_ms (the ticks skipped would have done nothing)."""
    for seed in (1, 2):
        spec = SimSpec(protocol, seed=seed, bugs=bugs, **SHORT)
        skipping, every = run_seed(spec), run_seed(replace(spec, every_tick=True))
        assert [op.to_dict() for op in skipping.history] == [op.to_dict() for op in every.history]
        assert skipping.kinds == every.kinds and skipping.valid == every.valid
        assert skipping.events < 0.7 * every.events


def test_lease_reads_refused_by_a_follower_go_to_the_leader_it_names() -> None:
    result = run_seed(SimSpec("multipaxos", seed=2, **SHORT))
    lease = [op for op in result.history if op.f == "read" and op.extra.get("read_mode") == "lease"]
    refused = [op for op in lease if op.type == "fail" and "not-leader" in (op.error or "")]
    assert refused and sum(1 for op in lease if op.type == "ok") > len(refused) / 2


def test_the_replay_line_names_every_option_that_shapes_the_run() -> None:
    spec = SimSpec("multipaxos", seed=4, bugs=("lease-from-ack",), timing="node")
    line = cli_sim.replay_command(spec)
    for part in ("--seed 4", "--bug lease-from-ack", "--nodes 3", "--time-ms 10000",
                 "--rate 300", "--concurrency 12", "--read-fraction 0.5", "--timing node",
                 "--faults " + ",".join(sim_run.FAULTS)):  # fmt: skip
        assert part in line, (part, line)
    assert "--every-tick" not in line
    assert cli_sim.replay_command(replace(spec, every_tick=True)).endswith(" --every-tick")


def untimed(result: object) -> object:
    """A checker's result without its timings (elapsed_s, at any depth)."""
    if isinstance(result, dict):
        return {k: untimed(v) for k, v in result.items() if k != "elapsed_s"}
    return result


@pytest.mark.parametrize(
    ("protocol", "bugs"),
    [("paxos", ("deliver-on-arrival",)), ("paxos", ("no-dedupe",)), ("multipaxos", ()),
     ("multipaxos", ("lease-from-ack",)), ("raft", ("no-truncate",)),
     ("raft", ("commit-old-term",))],
)  # fmt: skip
def test_suffix_reads_find_what_whole_reads_find(protocol: str, bugs: tuple[str, ...]) -> None:
    """The same run recorded with reads from a position and with whole-log reads: the
    checkers' results are the same (histories/suffix_reads.py says why), and the suffix
    history's reads hold fewer entries."""
    from tobtest.histories.suffix_reads import full_reads

    for seed in (1, 2):
        spec = SimSpec(protocol, seed=seed, bugs=bugs, **SHORT)
        suffix, whole = run_seed(spec), run_seed(replace(spec, read_from=False))
        assert any(op.extra.get("offset") for op in suffix.history)
        assert not any(op.extra.get("offset") for op in whole.history)
        assert suffix.kinds == whole.kinds and suffix.valid == whole.valid
        for name, result in whole.results["checkers"].items():
            assert untimed(suffix.results["checkers"][name]) == untimed(result), name
        rebuilt = [op.value for op in full_reads(suffix.history) if op.f == "read"]
        assert [list(v) if v is not None else v for v in rebuilt] == [
            op.value for op in whole.history if op.f == "read"
        ]

        def elements(history: list) -> int:
            return sum(len(op.value) for op in history if op.f == "read" and op.type == "ok")

        assert elements(suffix.history) < elements(whole.history)


def test_ops_stops_the_clients_after_that_many_ops_and_replays() -> None:
    from tobtest.sim_run import simulate_history

    spec = SimSpec("multipaxos", seed=3, ops=120, time_ms=60_000.0, settle_ms=500.0)
    result = run_seed(spec)
    invoked = [op for op in result.history if op.type == "invoke" and op.process != "nemesis"]
    finals = [op for op in invoked if op.extra.get("final")]
    assert len(invoked) - len(finals) == 120 and len(finals) == 3
    assert result.sim_ms < 30_000.0, "the main phase ended with its ops, not at time_ms"
    assert "--ops 120" in cli_sim.replay_command(spec)
    assert "--whole-reads" in cli_sim.replay_command(replace(spec, read_from=False))
    # The unchecked history of a measurement is the same run's.
    history, cut_short = simulate_history(spec)
    assert cut_short is None and [op.to_dict() for op in history] == [
        op.to_dict() for op in result.history
    ]
