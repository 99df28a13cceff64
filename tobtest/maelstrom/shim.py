"""The per-node shim: runs one Maelstrom node and connects it to tobtest.

    python -m tobtest.maelstrom.shim --id 0 --n 3 --client-port 7100 --peer-port 7200 \\
        --peer 1=127.0.0.1:7301 --peer 2=127.0.0.1:7302 --service-port 7400 \\
        --parent-pid 4242 [--setup '{"type": "topology", ...}'] -- python3 raft.py

The shim starts the node command as its child (through `tobtest.launch`, so the node dies
with the shim; the shim itself dies with the runner), owns the node's stdin and stdout
(its stderr goes where the shim's goes: the node's log), sends `init` and each `--setup`
body (e.g. the broadcast workload's `topology`) and waits for their replies, then:

- serves tobtest's clients on 127.0.0.1:`--client-port` (JSON lines): `{"type":
  "maelstrom", "id": 1, "body": {...}}` goes to the node as a Maelstrom request from a
  client id of this shim, with a fresh `msg_id`; the node's reply (matched by
  `in_reply_to`) comes back as `{"type": "maelstrom_ok", "in_reply_to": 1, "body": {...}}`.
  `status` is answered by the shim (the node's pid, message counts); with `--faketime`
  (libfaketime preloaded into the node), so is `clock`, the clock nemesis's request
  (`tobtest.maelstrom.clock`).
- carries node-to-node messages: a line the node writes whose `dest` is another node goes
  over the proxy link to it (`--peer J=HOST:PORT`), and lines arriving on `--peer-port`
  go to the node's stdin. A reply for a client of another shim (a node may forward a
  client's request to another node, which answers the client itself) goes straight to
  that shim's peer port (`--client-route J=HOST:PORT`): clients are not behind the
  network the nemesis cuts, as in Maelstrom, and the proxy counts only node-to-node
  messages. Client ids say their shim: shim i owns c(i+1), c(i+1+n), c(i+1+2n), ...
- passes messages for `lin-kv`, `seq-kv`, `lin-tso` (and `lww-kv`, answered not-supported)
  to the harness's services (`--service-port`), and their replies back to the node.

While the node is paused (SIGSTOP on the node alone), the shim keeps serving: what arrives
waits in the stdin pipe and the shim's bounded buffer, as in a real pause. A node that
exits, writes a line that is not a JSON message, or a line over 1 MiB on stdout has
crashed: the shim says so in one line on stderr, ends the node and exits 1. One that
exits before `init_ok`, or does not answer `init` within `--init-timeout`, is the same
one line and exit 1 before the shim listens. A port already in use: exit 3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tobtest.maelstrom.clock import ClockRequestError, FakeClock
from tobtest.maelstrom.services import SERVICES
from tobtest.nemesis.proxy import arm_parent_death_signal

HOST = "127.0.0.1"
MAX_LINE_BYTES = 1 << 20
INIT_TIMEOUT_S = 10.0
SETUP_TIMEOUT_S = 10.0
# Bounds: what may wait for a paused node, for a link, and for replies.
STDIN_BUFFER_MAX_BYTES = 16 << 20
OUTBOUND_QUEUE_MAX = 10_000
PENDING_MAX = 10_000
BACKOFF_INITIAL_S, BACKOFF_MAX_S = 0.05, 1.0
EXIT_CRASH, EXIT_PORT_IN_USE = 1, 3


class NodeCrashed(Exception):
    """The node did something a Maelstrom node must not; the message is one line."""


def node_name(i: int) -> str:
    return f"n{i + 1}"


def client_owner(client: str, n: int) -> int | None:
    """The shim that owns a client id: c(i+1+k*n) belongs to shim i.

    >>> client_owner("c4", 3), client_owner("c2", 3), client_owner("n2", 3)
    (0, 1, None)
    """
    if not client.startswith("c") or not client[1:].isdigit() or int(client[1:]) < 1:
        return None
    return (int(client[1:]) - 1) % n


def log(text: str) -> None:
    print(f"tobtest shim: {text}", file=sys.stderr, flush=True)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class Outbound:
    """A bounded queue of lines to one address, with its own connection and reconnects.

    The far end is a proxy link or the services: lines that cannot be written are dropped
    (counted), as a network drops them. Lines read back (service replies) go to `on_line`.
    """

    def __init__(self, name: str, host: str, port: int, on_line: Any = None) -> None:
        self.name, self.host, self.port = name, host, port
        self.on_line = on_line
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(OUTBOUND_QUEUE_MAX)
        self.dropped = 0
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    def send(self, line: bytes) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        backoff_s = BACKOFF_INITIAL_S
        while True:
            line = await self.queue.get()
            writer = self._writer
            if writer is None or writer.is_closing():
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port, limit=MAX_LINE_BYTES + 1),
                        1.0,
                    )
                except (OSError, TimeoutError):
                    self.dropped += 1
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(BACKOFF_MAX_S, backoff_s * 2)
                    continue
                self._writer = writer
                backoff_s = BACKOFF_INITIAL_S
                if self.on_line is not None:
                    asyncio.create_task(self._read(reader))
            assert writer is not None
            try:
                writer.write(line)
                await asyncio.wait_for(writer.drain(), 5.0)
            except (OSError, TimeoutError, ConnectionError):
                self.dropped += 1
                writer.close()
                self._writer = None

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, ValueError, ConnectionError):
            while line := await reader.readline():
                self.on_line(line)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


class Shim:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.n: int = args.n
        self.node_id = node_name(args.id)
        self.node_ids = [node_name(i) for i in range(self.n)]
        self.proc: asyncio.subprocess.Process | None = None
        self.peers = {
            node_name(j): Outbound(node_name(j), host, port) for j, (host, port) in args.peer
        }
        self.services = Outbound("services", HOST, args.service_port, self._from_service)
        # Replies to clients of other shims go straight there (Maelstrom's clients are not
        # behind the network the nemesis cuts); through the proxy links when not given.
        self.client_routes = {
            node_name(j): Outbound(node_name(j), host, port)
            for j, (host, port) in args.client_route
        }
        # (client id, msg_id) -> (the client's connection, its request id)
        self.pending: dict[tuple[str, int], tuple[asyncio.StreamWriter, Any]] = {}
        self._next_msg_id = 0
        self._next_client = 0
        self.sent: Counter[str] = Counter()  # node-to-node messages by body type
        self.received: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.started_at = time.monotonic()
        self.clock = FakeClock(args.clock_file) if args.faketime else None
        # Why the shim exits, said last (after the node is gone) so that it is the last
        # line of the log, which the cluster reports.
        self.last_words: str | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    def program(self) -> str:
        """The node's program as the user knows it: "python3 raft.py"."""
        words = [Path(self.args.command[0]).name]
        if len(self.args.command) > 1 and not self.args.command[1].startswith("-"):
            words.append(Path(self.args.command[1]).name)
        return " ".join(words)

    # ---- the node's stdin and stdout -----------------------------------------------------

    def to_node(self, line: bytes, droppable: bool = True) -> bool:
        """Writes one line to the node's stdin; False (dropped) when its buffer is full."""
        assert self.proc is not None and self.proc.stdin is not None
        transport = self.proc.stdin.transport
        if droppable and transport.get_write_buffer_size() > STDIN_BUFFER_MAX_BYTES:
            self.counts["dropped_stdin_full"] += 1
            return False
        with contextlib.suppress(ConnectionError, OSError):
            self.proc.stdin.write(line if line.endswith(b"\n") else line + b"\n")
        return True

    async def read_node_line(self) -> dict[str, Any]:
        """The node's next stdout message; raises NodeCrashed for anything else."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            line = await self.proc.stdout.readline()
        except ValueError:
            raise NodeCrashed(f"wrote a line over {MAX_LINE_BYTES} bytes on stdout") from None
        if not line:
            code = await self.proc.wait()
            raise NodeCrashed(f"exited with {code}")
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("body"), dict):
            shown = line.decode(errors="replace").strip()[:120]
            raise NodeCrashed(f"printed a line that is not a Maelstrom message: {shown!r}")
        return message

    def new_msg_id(self) -> int:
        self._next_msg_id += 1
        return self._next_msg_id

    def new_client(self) -> str:
        client = f"c{self.args.id + 1 + self._next_client * self.n}"
        self._next_client += 1
        return client

    # ---- start: init and setup -----------------------------------------------------------

    async def handshake(self) -> None:
        """Sends `init`, then each setup body, and waits for each reply (bounded)."""
        init = {"type": "init", "node_id": self.node_id, "node_ids": self.node_ids}
        bodies = [init, *(json.loads(b) for b in self.args.setup)]
        for body in bodies:
            client, msg_id = self.new_client(), self.new_msg_id()
            self.to_node(encode({"src": client, "dest": self.node_id,
                                 "body": {**body, "msg_id": msg_id}}), droppable=False)  # fmt: skip
            timeout_s = self.args.init_timeout if body is init else SETUP_TIMEOUT_S
            try:
                reply = await asyncio.wait_for(self._await_reply(client, msg_id), timeout_s)
            except TimeoutError:
                raise NodeCrashed(f"did not answer {body['type']} within {timeout_s:g} s") from None
            if reply.get("type") != f"{body['type']}_ok":
                raise NodeCrashed(f"answered {body['type']} with {json.dumps(reply)[:120]}")

    async def _await_reply(self, client: str, msg_id: int) -> dict[str, Any]:
        while True:
            message = await self.read_node_line()
            body = message["body"]
            if message.get("dest") == client and body.get("in_reply_to") == msg_id:
                return dict(body)
            self.route(message)  # early gossip and the like: routed as usual

    # ---- routing ---------------------------------------------------------------------------

    def route(self, message: dict[str, Any]) -> None:
        """Sends one message the node wrote to where its `dest` is."""
        dest = message.get("dest")
        line = encode(message)
        if dest == self.node_id:
            self.to_node(line)
        elif dest in self.peers:
            self.sent[str(message["body"].get("type"))] += 1
            self.peers[dest].send(line)
        elif dest in SERVICES:
            self.counts["service_requests"] += 1
            self.services.send(line)
        elif isinstance(dest, str) and client_owner(dest, self.n) is not None:
            owner = client_owner(dest, self.n)
            if owner == self.args.id:
                self.to_client(message)
            else:
                self.counts["client_replies_forwarded"] += 1
                owner_name = node_name(owner or 0)
                (self.client_routes.get(owner_name) or self.peers[owner_name]).send(line)
        else:
            self.counts["unroutable"] += 1

    def to_client(self, message: dict[str, Any]) -> None:
        body = message["body"]
        key = (str(message.get("dest")), body.get("in_reply_to"))
        waiting = self.pending.pop(key, None)
        if waiting is None:
            self.counts["replies_unclaimed"] += 1  # its client gave up or a duplicate
            return
        writer, request_id = waiting
        reply = {"type": "maelstrom_ok", "in_reply_to": request_id, "body": body}
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(encode(reply))

    def _from_service(self, line: bytes) -> None:
        self.to_node(line)

    async def pump_stdout(self) -> None:
        while True:
            self.route(await self.read_node_line())

    async def on_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Lines from the proxy links into this node: for the node, or a client here."""
        self._connections.add(writer)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                try:
                    message = json.loads(line)
                except ValueError:
                    self.counts["bad_peer_lines"] += 1
                    continue
                if not isinstance(message, dict) or not isinstance(message.get("body"), dict):
                    self.counts["bad_peer_lines"] += 1
                elif message.get("dest") == self.node_id:
                    self.received[str(message["body"].get("type"))] += 1
                    self.to_node(line)
                elif client_owner(str(message.get("dest")), self.n) == self.args.id:
                    self.to_client(message)
                else:
                    self.counts["misrouted"] += 1
        except (ConnectionError, OSError, asyncio.CancelledError):
            # Cancelled when the shim exits: ending quietly keeps the log's last line ours.
            return
        finally:
            self._connections.discard(writer)
            writer.close()

    # ---- tobtest's clients -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "type": "status_ok",
            "name": self.node_id,
            "kind": "maelstrom",
            "pid": os.getpid(),
            "node_pid": self.proc.pid if self.proc is not None else None,
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "messages_sent": dict(self.sent),
            "messages_received": dict(self.received),
            "pending_requests": len(self.pending),
            "dropped_outgoing": sum(p.dropped for p in self.peers.values()),
            **({"clock": self.clock.state()} if self.clock is not None else {}),
            **dict(self.counts),
        }

    def on_request(self, request: Any, client: str, writer: asyncio.StreamWriter) -> None:
        if not isinstance(request, dict):
            writer.write(encode({"type": "error", "code": "malformed", "text": "not an object"}))
            return
        request_id = request.get("id")
        kind = request.get("type")
        if kind == "status":
            writer.write(encode({**self.status(), "in_reply_to": request_id}))
            return
        if kind == "clock" and self.clock is not None:
            try:
                state = self.clock.apply(request)
            except ClockRequestError as exc:
                writer.write(encode(_error(request_id, "bad-request", str(exc))))
                return
            writer.write(encode({"type": "clock_ok", "in_reply_to": request_id, "clock": state}))
            return
        body = request.get("body")
        if kind != "maelstrom" or not isinstance(body, dict) or "type" not in body:
            text = "expected status, or maelstrom with a body that has a type"
            writer.write(encode(_error(request_id, "bad-request", text)))
            return
        if len(self.pending) >= PENDING_MAX:
            writer.write(encode(_error(request_id, "overloaded", "too many requests waiting")))
            return
        msg_id = self.new_msg_id()
        self.counts["client_requests"] += 1
        line = encode({"src": client, "dest": self.node_id, "body": {**body, "msg_id": msg_id}})
        if not self.to_node(line):
            writer.write(encode(_error(request_id, "overloaded", "the node's stdin is full")))
            return
        self.pending[(client, msg_id)] = (writer, request_id)

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = self.new_client()  # one Maelstrom client id per connection
        self._connections.add(writer)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                try:
                    request = json.loads(line)
                except ValueError:
                    writer.write(encode({"type": "error", "code": "malformed", "text": "not JSON"}))
                    continue
                self.on_request(request, client, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(writer)
            for key in [k for k, (w, _) in self.pending.items() if w is writer]:
                del self.pending[key]
            writer.close()

    # ---- the whole life ----------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        launcher = [sys.executable, "-m", "tobtest.launch", "--parent-pid", str(os.getpid())]
        env = dict(os.environ)
        if self.clock is not None:
            env.update(self.clock.env(self.args.faketime))
            self.clock.started()
        self.proc = await asyncio.create_subprocess_exec(
            *launcher, "--", *self.args.command,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=MAX_LINE_BYTES + 1, env=env,
        )  # fmt: skip
        servers: list[asyncio.Server] = []
        try:
            try:
                await self.handshake()
            except NodeCrashed as exc:
                self.last_words = f"node {self.node_id} ({self.program()}) {exc}"
                return EXIT_CRASH
            try:
                servers = [
                    await asyncio.start_server(self.on_client, HOST, self.args.client_port,
                                               limit=MAX_LINE_BYTES + 1),
                    await asyncio.start_server(self.on_peer, HOST, self.args.peer_port,
                                               limit=MAX_LINE_BYTES + 1),
                ]  # fmt: skip
            except OSError as exc:
                self.last_words = f"cannot listen on 127.0.0.1: {exc.strerror or exc}"
                return EXIT_PORT_IN_USE
            pump = asyncio.create_task(self.pump_stdout())
            stopped = asyncio.create_task(stop.wait())
            parent = asyncio.create_task(self._watch_parent())
            await asyncio.wait({pump, stopped, parent}, return_when=asyncio.FIRST_COMPLETED)
            for task in (stopped, parent):
                task.cancel()
            if pump.done() and isinstance(pump.exception(), NodeCrashed):
                self.last_words = f"node {self.node_id} crashed: it {pump.exception()}"
                return EXIT_CRASH
            pump.cancel()
            return 0
        finally:
            for server in servers:
                server.close()
            for connection in list(self._connections):
                connection.close()
            for outbound in [*self.peers.values(), *self.client_routes.values(), self.services]:
                outbound.close()
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()  # SIGKILL also ends a paused (SIGSTOPped) node
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5.0)

    async def _watch_parent(self) -> None:
        # The parent-death signal is the first line; this poll is the second.
        while os.getppid() == self.args.parent_pid:
            await asyncio.sleep(0.5)


