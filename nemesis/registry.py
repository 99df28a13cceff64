"""Nemeses by name: the CLI's `--nemesis` choices. Add one with one entry.

nemeses = build_nemeses(["partition"], seed=7, options={"partition": {"shapes": ["one"]}})
"""

from __future__ import annotations

import random
from typing import Any

from tobtest.nemesis.base import Nemesis
from tobtest.nemesis.clock import ClockNemesis
from tobtest.nemesis.flip import FlipNemesis
from tobtest.nemesis.link import LinkNemesis
from tobtest.nemesis.partition import PartitionNemesis
from tobtest.nemesis.process import DiskNemesis, KillNemesis, PauseNemesis, StallNemesis

# The exploring nemesis drives every fault kind itself (nemesis/explore.py): `all` means it.
EXPLORE = "explore"

NEMESES: dict[str, type[Nemesis]] = {
    "partition": PartitionNemesis,
    "kill": KillNemesis,
    "pause": PauseNemesis,
    "clock": ClockNemesis,
    "link": LinkNemesis,
    "disk": DiskNemesis,
    "stall": StallNemesis,
    "flip": FlipNemesis,
}


def node_args_for(names: list[str]) -> tuple[str, ...]:
    """Extra node flags the chosen nemeses need (e.g. the disk fault's mode)."""
    if names == [EXPLORE]:
        from tobtest.nemesis.explore import ExploringNemesis

        return ExploringNemesis.node_args
    args: list[str] = []
    for name in names:
        for arg in getattr(NEMESES[name], "node_args", ()):
            args.append(arg)
    return tuple(args)


def needs_of(names: list[str]) -> dict[str, frozenset[str]]:
    """The node capabilities each named nemesis needs (`explore`: the exploring one)."""
    if names == [EXPLORE]:
        from tobtest.nemesis.explore import ExploringNemesis

        return {EXPLORE: ExploringNemesis.needs}
    return {name: NEMESES[name].needs for name in names}


def disk_fault_for(names: list[str]) -> str:
    """The disk mode nodes start in: `lose-unsynced` when a nemesis cuts power (disk)."""
    return "lose-unsynced" if any("disk" in n for n in needs_of(names).values()) else "none"


def parse_nemesis_list(text: str) -> list[str]:
    """`"partition,kill"` -> ["partition", "kill"]; `none` or "" -> []; `all` or `explore`
    -> ["explore"], the exploring nemesis over every fault kind (it stands alone)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names in ([], ["none"]):
        return []
    if names in (["all"], [EXPLORE]):
        return [EXPLORE]
    if "all" in names or EXPLORE in names:
        raise ValueError("'all' (the exploring nemesis) covers every fault; name it alone")
    unknown = [n for n in names if n not in NEMESES]
    if unknown:
        known = ", ".join(["none", "all", *NEMESES])
        raise ValueError(f"unknown nemesis {', '.join(unknown)} (known: {known})")
    return list(dict.fromkeys(names))


def build_nemeses(
    names: list[str], seed: int, options: dict[str, dict[str, Any]] | None = None
) -> list[Nemesis]:
    options = options or {}
    # Each nemesis draws from its own stream, so adding one does not change another's choices.
    return [
        NEMESES[name](random.Random(f"{seed}:nemesis:{name}"), options.get(name, {}))
        for name in names
    ]
