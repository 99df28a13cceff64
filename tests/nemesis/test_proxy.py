"""The real proxy process, with small asyncio peer listeners standing in for nodes.

The first tests check config parsing and control requests in-process. Each integration
test starts its own proxy (python -m tobtest.nemesis.proxy) on free ports and ends it by
pid. `Peer` is a node's peer side: a listener on its target port that records what arrives
(and answers {"ping": k} with {"pong": k} over its own link back), and one connection per
outgoing link to the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tobtest.nemesis.proxy import ConfigError, Proxy, parse_config
from tobtest.nemesis.proxy_client import ProxyControl, ProxyControlError

F = Callable[..., None]


def integration(test: F) -> F:
    """Starts real processes: marked, and bounded in time."""
    return pytest.mark.integration(pytest.mark.timeout(60)(test))


NAMES = ("n1", "n2", "n3")
READY_TIMEOUT_S = 10.0
QUIET_S = 0.3  # how long "nothing arrives" is watched for


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class ProxyHandle:
    proc: subprocess.Popen[bytes]
    config: dict[str, Any]
    stderr_path: Path

    @property
    def control_port(self) -> int:
        return int(self.config["control_port"])

    def listen_port(self, src: str, dst: str) -> int:
        for link in self.config["links"]:
            if (link["src"], link["dst"]) == (src, dst):
                return int(link["listen_port"])
        raise KeyError((src, dst))

    def target_port(self, name: str) -> int:
        for link in self.config["links"]:
            if link["dst"] == name:
                return int(link["target_port"])
        raise KeyError(name)

    def alive(self) -> bool:
        return self.proc.poll() is None


def make_config(names: tuple[str, ...] = NAMES, **extra: Any) -> dict[str, Any]:
    pairs = [(s, d) for s in names for d in names if s != d]
    ports = free_ports(1 + len(pairs) + len(names))
    targets = dict(zip(names, ports[1 + len(pairs) :], strict=True))
    links = [
        {"src": s, "dst": d, "listen_port": port, "target_port": targets[d]}
        for (s, d), port in zip(pairs, ports[1 : 1 + len(pairs)], strict=True)
    ]
    return {"control_port": ports[0], "links": links, "seed": 7, "parent_pid": None, **extra}


def start_proxy(tmp_path: Path, config: dict[str, Any], tag: str = "") -> ProxyHandle:
    config_path = tmp_path / f"proxy{tag}.json"
    config_path.write_text(json.dumps(config))
    stderr_path = tmp_path / f"proxy{tag}.err"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tobtest.nemesis.proxy", "--config", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    return ProxyHandle(proc, config, stderr_path)


def wait_ready(handle: ProxyHandle) -> None:
    assert handle.proc.stdout is not None
    ready, _, _ = select.select([handle.proc.stdout], [], [], READY_TIMEOUT_S)
    line = handle.proc.stdout.readline() if ready else b""
    assert line == b"ready\n", handle.stderr_path.read_text()


def end(proc: subprocess.Popen[bytes]) -> int:
    """Ends a process we started, by pid: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)
    if proc.stdout is not None:
        proc.stdout.close()
    return int(proc.returncode)


@contextlib.contextmanager
def running_proxy(tmp_path: Path, tag: str = "", **extra: Any) -> Iterator[ProxyHandle]:
    handle = start_proxy(tmp_path, make_config(**extra), tag)
    try:
        wait_ready(handle)
        yield handle
    finally:
        end(handle.proc)


