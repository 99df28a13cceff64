"""The clock nemesis: skews the virtual clocks that every node timer and lease reads.

    clock = ClockNemesis(random.Random(1), {"targets": ["one", "primaries"]})
    await clock.start(ctx)  # {"fault": "bump", "nodes": {"n2": {"delta_ms": 730}}}
    await clock.stop(ctx)   # every node's clock reset

Faults, drawn from the seeded rng: `bump` (jump by +-delta_ms), `strobe` (flip between two
offsets every period, for a while), `skew` (run at a rate from 0.5x to 2x). They go to the
nodes through the `clock` control request of their wire protocol. A node that is paused or
down does not answer; the op value lists only the nodes that took the fault.
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.nemesis.base import Nemesis, NemesisContext
from tobtest.nemesis.targets import check_target_specs, select_targets

CLOCK_FAULTS: tuple[str, ...] = ("bump", "strobe", "skew")
DEFAULT_TARGETS: tuple[str, ...] = ("one", "minority", "primaries", "all")


class ClockNemesis(Nemesis):
    name = "clock"
    needs = frozenset({"clock"})

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.target_specs = check_target_specs(self.options.get("targets") or DEFAULT_TARGETS)
        self.faults = list(self.options.get("faults") or CLOCK_FAULTS)
        self.max_bump_ms = float(self.options.get("max_bump_ms", 2000.0))
        self.summary = ""

    def _fault_request(self, fault: str) -> dict[str, Any]:
        rng = self.rng
        if fault == "bump":
            delta = rng.uniform(0.05, 1.0) * self.max_bump_ms * rng.choice((-1, 1))
            return {"op": "bump", "delta_ms": round(delta, 1)}
        if fault == "strobe":
            return {
                "op": "strobe",
                "delta_ms": round(rng.uniform(0.1, 1.0) * self.max_bump_ms, 1),
                "period_ms": rng.choice((5, 10, 50, 100)),
                "duration_ms": rng.choice((1000, 3000, 5000)),
            }
        if fault == "skew":
            return {"op": "skew", "rate": rng.choice((0.5, 0.75, 1.5, 2.0))}
        raise ValueError(f"unknown clock fault {fault!r}")

    async def start(self, ctx: NemesisContext) -> Any:
        spec = self.rng.choice(self.target_specs)
        targets = await select_targets(spec, ctx.node_names, self.rng, ctx.primaries)
        fault = self.rng.choice(self.faults)
        # One draw per target, in order, so the schedule is the same whoever answers.
        requests = {name: self._fault_request(fault) for name in targets}
        applied = await ctx.faults.clock(requests)
        self.active = True
        self.summary = f"clock {fault} {','.join(applied)}"
        return {"fault": fault, "target": spec, "nodes": applied}

    async def stop(self, ctx: NemesisContext) -> Any:
        reset = await ctx.faults.clock_reset()
        self.active = False
        return {"reset": reset}

    def describe_active(self) -> str:
        return self.summary if self.active else ""
