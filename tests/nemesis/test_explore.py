"""The exploring nemesis: seeded choices reproducible, one kind at a time, moves that lift
what they inject (on a fake cluster whose leader moves when it is cut off), targets bound
to the leader, clock moves inside the drift bound while lease reads are checked, and a
real run under `--nemesis all` that ends valid, healed and replayable."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import yaml

from tests.conftest import assert_no_processes_left
from tests.nemesis.test_faults_steps import FakeCluster, FakeProxy
from tobtest.config import TestConfig
from tobtest.histories.formats import read_history
from tobtest.histories.recorder import Recorder
from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.explore import ExploringNemesis
from tobtest.nemesis.explore_moves import KINDS, MOVES
from tobtest.nemesis.registry import EXPLORE, node_args_for, parse_nemesis_list
from tobtest.runner import Runner


class LeaderCluster(FakeCluster):
    """A fake 3-node Multi-Paxos cluster: n1 leads until it is cut off, paused or killed,
    then n2 does; every node answers status unless it is down or paused."""

    def __init__(self, proxy: FakeProxy) -> None:
        super().__init__(["n1", "n2", "n3"])
        self.proxy = proxy
        self.clock_requests: list[tuple[str, dict[str, Any]]] = []

    def _leader(self) -> str:
        grudges = [g for kind, g in self.proxy.calls if kind in ("grudge", "heal")]
        cut = bool(grudges and grudges[-1] and "n1" in str(grudges[-1]))
        n1_up = self.nodes["n1"].state.value == "running"
        return "n2" if cut or not n1_up else "n1"

    async def status(self, name: str, timeout_s: float = 1.0) -> dict[str, Any]:
        from tobtest.workloads.client import ClientError

        if self.nodes[name].state.value != "running":
            raise ClientError(f"{name} does not answer")
        leader = self._leader()
        return {
            "role": "leader" if name == leader else "follower",
            "leader": int(leader[1]) - 1,
            "accepted_unchosen": 1 if name == "n3" else 0,
            "lease_remaining_ms": 100.0 if name == leader else 0.0,
            "in_flight": 2 if name == leader else 0,
            "delivered": 10,
            "phase1_rounds": 1,
            "drift_bound": 0.1,
        }


def make_explorer(
    tmp_path, seed: int = 3, cluster_type: type[LeaderCluster] | None = None, **options: Any
) -> ExploringNemesis:
    proxy = FakeProxy()
    cluster = (cluster_type or LeaderCluster)(proxy)

    async def primaries() -> list[str]:
        return [cluster._leader()]

    ctx = NemesisContext(["n1", "n2", "n3"], proxy, primaries, cluster)  # type: ignore[arg-type]
    recorder = Recorder(tmp_path / f"history-{seed}.jsonl")
    return ExploringNemesis(ctx, recorder, seed, options)


def test_all_means_the_explorer_alone_with_power_cut_kills() -> None:
    assert parse_nemesis_list("all") == [EXPLORE] == parse_nemesis_list("explore")
    with pytest.raises(ValueError, match="alone"):
        parse_nemesis_list("all,kill")
    assert node_args_for([EXPLORE]) == ("--disk-fault", "lose-unsynced")


def test_seeded_choices_are_reproducible_and_one_kind_at_a_time(tmp_path) -> None:
    def choices(seed: int) -> list[str]:
        explorer = make_explorer(tmp_path, seed)
        picked = []
        for _ in range(40):
            move = explorer._choose()
            explorer._learn(move, explorer._seen())
            picked.append(move.name)
        return picked

    first = choices(1)
    assert first == choices(1)
    assert first != choices(2)
    kinds = [next(m.kind for m in MOVES if m.name == name) for name in first]
    assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False)), "never a kind twice"
    assert set(kinds) == set(KINDS), "every kind comes up in 40 moves"


def test_novelty_raises_a_moves_weight_and_feedback_off_is_uniform(tmp_path) -> None:
    explorer = make_explorer(tmp_path)
    dull, novel = MOVES[0], MOVES[1]
    explorer.tries.update({dull.name: 4, novel.name: 4})
    explorer.novelty.update({novel.name: 40})
    assert explorer._weight(novel) > explorer._weight(dull) > 0
    assert explorer._weight(MOVES[2]) > explorer._weight(dull), "untried moves come first"
    uniform = make_explorer(tmp_path, feedback=False)
    uniform.novelty.update({novel.name: 40})
    assert uniform._weight(novel) == uniform._weight(dull) == 1.0


def test_clock_moves_stay_in_the_drift_bound_only_while_lease_reads_are_checked(tmp_path):
    checked = make_explorer(tmp_path, lease_reads=True)
    unchecked = make_explorer(tmp_path, lease_reads=False)
    assert "wild-clock" not in {m.name for m in checked.moves}
    assert "wild-clock" in {m.name for m in unchecked.moves}
    asyncio.run(checked.observer.poll())
    asyncio.run(unchecked.observer.poll())
    assert checked.clock_bound() == 0.1  # what the nodes state in their status
    assert unchecked.clock_bound() >= 0.5


@pytest.mark.timeout(60)
@pytest.mark.parametrize("move", MOVES, ids=[m.name for m in MOVES])
def test_every_move_lifts_what_it_injects(tmp_path, move) -> None:
    explorer = make_explorer(tmp_path)
    faults = explorer.ctx.faults

    async def play() -> dict[str, Any]:
        await explorer.observer.poll()
        value, undo = await move.start(explorer)
        await undo()
        return value

    value = asyncio.run(play())
    assert isinstance(value, dict)
    assert faults.executed, "the move injected something"
    assert not faults.down() and not faults.paused(), faults.executed
    assert faults.grudge == {} and faults.link_faults == [] and faults.clocks == {}


def test_leader_moves_aim_at_the_leader_and_lease_race_stays_in_bound(tmp_path, monkeypatch):
    async def clock_ok(host: str, port: int, body: dict[str, Any], timeout_s: float) -> dict:
        return {"type": "clock_ok"}

    monkeypatch.setattr("tobtest.nemesis.faults.request_once", clock_ok)
    by_name = {m.name: m for m in MOVES}
    explorer = make_explorer(tmp_path)

    async def play(name: str) -> dict[str, Any]:
        await explorer.observer.poll()
        value, undo = await by_name[name].start(explorer)
        await undo()
        return value

    assert asyncio.run(play("kill-leader"))["nodes"] == ["n1"]
    assert asyncio.run(play("kill-unchosen"))["nodes"] == ["n3"]  # it holds unchosen slots
    race = asyncio.run(play("lease-race"))
    rates = {n: r["rate"] for n, r in race["nodes"].items()}
    assert race["leader"] == "n1" and race["new_leader"] == "n2"
    assert rates["n1"] < 1.0 < rates["n2"] and all(abs(r - 1.0) <= 0.1 for r in rates.values())


class HoppingCluster(LeaderCluster):
    """The lowest-numbered running node that the partition in force does not isolate leads,
    so cutting off the leader always hands the lead to another node."""

    def _leader(self) -> str:
        grudges = [g for kind, g in self.proxy.calls if kind in ("grudge", "heal")]
        grudge = grudges[-1] if grudges and grudges[-1] else {}
        for name in sorted(self.nodes):
            isolated = len(grudge.get(name, ())) == len(self.nodes) - 1
            if self.nodes[name].state.value == "running" and not isolated:
                return name
        return "n1"


def test_leader_hop_cuts_off_each_new_leader_in_turn_and_ends_healed(tmp_path) -> None:
    explorer = make_explorer(tmp_path, cluster_type=HoppingCluster)
    hop = next(m for m in MOVES if m.name == "leader-hop")

    async def play() -> dict[str, Any]:
        await explorer.observer.poll()
        value, undo = await hop.start(explorer)
        await undo()
        return value

    hopped = asyncio.run(play())["nodes"]
    assert 2 <= len(hopped) <= 5 and hopped[0] == "n1"
    # Each hop cut off the node that led then: n1, then n2 (n1 cut), then n1 again.
    assert hopped == ["n1", "n2", "n1", "n2", "n1"][: len(hopped)]
    assert explorer.ctx.faults.grudge == {}


def test_a_short_exploration_records_paired_ops_and_a_summary(tmp_path) -> None:
    explorer = make_explorer(tmp_path, seed=4)

    async def explore() -> None:
        await explorer.run(until=time.monotonic() + 4.0)
        await explorer.heal_all()

    asyncio.run(explore())
    explorer.recorder.close()
    history = read_history(explorer.recorder.path)
    ops = [op for op in history if op.type == "ok" and "weather" not in op.f]
    weather = [op.f for op in history if op.type == "ok" and "weather" in op.f]
    assert weather.count("start-weather") == weather.count("stop-weather")
    starts = [op.f for op in ops if op.f.startswith("start-")]
    # Every stop closes the innermost open start (a move overlapped inside another's hold).
    open_moves: list[str] = []
    for op in ops:
        if op.f.startswith("start-"):
            open_moves.append(op.f.removeprefix("start-"))
        elif op.f.startswith("stop-"):
            assert open_moves.pop() == op.f.removeprefix("stop-")
    assert starts and not open_moves
    assert ops[-1].f == "heal-explore"
    assert all("situations" in op.value for op in ops if op.f.startswith("start-"))
    summary = explorer.summary()
    assert sum(summary["moves"].values()) == len(starts)
    assert summary["states"] >= 1 and summary["nemesis"] == "explore"


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_a_real_run_under_nemesis_all_is_valid_healed_and_its_schedule_stored(tmp_path):
    config = TestConfig(
        protocol="multipaxos",
        nemesis=parse_nemesis_list("all"),
        time_limit_s=12,
        store=str(tmp_path),
        seed=11,
    )
    runner = Runner(config)
    result = asyncio.run(runner.run())
    assert_no_processes_left(tmp_path)
    assert result.valid is True, result.results
    exploration = result.results["exploration"]
    assert sum(exploration["moves"].values()) >= 2, exploration
    steps = yaml.safe_load((result.run_path / "schedule.yaml").read_text())["steps"]
    assert steps and all({"at_s", "do"} <= set(step) for step in steps)
    history = read_history(runner.store.history_path)
    assert [op.f for op in history if op.f == "heal-explore" and op.type == "ok"]
    modes = {op.extra.get("read_mode") for op in history if op.f == "read"}
    assert {"local", "log", "lease"} <= modes, "the default mix reads in every mode"


def test_an_overlapping_move_is_of_another_kind_and_acts_on_other_things(tmp_path) -> None:
    explorer = make_explorer(tmp_path, seed=9)
    for outer in explorer.moves:
        for _ in range(20):
            inner = explorer._inner(outer)
            if outer.kind == "sequence":
                assert inner is None
                break
            assert inner is not None and inner.kind not in (outer.kind, "sequence")
            assert not (inner.uses & outer.uses), (outer.name, inner.name)


def test_weather_gives_every_link_its_own_latency_and_sometimes_loss() -> None:
    import random

    from tobtest.nemesis.explore import (
        WEATHER_LINK_SPREAD,
        WEATHER_LOSS_MAX,
        describe_weather,
        weather_links,
    )

    names = ["n1", "n2", "n3"]
    stretches = [weather_links(random.Random(seed), names, 60.0) for seed in range(40)]
    assert weather_links(random.Random(3), names, 60.0) == stretches[3], "seeded"
    for links in stretches:
        assert sorted((s["src"], s["dst"]) for s in links) == [
            (a, b) for a in names for b in names if a != b
        ]
        for spec in links:
            assert 60.0 / WEATHER_LINK_SPREAD - 0.1 <= spec["delay_ms"] <= 60.0 * 3 + 0.1
            assert 0.0 <= spec["jitter_ms"] <= spec["delay_ms"] / 2 + 0.1
            assert 0.0 <= spec.get("loss", 0.0) <= WEATHER_LOSS_MAX
    lossy = [links for links in stretches if "loss" in links[0]]
    assert 0 < len(lossy) < len(stretches), "some stretches lose messages, some do not"
    assert len({s["delay_ms"] for s in stretches[0]}) > 1, "links differ within a stretch"
    said = describe_weather(60.0, lossy[0])
    assert said["delay_ms"] == 60.0 and said["loss_max"] > 0
    lo, hi = said["link_delay_ms"]
    assert lo <= hi and describe_weather(0.0, []) == {"delay_ms": 0.0}


@pytest.mark.timeout(60)
def test_flap_changes_the_partition_many_times_and_ends_healed(tmp_path) -> None:
    explorer = make_explorer(tmp_path, seed=5)
    flap = next(m for m in MOVES if m.name == "flap")

    async def play() -> dict[str, Any]:
        await explorer.observer.poll()
        value, undo = await flap.start(explorer)
        await undo()
        return value

    value = asyncio.run(play())
    steps = [s["do"] for s in explorer.ctx.faults.executed]
    assert value["changes"] >= 3 and steps.count("partition") + steps.count("heal") > 3
    assert steps[-1] == "heal" and explorer.ctx.faults.grudge == {}
    one_way = [
        s["grudge"] for s in explorer.ctx.faults.executed
        if s["do"] == "partition" and len(s["grudge"]) == 1
    ]  # fmt: skip
    assert value["one_way_cuts"] == 0 or one_way, "a one-way cut drops one link's messages"


def test_disk_weather_slows_some_disks_in_stretches_only_where_nodes_take_it(tmp_path) -> None:
    from tobtest.nemesis.explore import DISK_DELAY_MS

    clock = [0.0]
    calls: list[tuple[str, Any]] = []

    def explorer_with(disk_latency: bool) -> ExploringNemesis:
        base = make_explorer(tmp_path, seed=6, disk_latency=disk_latency)
        explorer = ExploringNemesis(
            base.ctx, base.recorder, 6, {"disk_latency": disk_latency}, now=lambda: clock[0]
        )

        async def disk(requests: dict[str, Any]) -> dict[str, Any]:
            calls.append(("disk", requests))
            explorer.ctx.faults.disks.update(requests)
            return dict(requests)

        async def disk_reset(nodes: Any = None) -> list[str]:
            calls.append(("reset", None))
            reset = sorted(explorer.ctx.faults.disks)
            explorer.ctx.faults.disks.clear()
            return reset

        explorer.ctx.faults.disk = disk  # type: ignore[method-assign]
        explorer.ctx.faults.disk_reset = disk_reset  # type: ignore[method-assign]
        return explorer

    async def stretches(explorer: ExploringNemesis, count: int) -> None:
        for _ in range(count):
            await explorer._disk_weather()
            clock[0] += 13.0  # past any stretch
        await explorer.heal_all()

    asyncio.run(stretches(explorer_with(False), 10))
    assert calls == [], "a node kind without disk-latency gets no disk requests"
    explorer = explorer_with(True)
    asyncio.run(stretches(explorer, 30))
    slowed = [r for kind, r in calls if kind == "disk"]
    assert 3 <= len(slowed) <= 27, "some stretches have slow disks, some do not"
    for requests in slowed:
        assert requests and set(requests) <= {"n1", "n2", "n3"}
        for r in requests.values():
            assert DISK_DELAY_MS[0] - 0.1 <= r["fsync_delay_ms"] <= DISK_DELAY_MS[1] + 0.1
            assert 0.0 <= r["jitter_ms"] <= r["fsync_delay_ms"] / 2 + 0.1
    assert any(len(r) < 3 for r in slowed), "disks differ: some stay fast in a slow stretch"
    assert explorer.summary()["disk_changes"] == len(slowed)
    explorer.recorder.close()
    fs = [op.f for op in read_history(explorer.recorder.path) if op.type == "ok"]
    assert fs.count("start-slow-disk") == fs.count("stop-slow-disk") == len(slowed)
