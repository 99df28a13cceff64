"""The flip nemesis on a real Multi-Paxos cluster (3 nodes behind the proxy).

The old leader is found and the new one waited for through the nodes' status replies, as
the runner does; the restarted acceptor's promise is then read back the same way, with and
without the node's `forget-promise` fixture bug.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from tests.conftest import assert_no_processes_left
from tobtest.cluster import Cluster, ClusterSpec, NodeState
from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.flip import FlipNemesis
from tobtest.nemesis.grudge import complete_grudge
from tobtest.nemesis.proxy_client import ProxyControl
from tobtest.workloads.client import ClientError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def claimed_leaders(cluster: Cluster) -> list[str]:
    async def role(name: str) -> str | None:
        try:
            return (await cluster.status(name, timeout_s=0.5)).get("role")
        except ClientError:
            return None

    roles = await asyncio.gather(*(role(n) for n in cluster.names))
    return [n for n, r in zip(cluster.names, roles, strict=True) if r == "leader"]


async def promised_after_flip(tmp_path, bugs: tuple[str, ...]) -> dict[str, Any]:
    """Runs flip.start on a fresh cluster and follows the restarted node's promise for 1 s."""
    node_args = tuple(arg for bug in bugs for arg in ("--bug", bug))
    spec = ClusterSpec(n=3, protocol="multipaxos", seed=3, node_args=node_args)
    cluster = Cluster(spec, tmp_path)
    await cluster.start()
    proxy = ProxyControl("127.0.0.1", cluster.ports.control_port)
    try:
        deadline = time.monotonic() + 10.0
        while not await claimed_leaders(cluster):
            assert time.monotonic() < deadline, "no leader elected"
            await asyncio.sleep(0.05)

        async def primaries() -> list[str]:
            return await claimed_leaders(cluster)

        ctx = NemesisContext(cluster.names, proxy, primaries, cluster)
        first_pids = {n: cluster.nodes[n].popen.pid for n in cluster.names}
        flip = FlipNemesis(random.Random(1))
        value = await flip.start(ctx)
        old, new, (victim,) = value["old_leader"], value["new_leader"], value["restarted"]
        assert len({old, new, victim}) == 3
        assert value["elected_after_s"] is not None
        # No client load here: the victim never holds an unchosen value, and is killed anyway.
        assert value["killed_holding_unchosen"] is False
        assert value["grudge"] == complete_grudge([[old, victim], [new]])
        assert (await proxy.status())["grudge"] == value["grudge"]
        assert cluster.nodes[victim].state is NodeState.RUNNING
        assert cluster.nodes[victim].popen.pid != first_pids[victim]
        assert flip.describe_active() == f"flip {old},{victim} | {new}"
        new_ballot = (await cluster.status(new))["ballot"]
        seen = []
        for _ in range(20):
            seen.append((await cluster.status(victim))["promised"])
            await asyncio.sleep(0.05)
        assert await flip.stop(ctx) == {"grudge": {}}
        assert not (await proxy.status())["grudge"]
        return {"new_ballot": new_ballot, "promised": seen}
    finally:
        await proxy.close()
        cluster.stop()


def test_flip_restarts_an_acceptor_that_keeps_its_promise_to_the_new_leader(tmp_path):
    got = asyncio.run(promised_after_flip(tmp_path, ()))
    assert_no_processes_left(tmp_path)
    assert all(p >= got["new_ballot"] for p in got["promised"]), got


def test_flip_lets_the_old_leader_win_back_an_acceptor_that_forgot_its_promise(tmp_path):
    got = asyncio.run(promised_after_flip(tmp_path, ("forget-promise",)))
    assert_no_processes_left(tmp_path)
    # The old leader's heartbeats and accepts, under its stale ballot, were taken.
    assert any(p < got["new_ballot"] for p in got["promised"]), got
