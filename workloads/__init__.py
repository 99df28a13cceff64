"""Workloads: pure generators of operations, and the clients that run them against nodes.

`WORKLOADS` maps the names the CLI offers to workload classes; add one with one entry.
"""

from __future__ import annotations

from tobtest.workloads.base import Outcome, Workload
from tobtest.workloads.broadcast import BroadcastWorkload
from tobtest.workloads.register import RegisterWorkload
from tobtest.workloads.txn import TxnWorkload

WORKLOADS: dict[str, type[Workload]] = {
    "broadcast": BroadcastWorkload,
    "txn": TxnWorkload,
    "register": RegisterWorkload,
}

__all__ = ["WORKLOADS", "Outcome", "Workload"]