class Peer:
    """A node's peer side: records arrivals, pongs pings, sends through the proxy."""

    def __init__(self, name: str, proxy: ProxyHandle) -> None:
        self.name = name
        self.proxy = proxy
        self.inbox: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.accepted: list[asyncio.StreamWriter] = []
        self.links: dict[str, asyncio.StreamWriter] = {}

    async def start(self) -> None:
        port = self.proxy.target_port(self.name)
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def stop_listening(self) -> None:
        """As if the node died: the listener and every accepted connection go."""
        assert self.server is not None
        self.server.close()
        for writer in self.accepted:
            writer.transport.abort()
        self.accepted.clear()
        await asyncio.sleep(0.05)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(writer)
        with contextlib.suppress(ConnectionError, OSError):
            while line := await reader.readline():
                self.inbox.put_nowait((time.monotonic(), line))
                with contextlib.suppress(ValueError):
                    msg = json.loads(line)
                    if isinstance(msg, dict) and "ping" in msg:
                        await self.send(msg["from"], {"pong": msg["ping"], "from": self.name})

    async def link(self, dst: str) -> asyncio.StreamWriter:
        writer = self.links.get(dst)
        if writer is None or writer.is_closing():
            port = self.proxy.listen_port(self.name, dst)
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            self.links[dst] = writer
        return writer

    async def send_raw(self, dst: str, data: bytes) -> None:
        writer = await self.link(dst)
        writer.write(data)
        await writer.drain()

    async def send(self, dst: str, msg: dict[str, Any]) -> None:
        await self.send_raw(dst, json.dumps(msg).encode() + b"\n")

    async def receive(self, count: int, timeout_s: float = 3.0) -> list[dict[str, Any]]:
        """Up to `count` messages (JSON-decoded), waiting at most timeout_s in all."""
        return [json.loads(line) for _, line in await self.receive_timed(count, timeout_s)]

    async def receive_timed(self, count: int, timeout_s: float) -> list[tuple[float, bytes]]:
        got: list[tuple[float, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                got.append(await asyncio.wait_for(self.inbox.get(), left))
            except TimeoutError:
                break
        return got

    async def close(self) -> None:
        for writer in self.links.values():
            writer.close()
        if self.server is not None:
            self.server.close()
        for writer in self.accepted:
            writer.transport.abort()


async def peers(proxy: ProxyHandle, names: tuple[str, ...] = NAMES) -> dict[str, Peer]:
    nodes = {name: Peer(name, proxy) for name in names}
    for node in nodes.values():
        await node.start()
    return nodes


def run(body: Callable[[], Awaitable[None]], timeout_s: float = 30) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout_s))


async def link_status(control: ProxyControl, src: str, dst: str) -> dict[str, Any]:
    status = await control.status()
    (link,) = [ln for ln in status["links"] if (ln["src"], ln["dst"]) == (src, dst)]
    return dict(link)


async def ping(nodes: dict[str, Peer], src: str, dst: str, k: int) -> tuple[bool, bool]:
    """(did dst get the ping, did src get the pong) after one ping src -> dst."""
    await nodes[src].send(dst, {"ping": k, "from": src})
    arrived = await nodes[dst].receive(1, QUIET_S)
    returned = await nodes[src].receive(1, QUIET_S) if arrived else []
    return bool(arrived), bool(returned) and returned[0].get("pong") == k


