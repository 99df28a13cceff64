"""Reads from a position, at the node: a suffix only when the client's prefix digest is the
node's own; the whole log otherwise; the harness's digest is the node's."""

from __future__ import annotations

import pytest

from tobtest.node.read_from import EMPTY_DIGEST, PrefixDigests, chain_digest, parse_from
from tobtest.workloads import read_cursor


def digest_of(values: list) -> str:
    d = EMPTY_DIGEST
    for v in values:
        d = chain_digest(d, v)
    return d


def test_a_client_holding_the_nodes_prefix_gets_the_suffix_and_the_length():
    node = PrefixDigests()
    log = [7, 3, 9, 4]
    assert node.answer(log, 2, digest_of([7, 3])) == {"value": [9, 4], "from": 2, "length": 4}
    assert node.answer(log, 4, digest_of(log)) == {"value": [], "from": 4, "length": 4}


@pytest.mark.parametrize(
    ("held", "why"),
    [
        ([3, 7], "the same entries in another order"),
        ([7, 5], "another entry at K-1"),
        ([7, 3, 9, 4, 8], "more entries than the node has"),
    ],
)
def test_a_client_whose_prefix_is_not_the_nodes_gets_the_whole_log(held, why):
    node = PrefixDigests()
    log = [7, 3, 9, 4]
    answer = node.answer(log, len(held), digest_of(held))
    assert answer == {"value": log, "from": 0, "length": 4}, why


def test_from_zero_is_the_whole_log():
    assert PrefixDigests().answer([1, 2], 0, "") == {"value": [1, 2], "from": 0, "length": 2}


def test_a_rewritten_prefix_is_not_vouched_for_by_digests_cached_before():
    """A node's log only grows; one that broke that must answer in full, so the checker
    sees it: the cache checks the entries it hashed, not only their count."""
    node = PrefixDigests()
    held = [1, 2, 3]
    assert node.answer(held, 0, "")["value"] == held  # caches the digests of [1, 2, 3]
    answer = node.answer([1, 9, 3, 4], 3, digest_of(held))
    assert answer == {"value": [1, 9, 3, 4], "from": 0, "length": 4}
    # And its digests now follow the new log.
    assert node.answer([1, 9, 3, 4], 3, digest_of([1, 9, 3]))["value"] == [4]


def test_the_harness_computes_the_nodes_digest():
    values = [0, 17, "m", {"b": 1, "a": [2, None]}, 3.5, True]
    assert read_cursor.log_digest(values) == digest_of(values)
    assert read_cursor.chain_digest("x", {"b": 1, "a": 2}) == chain_digest("x", {"a": 2, "b": 1})


@pytest.mark.parametrize(
    ("request_", "parsed"),
    [({}, None), ({"from": 0}, (0, "")), ({"from": 3, "digest": "ab"}, (3, "ab"))],
)
def test_parse_from_takes_counts_and_digests(request_, parsed):
    assert parse_from({"type": "read", **request_}) == parsed


@pytest.mark.parametrize(
    "request_",
    [{"from": -1}, {"from": "3"}, {"from": True}, {"from": 2}, {"from": 2, "digest": 5}],
)
def test_parse_from_refuses_what_is_no_position(request_):
    with pytest.raises(ValueError):
        parse_from({"type": "read", **request_})
