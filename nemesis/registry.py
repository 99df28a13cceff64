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
    args: list[str] = []
    for name in names:
        for arg in getattr(NEMESES[name], "node_args", ()):
            args.append(arg)
    return tuple(args)


def parse_nemesis_list(text: str) -> list[str]:
    """`"partition,kill"` -> ["partition", "kill"]; `none` or "" -> []; `all` -> every one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return list(NEMESES)
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