# ---- in-process: config and control requests ----------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"links": None}, "list of links"),
        ({"control_port": 0}, "control_port must be a port"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"parent_pid": "1"}, "parent_pid"),
        ({"max_line_bytes": "big"}, "not a number"),
        ({"drain_timeout_s": 0}, "must be positive"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config({**make_config(), **change})


def test_links_must_be_distinct_pairs_on_distinct_ports() -> None:
    config = make_config()
    twice = {**config, "links": config["links"] + config["links"][:1]}
    with pytest.raises(ConfigError, match="only one link"):
        parse_config(twice)
    clash = {**config, "control_port": config["links"][0]["listen_port"]}
    with pytest.raises(ConfigError, match="must all differ"):
        parse_config(clash)
    loop = {**config, "links": [{**config["links"][0], "dst": config["links"][0]["src"]}]}
    with pytest.raises(ConfigError, match="distinct src and dst"):
        parse_config(loop)


def test_control_requests_set_and_report_state() -> None:
    async def body() -> None:
        proxy = Proxy(parse_config(make_config()))
        ask = proxy.handle_request
        assert ask({"type": "grudge", "grudge": {"n2": ["n1", "n2"], "n3": []}}) == {"type": "ok"}
        assert ask({"type": "status"})["grudge"] == {"n2": ["n1"]}
        faults = [{"src": "*", "dst": "*", "loss": 0.5}, {"src": "n1", "dst": "n2"}]
        assert ask({"type": "link-faults", "faults": faults, "id": "x"}) == {
            "type": "ok",
            "id": "x",
        }
        status = ask({"type": "status"})
        assert [f["loss"] for f in status["faults"]] == [0.5, 0.0]
        by_link = {(ln.config.src, ln.config.dst): ln.faults for ln in proxy.links}
        assert by_link[("n1", "n2")] is not None and by_link[("n1", "n2")].loss == 0.0
        assert by_link[("n2", "n1")] is not None and by_link[("n2", "n1")].loss == 0.5
        assert ask({"type": "heal"}) == {"type": "ok"}
        assert ask({"type": "clear-link-faults"}) == {"type": "ok"}
        status = ask({"type": "status"})
        assert status["grudge"] == {} and status["faults"] == []
        assert all(ln.faults is None for ln in proxy.links)
        assert [(ln["src"], ln["dst"]) for ln in status["links"]] == [
            (ln["src"], ln["dst"]) for ln in make_config()["links"]
        ]
        bad_requests: list[object] = [None, [], {"type": 3}, {"type": "grudge"}]
        for bad in bad_requests + [{"type": "link-faults"}]:
            reply = ask(bad)
            assert reply["type"] == "error" and reply["text"], bad

    run(body)


# ---- forwarding ---------------------------------------------------------------------------


@integration
def test_forwards_in_order_counts_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    handle = start_proxy(tmp_path, make_config())
    try:
        wait_ready(handle)

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                for i in range(200):
                    await nodes["n1"].send("n2", {"i": i})
                await nodes["n3"].send("n1", {"hello": "n1"})
                got = await nodes["n2"].receive(200)
                assert [m["i"] for m in got] == list(range(200))
                assert await nodes["n1"].receive(1) == [{"hello": "n1"}]
                assert await nodes["n3"].receive(1, QUIET_S) == []
                link = await link_status(control, "n1", "n2")
                assert link["forwarded"] == 200 and link["connections"] == 1
                assert (await link_status(control, "n3", "n1"))["forwarded"] == 1
                assert (await link_status(control, "n2", "n1"))["forwarded"] == 0
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)
        handle.proc.send_signal(signal.SIGTERM)
        assert handle.proc.wait(timeout=5) == 0
    finally:
        end(handle.proc)


@integration
def test_src_may_reconnect_and_garbage_lines_pass_through(tmp_path: Path) -> None:
    with running_proxy(tmp_path) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                await nodes["n1"].send("n2", {"a": 1})
                (await nodes["n1"].link("n2")).close()  # n1 "restarts"
                await asyncio.sleep(0.05)
                await nodes["n1"].send("n2", {"a": 2})
                assert await nodes["n2"].receive(2) == [{"a": 1}, {"a": 2}]
                # The proxy is the network: it does not parse, so garbage arrives as sent.
                await nodes["n1"].send_raw("n2", b"\x00\xffnot json\n\n")
                got = await nodes["n2"].receive_timed(2, 2.0)
                assert [line for _, line in got] == [b"\x00\xffnot json\n", b"\n"]
                link = await link_status(control, "n1", "n2")
                assert link["accepted"] == 2 and link["connections"] == 1
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)
        assert handle.alive()


# ---- partitions ---------------------------------------------------------------------------


