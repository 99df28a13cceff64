"""A client connection to one node, speaking the node's JSON Lines wire protocol.

    client = NodeClient("127.0.0.1", 7100)
    reply = await client.request({"type": "broadcast", "value": 7}, timeout_s=2.0)
    await client.close()

One request at a time per connection, as one Jepsen process issues one op at a time. The
errors say what is known about the request's fate: `ConnectFailed` (never sent: the op
certainly did not happen), `RequestTimeout` and `ConnectionLost` (sent, fate unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

MAX_REPLY_BYTES = 64 << 20  # a read returns the whole delivered sequence


class ClientError(Exception):
    """Base of the client's errors; `definite` says the request surely did not happen."""

    definite = False


class ConnectFailed(ClientError):
    definite = True


class RequestTimeout(ClientError):
    pass


class ConnectionLost(ClientError):
    pass


class NodeClient:
    def __init__(self, host: str, port: int, connect_timeout_s: float = 1.0) -> None:
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._next_id = 0

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_REPLY_BYTES),
                self.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from None

    async def request(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Sends one request and waits for its reply (matched by id)."""
        if self._writer is None:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        self._next_id += 1
        req_id = self._next_id
        line = json.dumps({**body, "id": req_id}, separators=(",", ":")) + "\n"
        try:
            self._writer.write(line.encode())
            return await asyncio.wait_for(self._read_reply(req_id), timeout_s)
        except TimeoutError:
            await self.close()
            raise RequestTimeout(f"no reply within {timeout_s:g} s") from None
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise ConnectionLost(f"connection lost: {exc or type(exc).__name__}") from None

    async def _read_reply(self, req_id: int) -> dict[str, Any]:
        assert self._reader is not None
        while True:
            line = await self._reader.readline()
            if not line:
                raise ConnectionLost("node closed the connection")
            reply = json.loads(line)
            if not isinstance(reply, dict):
                raise ValueError("reply is not a JSON object")
            # Replies to earlier, abandoned requests may still arrive; skip them.
            if reply.get("in_reply_to") in (req_id, None):
                return reply

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


async def request_once(
    host: str, port: int, body: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """Opens a connection, sends one request, closes; for status and control requests."""
    client = NodeClient(host, port, connect_timeout_s=timeout_s)
    try:
        return await client.request(body, timeout_s)
    finally:
        await client.close()
