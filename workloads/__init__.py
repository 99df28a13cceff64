"""Workloads: pure generators of operations, and the clients that run them against nodes.

`WORKLOADS` maps the names the CLI offers to workload classes; add one with one entry.
"""

from __future__ import annotations

from tobtest.workloads.base import Outcome, Workload
from tobtest.workloads.broadcast import BroadcastWorkload
from tobtest.workloads.maelstrom import MAELSTROM_WORKLOADS
from tobtest.workloads.register import RegisterWorkload
from tobtest.workloads.txn import TxnWorkload

WORKLOADS: dict[str, type[Workload]] = {
    "broadcast": BroadcastWorkload,
    "txn": TxnWorkload,
    "register": RegisterWorkload,
}


def workload_class(name: str, maelstrom: bool = False) -> type[Workload] | None:
    """The workload a run names: Maelstrom's own (`--maelstrom`), else tobtest's."""
    return (MAELSTROM_WORKLOADS if maelstrom else WORKLOADS).get(name)


# Every name `--workload` accepts: tobtest's, and Maelstrom's with `--maelstrom`.
WORKLOAD_NAMES: tuple[str, ...] = tuple(sorted({*WORKLOADS, *MAELSTROM_WORKLOADS}))

__all__ = [
    "MAELSTROM_WORKLOADS",
    "WORKLOADS",
    "WORKLOAD_NAMES",
    "Outcome",
    "Workload",
    "workload_class",
]