@integration
def test_grudges_cut_one_way_and_both_ways_and_heal_restores(tmp_path: Path) -> None:
    with running_proxy(tmp_path) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                assert await ping(nodes, "n1", "n2", 1) == (True, True)
                await control.grudge({"n2": ["n1"]})  # n1 -> n2 cut
                assert await ping(nodes, "n1", "n2", 2) == (False, False)
                assert await ping(nodes, "n2", "n3", 3) == (True, True)
                await control.grudge({"n1": ["n2"]})  # n2 -> n1 cut: pings arrive, pongs don't
                assert await ping(nodes, "n1", "n2", 4) == (True, False)
                await control.grudge({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
                assert await ping(nodes, "n1", "n3", 5) == (False, False)
                assert await ping(nodes, "n3", "n1", 6) == (False, False)
                assert await ping(nodes, "n2", "n3", 7) == (True, True)
                status = await control.status()
                assert status["grudge"] == {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}
                await control.heal()
                assert (await control.status())["grudge"] == {}
                assert await ping(nodes, "n1", "n3", 8) == (True, True)
                dropped = (await link_status(control, "n1", "n2"))["dropped_grudge"]
                assert dropped == 1
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)


@integration
def test_a_delayed_message_is_judged_by_the_grudge_when_it_leaves(tmp_path: Path) -> None:
    with running_proxy(tmp_path) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                await control.link_faults([{"src": "n1", "dst": "n2", "delay_ms": 300}])
                await nodes["n1"].send("n2", {"late": True})
                await asyncio.sleep(0.05)
                await control.grudge({"n2": ["n1"]})
                assert await nodes["n2"].receive(1, 0.6) == []
                link = await link_status(control, "n1", "n2")
                assert link["dropped_grudge"] == 1 and link["delayed"] == 1
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)


# ---- link faults --------------------------------------------------------------------------


async def _lossy_run(handle: ProxyHandle, count: int) -> set[int]:
    """Sends `count` numbered messages n1 -> n2 under 30% loss; returns those that arrived."""
    nodes = await peers(handle)
    control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
    try:
        await control.link_faults([{"src": "n1", "dst": "n2", "loss": 0.3}])
        for i in range(count):
            await nodes["n1"].send("n2", {"i": i})
        # Wait until the proxy has judged every message, then collect what it forwarded.
        deadline = time.monotonic() + 5
        link = await link_status(control, "n1", "n2")
        while link["forwarded"] + link["dropped_loss"] < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            link = await link_status(control, "n1", "n2")
        assert link["forwarded"] + link["dropped_loss"] == count
        got = await nodes["n2"].receive(link["forwarded"])
        assert len(got) == link["forwarded"]
        assert await nodes["n2"].receive(1, 0.1) == []
        return {m["i"] for m in got}
    finally:
        await control.close()
        for node in nodes.values():
            await node.close()


@integration
def test_loss_rate_is_near_the_asked_rate_and_replays_from_the_seed(tmp_path: Path) -> None:
    count = 400
    arrived: list[set[int]] = []
    for tag, seed in (("a", 11), ("b", 11), ("c", 12)):
        with running_proxy(tmp_path, tag=tag, seed=seed) as handle:

            async def body(h: ProxyHandle = handle) -> None:
                arrived.append(await _lossy_run(h, count))

            run(body)
    loss = 1 - len(arrived[0]) / count
    assert 0.22 <= loss <= 0.38, loss  # 30% +- ~3.5 standard deviations
    assert arrived[0] == arrived[1], "the same seed and messages must drop the same ones"
    assert arrived[0] != arrived[2], "another seed must drop others"


@integration
def test_duplicate_sends_messages_twice(tmp_path: Path) -> None:
    with running_proxy(tmp_path) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                await control.link_faults([{"src": "n1", "dst": "*", "duplicate": 1.0}])
                for i in range(20):
                    await nodes["n1"].send("n2", {"i": i})
                got = await nodes["n2"].receive(40)
                assert [m["i"] for m in got] == [i for i in range(20) for _ in range(2)]
                assert await nodes["n2"].receive(1, QUIET_S) == []
                assert (await link_status(control, "n1", "n2"))["duplicated"] == 20
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)


