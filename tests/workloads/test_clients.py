"""Workload clients against a real one-node cluster: outcomes as Jepsen records them."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.node.test_server import start_lone_node
from tobtest.ports import PortPlan
from tobtest.workloads.broadcast import BroadcastWorkload
from tobtest.workloads.client import NodeClient
from tobtest.workloads.register import RegisterWorkload
from tobtest.workloads.txn import TxnWorkload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def node_client(tmp_path):
    plan = PortPlan.allocate(1)
    proc = start_lone_node(tmp_path, plan)
    try:
        yield plan.client_ports[0]
    finally:
        proc.kill()
        proc.wait()


def run(port: int, workload, ops):
    async def main():
        client = NodeClient("127.0.0.1", port)
        try:
            return [await workload.invoke(client, op, 2.0) for op in ops]
        finally:
            await client.close()

    return asyncio.run(main())


def test_txn_acks_carry_the_reads_computed_at_delivery(node_client):
    workload = TxnWorkload(random.Random(0))
    ops = [
        {"f": "txn", "value": [["append", 1, 1], ["r", 1, None]], "msg_id": "t1"},
        {"f": "txn", "value": [["append", 1, 2], ["r", 2, None]], "msg_id": "t2"},
        {"f": "txn", "value": [["r", 1, None]], "msg_id": "t3"},
    ]
    outcomes = run(node_client, workload, ops)
    assert [o.type for o in outcomes] == ["ok"] * 3
    assert outcomes[0].value == [["append", 1, 1], ["r", 1, [1]]]
    assert outcomes[1].value == [["append", 1, 2], ["r", 2, []]]
    assert outcomes[2].value == [["r", 1, [1, 2]]]


def test_register_ops_and_read_modes(node_client):
    workload = RegisterWorkload(random.Random(0))
    ops = [
        {"f": "read", "value": None, "key": 0, "read_mode": "log", "msg_id": "a"},
        {"f": "write", "value": 3, "key": 0, "msg_id": "b"},
        {"f": "cas", "value": [3, 4], "key": 0, "msg_id": "c"},
        {"f": "cas", "value": [3, 1], "key": 0, "msg_id": "d"},
        {"f": "read", "value": None, "key": 0, "read_mode": "local", "msg_id": "e"},
        {"f": "read", "value": None, "key": 0, "read_mode": "log", "msg_id": "f"},
        {"f": "read", "value": None, "key": 1, "read_mode": "lease", "msg_id": "g"},
    ]
    outcomes = run(node_client, workload, ops)
    assert [(o.type, o.value) for o in outcomes[:6]] == [
        ("ok", None), ("ok", 3), ("ok", [3, 4]), ("fail", [3, 1]), ("ok", 4), ("ok", 4),
    ]  # fmt: skip
    # Per-slot Paxos has no lease: the read is refused, which is a definite failure.
    assert outcomes[6].type == "fail"


def test_broadcast_timeouts_are_info_and_reads_fail(node_client):
    workload = BroadcastWorkload(random.Random(0))

    async def main():
        client = NodeClient("127.0.0.1", node_client)
        # A zero timeout cannot be met: the broadcast's fate is unknown, a read's harmless.
        b = await workload.invoke(client, {"f": "broadcast", "value": 1}, 0.0)
        client = NodeClient("127.0.0.1", node_client)
        r = await workload.invoke(client, {"f": "read", "value": None}, 0.0)
        dead = NodeClient("127.0.0.1", 1)
        c = await workload.invoke(dead, {"f": "broadcast", "value": 2}, 1.0)
        return b, r, c

    b, r, c = asyncio.run(main())
    assert (b.type, r.type) == ("info", "fail")
    assert c.type == "fail" and "cannot connect" in c.error


def test_a_broadcast_is_retried_on_another_node_with_the_same_msg_id(node_client):
    workload = BroadcastWorkload(random.Random(0))

    async def main():
        dead = NodeClient("127.0.0.1", 1)
        live = NodeClient("127.0.0.1", node_client)
        try:
            first = await workload.invoke(dead, {"f": "broadcast", "value": 7}, 2.0, ("n9", live))
            # The same value again (a client retrying): delivered once, same position.
            again = await workload.invoke(live, {"f": "broadcast", "value": 7}, 2.0)
            read = await workload.invoke(live, {"f": "read", "value": None}, 2.0)
            return first, again, read
        finally:
            await live.close()

    first, again, read = asyncio.run(main())
    assert (first.type, first.node, first.extra) == ("ok", "n9", {"position": 0, "retried": True})
    assert again.extra["position"] == 0
    assert read.value == [7]