def _error(request_id: Any, code: str, text: str) -> dict[str, Any]:
    return {"type": "error", "in_reply_to": request_id, "code": code, "text": text}


def _peer(text: str) -> tuple[int, tuple[str, int]]:
    node, _, address = text.partition("=")
    host, _, port = address.rpartition(":")
    return int(node), (host, int(port))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tobtest.maelstrom.shim")
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--client-port", type=int, required=True)
    parser.add_argument("--peer-port", type=int, required=True)
    parser.add_argument("--peer", type=_peer, action="append", default=[])
    parser.add_argument(
        "--client-route", type=_peer, action="append", default=[],
        help="J=HOST:PORT: shim J's own peer port, for replies to its clients",
    )  # fmt: skip
    parser.add_argument("--service-port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--setup", action="append", default=[], help="a body sent after init")
    parser.add_argument("--init-timeout", type=float, default=INIT_TIMEOUT_S)
    parser.add_argument("--faketime", default=None, help="libfaketime, preloaded into the node")
    parser.add_argument("--clock-file", type=Path, default=None, help="its timestamp file")
    parser.add_argument("command", nargs="+")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not arm_parent_death_signal(args.parent_pid):
        return 0  # the runner is already gone: nothing to run for
    shim = Shim(args)
    code = asyncio.run(shim.run())
    if shim.last_words:
        log(shim.last_words)
    return code


if __name__ == "__main__":
    sys.exit(main())
