"""Node targets: sizes, determinism per seed, and primaries with a fallback."""

import asyncio
import random

import pytest

from tobtest.nemesis.targets import TARGET_SPECS, check_target_specs, select_targets

NODES = ["n1", "n2", "n3", "n4", "n5"]


def pick(spec: str, seed: int, leaders: list[str] | None = None) -> list[str]:
    async def primaries() -> list[str]:
        return leaders or []

    return asyncio.run(select_targets(spec, NODES, random.Random(seed), primaries))


@pytest.mark.parametrize("seed", range(20))
def test_sizes(seed):
    assert len(pick("one", seed)) == 1
    assert len(pick("minority", seed)) == 2
    assert len(pick("majority", seed)) == 3
    assert pick("all", seed) == NODES
    assert 1 <= len(pick("some", seed)) <= 5
    for spec in TARGET_SPECS:
        assert set(pick(spec, seed)) <= set(NODES)


def test_same_seed_same_targets_other_seeds_differ():
    assert pick("majority", 3) == pick("majority", 3)
    assert len({tuple(pick("majority", s)) for s in range(30)}) > 1


def test_primaries_are_the_claimed_leaders_or_one_node():
    assert pick("primaries", 1, ["n4"]) == ["n4"]
    assert len(pick("primaries", 1, [])) == 1


def test_unknown_specs_are_refused():
    with pytest.raises(ValueError, match="unknown target"):
        check_target_specs(["one", "everyone"])
    with pytest.raises(ValueError):
        pick("everyone", 1)
