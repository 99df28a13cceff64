"""Properties of the partition shapes over cluster sizes 3..9 and many seeds."""

from __future__ import annotations

import doctest
import json
import random
from collections.abc import Mapping

import pytest

from tobtest.nemesis import grudge as g

SIZES = range(3, 10)
SEEDS = range(40)


def names(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


def is_majority(view: set[str], n: int) -> bool:
    return len(view) > n // 2


def symmetric(grudge: Mapping[str, list[str]]) -> bool:
    return all(a in grudge.get(b, []) for a, dropped in grudge.items() for b in dropped)


def components(nodes: list[str], grudge: Mapping[str, list[str]]) -> list[set[str]]:
    """Distinct views, for shapes that are complete grudges (each view is its component)."""
    views = {frozenset(g.view(nodes, grudge, n)) for n in nodes}
    return [set(v) for v in views]


def smallest(parts: list[set[str]]) -> set[str]:
    return sorted(parts, key=len)[0]


def test_module_examples() -> None:
    result = doctest.testmod(g)
    assert result.attempted >= 3
    assert result.failed == 0


def test_complete_grudge_is_symmetric_and_cuts_exactly_across_components() -> None:
    grudge = g.complete_grudge([["n1", "n2"], ["n3"], ["n4", "n5"]])
    assert grudge == {
        "n1": ["n3", "n4", "n5"],
        "n2": ["n3", "n4", "n5"],
        "n3": ["n1", "n2", "n4", "n5"],
        "n4": ["n1", "n2", "n3"],
        "n5": ["n1", "n2", "n3"],
    }
    assert symmetric(grudge)
    assert g.complete_grudge([["n1", "n2", "n3"]]) == {}


@pytest.mark.parametrize("n", SIZES)
def test_random_complete_grudges_are_symmetric(n: int) -> None:
    nodes = names(n)
    for seed in SEEDS:
        rng = random.Random(seed)
        groups: list[list[str]] = [[] for _ in range(rng.randint(1, n))]
        for node in nodes:
            rng.choice(groups).append(node)
        grudge = g.complete_grudge(groups)
        assert symmetric(grudge)
        for group in groups:
            for node in group:
                assert g.view(nodes, grudge, node) == set(group)


@pytest.mark.parametrize("n", SIZES)
def test_majorities_ring_gives_each_node_a_distinct_majority(n: int) -> None:
    nodes = names(n)
    for seed in SEEDS:
        grudge = g.majorities_ring(nodes, random.Random(seed))
        views = [frozenset(g.view(nodes, grudge, node)) for node in nodes]
        assert all(is_majority(set(v), n) for v in views), (seed, grudge)
        assert len(set(views)) == n, (seed, grudge)
        assert all(len(v) < n for v in views), "a node that hears everyone is no ring"
        if n >= 4:
            assert symmetric(grudge)


def test_majorities_ring_on_three_nodes_is_a_one_way_ring() -> None:
    nodes = names(3)
    grudge = g.majorities_ring(nodes, random.Random(5))
    assert sorted(grudge) == nodes
    assert all(len(dropped) == 1 for dropped in grudge.values())
    # Following "who drops whom" from any node visits all three: one cycle.
    node, seen = "n1", []
    for _ in range(3):
        seen.append(node)
        node = grudge[node][0]
    assert node == "n1" and sorted(seen) == nodes
    assert not symmetric(grudge)


@pytest.mark.parametrize("n", SIZES)
def test_bridge_connects_two_halves_only_through_the_bridge(n: int) -> None:
    nodes = names(n)
    for seed in SEEDS:
        grudge = g.bridge(nodes, random.Random(seed))
        assert symmetric(grudge)
        hubs = [node for node in nodes if g.view(nodes, grudge, node) == set(nodes)]
        assert len(hubs) == 1, (seed, grudge)
        hub = hubs[0]
        assert all(hub not in dropped for dropped in grudge.values())
        rest = [node for node in nodes if node != hub]
        sides = {frozenset(g.view(nodes, grudge, node) - {hub}) for node in rest}
        assert len(sides) == 2
        side_a, side_b = sides
        assert side_a | side_b == set(rest) and not side_a & side_b
        # The hub came from the second (larger) half of Jepsen's bisect.
        assert sorted([len(side_a), len(side_b)]) == sorted([n // 2, n - n // 2 - 1])


@pytest.mark.parametrize("n", SIZES)
def test_halves_shapes_split_in_two_smaller_half_first(n: int) -> None:
    nodes = names(n)
    assert g.halves(nodes, random.Random(0)) == g.complete_grudge(
        [nodes[: n // 2], nodes[n // 2 :]]
    )
    shuffled_halves: set[frozenset[str]] = set()
    for seed in SEEDS:
        parts = components(nodes, g.random_halves(nodes, random.Random(seed)))
        assert sorted(len(p) for p in parts) == sorted([n // 2, n - n // 2])
        shuffled_halves.add(frozenset(smallest(parts)))
    assert len(shuffled_halves) > 1, "random-halves must not always cut the same way"


@pytest.mark.parametrize("n", SIZES)
def test_majority_leaves_exactly_one_strict_majority(n: int) -> None:
    nodes = names(n)
    for seed in SEEDS:
        parts = components(nodes, g.majority(nodes, random.Random(seed)))
        assert sorted(len(p) for p in parts) == sorted([n // 2 + 1, n - n // 2 - 1])


@pytest.mark.parametrize("n", SIZES)
def test_one_isolates_a_single_node(n: int) -> None:
    nodes = names(n)
    isolated: set[str] = set()
    for seed in SEEDS:
        parts = components(nodes, g.one(nodes, random.Random(seed)))
        assert sorted(len(p) for p in parts) == [1, n - 1]
        isolated |= smallest(parts)
    assert len(isolated) > 1


def test_isolate_cuts_each_target_from_everyone() -> None:
    nodes = names(5)
    grudge = g.isolate(nodes, ["n2", "n4"])
    assert g.view(nodes, grudge, "n2") == {"n2"}
    assert g.view(nodes, grudge, "n4") == {"n4"}
    assert g.view(nodes, grudge, "n1") == {"n1", "n3", "n5"}
    assert symmetric(grudge)


def test_one_way_cuts_a_single_direction() -> None:
    grudge = g.one_way(["n1", "n2"], ["n2", "n3"])
    assert grudge == {"n2": ["n1"], "n3": ["n1", "n2"]}
    assert "n1" not in grudge  # n1 still hears n2 and n3


def test_invert_turns_connections_into_drops() -> None:
    nodes = names(4)
    conns = {"n1": ["n2"], "n2": ["n1", "n3"], "n3": ["n2", "n4"], "n4": ["n3"]}
    grudge = g.invert(nodes, conns)
    assert grudge == {"n1": ["n3", "n4"], "n2": ["n4"], "n3": ["n1"], "n4": ["n1", "n2"]}
    for node in nodes:
        assert g.view(nodes, grudge, node) == set(conns[node]) | {node}


def test_names_sort_naturally_and_self_grudges_vanish() -> None:
    grudge = g.normalize({"n10": ["n2", "n10", "n1"], "n2": [], "n9": {"n10"}})
    assert grudge == {"n9": ["n10"], "n10": ["n1", "n2"]}
    assert list(grudge) == ["n9", "n10"]


@pytest.mark.parametrize("shape", sorted(g.PARTITION_SHAPES))
def test_every_shape_is_deterministic_per_seed_and_serializes_as_is(shape: str) -> None:
    fn = g.PARTITION_SHAPES[shape]
    for n in SIZES:
        nodes = names(n)
        for seed in range(10):
            first = fn(nodes, random.Random(seed))
            assert fn(nodes, random.Random(seed)) == first
            assert json.loads(json.dumps(first)) == first
            assert g.normalize(first) == first
            assert set(first) <= set(nodes)
            assert all(set(v) <= set(nodes) for v in first.values())
            assert first, f"{shape} on {n} nodes cut nothing"
