"""ProxyControl against an in-process control server that the test scripts.

The real proxy answers the same requests in tests/nemesis/test_proxy.py; here the server
misbehaves on purpose (error replies, silence, garbage, hang-ups) to pin the client down.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tobtest.nemesis.proxy_client import ProxyControl, ProxyControlError, ProxyUnavailable

Answer = Callable[[dict[str, Any]], bytes | None]


class FakeControl:
    """Reads JSON Lines requests, records them, and writes whatever `answer` returns."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeControl:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while line := await reader.readline():
                request = json.loads(line)
                self.requests.append(request)
                reply = self.answer(request)
                if reply == b"HANGUP":
                    break
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        finally:
            writer.close()


def ok_replies(request: dict[str, Any]) -> bytes:
    if request["type"] == "status":
        return b'{"type": "status_ok", "grudge": {}, "faults": [], "links": []}\n'
    return b'{"type": "ok"}\n'


def run(make: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(make(), 10))


def test_each_method_sends_its_request_on_one_connection() -> None:
    async def body() -> None:
        async with FakeControl(ok_replies) as fake:
            async with ProxyControl("127.0.0.1", fake.port, timeout_s=2) as control:
                await control.grudge({"n2": ("n1",)})
                await control.heal()
                await control.link_faults([{"src": "n1", "dst": "*", "delay_ms": 5}])
                await control.clear_link_faults()
                status = await control.status()
            assert status["type"] == "status_ok"
            assert fake.requests == [
                {"type": "grudge", "grudge": {"n2": ["n1"]}},
                {"type": "heal"},
                {"type": "link-faults", "faults": [{"src": "n1", "dst": "*", "delay_ms": 5}]},
                {"type": "clear-link-faults"},
                {"type": "status"},
            ]
            assert fake.connections == 1

    run(body)


def test_an_error_reply_raises_with_the_proxy_text() -> None:
    def answer(request: dict[str, Any]) -> bytes:
        return b'{"type": "error", "text": "unknown node(s) in grudge: n9"}\n'

    async def body() -> None:
        async with FakeControl(answer) as fake:
            control = ProxyControl("127.0.0.1", fake.port, timeout_s=2)
            with pytest.raises(ProxyControlError, match="unknown node.*n9"):
                await control.grudge({"n9": ["n1"]})
            await control.close()

    run(body)


def test_a_reply_of_the_wrong_type_or_not_json_raises() -> None:
    replies = iter([b'{"type": "ok"}\n', b"not json\n", b'{"type": "status_ok"}\n'])

    async def body() -> None:
        async with FakeControl(lambda request: next(replies)) as fake:
            control = ProxyControl("127.0.0.1", fake.port, timeout_s=2)
            with pytest.raises(ProxyControlError, match="expected a 'status_ok'"):
                await control.status()
            with pytest.raises(ProxyControlError, match="not JSON"):
                await control.heal()
            with pytest.raises(ProxyControlError, match="expected a 'ok'"):
                await control.heal()
            await control.close()

    run(body)


def test_silence_times_out_and_the_next_request_uses_a_fresh_connection() -> None:
    silent = {"first": True}

    def answer(request: dict[str, Any]) -> bytes | None:
        if silent["first"]:
            silent["first"] = False
            return None  # never answers: the client must give up, not wait forever
        return ok_replies(request)

    async def body() -> None:
        async with FakeControl(answer) as fake:
            control = ProxyControl("127.0.0.1", fake.port, timeout_s=0.3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ProxyUnavailable, match="timed out"):
                await control.heal()
            assert loop.time() - started < 1.5
            await control.heal()  # a late reply to the first request can't be misread now
            assert fake.connections == 2
            await control.close()

    run(body)


def test_hangup_and_refused_connections_raise_unavailable_then_recover() -> None:
    hang_up = {"next": True}

    def answer(request: dict[str, Any]) -> bytes:
        if hang_up["next"]:
            hang_up["next"] = False
            return b"HANGUP"
        return ok_replies(request)

    async def body() -> None:
        async with FakeControl(answer) as fake:
            control = ProxyControl("127.0.0.1", fake.port, timeout_s=2)
            with pytest.raises(ProxyUnavailable):
                await control.heal()
            await control.heal()
            await control.close()
            port = fake.port
        await asyncio.sleep(0.05)
        gone = ProxyControl("127.0.0.1", port, timeout_s=1)
        with pytest.raises(ProxyUnavailable, match="failed"):
            await gone.status()
        await gone.close()

    run(body)