@integration
def test_delay_adds_latency_keeps_order_and_spares_other_links(tmp_path: Path) -> None:
    with running_proxy(tmp_path) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                await control.link_faults([{"src": "n1", "dst": "n2", "delay_ms": 400}])
                sent_at = time.monotonic()
                for i in range(10):
                    await nodes["n1"].send("n2", {"i": i})
                await nodes["n1"].send("n3", {"fast": True})
                fast = await nodes["n3"].receive_timed(1, 2.0)
                slow = await nodes["n2"].receive_timed(10, 3.0)
                assert len(slow) == 10 and slow[0][0] - sent_at >= 0.39
                assert fast and fast[0][0] < slow[0][0], "a delay on n1->n2 held up n1->n3"
                assert [json.loads(line)["i"] for _, line in slow] == list(range(10))
                assert (await link_status(control, "n1", "n2"))["delayed"] == 10
                await control.clear_link_faults()
                assert (await control.status())["faults"] == []
                sent_at = time.monotonic()
                await nodes["n1"].send("n2", {"i": 10})
                (after,) = await nodes["n2"].receive_timed(1, 2.0)
                assert after[0] - sent_at < 0.3
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)


@integration
def test_reorder_and_jitter_reorder_without_losing_anything(tmp_path: Path) -> None:
    with running_proxy(tmp_path) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                faults = [
                    {"src": "n1", "dst": "n2", "reorder": 0.3},
                    {"src": "n1", "dst": "n3", "delay_ms": 20, "jitter_ms": 20},
                ]
                await control.link_faults(faults)
                for i in range(100):
                    await nodes["n1"].send("n2", {"i": i})
                    await nodes["n1"].send("n3", {"i": i})
                for dst in ("n2", "n3"):
                    order = [m["i"] for m in await nodes[dst].receive(100)]
                    assert sorted(order) == list(range(100)), dst
                    assert order != list(range(100)), f"nothing was reordered on n1->{dst}"
                assert (await link_status(control, "n1", "n2"))["reordered"] > 0
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)


# ---- robustness ---------------------------------------------------------------------------


@integration
def test_oversized_lines_close_only_their_connection(tmp_path: Path) -> None:
    with running_proxy(tmp_path, max_line_bytes=1024) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                for blob in (b"x" * 5000, b"y" * 2000 + b"\n"):
                    port = handle.listen_port("n1", "n2")
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(blob)
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                        # The proxy hangs up: EOF (or a reset) instead of silence.
                        assert await asyncio.wait_for(reader.read(), 2.0) == b""
                    writer.close()
                await nodes["n1"].send("n2", {"after": "oversize"})
                assert await nodes["n2"].receive(1) == [{"after": "oversize"}]
                link = await link_status(control, "n1", "n2")
                assert link["oversized_lines"] == 2 and link["forwarded"] == 1
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)
        assert handle.alive()


@integration
def test_control_port_answers_garbage_with_errors_and_keeps_serving(tmp_path: Path) -> None:
    with running_proxy(tmp_path, max_line_bytes=4096) as handle:

        async def body() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", handle.control_port)
            bad = [
                b"not json",
                b"[1, 2]",
                b'{"type": "nope"}',
                b'{"type": "grudge", "grudge": 5}',
                b'{"type": "grudge", "grudge": {"n1": ["n9"]}}',
                b'{"type": "grudge", "grudge": {"n1": "n2"}}',
                b'{"type": "link-faults", "faults": [{"loss": 2}]}',
                b'{"type": "link-faults", "faults": [{"dleay_ms": 5}]}',
                b"\xff\xfe",
            ]
            for line in bad:
                writer.write(line + b"\n")
                reply = json.loads(await asyncio.wait_for(reader.readline(), 2))
                assert reply["type"] == "error" and reply["text"], (line, reply)
            writer.write(b'{"type": "heal", "id": 42}\n')
            assert json.loads(await reader.readline()) == {"type": "ok", "id": 42}
            writer.write(b"z" * 10_000 + b"\n")  # over the line limit: error, then hang-up
            assert json.loads(await reader.readline())["type"] == "error"
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            async with ProxyControl("127.0.0.1", handle.control_port, timeout_s=2) as control:
                with pytest.raises(ProxyControlError, match="n9"):
                    await control.grudge({"n9": ["n1"]})
                assert (await control.status())["grudge"] == {}

        run(body)
        assert handle.alive()


