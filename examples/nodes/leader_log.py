#!/usr/bin/env python3
"""leader_log: a fixed-leader replicated log, a Total Order Broadcast node in one file.

    python3 examples/nodes/leader_log.py --id 0 --n 3 --client-port 7100 --peer-port 7200 \
        --peer 1=127.0.0.1:7301 --peer 2=127.0.0.1:7302 --data-dir /tmp/n1.data

    tobtest run --node-cmd 'python3 examples/nodes/leader_log.py --id {id} --n {n}
        --client-port {client_port} --peer-port {peer_port} {peer_args} --data-dir {data_dir}
        {bug_args}' --node-caps durable --node-read-modes local,log --nemesis partition,kill

An independent implementation of tobtest's wire protocol (node/PROTOCOL.md), standard
library only and importing nothing from tobtest: it shows that the node contract is enough
to test a node tobtest did not write.

The protocol. Node 0 leads, always (no elections: while it is down or cut off, nothing is
delivered, which is safe). Every position of the log is the leader's to fill; it appends a
broadcast, writes it to its write-ahead log (fsync), and ships its log to every follower
(`append`: from, entries, commit). A follower appends what extends its log, fsyncs, and
answers with its length (`append_ok`). An entry is committed once a majority (the leader
included) stored it; commit indexes travel on `append`. Every node delivers its committed
prefix in log order and acks a broadcast once it delivered it, with its position. A follower
forwards its clients' broadcasts to the leader (`forward`, resent until delivered; the
leader dedupes by msg_id). A `log` read at the leader answers with its committed prefix; at
a follower it asks the leader for its commit index (`read_index`) and answers once it has
delivered that far (linearizable). Restarts replay `<data-dir>/wal.jsonl`.

Seeded bug (a fixture, off by default): `--bug follower-log-read` makes a follower answer
`log` reads from its own committed prefix, skipping the read-index round trip. A follower
cut off from the leader then serves stale "linearizable" reads while the leader and the
other follower go on acking broadcasts: tobtest's total-order checker reports them
(`realtime`), e.g. under `--nemesis-schedule examples/nodes/isolate-follower.yaml`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque
from typing import Any

LEADER = 0
BUGS = ("follower-log-read",)
MAX_LINE_BYTES = 1 << 20
MAX_ENTRIES_PER_APPEND = 256
PEER_QUEUE_MAX = 10_000
PENDING_MAX = 10_000
RESEND_S = 0.3  # unanswered appends, forwards and read-index requests go again after this
READ_GIVE_UP_S = 10.0


def parse_peer(text: str) -> tuple[int, tuple[str, int]]:
    node, _, addr = text.partition("=")
    host, _, port = addr.rpartition(":")
    return int(node), (host, int(port))


class Wal:
    """Append-only JSON lines: {"e": entry} per log entry, {"c": commit} as commit rises."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        self.commit = 0
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    break  # a torn last line: what follows it was never acknowledged
                if "e" in record:
                    self.entries.append(record["e"])
                elif "c" in record:
                    self.commit = max(self.commit, record["c"])
        self.commit = min(self.commit, len(self.entries))
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, entries: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps({"e": e}).encode() + b"\n" for e in entries)
        os.write(self.fd, data)
        os.fsync(self.fd)  # stored before anyone hears of it: acks and appends come after

    def note_commit(self, commit: int) -> None:
        # Not fsynced: a commit index lost in a power cut is learnt again from the leader.
        os.write(self.fd, json.dumps({"c": commit}).encode() + b"\n")


