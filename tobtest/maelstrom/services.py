"""Maelstrom's services as tobtest serves them: `lin-kv`, `seq-kv` and `lin-tso`.

    services = Services()
    services.handle({"src": "n1", "dest": "lin-kv",
                     "body": {"type": "cas", "msg_id": 4, "key": "x", "from": 1, "to": 2}})
    # {"src": "lin-kv", "dest": "n1", "body": {"type": "error", "code": 20, ...}}
    server = await serve(services, sock)   # the harness hosts one for all shims

One store per service, each served by a single asyncio task in request order, so every
service is linearizable: `seq-kv` is served linearizably too (a linearizable store is a
sequentially consistent one; a node that relies on more than seq-kv promises is not caught
here). `lww-kv` is not served (error 10, not-supported). Requests and replies are
Maelstrom messages, one JSON object per line, over a TCP connection per shim; a
request's reply carries `in_reply_to` its `msg_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

KV_SERVICES = ("lin-kv", "seq-kv")
SERVICES = (*KV_SERVICES, "lin-tso", "lww-kv")
MAX_LINE_BYTES = 1 << 20
# Maelstrom's error codes (doc/protocol.md).
NOT_SUPPORTED, MALFORMED, KEY_DOES_NOT_EXIST, PRECONDITION_FAILED = 10, 12, 20, 22


def _key(value: Any) -> str:
    # Keys may be any JSON value; stored under their canonical JSON text.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Services:
    """The stores behind every service (pure: a message in, its reply out)."""

    def __init__(self) -> None:
        self.stores: dict[str, dict[str, Any]] = {name: {} for name in KV_SERVICES}
        self.ts = 0
        self.requests = 0
        self._next_msg_id = 0

    def handle(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The reply to one request, or None when it is not a request (nothing to answer)."""
        body = message.get("body")
        service = message.get("dest")
        if not isinstance(body, dict) or "msg_id" not in body:
            return None
        self.requests += 1
        try:
            reply = self._apply(str(service), body)
        except (KeyError, TypeError) as exc:
            reply = {"type": "error", "code": MALFORMED, "text": f"missing or bad field: {exc}"}
        self._next_msg_id += 1
        reply.update(in_reply_to=body["msg_id"], msg_id=self._next_msg_id)
        return {"src": service, "dest": message.get("src"), "body": reply}

    def _apply(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("type")
        if service == "lin-tso" and kind == "ts":
            self.ts += 1
            return {"type": "ts_ok", "ts": self.ts}
        store = self.stores.get(service)
        if store is None:
            return {"type": "error", "code": NOT_SUPPORTED, "text": f"{service} is not served"}
        if kind == "read":
            key = _key(body["key"])
            if key not in store:
                return {"type": "error", "code": KEY_DOES_NOT_EXIST, "text": "key does not exist"}
            return {"type": "read_ok", "value": store[key]}
        if kind == "write":
            store[_key(body["key"])] = body["value"]
            return {"type": "write_ok"}
        if kind == "cas":
            key = _key(body["key"])
            if key not in store and not body.get("create_if_not_exists"):
                return {"type": "error", "code": KEY_DOES_NOT_EXIST, "text": "key does not exist"}
            if key in store and store[key] != body["from"]:
                text = f"expected {body['from']!r}, had {store[key]!r}"
                return {"type": "error", "code": PRECONDITION_FAILED, "text": text}
            store[key] = body["to"]
            return {"type": "cas_ok"}
        return {"type": "error", "code": NOT_SUPPORTED, "text": f"{kind!r} is not supported"}


async def _serve_connection(
    services: Services, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a shim only passes JSON objects on; anything else is dropped
            reply = services.handle(message) if isinstance(message, dict) else None
            if reply is not None:
                writer.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
    except (ConnectionError, OSError, ValueError):
        return
    finally:
        writer.close()


async def serve(services: Services, sock: socket.socket) -> asyncio.Server:
    """Serves `services` on an already bound and listening socket (127.0.0.1)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await _serve_connection(services, reader, writer)

    return await asyncio.start_server(handler, sock=sock, limit=MAX_LINE_BYTES + 1)


def bind_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a free port: bound before the shims are launched with it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(64)
    return sock
