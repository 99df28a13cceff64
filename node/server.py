"""The asyncio shell of a node: sockets, clock, ticks and log around a pure protocol core.

Run through `python -m tobtest.node --id 0 --n 3 --client-port 7100 --peer-port 7200
--peer 1=127.0.0.1:7301 --peer 2=127.0.0.1:7302` (see `tobtest.node.__main__`). The shell
carries out the core's effects in order (persist, then send, deliver, reply) and adds only
what a core must not do itself: I/O, time and counters. The wire protocol is in PROTOCOL.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tobtest.node.clock import VirtualClock
from tobtest.node.protocols import protocol_class
from tobtest.node.protocols.base import (
    READ_MODES,
    ClientBroadcast,
    ClientRead,
    Effects,
    Event,
    PeerMessage,
    ProtocolConfig,
    Tick,
)
from tobtest.node.read_from import PrefixDigests, parse_from
from tobtest.node.statemachine import StateMachine
from tobtest.node.wal import WriteAheadLog

log = logging.getLogger("tobtest.node")

MAX_LINE_BYTES = 1 << 20
# Outgoing peer queues are bounded: a peer that cannot keep up loses messages, as over a
# real network; the protocol retries what matters.
PEER_QUEUE_MAX = 10_000
# More client requests than this waiting for a reply at once get an `overloaded` error.
PENDING_REQUESTS_MAX = 20_000
CONNECT_RETRY_S = 0.05
# The slowest disk the `disk` control request may set (per synced write, plus jitter).
DISK_DELAY_MAX_MS = 5_000.0


@dataclass
class NodeConfig:
    node_id: int
    n: int
    protocol: str
    client_port: int
    peer_port: int
    peers: dict[int, tuple[str, int]]
    seed: int = 0
    data_dir: str | None = None
    parent_pid: int | None = None
    bugs: frozenset[str] = frozenset()
    protocol_config: ProtocolConfig = field(default_factory=ProtocolConfig)
    # The disk fault `lose-unsynced`: writes not yet fsynced die with the process.
    lose_unsynced: bool = False
    # The address both listeners bind (another host's own address in a run over SSH).
    host: str = "127.0.0.1"

    @property
    def name(self) -> str:
        return node_name(self.node_id)


def node_name(node_id: int) -> str:
    """Nodes are numbered 0..n-1 inside and named n1..nN outside, as in Jepsen."""
    return f"n{node_id + 1}"


_NO_KEY = object()


class RequestError(Exception):
    """A client request that cannot be served; becomes an error reply, never a crash."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


INCARNATION_FILE = "incarnation"


def next_incarnation(data_dir: str | None) -> int:
    """This start's number among the node's starts from `data_dir` (1 the first time),
    counted in a file beside the log and synced before the node serves. Without a data
    directory every start is a new life that nothing tells apart but its process id."""
    if not data_dir:
        return 1_000_000 + os.getpid()
    path = Path(data_dir) / INCARNATION_FILE
    try:
        previous = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        previous = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{previous + 1}\n")
        f.flush()
        os.fsync(f.fileno())
    return previous + 1


