"""workloads/maelstrom.py: Maelstrom's message shapes, and its error codes as op outcomes."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from tobtest.workloads.client import RequestTimeout
from tobtest.workloads.maelstrom import (
    MAELSTROM_WORKLOADS,
    grid_topology,
    setup_bodies,
)


class FakeShim:
    """Answers each request with the next reply body, as a shim would wrap it."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.sent: list[dict[str, Any]] = []

    async def request(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.sent.append(body)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return {"type": "maelstrom_ok", "in_reply_to": 1, "body": reply}


def run(workload_name: str, op: dict[str, Any], *replies: Any) -> tuple[Any, FakeShim]:
    workload = MAELSTROM_WORKLOADS[workload_name](random.Random(1), {})
    shim = FakeShim(*replies)
    outcome = asyncio.run(workload.invoke(shim, op, 1.0))  # type: ignore[arg-type]
    return outcome, shim


def test_the_grid_is_maelstroms_default_topology_and_goes_to_broadcast_nodes_only():
    assert grid_topology([f"n{i}" for i in range(1, 5)]) == {
        "n1": ["n2", "n3"], "n2": ["n1", "n4"], "n3": ["n1", "n4"], "n4": ["n2", "n3"],
    }  # fmt: skip
    (body,) = setup_bodies("broadcast", 3)
    assert json.loads(body) == {"type": "topology", "topology": grid_topology(["n1", "n2", "n3"])}
    assert setup_bodies("lin-kv", 3) == ()


def test_broadcast_and_read_use_maelstroms_fields():
    outcome, shim = run("broadcast", {"f": "broadcast", "value": 4}, {"type": "broadcast_ok"})
    assert outcome.type == "ok" and shim.sent[0]["body"] == {"type": "broadcast", "message": 4}
    outcome, _ = run(
        "broadcast", {"f": "read", "value": None}, {"type": "read_ok", "messages": [4]}
    )
    assert outcome.type == "ok" and outcome.value == [4]


@pytest.mark.parametrize(
    ("op", "reply", "outcome_type", "value"),
    [
        ({"f": "read", "key": 1, "value": None}, {"type": "read_ok", "value": 3}, "ok", 3),
        # 20 on a read: the key holds nothing, a definite answer
        ({"f": "read", "key": 1, "value": None}, {"type": "error", "code": 20}, "ok", None),
        ({"f": "write", "key": 1, "value": 2}, {"type": "write_ok"}, "ok", 2),
        ({"f": "cas", "key": 1, "value": [1, 2]}, {"type": "error", "code": 22}, "fail", [1, 2]),
        ({"f": "cas", "key": 1, "value": [1, 2]}, {"type": "error", "code": 20}, "fail", [1, 2]),
        ({"f": "write", "key": 1, "value": 2}, {"type": "error", "code": 11}, "fail", 2),
        # indefinite: timeout, crash, and codes of the node's own
        ({"f": "write", "key": 1, "value": 2}, {"type": "error", "code": 0}, "info", 2),
        ({"f": "cas", "key": 1, "value": [1, 2]}, {"type": "error", "code": 13}, "info", [1, 2]),
        ({"f": "write", "key": 1, "value": 2}, {"type": "error", "code": 1001}, "info", 2),
        ({"f": "read", "key": 1, "value": None}, {"type": "error", "code": 13}, "fail", None),
    ],
)
def test_lin_kv_maps_maelstroms_definite_and_indefinite_errors(op, reply, outcome_type, value):
    outcome, shim = run("lin-kv", op, reply)
    assert (outcome.type, outcome.value) == (outcome_type, value)
    assert shim.sent[0]["type"] == "maelstrom" and shim.sent[0]["body"]["key"] == 1


def test_a_request_that_got_no_reply_is_indeterminate_unless_it_is_a_read():
    write = {"f": "write", "key": 0, "value": 1}
    assert run("lin-kv", write, RequestTimeout("no reply"))[0].type == "info"
    read = {"f": "read", "key": 0, "value": None}
    assert run("lin-kv", read, RequestTimeout("no reply"))[0].type == "fail"


def test_txn_list_append_sends_the_transaction_and_records_the_filled_in_one():
    txn = [["append", 0, 1], ["r", 0, None]]
    done = [["append", 0, 1], ["r", 0, [1]]]
    outcome, shim = run(
        "txn-list-append", {"f": "txn", "value": txn}, {"type": "txn_ok", "txn": done}
    )
    assert outcome.type == "ok" and outcome.value == done
    assert shim.sent[0]["body"] == {"type": "txn", "txn": txn}
    outcome, _ = run("txn-list-append", {"f": "txn", "value": txn}, {"type": "error", "code": 30})
    assert outcome.type == "fail"
