"""What a workload is: a pure op generator plus the client side that runs its ops.

    workload = WORKLOADS["broadcast"](rng=random.Random(1), options={"read_fraction": 0.1})
    op = workload.next_op()               # {"f": "broadcast", "value": 0}
    outcome = await workload.invoke(client, op, timeout_s=2.0)

`next_op` draws only from the `random.Random` it was given, so the op mix of a run is
reproducible from its seed. `invoke` turns a node's reply into an `Outcome`: `ok`, `fail`
(certainly did not happen) or `info` (may have happened).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from tobtest.workloads.client import ClientError, NodeClient


@dataclass
class Outcome:
    type: str  # ok | fail | info
    value: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The node that answered, when it is not the one the op was sent to (a retry).
    node: str | None = None


# Refusals of a read that a leader serves, whose reply may name the leader to ask instead.
REDIRECT_CODES = frozenset({"not-leader", "no-lease"})


def leader_named(reply: dict[str, Any]) -> str | None:
    """The node a `not-leader` or `no-lease` refusal names as leader (as its history name),
    or None: clients follow such a redirect, as clients of a leader-based store do."""
    leader = reply.get("leader")
    if reply.get("code") not in REDIRECT_CODES or isinstance(leader, bool):
        return None
    return f"n{leader + 1}" if isinstance(leader, int) and leader >= 0 else None


class Workload(ABC):
    name: str = "?"
    # Checkers that judge this workload's histories, by registry name, and their options.
    checkers: tuple[str, ...] = ()
    checker_options: dict[str, dict[str, Any]] = {}

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        self.rng = rng
        self.options = options or {}

    @abstractmethod
    def next_op(self) -> dict[str, Any]:
        """The next op to invoke: {"f": ..., "value": ..., and extra fields}."""

    # A workload that retries a request on another node (same msg_id) says so; the runner
    # then passes `fallback`, a client of another node, and its name.
    retries: bool = False

    @abstractmethod
    async def invoke(
        self,
        client: NodeClient,
        op: dict[str, Any],
        timeout_s: float,
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        """Runs one op against a node; raises nothing but returns the outcome."""

    def final_op(self) -> dict[str, Any] | None:
        """The op read from every node after the run heals, or None."""
        return None

    def next_read(self) -> dict[str, Any] | None:
        """The next op of a client that only reads, or None if the workload has none (its
        clients then all draw `next_op`)."""
        return None


def outcome_of_client_error(exc: ClientError, idempotent: bool) -> Outcome:
    """A request that failed in transit: fail if it surely did not happen or has no effect."""
    if exc.definite or idempotent:
        return Outcome("fail", error=str(exc))
    return Outcome("info", error=str(exc))
