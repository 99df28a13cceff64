"""tobtest.maelstrom.services: Maelstrom's lin-kv, seq-kv and lin-tso as tobtest serves them."""

from __future__ import annotations

import asyncio
import json

from tobtest.maelstrom.services import Services, bind_socket, serve


def ask(services: Services, dest: str, **body: object) -> dict:
    reply = services.handle({"src": "n1", "dest": dest, "body": {"msg_id": 7, **body}})
    assert reply is not None and reply["src"] == dest and reply["dest"] == "n1"
    assert reply["body"]["in_reply_to"] == 7
    return reply["body"]


def test_lin_kv_reads_writes_and_compares_and_sets_with_maelstroms_codes():
    kv = Services()
    assert ask(kv, "lin-kv", type="read", key="x")["code"] == 20
    assert ask(kv, "lin-kv", type="cas", key="x", **{"from": 1, "to": 2})["code"] == 20
    assert ask(kv, "lin-kv", type="write", key="x", value=1)["type"] == "write_ok"
    assert ask(kv, "lin-kv", type="cas", key="x", **{"from": 3, "to": 2})["code"] == 22
    assert ask(kv, "lin-kv", type="cas", key="x", **{"from": 1, "to": 2})["type"] == "cas_ok"
    assert ask(kv, "lin-kv", type="read", key="x") == {
        "type": "read_ok", "value": 2, "in_reply_to": 7, "msg_id": 6,
    }  # fmt: skip
    created = ask(kv, "lin-kv", type="cas", key=[1, "y"], create_if_not_exists=True,
                  **{"from": 0, "to": 5})  # fmt: skip
    assert (
        created["type"] == "cas_ok" and ask(kv, "lin-kv", type="read", key=[1, "y"])["value"] == 5
    )


def test_each_service_is_its_own_store_and_lin_tso_counts_up():
    kv = Services()
    ask(kv, "lin-kv", type="write", key="k", value=1)
    assert ask(kv, "seq-kv", type="read", key="k")["code"] == 20
    assert [ask(kv, "lin-tso", type="ts")["ts"] for _ in range(3)] == [1, 2, 3]


def test_what_it_does_not_serve_is_an_error_reply_and_a_non_request_gets_none():
    kv = Services()
    assert ask(kv, "lww-kv", type="read", key="k")["code"] == 10
    assert ask(kv, "lin-kv", type="append", key="k")["code"] == 10
    assert ask(kv, "lin-kv", type="write", key="k")["code"] == 12  # no value
    assert kv.handle({"src": "n1", "dest": "lin-kv", "body": {"type": "read_ok"}}) is None


def test_it_serves_lines_over_tcp():
    async def scenario() -> dict:
        sock = bind_socket()
        server = await serve(Services(), sock)
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"garbage\n")  # dropped, the connection stays
        request = {"src": "n2", "dest": "lin-kv", "body": {"type": "read", "key": 1, "msg_id": 3}}
        writer.write(json.dumps(request).encode() + b"\n")
        reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
        writer.close()
        server.close()
        return reply

    reply = asyncio.run(scenario())
    assert reply["dest"] == "n2" and reply["body"]["code"] == 20