@integration
def test_dst_restart_is_reconnected_and_unreachable_messages_are_dropped(
    tmp_path: Path,
) -> None:
    with running_proxy(tmp_path) as handle:

        async def body() -> None:
            nodes = await peers(handle)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                await nodes["n1"].send("n2", {"before": True})
                assert await nodes["n2"].receive(1) == [{"before": True}]
                await nodes["n2"].stop_listening()
                for i in range(5):
                    await nodes["n1"].send("n2", {"down": i})
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)
                link = await link_status(control, "n1", "n2")
                assert link["dropped_unreachable"] >= 1
                await nodes["n2"].start()  # the same port, as a restarted node
                deadline = time.monotonic() + 5
                got: list[dict[str, Any]] = []
                while not got and time.monotonic() < deadline:
                    await nodes["n1"].send("n2", {"after": True})
                    got = [m for m in await nodes["n2"].receive(1, 0.2) if "after" in m]
                assert got, "the proxy never reconnected to the restarted node"
            finally:
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)


@integration
def test_a_dst_that_stops_reading_is_cut_loose_without_stalling_other_links(
    tmp_path: Path,
) -> None:
    with running_proxy(tmp_path, drain_timeout_s=0.5) as handle:

        async def body() -> None:
            nodes = await peers(handle, ("n1", "n3"))
            stuck: list[asyncio.StreamWriter] = []

            async def never_read(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                stuck.append(writer)  # like a SIGSTOPped node: accepted, never read

            port = handle.target_port("n2")
            paused = await asyncio.start_server(never_read, "127.0.0.1", port)
            control = ProxyControl("127.0.0.1", handle.control_port, timeout_s=2)
            try:
                blob = json.dumps({"pad": "x" * 65_000}).encode() + b"\n"
                await nodes["n1"].send_raw("n2", blob * 400)  # ~26 MB: more than buffers hold
                sent_at = time.monotonic()
                await nodes["n1"].send("n3", {"still": "flowing"})
                got = await nodes["n3"].receive_timed(1, 2.0)
                assert got and got[0][0] - sent_at < 0.5, "a stuck dst held up another link"
                deadline = time.monotonic() + 5
                link = await link_status(control, "n1", "n2")
                while link["dropped_unreachable"] == 0 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    link = await link_status(control, "n1", "n2")
                assert link["dropped_unreachable"] > 0
                assert link["forwarded"] + link["dropped_unreachable"] <= 400
                assert "send to dst failed (TimeoutError)" in handle.stderr_path.read_text()
                paused.close()
                for writer in stuck:
                    writer.transport.abort()
                n2 = Peer("n2", handle)
                await n2.start()
                nodes["n2"] = n2
                deadline = time.monotonic() + 5
                arrived: list[dict[str, Any]] = []
                while not arrived and time.monotonic() < deadline:
                    await nodes["n1"].send("n2", {"resumed": True})
                    arrived = [m for m in await n2.receive(50, 0.2) if "resumed" in m]
                assert arrived, "the link never recovered after the stuck connection"
            finally:
                paused.close()
                await control.close()
                for node in nodes.values():
                    await node.close()

        run(body)
        assert handle.alive()


# ---- startup and lifetime -----------------------------------------------------------------


@integration
def test_port_in_use_gives_one_line_and_exit_code_3(tmp_path: Path) -> None:
    config = make_config()
    taken = config["links"][0]
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", taken["listen_port"]))
    blocker.listen()
    handle = start_proxy(tmp_path, config)
    try:
        assert handle.proc.wait(timeout=10) == 3
        assert handle.proc.stdout is not None
        assert handle.proc.stdout.read() == b""
        lines = handle.stderr_path.read_text().splitlines()
        port, link = taken["listen_port"], f"{taken['src']}->{taken['dst']}"
        assert lines == [f"tobtest proxy: port {port} (link {link}) is already in use"]
    finally:
        end(handle.proc)
        blocker.close()


@integration
def test_a_parent_pid_that_is_not_our_parent_exits_at_once(tmp_path: Path) -> None:
    handle = start_proxy(tmp_path, make_config(parent_pid=os.getpid() + 10**6))
    try:
        assert handle.proc.wait(timeout=10) == 4
    finally:
        end(handle.proc)


PARENT_SCRIPT = """
import json, subprocess, sys, os, select
config = json.load(open(sys.argv[1]))
config["parent_pid"] = os.getpid()
json.dump(config, open(sys.argv[1], "w"))
proxy = subprocess.Popen([sys.executable, "-m", "tobtest.nemesis.proxy", "--config", sys.argv[1]],
                         stdout=subprocess.PIPE, stderr=open(sys.argv[2], "wb"))
select.select([proxy.stdout], [], [], 10)
print(proxy.pid, proxy.stdout.readline().decode().strip(), flush=True)
select.select([], [], [], 60)
"""


def gone(pid: int) -> bool:
    """True once pid no longer runs (a zombie awaiting its new parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@integration
def test_proxy_exits_when_its_parent_dies(tmp_path: Path) -> None:
    config_path = tmp_path / "proxy.json"
    config_path.write_text(json.dumps(make_config()))
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, str(config_path), str(tmp_path / "proxy.err")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    proxy_pid = None
    try:
        assert parent.stdout is not None
        ready, _, _ = select.select([parent.stdout], [], [], READY_TIMEOUT_S)
        assert ready, "the intermediate parent never reported the proxy"
        pid_text, word = parent.stdout.readline().decode().split()
        proxy_pid = int(pid_text)
        assert word == "ready"
        assert not gone(proxy_pid)
        parent.kill()
        parent.wait(timeout=5)
        deadline = time.monotonic() + 5
        while not gone(proxy_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(proxy_pid), "the proxy outlived its parent"
    finally:
        end(parent)
        if proxy_pid is not None and not gone(proxy_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proxy_pid, signal.SIGKILL)


@integration
def test_it_listens_on_listen_host_and_forwards_to_each_links_target_host(
    tmp_path: Path,
) -> None:
    # A run over SSH: this host (127.0.0.2) carries n1's link to n2, whose host is 127.0.0.3.
    control_port, listen_port, target_port = free_ports(3)
    config = {
        "control_port": control_port, "listen_host": "127.0.0.2", "seed": 1,
        "links": [{"src": "n1", "dst": "n2", "listen_port": listen_port,
                   "target_host": "127.0.0.3", "target_port": target_port}],
    }  # fmt: skip
    handle = start_proxy(tmp_path, config)
    try:
        wait_ready(handle)

        async def body() -> None:
            arrived: asyncio.Queue[bytes] = asyncio.Queue()

            async def n2(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await arrived.put(await reader.readline())
                writer.close()

            server = await asyncio.start_server(n2, "127.0.0.3", target_port)
            _, n1 = await asyncio.open_connection("127.0.0.2", listen_port)
            control = ProxyControl("127.0.0.2", control_port, timeout_s=2)
            try:
                n1.write(b'{"hello": "n2"}\n')
                await n1.drain()
                line = await asyncio.wait_for(arrived.get(), 5)
                assert json.loads(line) == {"hello": "n2"}
                assert (await link_status(control, "n1", "n2"))["forwarded"] == 1
            finally:
                await control.close()
                n1.close()
                server.close()

        run(body)
        assert "listening on 127.0.0.2" in handle.stderr_path.read_text()
    finally:
        end(handle.proc)
