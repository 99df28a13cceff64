"""Process faults: kill (SIGKILL, then restart from the same data directory and ports),
pause (SIGSTOP, then SIGCONT), and the disk fault lose-unsynced (kill, with every node
started in the mode where writes not yet fsynced die with the process).

    kill = KillNemesis(random.Random(1), {"targets": ["one", "primaries"]})
    await kill.start(ctx)   # ["n2"]: killed
    await kill.stop(ctx)    # ["n2"]: restarted and answering again

Each nemesis acts only on nodes in the state its action needs (the cluster asserts it),
and its stop undoes only what it did, so kill and pause compose.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tobtest.nemesis.base import Nemesis, NemesisContext
from tobtest.nemesis.grudge import isolate
from tobtest.nemesis.targets import TARGET_SPECS, check_target_specs, select_targets

DEFAULT_TARGETS: tuple[str, ...] = ("one", "minority", "majority", "primaries", "some")


class _TargetedNemesis(Nemesis):
    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.target_specs = check_target_specs(self.options.get("targets") or DEFAULT_TARGETS)
        self.affected: list[str] = []

    async def _targets(self, ctx: NemesisContext) -> tuple[str, list[str]]:
        spec = self.rng.choice(self.target_specs)
        return spec, await select_targets(spec, ctx.node_names, self.rng, ctx.primaries)

    def describe_active(self) -> str:
        return f"{self.name} {','.join(self.affected)}" if self.active else ""


class KillNemesis(_TargetedNemesis):
    name = "kill"
    # A restart that loses the node's state is allowed where the node kind says so
    # (Maelstrom nodes); a node that declares `durable` also restarts.
    needs = frozenset({"restart"})

    async def start(self, ctx: NemesisContext) -> Any:
        spec, targets = await self._targets(ctx)
        killed = await ctx.faults.kill(targets)
        self.affected = killed
        self.active = True
        return {"target": spec, "nodes": killed}

    async def stop(self, ctx: NemesisContext) -> Any:
        # Restart every killed node, also one a composed nemesis killed: a node stays down
        # no longer than one interval.
        down = await ctx.faults.restart(ctx.faults.down())
        self.affected = []
        self.active = False
        return {"nodes": down}


class DiskNemesis(KillNemesis):
    """Kill and restart, with every node in lose-unsynced mode (see `node_args`)."""

    name = "disk"
    needs = frozenset({"durable", "restart", "disk"})
    node_args = ("--disk-fault", "lose-unsynced")


class PauseNemesis(_TargetedNemesis):
    name = "pause"

    async def start(self, ctx: NemesisContext) -> Any:
        spec, targets = await self._targets(ctx)
        paused = await ctx.faults.pause(targets)
        self.affected = paused
        self.active = True
        return {"target": spec, "nodes": paused}

    async def stop(self, ctx: NemesisContext) -> Any:
        paused = await ctx.faults.resume(ctx.faults.paused())
        self.affected = []
        self.active = False
        return {"nodes": paused}


class StallNemesis(Nemesis):
    """A stalled primary: the leader freezes (SIGSTOP, as in a long GC pause or a VM
    migration) and is cut off `isolate_after_s` later, while frozen; at stop it runs again,
    still cut off, for `isolated_after_resume_s`, then the network heals. Whatever it
    believes on waking (a lease, its leadership) meets a cluster that moved on without it:
    the lease's clock assumptions under test, as Jepsen's pause-then-partition schedules
    do."""

    name = "stall"

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.isolated_after_resume_s = float(self.options.get("isolated_after_resume_s", 1.0))
        # Cut it off a little after freezing it, so messages already on their way (the
        # acks of its last heartbeats) land in its socket buffers, to be read on waking.
        self.isolate_after_s = float(self.options.get("isolate_after_s", 0.3))
        self.stalled: list[str] = []

    async def start(self, ctx: NemesisContext) -> Any:
        targets = await select_targets("primaries", ctx.node_names, self.rng, ctx.primaries)
        stalled = await ctx.faults.pause(targets)
        await asyncio.sleep(self.isolate_after_s)
        grudge = isolate(ctx.node_names, stalled) if stalled else {}
        await ctx.faults.partition(grudge)
        self.stalled = stalled
        self.active = True
        return {"nodes": stalled, "grudge": {k: sorted(v) for k, v in grudge.items()}}

    async def stop(self, ctx: NemesisContext) -> Any:
        resumed = await ctx.faults.resume(self.stalled)
        await asyncio.sleep(self.isolated_after_resume_s)
        await ctx.faults.heal()
        self.stalled = []
        self.active = False
        return {"resumed": resumed, "healed_after_s": self.isolated_after_resume_s}

    def describe_active(self) -> str:
        return f"stall {','.join(self.stalled)}" if self.active else ""


__all__ = ["DiskNemesis", "KillNemesis", "PauseNemesis", "StallNemesis", "TARGET_SPECS"]
