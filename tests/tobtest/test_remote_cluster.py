"""The processes of a run on other hosts, driven directly (no CLI) against the test's own
sshd on 127.0.0.2-4: faults act on the remote pid, a failed start leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import psutil
import pytest

from tests.helpers.sshd import Sshd, assert_nothing_left
from tests.tobtest.conftest import SSH_HOSTS
from tobtest.cluster import ClusterError, ClusterSpec, NodeState
from tobtest.config import TestConfig
from tobtest.ports import PortInUse
from tobtest.remote import preflight
from tobtest.remote_cluster import RemoteCluster


def remote_config(sshd: Sshd, tmp_path: Path, nodes: int) -> TestConfig:
    return TestConfig(nodes=nodes, hosts=SSH_HOSTS[:nodes], ssh_user=sshd.user,
                      ssh_key=str(sshd.key_path), ssh_port=sshd.port,
                      remote_dir=str(tmp_path / "remote"))  # fmt: skip


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_pause_kill_and_restart_act_on_the_remote_pid(sshd: Sshd, tmp_path: Path):
    config = remote_config(sshd, tmp_path, 2)
    run_dir = tmp_path / "run"

    async def go() -> None:
        setup = await preflight(config)
        cluster = RemoteCluster(ClusterSpec(n=2, seed=3), run_dir, setup)
        await cluster.start()
        try:
            n1 = cluster.nodes["n1"]
            first_pid = n1.remote_pid
            assert first_pid is not None
            cluster.pause("n1")
            await cluster.settle(["n1"])
            assert psutil.Process(first_pid).status() == psutil.STATUS_STOPPED
            cluster.resume("n1")
            cluster.kill("n1")
            await cluster.settle(["n1"])
            assert not psutil.pid_exists(first_pid)
            cluster.restart("n1")
            await cluster.wait_ready(["n1"])
            assert n1.remote_pid not in (None, first_pid)
            assert n1.state is NodeState.RUNNING
            assert cluster.reap_crashed() == []
        finally:
            await cluster.finish()

    asyncio.run(go())
    # Restarted on the same data folder: the log says so, fetched back with it.
    log_text = (run_dir / "nodes" / "n1.log").read_text()
    assert log_text.count(" up: ") == 2
    assert (run_dir / "nodes" / "n1.data" / "wal.log").is_file()
    assert_nothing_left(sshd)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_node_that_cannot_start_ends_the_start_and_everything_with_it(sshd: Sshd, tmp_path: Path):
    config = remote_config(sshd, tmp_path, 3)

    async def go() -> str:
        setup = await preflight(config)
        # Taken after the check: n3's client port on its host, as a race with another
        # program would take it.
        with socket.socket() as thief:
            thief.bind(("127.0.0.4", setup.ports.client_ports[2]))
            thief.listen()
            cluster = RemoteCluster(ClusterSpec(n=3, seed=5), tmp_path / "run", setup)
            with pytest.raises((ClusterError, PortInUse)) as info:
                await cluster.start()
        return str(info.value)

    message = asyncio.run(go())
    assert message.startswith("n3: ") and "address already in use" in message, message
    assert_nothing_left(sshd)
