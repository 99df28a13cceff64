"""The flip nemesis: a deposed leader gets a majority back through acceptors that just
restarted, while the leader that replaced it is cut off.

    flip = FlipNemesis(random.Random(4))
    await flip.start(ctx)   # {"old_leader": "n1", "new_leader": "n2", "restarted": ["n3"], ...}
    await flip.stop(ctx)    # heals: every link carries messages again

`start` runs four steps, each on the state the previous one left:
1. isolate the node that claims to lead (the *old* leader; a random node if none does);
2. wait (up to `elect_timeout_s`) until another node claims to lead (the *new* leader),
   then `settle_s` more, so its clients are back and it proposes under its ballot (with
   nobody leading in step 1, the new "leader" is any other node, at once);
3. kill `n // 2` of the remaining nodes (with the old leader they make a majority), at a
   moment when each holds a value it accepted and does not yet know chosen (status
   `accepted_unchosen` > 0; at most `window_timeout_s` is spent waiting for it);
4. while they are down, flip the partition: the old leader and the killed nodes on one
   side, the new leader and the rest on the other; then restart the killed nodes.

The restarted acceptors' first contact is the old leader, still re-sending accepts under
its stale ballot. An acceptor that restores its promise from its log refuses them; one that
lost it (a promise kept only in memory, or not reloaded) accepts, and two values end up
chosen in one slot. Paxos without a stable leader gets the same schedule with any node as
"leader". The history op says what was done to whom.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from tobtest.nemesis.base import Nemesis, NemesisContext
from tobtest.nemesis.grudge import complete_grudge, isolate

POLL_S = 0.05  # how often to ask who leads, while waiting for the new leader
WINDOW_POLL_S = 0.002  # how often to look at the victims, while waiting for their window


class FlipNemesis(Nemesis):
    name = "flip"
    needs = frozenset({"durable"})  # it kills and restarts acceptors

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.elect_timeout_s = float(self.options.get("elect_timeout_s", 4.0))
        self.settle_s = float(self.options.get("settle_s", 1.0))
        self.window_timeout_s = float(self.options.get("window_timeout_s", 2.0))
        self.sides: list[list[str]] = []

    async def start(self, ctx: NemesisContext) -> Any:
        running = ctx.faults.running

        leaders = [n for n in await ctx.primaries() if n in running()]
        fallback = self.rng.choice(running() or ctx.node_names)  # drawn either way: same stream
        old = sorted(leaders)[0] if leaders else fallback
        await ctx.faults.partition(isolate(ctx.node_names, [old]))
        self.active = True
        self.sides = [[old], [n for n in ctx.node_names if n != old]]

        # Without a leader to depose (leaderless Paxos, or mid-election) nobody will claim
        # to lead in its place: do not wait for one.
        new, elected_after_s = (
            await self._wait_for_new_leader(ctx, old) if leaders else (None, None)
        )
        others = [n for n in running() if n != old]
        fallback = self.rng.choice(others) if others else None  # drawn either way, as above
        if new is None:
            new = fallback
        else:
            await asyncio.sleep(self.settle_s)
        rest = sorted(n for n in running() if n not in (old, new))
        victims = sorted(self.rng.sample(rest, min(len(ctx.node_names) // 2, len(rest))))
        in_window = await self._wait_for_window(ctx, victims)
        # A composed kill nemesis may have taken a victim down already, or restarted it
        # meanwhile: the primitives act only on the nodes in the state they need.
        await ctx.faults.kill(victims)
        side = [old, *victims]
        self.sides = [side, [n for n in ctx.node_names if n not in side]]
        grudge = complete_grudge(self.sides)
        await ctx.faults.partition(grudge)
        await ctx.faults.restart(victims)
        return {
            "old_leader": old,
            "new_leader": new,
            "elected_after_s": elected_after_s,
            "restarted": victims,
            "killed_holding_unchosen": in_window,
            "grudge": {k: sorted(v) for k, v in grudge.items()},
        }

    async def _wait_for_new_leader(
        self, ctx: NemesisContext, old: str
    ) -> tuple[str | None, float | None]:
        started = time.monotonic()
        deadline = started + self.elect_timeout_s
        while time.monotonic() < deadline:
            claimed = sorted(n for n in await ctx.primaries() if n != old)
            if claimed:
                return claimed[0], round(time.monotonic() - started, 3)
            await asyncio.sleep(POLL_S)
        return None, None

    async def _wait_for_window(self, ctx: NemesisContext, victims: list[str]) -> bool:
        """Waits (up to `window_timeout_s`) until every victim holds a value it accepted and
        does not know chosen (status `accepted_unchosen`): killed then, only its promise
        stands between that value and the old leader's. True if that moment came."""
        deadline = time.monotonic() + self.window_timeout_s
        while victims:
            replies = await asyncio.gather(
                *(ctx.cluster.status(n, timeout_s=0.5) for n in victims), return_exceptions=True
            )
            if all(isinstance(r, dict) and r.get("accepted_unchosen", 0) > 0 for r in replies):
                return True
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(WINDOW_POLL_S)
        return False

    async def stop(self, ctx: NemesisContext) -> Any:
        await ctx.faults.heal()
        self.active = False
        self.sides = []
        return {"grudge": {}}

    def describe_active(self) -> str:
        if not self.active:
            return ""
        return "flip " + " | ".join(",".join(side) for side in self.sides)
