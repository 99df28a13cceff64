"""A real node process against bad input on both sockets: errors or a closed connection,
never a crash; and a lone node serves broadcasts and reads."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from tobtest.ports import PortPlan
from tobtest.workloads import read_cursor
from tobtest.workloads.client import NodeClient, request_once

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def lone_node(tmp_path):
    """A one-node cluster (its own majority): its client and peer sockets are ours to abuse."""
    plan = PortPlan.allocate(1)
    proc = start_lone_node(tmp_path, plan)
    try:
        yield plan, proc
    finally:
        proc.kill()
        proc.wait()


async def raw_exchange(port: int, payload: bytes, replies: int) -> list[dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    writer.write(payload)
    await writer.drain()
    out = []
    for _ in range(replies):
        line = await asyncio.wait_for(reader.readline(), 5)
        if not line:
            break
        out.append(json.loads(line))
    writer.close()
    return out


def status(port: int) -> dict:
    return asyncio.run(request_once("127.0.0.1", port, {"type": "status"}, 2))


def test_garbage_on_the_client_socket_gets_error_replies(lone_node):
    plan, proc = lone_node
    port = plan.client_ports[0]
    payload = b"".join(
        [
            b"not json at all\n",
            b"[1, 2, 3]\n",
            b'{"type": "broadcast", "id": 1}\n',  # no value
            b'{"type": "broadcast", "id": 2, "value": 1, "msg_id": 17}\n',  # wrong type
            b'{"type": "read", "id": 3, "mode": "psychic"}\n',
            b'{"type": "launch-missiles", "id": 4}\n',
            b"\xff\xfe\x00\n",
            b'{"type": "clock", "id": 5, "op": "skew", "rate": "fast"}\n',
        ]
    )
    replies = asyncio.run(raw_exchange(port, payload, 8))
    assert [r["type"] for r in replies] == ["error"] * 8
    assert [r["code"] for r in replies] == [
        "malformed", "malformed", "bad-request", "bad-request", "bad-request",
        "unknown-type", "malformed", "bad-request",
    ]  # fmt: skip
    assert [r.get("in_reply_to") for r in replies[2:6]] == [1, 2, 3, 4]
    # An oversized line closes that connection, and only that one.
    replies = asyncio.run(raw_exchange(port, b"x" * (2 << 20) + b"\n", 1))
    assert replies and replies[0]["code"] == "too-large"
    assert proc.poll() is None
    assert status(port)["bad_client_requests"] == 9


def test_garbage_on_the_peer_socket_is_ignored(lone_node):
    plan, proc = lone_node

    async def spray() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", plan.peer_ports[0])
        for frame in [
            b"garbage\n",
            b'{"src": 0, "dst": 0, "body": {"type": "prepare"}}\n',  # from itself
            b'{"src": 7, "dst": 0, "body": {"type": "prepare"}}\n',  # no such node
            b'{"src": "n2", "body": {}}\n',
            b'{"src": 1, "dst": 0, "body": "prepare"}\n',
            b"\x00\x01\x02\n",
        ]:
            writer.write(frame)
        writer.write(b"y" * (2 << 20) + b"\n")
        await writer.drain()
        writer.close()

    asyncio.run(spray())
    time.sleep(0.3)
    assert proc.poll() is None
    assert status(plan.client_ports[0])["bad_peer_frames"] >= 6


def test_a_lone_node_broadcasts_and_reads(lone_node):
    plan, _ = lone_node

    async def scenario() -> tuple[list[dict], dict]:
        client = NodeClient("127.0.0.1", plan.client_ports[0])
        acks = [
            await client.request({"type": "broadcast", "value": v, "msg_id": f"m{v}"}, 2)
            for v in (10, 11, 12)
        ]
        # The same msg_id again is a retry: acked with the same position, not delivered twice.
        retry = await client.request({"type": "broadcast", "value": 11, "msg_id": "m11"}, 2)
        read = await client.request({"type": "read", "mode": "log"}, 2)
        await client.close()
        return [*acks, retry], read

    acks, read = asyncio.run(scenario())
    assert [a["position"] for a in acks] == [0, 1, 2, 1]
    assert read["value"] == [10, 11, 12]


def test_a_slow_disk_holds_what_follows_a_synced_write_and_keeps_the_order(lone_node):
    plan, _ = lone_node
    port = plan.client_ports[0]

    async def scenario() -> tuple[list[tuple[float, dict]], list[dict]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def ask(*requests: dict) -> list[tuple[float, dict]]:
            t0 = time.monotonic()
            writer.write(b"".join((json.dumps(r) + "\n").encode() for r in requests))
            out = []
            for _ in requests:
                line = await asyncio.wait_for(reader.readline(), 5)
                out.append((time.monotonic() - t0, json.loads(line)))
            return out

        [(_, slow)] = await ask({"type": "disk", "id": 1, "fsync_delay_ms": 400})
        assert slow["type"] == "disk_ok" and slow["disk"]["fsync_delay_ms"] == 400
        timed = await ask(
            {"type": "broadcast", "id": 2, "msg_id": "a", "value": 7},
            {"type": "read", "id": 3, "mode": "local"},
            {"type": "status", "id": 4},
        )
        bad = [
            r
            for _, r in await ask(
                {"type": "disk", "id": 5, "fsync_delay_ms": -1},
                {"type": "disk", "id": 6, "fsync_delay_ms": "x"},
                {"type": "disk", "id": 7, "fsync_delay_ms": 10, "jitter_ms": 1e9},
            )
        ]
        [(_, normal)] = await ask({"type": "disk", "id": 8})
        assert normal["disk"]["fsync_delay_ms"] == 0 and normal["disk"]["held"] == 0
        writer.close()
        return timed, bad

    timed, bad = asyncio.run(scenario())
    (_, status_reply), (t_ack, ack), (t_read, read) = timed
    # The status answers at once, the write still held; the ack waits for the slow write,
    # and the read, which wrote nothing, waits behind it and sees the message.
    assert status_reply["type"] == "status_ok" and status_reply["disk"]["held"] >= 1
    assert ack["type"] == "broadcast_ok" and t_ack >= 0.4
    assert read["type"] == "read_ok" and read["value"] == [7] and t_read >= t_ack
    assert [r["code"] for r in bad] == ["bad-request"] * 3
    assert status(port)["disk"]["slow_writes"] >= 1


def start_lone_node(tmp_path, plan: PortPlan, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tobtest.node",
            "--id",
            "0",
            "--n",
            "1",
            "--client-port",
            str(plan.client_ports[0]),
            "--peer-port",
            str(plan.peer_ports[0]),
            "--parent-pid",
            str(os.getpid()),
            "--data-dir",
            str(tmp_path / "n1.data"),
            *extra,
        ],  # fmt: skip
        stderr=(tmp_path / "n1.log").open("ab"),
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            asyncio.run(request_once("127.0.0.1", plan.client_ports[0], {"type": "status"}, 1))
            return proc
        except Exception:
            assert proc.poll() is None, (tmp_path / "n1.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)


async def broadcast_all(port: int, values: list[int]) -> list[int]:
    client = NodeClient("127.0.0.1", port)
    try:
        positions = []
        for v in values:
            reply = await client.request({"type": "broadcast", "value": v, "msg_id": f"m{v}"}, 2)
            positions.append(reply["position"])
        return positions
    finally:
        await client.close()


def test_a_killed_node_restarts_from_its_data_directory(tmp_path):
    plan = PortPlan.allocate(1)
    port = plan.client_ports[0]
    proc = start_lone_node(tmp_path, plan)
    try:
        assert asyncio.run(broadcast_all(port, [1, 2, 3])) == [0, 1, 2]
        proc.kill()
        proc.wait()
        proc = start_lone_node(tmp_path, plan)
        status_after = status(port)
        assert status_after["wal"]["restored_records"] > 0
        read = asyncio.run(request_once("127.0.0.1", port, {"type": "read"}, 2))
        assert read["value"] == [1, 2, 3]
        # A retried broadcast is still deduplicated after the restart; new ones go on after.
        assert asyncio.run(broadcast_all(port, [2, 4])) == [1, 3]
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("protocol", ["paxos", "multipaxos", "raft"])
def test_each_life_of_a_node_draws_its_own_log_read_markers(tmp_path, protocol) -> None:
    """A marker a killed node left in flight may be chosen after it restarts: the restarted
    node must not take it for the marker of a new read (it would answer with an older
    prefix), so each start from the same data directory is a new random stream."""
    from tobtest.node.protocols.base import ClientRead
    from tobtest.node.server import NodeConfig, NodeServer, next_incarnation

    def marker_ids() -> list[str]:
        config = NodeConfig(0, 3, protocol, 1, 2, {}, seed=7, data_dir=str(tmp_path / "d"))
        core = NodeServer(config).core
        ids = []
        for request_id in range(3):
            core.step(ClientRead(request_id=request_id, mode="log"), 0.0)
        for entry in getattr(core, "_queue", []) or []:
            ids.append(entry.get("id"))
        pending = getattr(core, "_pending", {}) or {}
        ids += [key[1] for key in pending if isinstance(key, tuple)]
        ids += list(getattr(core, "_read_waiters", {}) or {})
        return sorted({i for i in ids if isinstance(i, str) and i.startswith("r")})

    first, second = marker_ids(), marker_ids()
    assert first and second and not set(first) & set(second), (first, second)
    assert next_incarnation(str(tmp_path / "d")) == 3
    assert next_incarnation(str(tmp_path / "fresh")) == 1


def test_a_lone_node_answers_reads_from_a_position(lone_node):
    """`from` and `digest` (PROTOCOL.md, Reads from a position): the entries past `from`
    when the client's prefix is the node's, the whole log when not, bad-request for
    nonsense; a read without `from` is answered as always."""
    plan, proc = lone_node
    held_digest = read_cursor.log_digest([10, 11])

    async def scenario() -> list[dict]:
        client = NodeClient("127.0.0.1", plan.client_ports[0])
        for v in (10, 11, 12):
            await client.request({"type": "broadcast", "value": v, "msg_id": f"m{v}"}, 2)
        replies = [
            await client.request({"type": "read", "mode": mode, **fields}, 2)
            for mode, fields in [
                ("local", {"from": 2, "digest": held_digest}),
                ("log", {"from": 2, "digest": held_digest}),
                ("local", {"from": 2, "digest": read_cursor.log_digest([11, 10])}),
                ("local", {"from": 5, "digest": held_digest}),
                ("local", {}),
                ("local", {"from": -1}),
            ]
        ]
        await client.close()
        return replies

    suffix, log_suffix, diverged, too_far, plain, bad = asyncio.run(scenario())
    assert (suffix["value"], suffix["from"], suffix["length"]) == ([12], 2, 3)
    assert (log_suffix["value"], log_suffix["from"]) == ([12], 2)
    assert (diverged["value"], diverged["from"], diverged["length"]) == ([10, 11, 12], 0, 3)
    assert (too_far["value"], too_far["from"]) == ([10, 11, 12], 0)
    assert plain["value"] == [10, 11, 12] and "from" not in plain
    assert (bad["type"], bad["code"]) == ("error", "bad-request")
    assert proc.poll() is None
