"""The link nemesis: Toxiproxy-like toxics on chosen links of the proxy layer.

    link = LinkNemesis(random.Random(1))
    await link.start(ctx)  # {"faults": [{"src": "n1", "dst": "n2", "loss": 0.3, ...}]}
    await link.stop(ctx)   # every link clean again

Each start picks a toxic (delay with jitter, loss, duplicate, reorder), a toxicity (the
chance the toxic applies to a message) and a set of ordered links: every link into or out
of a random node, or a random subset of all links. The proxy draws per message from its
own seeded rng, so the same seed gives the same toxics on the same links.
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.nemesis.base import Nemesis, NemesisContext

TOXICS: tuple[str, ...] = ("delay", "loss", "duplicate", "reorder")


class LinkNemesis(Nemesis):
    name = "link"

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        super().__init__(rng, options)
        self.toxics = list(self.options.get("toxics") or TOXICS)
        self.summary = ""

    def _toxic(self, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "delay":
            delay = rng.choice((5, 20, 50, 100))
            return {"delay_ms": delay, "jitter_ms": rng.choice((0, delay // 2, delay))}
        if kind == "loss":
            return {"loss": rng.choice((0.1, 0.3, 0.5))}
        if kind == "duplicate":
            return {"duplicate": rng.choice((0.1, 0.3, 0.5))}
        if kind == "reorder":
            return {"reorder": rng.choice((0.2, 0.5)), "reorder_hold_ms": rng.choice((10, 50))}
        raise ValueError(f"unknown toxic {kind!r}")

    def _links(self, names: list[str]) -> list[tuple[str, str]]:
        pairs = [(s, d) for s in names for d in names if s != d]
        if self.rng.random() < 0.5:
            node = self.rng.choice(names)
            return [(s, d) for s, d in pairs if node in (s, d)]
        return sorted(self.rng.sample(pairs, self.rng.randint(1, len(pairs))))

    async def start(self, ctx: NemesisContext) -> Any:
        kind = self.rng.choice(self.toxics)
        toxic = self._toxic(kind)
        toxicity = self.rng.choice((0.5, 0.8, 1.0))
        faults = [
            {"src": s, "dst": d, **toxic, "toxicity": toxicity}
            for s, d in self._links(list(ctx.node_names))
        ]
        await ctx.faults.link(faults)
        self.active = True
        self.summary = f"link {kind} on {len(faults)} links"
        return {"toxic": kind, "faults": faults}

    async def stop(self, ctx: NemesisContext) -> Any:
        await ctx.faults.link_clear()
        self.active = False
        return {"faults": ctx.base_link_faults}

    def describe_active(self) -> str:
        return self.summary if self.active else ""