class NodeServer:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.clock = VirtualClock(lambda: time.monotonic() * 1000.0)
        core_cls = protocol_class(config.protocol)
        # The core's random stream is derived from the run seed and the node id, so a
        # simulation with the same seed draws the same numbers; from its second life on,
        # from the incarnation too: ids a core draws (its log-read markers) must differ
        # between lives, since a marker the previous life left in flight may still be
        # chosen, and must not answer a read of this one with an older prefix.
        self.incarnation = next_incarnation(config.data_dir)
        life = "" if self.incarnation == 1 else f":{self.incarnation}"
        self.core = core_cls(
            node_id=config.node_id,
            n=config.n,
            rng=random.Random(f"{config.seed}:{config.node_id}{life}"),
            config=config.protocol_config,
        )
        self.sent_by_type: Counter[str] = Counter()
        self.received_by_type: Counter[str] = Counter()
        self.dropped_outgoing = 0
        self.bad_peer_frames = 0
        self.bad_client_requests = 0
        self.started_monotonic = time.monotonic()
        self.wal: WriteAheadLog | None = None
        self.state_machine = StateMachine()
        # Result of each delivered message, returned with its ack; reads of a register key.
        self._results: dict[str, Any] = {}
        self._read_keys: dict[int, Any] = {}
        # Reads asked from a position (request id -> (from, digest)), answered with the part
        # of the log the client lacks (read_from.py); the digests of this life's log.
        self._read_from: dict[int, tuple[int, str]] = {}
        self._prefix_digests = PrefixDigests()
        self.restored_records = 0
        # Seeded bug (a fixture): replies and sends go out before the log is synced; a
        # timer syncs later. With `lose-unsynced`, a kill then loses acknowledged state.
        self.no_fsync = "no-fsync" in config.bugs
        self._next_request_id = 0
        self._pending: dict[int, tuple[asyncio.StreamWriter, Any]] = {}
        self._peer_queues: dict[int, asyncio.Queue[bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._stopping = asyncio.Event()
        # The slow-disk fault (`disk` control request): each synced write completes this
        # much later (plus up to `disk_jitter_ms`), and whatever followed it waits behind
        # it: `_held` is that queue of (release time, effects), in order.
        self.disk_delay_ms = 0.0
        self.disk_jitter_ms = 0.0
        self._disk_rng = random.Random(f"{config.seed}:{config.node_id}:disk")
        self._held: deque[tuple[float, Effects]] = deque()
        self._held_added = asyncio.Event()
        self.slow_writes = 0

    # ---- lifecycle ------------------------------------------------------------------------

    def open_wal(self) -> None:
        """Replays the data directory's log into the core (a restart), then keeps it open."""
        if not self.config.data_dir:
            return
        self.wal = WriteAheadLog(
            Path(self.config.data_dir) / "wal.log", lose_unsynced=self.config.lose_unsynced
        )
        records = self.wal.replay()
        self.restored_records = len(records)
        if records:
            self.core.restore(records)
            self._rebuild_state_machine()
        log.info(
            "%s replayed %d records (%d torn bytes dropped)",
            self.config.name,
            len(records),
            self.wal.torn_bytes_dropped,
        )

    def _rebuild_state_machine(self) -> None:
        """After a restart, replays the restored delivered prefix into the state machine."""
        effects = self.core.step(ClientRead(request_id=0, mode="local"), self.clock.now_ms())
        for reply in effects.reply:
            if reply.request_id == 0 and isinstance(reply.body.get("value"), list):
                for value in reply.body["value"]:
                    self.state_machine.apply(value)

    async def start(self) -> None:
        host = self.config.host
        self.open_wal()
        self._servers.append(
            await asyncio.start_server(
                self._serve_client, host, self.config.client_port, limit=MAX_LINE_BYTES
            )
        )
        self._servers.append(
            await asyncio.start_server(
                self._serve_peer, host, self.config.peer_port, limit=MAX_LINE_BYTES
            )
        )
        for peer_id, (peer_host, peer_port) in self.config.peers.items():
            queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=PEER_QUEUE_MAX)
            self._peer_queues[peer_id] = queue
            self._tasks.append(
                asyncio.create_task(self._peer_sender(peer_id, peer_host, peer_port))
            )
        self._tasks.append(asyncio.create_task(self._ticker()))
        self._tasks.append(asyncio.create_task(self._release_held()))
        if self.no_fsync:
            self._tasks.append(asyncio.create_task(self._lazy_sync()))
        if self.config.parent_pid:
            self._tasks.append(asyncio.create_task(self._parent_watch(self.config.parent_pid)))
        log.info(
            "%s up: protocol=%s client_port=%d peer_port=%d pid=%d bugs=%s",
            self.config.name,
            self.config.protocol,
            self.config.client_port,
            self.config.peer_port,
            os.getpid(),
            ",".join(sorted(self.config.bugs)) or "none",
        )

    async def serve_forever(self) -> None:
        await self.start()
        await self._stopping.wait()
        await self.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.wal is not None:
            self.wal.sync()
            self.wal.close()

    async def _lazy_sync(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            if self.wal is not None:
                self.wal.sync()

    async def _parent_watch(self, parent_pid: int) -> None:
        # PR_SET_PDEATHSIG (set in __main__) kills us at once; this poll is the fallback.
        while True:
            await asyncio.sleep(0.5)
            if os.getppid() != parent_pid:
                log.warning("parent %d is gone; exiting", parent_pid)
                self.request_stop()
                return

    # ---- the core -------------------------------------------------------------------------

    def step(self, event: Event) -> None:
        effects = self.core.step(event, self.clock.now_ms())
        self.apply(effects)

    def apply(self, effects: Effects) -> None:
        # Whatever a reply or a peer message depends on is durable before it leaves.
        synced = False
        if effects.persist and self.wal is not None:
            self.wal.append(effects.persist)
            if not self.no_fsync:
                self.wal.sync()
                synced = True
        if not (effects.send or effects.deliver or effects.reply):
            return
        delay_ms = self._disk_delay_ms() if synced else 0.0
        if delay_ms > 0 or self._held:
            # A slow disk: this write completes late, and nothing that follows it may
            # overtake it (a later message may rest on what it wrote).
            release = time.monotonic() + delay_ms / 1000.0
            if self._held:
                release = max(release, self._held[-1][0])
            self._held.append((release, effects))
            self.slow_writes += 1 if delay_ms > 0 else 0
            self._held_added.set()
            return
        self._output(effects)

    def _disk_delay_ms(self) -> float:
        if self.disk_delay_ms <= 0 and self.disk_jitter_ms <= 0:
            return 0.0
        return self.disk_delay_ms + self._disk_rng.uniform(0.0, self.disk_jitter_ms)

    async def _release_held(self) -> None:
        """Lets held effects out, in order, each when its slow write has completed."""
        while True:
            if not self._held:
                self._held_added.clear()
                await self._held_added.wait()
                continue
            release, effects = self._held[0]
            wait_s = release - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
                continue
            self._held.popleft()
            try:
                self._output(effects)
            except Exception:
                log.exception("error sending held effects")

    def _output(self, effects: Effects) -> None:
        for send in effects.send:
            self._send_peer(send.dest, send.body)
        for delivery in effects.deliver:
            result = self.state_machine.apply(delivery.value)
            if result is not None:
                self._results[delivery.msg_id] = result
        for reply in effects.reply:
            target = self._pending.pop(reply.request_id, None)
            key = self._read_keys.pop(reply.request_id, _NO_KEY)
            read_from = self._read_from.pop(reply.request_id, None)
            if target is None:
                continue
            writer, client_req_id = target
            body = {**reply.body, "in_reply_to": client_req_id}
            if body.get("type") == "broadcast_ok" and body.get("msg_id") in self._results:
                body["result"] = self._results[body["msg_id"]]
            elif body.get("type") == "read_ok" and key is not _NO_KEY:
                # A register read: the value of the key in the state the read saw.
                body["value"] = self.state_machine.read_register(key)
                body["key"] = key
            elif body.get("type") == "read_ok" and read_from is not None:
                values = body.get("value")
                if isinstance(values, list):
                    body.update(self._prefix_digests.answer(values, *read_from))
            self._write_client(writer, body)

    async def _ticker(self) -> None:
        interval_s = self.config.protocol_config.tick_ms / 1000.0
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.step(Tick())
            except Exception:  # a core bug must show in the log, not kill the ticker
                log.exception("core raised on tick")

    # ---- peers ----------------------------------------------------------------------------

    def _send_peer(self, dest: int, body: dict[str, Any]) -> None:
        queue = self._peer_queues.get(dest)
        if queue is None:
            return
        frame = {"src": self.config.node_id, "dst": dest, "body": body}
        try:
            queue.put_nowait((json.dumps(frame, separators=(",", ":")) + "\n").encode())
            self.sent_by_type[str(body.get("type"))] += 1
        except asyncio.QueueFull:
            self.dropped_outgoing += 1

    async def _peer_sender(self, peer_id: int, host: str, port: int) -> None:
        queue = self._peer_queues[peer_id]
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
            except (TimeoutError, OSError):
                await asyncio.sleep(CONNECT_RETRY_S)
                continue
            try:
                while True:
                    data = await queue.get()
                    writer.write(data)
                    # Drain only when the buffer grows, so a burst costs one syscall.
                    if writer.transport.get_write_buffer_size() > 1 << 16:
                        await asyncio.wait_for(writer.drain(), 5.0)
                    if queue.empty():
                        await asyncio.wait_for(writer.drain(), 5.0)
            except (TimeoutError, OSError, ConnectionError):
                writer.close()
                await asyncio.sleep(CONNECT_RETRY_S)

    async def _serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    self.bad_peer_frames += 1
                    log.warning("peer frame over %d bytes; closing connection", MAX_LINE_BYTES)
                    return
                if not line:
                    return
                message = self._parse_peer_frame(line)
                if message is None:
                    continue
                self.received_by_type[str(message.body.get("type"))] += 1
                try:
                    self.step(message)
                except Exception:
                    log.exception("core raised on peer message from %d", message.src)
        except (ConnectionError, OSError):
            return
        except asyncio.CancelledError:
            # Shutdown: end the handler quietly (3.11 logs a cancelled handler as an error).
            return
        finally:
            writer.close()

    def _parse_peer_frame(self, line: bytes) -> PeerMessage | None:
        try:
            frame = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            frame = None
        if (
            not isinstance(frame, dict)
            or not isinstance(frame.get("src"), int)
            or isinstance(frame.get("src"), bool)
            or not 0 <= frame["src"] < self.config.n
            or frame["src"] == self.config.node_id
            or frame.get("dst", self.config.node_id) != self.config.node_id
            or not isinstance(frame.get("body"), dict)
        ):
            self.bad_peer_frames += 1
            if self.bad_peer_frames <= 10 or self.bad_peer_frames % 1000 == 0:
                log.warning("ignored malformed peer frame (%d so far)", self.bad_peer_frames)
            return None
        return PeerMessage(src=frame["src"], body=frame["body"])

    # ---- clients --------------------------------------------------------------------------

    def _write_client(self, writer: asyncio.StreamWriter, body: dict[str, Any]) -> None:
        if writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, OSError):
            writer.write((json.dumps(body, separators=(",", ":")) + "\n").encode())

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    self.bad_client_requests += 1
                    self._write_client(
                        writer,
                        {"type": "error", "code": "too-large", "text": "request line too long"},
                    )
                    return
                if not line:
                    return
                self._handle_client_line(line, writer)
                if writer.transport.get_write_buffer_size() > 1 << 20:
                    await asyncio.wait_for(writer.drain(), 10.0)
        except (TimeoutError, ConnectionError, OSError):
            return
        except asyncio.CancelledError:
            return
        finally:
            self._forget_writer(writer)
            writer.close()

    def _forget_writer(self, writer: asyncio.StreamWriter) -> None:
        stale = [rid for rid, (w, _) in self._pending.items() if w is writer]
        for rid in stale:
            # The core may still reply; the reply then finds no target and is dropped.
            del self._pending[rid]
            self._read_keys.pop(rid, None)
            self._read_from.pop(rid, None)

    def _handle_client_line(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        request: Any = None
        try:
            try:
                request = json.loads(line)
            except (ValueError, UnicodeDecodeError) as exc:
                raise RequestError("malformed", f"not JSON: {exc}") from None
            if not isinstance(request, dict):
                raise RequestError("malformed", "a request is a JSON object")
            self._dispatch(request, writer)
        except RequestError as exc:
            self.bad_client_requests += 1
            reply: dict[str, Any] = {"type": "error", "code": exc.code, "text": exc.text}
            if isinstance(request, dict) and "id" in request:
                reply["in_reply_to"] = request["id"]
            self._write_client(writer, reply)
        except Exception as exc:  # a bug on one request must not take the node down
            log.exception("error handling client request")
            self._write_client(
                writer, {"type": "error", "code": "crash", "text": f"{type(exc).__name__}: {exc}"}
            )

    def _register(self, writer: asyncio.StreamWriter, client_req_id: Any) -> int:
        if len(self._pending) >= PENDING_REQUESTS_MAX:
            raise RequestError("overloaded", "too many requests waiting for a reply")
        self._next_request_id += 1
        self._pending[self._next_request_id] = (writer, client_req_id)
        return self._next_request_id

    def _dispatch(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        kind = request.get("type")
        client_req_id = request.get("id")
        if kind == "broadcast":
            if "value" not in request:
                raise RequestError("bad-request", "broadcast needs a value")
            msg_id = request.get("msg_id")
            if msg_id is None:
                msg_id = f"{self.config.name}:{self._next_request_id + 1}:{time.time_ns()}"
            if not isinstance(msg_id, str) or not msg_id or len(msg_id) > 256:
                raise RequestError("bad-request", "msg_id must be a non-empty string")
            rid = self._register(writer, client_req_id)
            self.step(ClientBroadcast(request_id=rid, msg_id=msg_id, value=request["value"]))
        elif kind == "read":
            mode = request.get("mode", "local")
            if mode not in READ_MODES:
                raise RequestError("bad-request", f"read mode must be one of {list(READ_MODES)}")
            try:
                read_from = parse_from(request)
            except ValueError as exc:
                raise RequestError("bad-request", str(exc)) from None
            rid = self._register(writer, client_req_id)
            if "key" in request:
                self._read_keys[rid] = request["key"]
            elif read_from is not None:
                self._read_from[rid] = read_from
            self.step(ClientRead(request_id=rid, mode=mode))
        elif kind == "status":
            self._write_client(
                writer, {"type": "status_ok", "in_reply_to": client_req_id, **self.status()}
            )
        elif kind == "clock":
            self._control_clock(request)
            self._write_client(
                writer,
                {"type": "clock_ok", "in_reply_to": client_req_id, "clock": self._clock_status()},
            )
        elif kind == "disk":
            self._control_disk(request)
            self._write_client(
                writer,
                {"type": "disk_ok", "in_reply_to": client_req_id, "disk": self._disk_status()},
            )
        else:
            raise RequestError("unknown-type", f"unknown request type {kind!r}")

    def _control_disk(self, request: dict[str, Any]) -> None:
        values = {}
        for name in ("fsync_delay_ms", "jitter_ms"):
            value = request.get(name, 0.0)
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not 0.0 <= value <= DISK_DELAY_MAX_MS
            ):
                raise RequestError(
                    "bad-request", f"disk {name} must be a number in [0, {DISK_DELAY_MAX_MS:g}]"
                )
            values[name] = float(value)
        self.disk_delay_ms, self.disk_jitter_ms = values["fsync_delay_ms"], values["jitter_ms"]
        log.info("disk -> %s", self._disk_status())

    def _disk_status(self) -> dict[str, Any]:
        return {
            "fsync_delay_ms": self.disk_delay_ms,
            "jitter_ms": self.disk_jitter_ms,
            "held": len(self._held),
            "slow_writes": self.slow_writes,
        }

    def _control_clock(self, request: dict[str, Any]) -> None:
        op = request.get("op")

        def number(name: str) -> float:
            value = request.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise RequestError("bad-request", f"clock {op} needs a number {name!r}")
            return float(value)

        try:
            if op == "bump":
                self.clock.bump(number("delta_ms"))
            elif op == "skew":
                self.clock.set_rate(number("rate"))
            elif op == "strobe":
                self.clock.strobe(number("delta_ms"), number("period_ms"), number("duration_ms"))
            elif op == "reset":
                self.clock.reset()
            else:
                raise RequestError("bad-request", "clock op must be bump, skew, strobe or reset")
        except ValueError as exc:
            raise RequestError("bad-request", str(exc)) from None
        log.info("clock %s -> %s", op, self.clock.describe())

    def _clock_status(self) -> dict[str, Any]:
        return {**self.clock.describe(), "now_ms": round(self.clock.now_ms(), 3)}

    def status(self) -> dict[str, Any]:
        core_status = self.core.status(self.clock.now_ms())
        return {
            **core_status,
            "name": self.config.name,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started_monotonic, 3),
            "bugs": sorted(self.config.bugs),
            "clock": self._clock_status(),
            "disk": self._disk_status(),
            # The clock assumption the node's leases rest on: rates within 1 +- drift_bound.
            # Clock faults that respect it must leave every read correct.
            "drift_bound": self.config.protocol_config.drift_bound,
            "messages_sent": dict(self.sent_by_type),
            "messages_received": dict(self.received_by_type),
            "dropped_outgoing": self.dropped_outgoing,
            "bad_peer_frames": self.bad_peer_frames,
            "bad_client_requests": self.bad_client_requests,
            "pending_requests": len(self._pending),
            "wal": None
            if self.wal is None
            else {
                "syncs": self.wal.syncs,
                "restored_records": self.restored_records,
                "torn_bytes_dropped": self.wal.torn_bytes_dropped,
                "lose_unsynced": self.wal.lose_unsynced,
            },
        }
