"""Process, clock, link and partition faults on a real cluster (3 nodes behind the proxy).

Each nemesis is driven directly (start, then stop) and its effect is looked at from
outside: process states through psutil, clocks and links through the nodes' and proxy's
status replies.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psutil
import pytest

from tests.conftest import assert_no_processes_left
from tobtest.cluster import Cluster, ClusterSpec, NodeState
from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.clock import ClockNemesis
from tobtest.nemesis.link import LinkNemesis
from tobtest.nemesis.partition import PartitionNemesis
from tobtest.nemesis.process import DiskNemesis, KillNemesis, PauseNemesis
from tobtest.nemesis.proxy_client import ProxyControl

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@asynccontextmanager
async def cluster_ctx(tmp_path, node_args: tuple[str, ...] = ()) -> AsyncIterator[NemesisContext]:
    (tmp_path / "nodes").mkdir(exist_ok=True)
    cluster = Cluster(ClusterSpec(n=3, seed=5, node_args=node_args), tmp_path)
    await cluster.start()
    proxy = ProxyControl("127.0.0.1", cluster.ports.control_port)

    async def primaries() -> list[str]:
        return ["n2"]

    try:
        yield NemesisContext(cluster.names, proxy, primaries, cluster)
    finally:
        await proxy.close()
        cluster.stop()


def run(tmp_path, scenario: Callable[[NemesisContext], Awaitable[None]], **kw) -> None:
    async def main() -> None:
        async with cluster_ctx(tmp_path, **kw) as ctx:
            await scenario(ctx)

    asyncio.run(main())
    assert_no_processes_left(tmp_path)


def test_kill_then_restart_with_the_same_ports(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        kill = KillNemesis(random.Random(1), {"targets": ["primaries"]})
        old_pid = ctx.cluster.nodes["n2"].popen.pid
        value = await kill.start(ctx)
        assert value == {"target": "primaries", "nodes": ["n2"]}
        assert ctx.cluster.nodes["n2"].state is NodeState.KILLED
        assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"
        assert await kill.stop(ctx) == {"nodes": ["n2"]}
        status = await ctx.cluster.status("n2")
        assert status["pid"] != old_pid and status["name"] == "n2"
        assert ctx.cluster.nodes["n2"].starts == 2

    run(tmp_path, scenario)


def test_pause_stops_the_process_and_resume_continues_it(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        pause = PauseNemesis(random.Random(2), {"targets": ["one"]})
        value = await pause.start(ctx)
        (name,) = value["nodes"]
        proc = psutil.Process(ctx.cluster.nodes[name].popen.pid)
        assert proc.status() == psutil.STATUS_STOPPED
        from tobtest.workloads.client import ClientError

        with pytest.raises(ClientError):
            await ctx.cluster.status(name, timeout_s=0.3)
        assert await pause.stop(ctx) == {"nodes": [name]}
        assert (await ctx.cluster.status(name))["name"] == name
        # Resuming a node that is not paused is refused: preconditions are asserted.
        with pytest.raises(AssertionError, match="resume"):
            ctx.cluster.resume(name)

    run(tmp_path, scenario)


def test_kill_of_a_paused_node_composes(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        pause = PauseNemesis(random.Random(3), {"targets": ["all"]})
        kill = KillNemesis(random.Random(3), {"targets": ["one"]})
        await pause.start(ctx)
        killed = (await kill.start(ctx))["nodes"]
        resumed = (await pause.stop(ctx))["nodes"]
        assert set(killed).isdisjoint(resumed) and len(resumed) == 2
        assert (await kill.stop(ctx))["nodes"] == killed
        for name in ctx.node_names:
            assert ctx.cluster.nodes[name].state is NodeState.RUNNING

    run(tmp_path, scenario)


def test_disk_nemesis_runs_nodes_in_lose_unsynced_mode(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        status = await ctx.cluster.status("n1")
        assert status["wal"]["lose_unsynced"] is True
        disk = DiskNemesis(random.Random(4), {"targets": ["one"]})
        (name,) = (await disk.start(ctx))["nodes"]
        await disk.stop(ctx)
        assert (await ctx.cluster.status(name))["wal"]["lose_unsynced"] is True

    run(tmp_path, scenario, node_args=DiskNemesis.node_args)


def test_clock_faults_reach_the_nodes_and_reset(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        for fault in ("bump", "strobe", "skew"):
            clock = ClockNemesis(random.Random(5), {"targets": ["all"], "faults": [fault]})
            value = await clock.start(ctx)
            assert value["fault"] == fault and set(value["nodes"]) == {"n1", "n2", "n3"}
            status = (await ctx.cluster.status("n1"))["clock"]
            if fault == "bump":
                assert status["offset_ms"] == value["nodes"]["n1"]["delta_ms"] != 0
            elif fault == "strobe":
                assert status["strobing"] is True
            else:
                assert status["rate"] == value["nodes"]["n1"]["rate"] != 1.0
            assert (await clock.stop(ctx))["reset"] == ["n1", "n2", "n3"]
            reset = (await ctx.cluster.status("n1"))["clock"]
            assert (reset["offset_ms"], reset["rate"], reset["strobing"]) == (0.0, 1.0, False)

    run(tmp_path, scenario)


def test_slow_disks_reach_the_nodes_and_a_kill_or_a_reset_ends_them(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        faults = ctx.faults
        slow = {"n1": {"fsync_delay_ms": 50.0, "jitter_ms": 5.0}, "n2": {"fsync_delay_ms": 9.0}}
        assert set(await faults.disk(slow)) == {"n1", "n2"}
        assert (await ctx.cluster.status("n1"))["disk"]["fsync_delay_ms"] == 50.0
        assert (await ctx.cluster.status("n2"))["disk"]["jitter_ms"] == 0.0
        await faults.kill(["n2"])
        await faults.restart(["n2"])
        assert set(faults.disks) == {"n1"}, "a restarted node has a normal disk"
        assert (await ctx.cluster.status("n2"))["disk"]["fsync_delay_ms"] == 0.0
        healed = await faults.heal_everything()
        assert healed["disk_reset"] == ["n1"] and faults.disks == {}
        assert (await ctx.cluster.status("n1"))["disk"]["fsync_delay_ms"] == 0.0
        kinds = [step["do"] for step in faults.executed]
        assert kinds[0] == "disk" and "disk-reset" in kinds

    run(tmp_path, scenario)


def test_link_and_partition_faults_reach_the_proxy(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        link = LinkNemesis(random.Random(6))
        value = await link.start(ctx)
        status = await ctx.proxy.status()
        assert len(status["faults"]) == len(value["faults"]) > 0
        await link.stop(ctx)
        assert (await ctx.proxy.status())["faults"] == []

        partition = PartitionNemesis(random.Random(6), {"shapes": ["primaries"]})
        value = await partition.start(ctx)
        assert value["grudge"] == {"n1": ["n2"], "n2": ["n1", "n3"], "n3": ["n2"]}
        assert (await ctx.proxy.status())["grudge"] == value["grudge"]
        await partition.stop(ctx)
        assert not (await ctx.proxy.status())["grudge"]

    run(tmp_path, scenario)


def test_stall_freezes_and_isolates_the_primary_then_wakes_it_cut_off(tmp_path):
    from tobtest.nemesis.process import StallNemesis

    async def scenario(ctx: NemesisContext) -> None:
        stall = StallNemesis(random.Random(7), {"isolated_after_resume_s": 0.2})
        value = await stall.start(ctx)
        assert value["nodes"] == ["n2"]  # the primary
        assert ctx.cluster.nodes["n2"].state is NodeState.PAUSED
        assert (await ctx.proxy.status())["grudge"] == {
            "n1": ["n2"],
            "n2": ["n1", "n3"],
            "n3": ["n2"],
        }
        assert await stall.stop(ctx) == {"resumed": ["n2"], "healed_after_s": 0.2}
        assert ctx.cluster.nodes["n2"].state is NodeState.RUNNING
        assert not (await ctx.proxy.status())["grudge"]

    run(tmp_path, scenario)


def test_link_nemesis_restores_the_background_latency(tmp_path):
    async def scenario(ctx: NemesisContext) -> None:
        ctx.base_link_faults = [{"src": "*", "dst": "*", "delay_ms": 30}]
        await ctx.proxy.link_faults(ctx.base_link_faults)
        link = LinkNemesis(random.Random(8), {"toxics": ["loss"]})
        await link.start(ctx)
        assert len((await ctx.proxy.status())["faults"]) > 1
        await link.stop(ctx)
        faults = (await ctx.proxy.status())["faults"]
        assert [f.get("delay_ms") for f in faults] == [30]

    run(tmp_path, scenario)
