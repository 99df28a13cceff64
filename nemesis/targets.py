"""Which nodes a fault hits, as Jepsen's node specs: one, minority, majority, all,
primaries (the nodes that claim to lead) and some (a random non-empty subset).

    names = await select_targets("minority", ["n1", "n2", "n3"], rng, primaries)
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence

TARGET_SPECS: tuple[str, ...] = ("one", "minority", "majority", "all", "primaries", "some")


async def select_targets(
    spec: str,
    names: Sequence[str],
    rng: random.Random,
    primaries: Callable[[], Awaitable[list[str]]],
) -> list[str]:
    """The nodes `spec` names, in a deterministic order for a given rng state."""
    nodes = list(names)
    n = len(nodes)
    if spec == "one":
        return [rng.choice(nodes)]
    if spec == "minority":
        return sorted(rng.sample(nodes, max(1, (n - 1) // 2)))
    if spec == "majority":
        return sorted(rng.sample(nodes, n // 2 + 1))
    if spec == "all":
        return nodes
    if spec == "some":
        return sorted(rng.sample(nodes, rng.randint(1, n)))
    if spec == "primaries":
        leaders = await primaries()
        # No node claims to lead (a leaderless protocol, or mid-election): hit one node,
        # so the fault still happens; draw anyway so the rng stream does not depend on it.
        fallback = rng.choice(nodes)
        return sorted(leaders) if leaders else [fallback]
    raise ValueError(f"unknown target {spec!r}; known: {', '.join(TARGET_SPECS)}")


def check_target_specs(specs: Sequence[str]) -> list[str]:
    unknown = [s for s in specs if s not in TARGET_SPECS]
    if unknown or not specs:
        raise ValueError(f"unknown target(s) {unknown}; known: {', '.join(TARGET_SPECS)}")
    return list(specs)
