"""The partition nemesis: cuts links in the proxy layer along Jepsen's partition shapes.

    nemesis = PartitionNemesis(random.Random(3), {"shapes": ["one", "majority"]})
    await nemesis.start(ctx)   # {"shape": "majority", "grudge": {"n1": ["n3"], ...}}
    await nemesis.stop(ctx)    # heals: every link carries messages again

Each start draws a shape from `shapes` (default: all of `PARTITION_SHAPES`, plus
`primaries` when asked for, which isolates the nodes that claim to lead) and installs its
grudge `{node: nodes it drops messages from}` in the proxy.
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.nemesis.base import Nemesis, NemesisContext
from tobtest.nemesis.grudge import PARTITION_SHAPES, isolate

SHAPE_NAMES: tuple[str, ...] = (*PARTITION_SHAPES, "primaries")
DEFAULT_SHAPES: tuple[str, ...] = tuple(PARTITION_SHAPES)


class PartitionNemesis(Nemesis):
    name = "partition"

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        shapes = list(self.options.get("shapes") or DEFAULT_SHAPES)
        unknown = [s for s in shapes if s not in SHAPE_NAMES]
        if unknown:
            raise ValueError(f"unknown partition shape(s) {unknown}; known: {list(SHAPE_NAMES)}")
        self.shapes = shapes
        self.current: dict[str, list[str]] = {}
        self.current_shape = ""

    async def start(self, ctx: NemesisContext) -> Any:
        shape = self.rng.choice(self.shapes)
        if shape == "primaries":
            leaders = await ctx.primaries()
            # No leader to isolate: isolate one node at random, so the fault still happens.
            targets = leaders or [self.rng.choice(ctx.node_names)]
            grudge = isolate(ctx.node_names, targets)
        else:
            grudge = PARTITION_SHAPES[shape](ctx.node_names, self.rng)
        await ctx.faults.partition(grudge)
        self.active = True
        self.current = {k: sorted(v) for k, v in grudge.items()}
        self.current_shape = shape
        return {"shape": shape, "grudge": self.current}

    async def stop(self, ctx: NemesisContext) -> Any:
        await ctx.faults.heal()
        self.active = False
        self.current = {}
        self.current_shape = ""
        return {"grudge": {}}

    def describe_active(self) -> str:
        if not self.active:
            return ""
        cut = ", ".join(f"{d}<-x-{','.join(s)}" for d, s in sorted(self.current.items()) if s)
        return f"partition {self.current_shape}: {cut}"
