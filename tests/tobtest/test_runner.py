"""The runner in-process: an exception inside it still ends every process it started."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import assert_no_processes_left, tobtest_processes
from tobtest.config import TestConfig
from tobtest.histories.formats import read_history
from tobtest.runner import Runner


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_exception_inside_the_runner_ends_every_process(tmp_path, monkeypatch):
    seen: list[int] = []

    async def exploding_final_phase(self: Runner) -> None:
        seen.extend(p.pid for p in tobtest_processes(tmp_path))
        raise RuntimeError("boom in the final phase")

    monkeypatch.setattr(Runner, "_final_phase", exploding_final_phase)
    config = TestConfig(time_limit_s=2, nemesis=[], store=str(tmp_path), seed=1)
    runner = Runner(config)
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(runner.run())
    assert len(seen) == 4  # three nodes and the proxy were up
    assert_no_processes_left(tmp_path, timeout_s=1.0)
    assert len(read_history(runner.store.history_path)) > 10


def test_crash_maps_to_exit_255(tmp_path, monkeypatch, capsys):
    from tobtest import cli

    def explode(config: TestConfig) -> int:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("tobtest.console.run_with_console", explode)
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--store", str(tmp_path)])
    assert info.value.code == 255
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["tobtest: crashed: RuntimeError: unexpected"]


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["paxos", "multipaxos"])
def test_every_nemesis_at_once_is_recorded_healed_and_valid(tmp_path, protocol):
    from tobtest.nemesis.registry import NEMESES

    config = TestConfig(
        protocol=protocol,
        nemesis=list(NEMESES),
        nemesis_interval_s=1.0,
        time_limit_s=12,
        store=str(tmp_path),
        seed=5,
    )
    runner = Runner(config)
    result = asyncio.run(runner.run())
    assert_no_processes_left(tmp_path)
    assert result.valid is True, result.results
    history = read_history(runner.store.history_path)
    done = [op for op in history if op.process == "nemesis" and op.type in ("ok", "info")]
    started = {op.f.removeprefix("start-") for op in done if op.f.startswith("start-")}
    assert started == set(NEMESES), "every nemesis struck at least once"
    healed = [op.f for op in done if op.f.startswith("heal-")]
    assert healed == [f"heal-{name}" for name in NEMESES]  # before the final reads
    flips = [op.value for op in done if op.f == "start-flip" and op.type == "ok"]
    assert flips and all({"old_leader", "new_leader", "restarted"} <= set(v) for v in flips)
    final_reads = [op for op in history if op.f == "read" and op.type == "ok"]
    assert final_reads, "the healed cluster answered its final reads"


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_a_refused_lease_read_is_asked_again_at_the_leader_it_names(tmp_path):
    # The leader is cut off now and then: lease reads meet refusals that name a leader.
    config = TestConfig(
        protocol="multipaxos",
        read_modes=["lease"],
        read_fraction=0.5,
        nemesis=["partition"],
        partition_shapes=["primaries"],
        nemesis_interval_s=1.5,
        time_limit_s=6,
        store=str(tmp_path),
        seed=3,
    )
    runner = Runner(config)
    result = asyncio.run(runner.run())
    assert_no_processes_left(tmp_path)
    assert result.valid is True, result.results
    history = read_history(runner.store.history_path)
    invokes: dict[object, list] = {}
    for op in history:
        if op.f == "read" and op.type == "invoke":
            invokes.setdefault(op.process, []).append(op)
    redirected = [
        op for op in history
        if op.f == "read" and op.type == "fail" and op.extra.get("leader")
    ]  # fmt: skip
    assert redirected, "some lease reads were refused with a leader named"
    followed = 0
    for refusal in redirected:
        later = [i for i in invokes[refusal.process] if i.index > refusal.index]
        if later and later[0].node == refusal.extra["leader"]:
            followed += 1
            assert later[0].extra.get("read_mode") == "lease"
    assert followed >= len(redirected) // 2, (followed, len(redirected))
    # A quarter of the clients only read (READER_SHARE): their first processes invoke
    # nothing but reads, and none of them a `log` read.
    from tobtest.runner import READER_SHARE

    count = int(config.client_count * READER_SHARE)
    assert count >= 1
    readers = [
        op for op in history
        if op.type == "invoke" and isinstance(op.process, int) and op.process < count
    ]  # fmt: skip
    assert readers and all(op.f == "read" for op in readers)
    assert {op.extra.get("read_mode") for op in readers} == {"lease"}


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_a_real_run_records_reads_as_suffixes_and_checks_them_whole(tmp_path):
    """The built-in node has `read-from`: reads after a worker's first at a node record
    only the new entries, with their offset and the worker (`client`); the checkers see
    the whole logs."""
    from tobtest.histories.suffix_reads import LogView, full_reads

    config = TestConfig(
        protocol="multipaxos", nemesis=["partition"], nemesis_interval_s=1.0,
        time_limit_s=6, rate=80.0, read_fraction=0.4, store=str(tmp_path), seed=3,
    )  # fmt: skip
    runner = Runner(config)
    result = asyncio.run(runner.run())
    assert_no_processes_left(tmp_path)
    assert result.valid is True, result.results
    history = read_history(runner.store.history_path)
    reads = [op for op in history if op.f == "read" and op.type == "ok"]
    suffixes = [op for op in reads if op.extra.get("offset")]
    assert len(suffixes) > len(reads) / 3, (len(suffixes), len(reads))
    assert all(isinstance(op.extra.get("client"), int) for op in suffixes)
    rebuilt = {op.index: op.value for op in full_reads(history) if op.f == "read"}
    for op in suffixes:
        whole = rebuilt[op.index]
        assert isinstance(whole, LogView) and len(whole) == op.extra["offset"] + len(op.value)
        assert list(whole)[op.extra["offset"] :] == op.value
