"""A client's cursor per node: it asks from what it holds and moves by replies."""

from __future__ import annotations

from tobtest.workloads.read_cursor import EMPTY_DIGEST, ReadCursors, log_digest


def Client() -> tuple[str, int]:  # noqa: N802 - reads as the key it makes
    """A fresh (client, node port) key, as the broadcast workload keys its cursors."""
    Client.made += 1  # type: ignore[attr-defined]
    return (f"w{Client.made}", 7100)  # type: ignore[attr-defined]


Client.made = 0  # type: ignore[attr-defined]


def test_a_cursor_asks_from_what_it_holds_and_moves_by_suffixes():
    cursors, a = ReadCursors(), Client()
    assert cursors.request_fields(a) == {"from": 0, "digest": EMPTY_DIGEST}
    assert cursors.take(a, {"value": [7, 3], "from": 0, "length": 2}) == ([7, 3], 0)
    assert cursors.request_fields(a) == {"from": 2, "digest": log_digest([7, 3])}
    assert cursors.take(a, {"value": [9], "from": 2, "length": 3}) == ([9], 2)
    assert cursors.request_fields(a) == {"from": 3, "digest": log_digest([7, 3, 9])}


def test_a_whole_log_reply_restarts_the_cursor_from_it():
    cursors, a = ReadCursors(), Client()
    cursors.take(a, {"value": [7, 3], "from": 0})
    # The node did not share the prefix (or ignores `from`: no `from` in the reply).
    assert cursors.take(a, {"value": [3, 7, 1]}) == ([3, 7, 1], 0)
    assert cursors.request_fields(a) == {"from": 3, "digest": log_digest([3, 7, 1])}


def test_cursors_are_per_client_and_node():
    cursors, a, b = ReadCursors(), Client(), Client()
    cursors.take(a, {"value": [1], "from": 0})
    assert cursors.request_fields(b)["from"] == 0
    assert cursors.request_fields((a[0], 7101))["from"] == 0
    assert cursors.request_fields(a)["from"] == 1


def test_a_reply_from_an_unexpected_position_is_unusable_and_resets():
    cursors, a = ReadCursors(), Client()
    cursors.take(a, {"value": [1, 2], "from": 0})
    assert cursors.take(a, {"value": [5], "from": 7}) is None
    assert cursors.request_fields(a)["from"] == 0
    assert cursors.take(a, {"value": "nope"}) is None
