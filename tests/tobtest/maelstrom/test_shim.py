"""tobtest/maelstrom/shim.py: one shim and one node, well- and ill-behaved, by subprocess.

Every case checks that the shim and its node are gone afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import wait_gone
from tobtest.maelstrom.kind import libfaketime
from tobtest.maelstrom.services import Services, bind_socket, serve
from tobtest.ports import PortPlan
from tobtest.workloads.client import ClientError, NodeClient

NODES = Path(__file__).resolve().parents[2] / "helpers" / "maelstrom_nodes.py"
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def shim_argv(kind: str, ports: PortPlan, service_port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tobtest.maelstrom.shim", "--id", "0", "--n", "1",
        "--client-port", str(ports.client_ports[0]), "--peer-port", str(ports.peer_ports[0]),
        "--service-port", str(service_port), "--parent-pid", str(os.getpid()), *extra,
        "--", sys.executable, str(NODES), kind,
    ]  # fmt: skip


async def start(kind: str, *extra: str) -> tuple[subprocess.Popen[bytes], NodeClient, Any]:
    ports = PortPlan.allocate(1)
    sock = bind_socket()
    server = await serve(Services(), sock)
    shim = subprocess.Popen(
        shim_argv(kind, ports, sock.getsockname()[1], *extra), stderr=subprocess.PIPE
    )
    client = NodeClient("127.0.0.1", ports.client_ports[0])
    for _ in range(200):
        if shim.poll() is not None:
            break
        try:
            await client.request({"type": "status"}, 1.0)
            break
        except ClientError:
            await asyncio.sleep(0.05)
    return shim, client, server


def finish(
    shim: subprocess.Popen[bytes], node_pid: int | None = None, exits: bool = False
) -> tuple[int, str]:
    """Ends the shim (or, with `exits`, waits for it to exit on its own); its code, stderr."""
    if not exits and shim.poll() is None:
        shim.terminate()
    code = shim.wait(timeout=10)
    assert shim.stderr is not None
    stderr = shim.stderr.read().decode()
    assert wait_gone([shim.pid] + ([node_pid] if node_pid else [])) == []
    return code, stderr


def test_it_inits_the_node_and_carries_client_requests_and_replies():
    async def scenario() -> tuple[list[dict[str, Any]], subprocess.Popen[bytes], int]:
        shim, client, server = await start("echo")
        status = await client.request({"type": "status"}, 2.0)
        replies = [
            await client.request({"type": "maelstrom", "body": {"type": "echo", "echo": 5}}, 2.0),
            await client.request({"type": "maelstrom", "body": {"type": "read", "key": 1}}, 2.0),
            await client.request({"type": "maelstrom", "body": "not an object"}, 2.0),
            await client.request({"type": "nonsense"}, 2.0),
        ]
        await client.close()
        server.close()
        return replies, shim, status["node_pid"]

    replies, shim, node_pid = asyncio.run(scenario())
    assert replies[0]["type"] == "maelstrom_ok"
    assert replies[0]["body"]["type"] == "echo_ok" and replies[0]["body"]["echo"] == 5
    assert replies[1]["body"]["code"] == 20
    assert [r["code"] for r in replies[2:]] == ["bad-request", "bad-request"]
    assert psutil.Process(node_pid).ppid() == shim.pid  # the node is the shim's child
    assert finish(shim, node_pid)[0] == 0


def test_setup_bodies_are_sent_after_init_and_must_be_answered_ok():
    async def scenario(body: dict[str, Any]) -> tuple[subprocess.Popen[bytes], bool]:
        shim, client, server = await start("echo", "--setup", json.dumps(body))
        up = shim.poll() is None
        await client.close()
        server.close()
        return shim, up

    shim, up = asyncio.run(scenario({"type": "topology", "topology": {"n1": []}}))
    assert up and finish(shim)[0] == 0
    shim, up = asyncio.run(scenario({"type": "frobnicate"}))
    code, stderr = finish(shim, exits=True)
    assert not up and code == 1 and "answered frobnicate with" in stderr


@pytest.mark.parametrize(
    ("kind", "extra", "says"),
    [
        ("exit", (), "exited with 3"),
        ("silent", ("--init-timeout", "1"), "did not answer init within 1 s"),
        ("chatty", (), "printed a line that is not a Maelstrom message: 'hello, this is not JSON'"),
    ],
)
def test_a_node_that_does_not_come_up_is_one_line_and_exit_1(kind, extra, says):
    async def scenario() -> subprocess.Popen[bytes]:
        shim, client, server = await start(kind, *extra)
        await client.close()
        server.close()
        return shim

    code, stderr = finish(asyncio.run(scenario()), exits=True)
    assert code == 1
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("tobtest shim:")]
    assert says in line and "node n1" in line


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("garbage-later", "printed a line that is not a Maelstrom message: 'oops: not JSON'"),
        ("huge-later", "wrote a line over 1048576 bytes on stdout"),
    ],
)
def test_a_node_that_breaks_the_protocol_later_has_crashed(kind, says):
    async def scenario() -> tuple[subprocess.Popen[bytes], int]:
        shim, client, server = await start(kind)
        node_pid = (await client.request({"type": "status"}, 2.0))["node_pid"]
        with pytest.raises(ClientError):
            await client.request({"type": "maelstrom", "body": {"type": "echo", "echo": 1}}, 5.0)
        await client.close()
        server.close()
        return shim, node_pid

    shim, node_pid = asyncio.run(scenario())
    code, stderr = finish(shim, node_pid, exits=True)
    assert code == 1
    assert f"tobtest shim: node n1 crashed: it {says}" in stderr


@pytest.mark.skipif(libfaketime() is None, reason="libfaketime is not installed "
                    "(apt-get install faketime libfaketime)")  # fmt: skip
def test_clock_requests_move_the_nodes_clock_through_libfaketime(tmp_path):
    async def node_time(client: NodeClient) -> float:
        reply = await client.request({"type": "maelstrom", "body": {"type": "time"}}, 2.0)
        return float(reply["body"]["time"])

    async def scenario() -> tuple[list[float], dict[str, Any], subprocess.Popen[bytes]]:
        clock_file = tmp_path / "faketime.txt"
        shim, client, server = await start(
            "echo", "--faketime", str(libfaketime()), "--clock-file", str(clock_file)
        )
        skews = [await node_time(client) - time.time()]
        await client.request({"type": "clock", "op": "bump", "delta_ms": 60_000}, 2.0)
        await asyncio.sleep(2.5)  # libfaketime re-reads the file within two seconds
        skews.append(await node_time(client) - time.time())
        reset = await client.request({"type": "clock", "op": "reset"}, 2.0)
        bad = await client.request({"type": "clock", "op": "warp"}, 2.0)
        await client.close()
        server.close()
        return skews, {"reset": reset, "bad": bad}, shim

    skews, replies, shim = asyncio.run(scenario())
    assert abs(skews[0]) < 1.0 and 58.0 < skews[1] < 62.0
    assert replies["reset"]["clock"] == {"offset_ms": 0.0, "rate": 1.0, "strobing": False}
    assert replies["bad"]["code"] == "bad-request"
    assert finish(shim)[0] == 0
