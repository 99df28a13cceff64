"""Asyncio client for the proxy's control port (see `tobtest.nemesis.proxy`).

    control = ProxyControl("127.0.0.1", 7000, timeout_s=2.0)
    await control.grudge({"n2": ["n1"]})          # n2 drops messages from n1
    await control.link_faults([{"src": "n1", "dst": "*", "delay_ms": 50, "jitter_ms": 10}])
    status = await control.status()               # {"type": "status_ok", "grudge": ..., ...}
    await control.heal()
    await control.clear_link_faults()
    await control.close()

One connection, opened on first use and reopened after a failure; requests go one at a time.
Each request has a timeout (`timeout_s`, connecting included). An error reply raises
`ProxyControlError` with the proxy's text; a timeout or a lost connection raises
`ProxyUnavailable` (a subclass), after which the connection is dropped so that a late reply
can never be read as the answer to the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

REPLY_BYTES_MAX = 16 * 1_048_576


class ProxyControlError(RuntimeError):
    """The proxy answered a control request with an error, or could not be asked."""


class ProxyUnavailable(ProxyControlError):
    """The proxy did not answer in time, or the control connection failed."""


class ProxyControl:
    """A control connection to one proxy process."""

    def __init__(self, host: str, port: int, timeout_s: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ProxyControl:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def grudge(self, grudge: Mapping[str, Iterable[str]]) -> None:
        """Replaces the grudge: `{dst: [srcs whose messages dst drops]}` (lists or sets)."""
        lists = {node: sorted(dropped) for node, dropped in grudge.items()}
        await self.request({"type": "grudge", "grudge": lists})

    async def heal(self) -> None:
        """Clears the grudge (link faults stay)."""
        await self.request({"type": "heal"})

    async def link_faults(self, faults: Sequence[Mapping[str, Any]]) -> None:
        """Replaces every link fault; see `tobtest.nemesis.linkfaults` for the fields."""
        await self.request({"type": "link-faults", "faults": [dict(f) for f in faults]})

    async def clear_link_faults(self) -> None:
        await self.request({"type": "clear-link-faults"})

    async def status(self) -> dict[str, Any]:
        """The grudge, the fault specs and per-link counters."""
        return await self.request({"type": "status"}, expect="status_ok")

    async def request(self, message: Mapping[str, Any], expect: str = "ok") -> dict[str, Any]:
        """Sends one request and returns its reply, which must have type `expect`."""
        async with self._lock:
            try:
                reply = await asyncio.wait_for(self._exchange(message), self.timeout_s)
            except asyncio.CancelledError:
                self._drop_connection()  # a reply may still come: never read it as the next
                raise
            except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                self._drop_connection()
                what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc!r}"
                raise ProxyUnavailable(
                    f"proxy control {self.host}:{self.port} {message.get('type')!r} {what}"
                ) from exc
            except (ValueError, asyncio.LimitOverrunError) as exc:
                self._drop_connection()
                raise ProxyControlError(f"proxy sent a reply that is not JSON: {exc}") from exc
        if not isinstance(reply, dict):
            raise ProxyControlError(f"proxy sent a reply that is not an object: {reply!r}")
        if reply.get("type") == "error":
            raise ProxyControlError(f"proxy refused {message.get('type')!r}: {reply.get('text')}")
        if reply.get("type") != expect:
            raise ProxyControlError(f"expected a {expect!r} reply, got {reply!r}")
        return reply

    async def _exchange(self, message: Mapping[str, Any]) -> Any:
        if self._writer is None or self._reader is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=REPLY_BYTES_MAX
            )
        self._writer.write(json.dumps(message).encode() + b"\n")
        await self._writer.drain()
        line = await self._reader.readuntil(b"\n")
        return json.loads(line)

    def _drop_connection(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    async def close(self) -> None:
        async with self._lock:
            writer, self._reader, self._writer = self._writer, None, None
            if writer is not None:
                writer.close()
                with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                    await asyncio.wait_for(writer.wait_closed(), self.timeout_s)