class Node:
    def __init__(self, args: argparse.Namespace) -> None:
        self.id: int = args.id
        self.n: int = args.n
        self.peers: dict[int, tuple[str, int]] = dict(args.peer)
        self.bugs = frozenset(args.bug)
        self.heartbeat_s = args.heartbeat_ms / 1000.0
        os.makedirs(args.data_dir, exist_ok=True)
        self.wal = Wal(os.path.join(args.data_dir, "wal.jsonl"))
        self.log = self.wal.entries
        self.commit = self.wal.commit
        self.position = {e["id"]: i for i, e in enumerate(self.log)}
        # Leader: how much of each follower's log matches ours, and how far we have sent.
        self.match = {j: 0 for j in self.peers}
        self.sent = {j: 0 for j in self.peers}
        self.last_ok = {j: 0.0 for j in self.peers}
        # Clients waiting: msg_id -> [(writer, request id)]; reads waiting on a commit index.
        self.acks: dict[str, list[tuple[asyncio.StreamWriter, Any]]] = {}
        self.forwards: dict[str, tuple[Any, float]] = {}  # msg_id -> (value, last sent)
        self.reads: dict[str, tuple[asyncio.StreamWriter, Any, float, float, int | None]] = {}
        self.read_seq = 0
        self.outboxes = {j: deque[bytes]() for j in self.peers}
        self.wakeups = {j: asyncio.Event() for j in self.peers}
        self.started = time.monotonic()
        self.counts = {"appends_sent": 0, "forwards_sent": 0, "bad_peer_frames": 0}

    @property
    def leading(self) -> bool:
        return self.id == LEADER

    # ---- peers --------------------------------------------------------------------------

    def send(self, dst: int, body: dict[str, Any]) -> None:
        box = self.outboxes.get(dst)
        if box is None or len(box) >= PEER_QUEUE_MAX:
            return  # the network drops it; everything that matters is resent
        frame = {"src": self.id, "dst": dst, "body": body}
        box.append(json.dumps(frame).encode() + b"\n")
        self.wakeups[dst].set()

    async def sender(self, dst: int) -> None:
        host, port = self.peers[dst]
        box, wakeup = self.outboxes[dst], self.wakeups[dst]
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
            except (OSError, TimeoutError):
                box.clear()  # unreachable: drop what waits, as a network would
                await asyncio.sleep(0.05)
                continue
            try:
                while True:
                    while box:
                        writer.write(box.popleft())
                    await asyncio.wait_for(writer.drain(), 2.0)
                    wakeup.clear()
                    if not box:
                        await wakeup.wait()
            except (OSError, TimeoutError, ConnectionError):
                writer.close()
                await asyncio.sleep(0.05)

    async def on_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ValueError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                try:
                    frame = json.loads(line)
                    src, body = frame["src"], frame["body"]
                    if frame["dst"] != self.id or src not in self.peers:
                        raise ValueError("wrong src or dst")
                    self.on_message(src, body)
                except (ValueError, KeyError, TypeError):
                    self.counts["bad_peer_frames"] += 1
        writer.close()

    def on_message(self, src: int, body: dict[str, Any]) -> None:
        kind = body["type"]
        if kind == "append" and not self.leading:
            self.on_append(body["from"], body["entries"], body["commit"])
        elif kind == "append_ok" and self.leading:
            self.match[src] = max(self.match[src], body["len"])
            self.last_ok[src] = time.monotonic()
            # A gap: it lacks what we sent (it missed an append); else skip what it has.
            gap = body.get("gap")
            self.sent[src] = body["len"] if gap else max(self.sent[src], body["len"])
            self.advance_commit()
        elif kind == "forward" and self.leading:
            self.append_entries([e for e in body["entries"] if e["id"] not in self.position])
        elif kind == "read_index" and self.leading:
            self.send(src, {"type": "read_index_ok", "rid": body["rid"], "commit": self.commit})
        elif kind == "read_index_ok" and body["rid"] in self.reads:
            writer, request_id, started, asked, _ = self.reads[body["rid"]]
            self.reads[body["rid"]] = (writer, request_id, started, asked, body["commit"])
            self.answer_reads()
        else:
            raise ValueError(f"unexpected {kind!r}")

    # ---- the log ------------------------------------------------------------------------

    def append_entries(self, entries: list[dict[str, Any]]) -> None:
        """Leader: new entries at the end of the log, stored, then shipped."""
        fresh = []
        for e in entries:
            if e["id"] not in self.position:
                self.position[e["id"]] = len(self.log)
                self.log.append(e)
                fresh.append(e)
        if fresh:
            self.wal.append(fresh)
            self.advance_commit()  # a cluster of one commits alone
            for j in self.peers:
                self.ship(j)

    def ship(self, j: int) -> None:
        start = self.sent[j]
        entries = self.log[start : start + MAX_ENTRIES_PER_APPEND]
        self.send(j, {"type": "append", "from": start, "entries": entries, "commit": self.commit})
        self.sent[j] = start + len(entries)
        self.counts["appends_sent"] += 1

    def on_append(self, start: int, entries: list[dict[str, Any]], commit: int) -> None:
        if start > len(self.log):
            self.send(LEADER, {"type": "append_ok", "len": len(self.log), "gap": True})
            return
        fresh = entries[len(self.log) - start :]
        for e in fresh:
            self.position[e["id"]] = len(self.log)
            self.log.append(e)
        if fresh:
            self.wal.append(fresh)
        self.set_commit(min(commit, len(self.log)))
        self.send(LEADER, {"type": "append_ok", "len": len(self.log)})

    def advance_commit(self) -> None:
        lengths = sorted([len(self.log), *self.match.values()], reverse=True)
        self.set_commit(lengths[self.n // 2])  # the length a majority has stored

    def set_commit(self, commit: int) -> None:
        if commit <= self.commit:
            return
        old, self.commit = self.commit, commit
        self.wal.note_commit(commit)
        for position in range(old, commit):
            msg_id = self.log[position]["id"]
            self.forwards.pop(msg_id, None)
            for writer, request_id in self.acks.pop(msg_id, []):
                reply(writer, request_id, "broadcast_ok", msg_id=msg_id, position=position)
        self.answer_reads()

    def delivered(self) -> list[Any]:
        return [e["v"] for e in self.log[: self.commit]]

    # ---- clients ------------------------------------------------------------------------

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # a line over the limit
                    error(writer, None, "too-large", "line over 1 MiB")
                    break
                if not line:
                    break
                try:
                    request = json.loads(line)
                except ValueError:
                    error(writer, None, "malformed", "not JSON")
                    continue
                if not isinstance(request, dict):
                    error(writer, None, "malformed", "not an object")
                    continue
                self.on_request(writer, request)
        except (OSError, ConnectionError):
            pass
        finally:
            writer.close()

    def on_request(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        rid, kind = request.get("id"), request.get("type")
        if kind == "status":
            reply(writer, rid, "status_ok", **self.status())
        elif kind == "broadcast":
            msg_id = request.get("msg_id", f"x{self.id}-{time.monotonic_ns()}")
            if not isinstance(msg_id, str) or "value" not in request:
                error(writer, rid, "bad-request", "broadcast needs a value and a string msg_id")
            else:
                self.broadcast(writer, rid, msg_id, request["value"])
        elif kind == "read":
            self.read(writer, rid, request.get("mode", "local"))
        else:
            error(writer, rid, "unknown-type", f"unknown request type {kind!r}")

    def broadcast(self, writer: asyncio.StreamWriter, rid: Any, msg_id: str, value: Any) -> None:
        position = self.position.get(msg_id)
        if position is not None and position < self.commit:
            reply(writer, rid, "broadcast_ok", msg_id=msg_id, position=position)
            return
        if len(self.acks) >= PENDING_MAX:
            error(writer, rid, "overloaded", "too many broadcasts waiting")
            return
        self.acks.setdefault(msg_id, []).append((writer, rid))
        entry = {"id": msg_id, "v": value}
        if self.leading:
            self.append_entries([entry])
        elif position is None:
            self.forwards[msg_id] = (value, time.monotonic())
            self.send(LEADER, {"type": "forward", "entries": [entry]})
            self.counts["forwards_sent"] += 1

    def read(self, writer: asyncio.StreamWriter, rid: Any, mode: str) -> None:
        local = mode == "local" or (
            mode == "log" and (self.leading or "follower-log-read" in self.bugs)
        )
        if local:
            reply(writer, rid, "read_ok", mode=mode, value=self.delivered())
        elif mode != "log":
            error(writer, rid, "unsupported-read-mode", "leader_log serves local and log reads")
        elif len(self.reads) >= PENDING_MAX:
            error(writer, rid, "overloaded", "too many reads waiting")
        else:
            self.read_seq += 1
            read_id = f"{self.id}-{self.started}-{self.read_seq}"
            now = time.monotonic()
            self.reads[read_id] = (writer, rid, now, now, None)
            self.send(LEADER, {"type": "read_index", "rid": read_id})

    def answer_reads(self) -> None:
        for read_id, (writer, rid, _, _, index) in list(self.reads.items()):
            if index is not None and index <= self.commit:
                del self.reads[read_id]
                reply(writer, rid, "read_ok", mode="log", value=self.delivered())

    def status(self) -> dict[str, Any]:
        return {
            "name": f"n{self.id + 1}", "pid": os.getpid(), "node": self.id,
            "role": "leader" if self.leading else "follower", "leader": LEADER,
            "delivered": self.commit, "log_length": len(self.log), "bugs": sorted(self.bugs),
            "pending": len(self.acks), "uptime_s": round(time.monotonic() - self.started, 3),
            **self.counts,
        }  # fmt: skip

    # ---- timers -------------------------------------------------------------------------

    async def ticker(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            now = time.monotonic()
            if self.leading:
                for j in self.peers:
                    if self.sent[j] > self.match[j] and now - self.last_ok[j] > RESEND_S:
                        self.sent[j] = self.match[j]  # lost on the way: ship it again
                    self.ship(j)  # an empty append is the heartbeat that carries commit
                continue
            stale = [(m, v) for m, (v, at) in self.forwards.items() if now - at > RESEND_S]
            for chunk in range(0, len(stale), 64):
                entries = [{"id": m, "v": v} for m, v in stale[chunk : chunk + 64]]
                self.send(LEADER, {"type": "forward", "entries": entries})
            for m, v in stale:
                self.forwards[m] = (v, now)
            for read_id, (writer, rid, started, asked, index) in list(self.reads.items()):
                if now - started > READ_GIVE_UP_S or writer.is_closing():
                    del self.reads[read_id]
                elif index is None and now - asked > RESEND_S:
                    self.reads[read_id] = (writer, rid, started, now, None)
                    self.send(LEADER, {"type": "read_index", "rid": read_id})


def reply(writer: asyncio.StreamWriter, request_id: Any, kind: str, **fields: Any) -> None:
    if not writer.is_closing():
        body = {"type": kind, "in_reply_to": request_id, **fields}
        writer.write(json.dumps(body).encode() + b"\n")


def error(writer: asyncio.StreamWriter, request_id: Any, code: str, text: str) -> None:
    reply(writer, request_id, "error", code=code, text=text)


async def serve(args: argparse.Namespace) -> None:
    node = Node(args)
    limit = MAX_LINE_BYTES + 1
    client = await asyncio.start_server(node.on_client, "127.0.0.1", args.client_port, limit=limit)
    peer = await asyncio.start_server(node.on_peer, "127.0.0.1", args.peer_port, limit=limit)
    tasks = [asyncio.create_task(node.sender(j)) for j in node.peers]
    tasks.append(asyncio.create_task(node.ticker()))
    print(f"n{args.id + 1}: serving on {args.client_port}; log {len(node.log)}", file=sys.stderr)
    async with client, peer:
        await asyncio.gather(*tasks)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--client-port", type=int, required=True)
    p.add_argument("--peer-port", type=int, required=True)
    p.add_argument("--peer", type=parse_peer, action="append", default=[], metavar="ID=HOST:PORT")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--bug", action="append", default=[], choices=BUGS)
    p.add_argument("--heartbeat-ms", type=float, default=50.0)
    args = p.parse_args()
    try:
        asyncio.run(serve(args))
    except OSError as exc:  # a port in use, a data directory that cannot be written
        print(f"n{args.id + 1}: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
