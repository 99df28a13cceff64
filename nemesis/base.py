"""What a nemesis is, and what it may touch: the `NemesisContext` the runner hands it.

    class PartitionNemesis(Nemesis):
        name = "partition"
        async def start(self, ctx): ...   # returns the op value: what was done to whom
        async def stop(self, ctx): ...
        async def heal(self, ctx): ...    # undo everything, before the final reads

A nemesis alternates `start` and `stop` on the schedule of `tobtest.nemesis.schedule`;
every choice it makes (which node, which shape) comes from its own seeded `rng`. The values
it returns go into the history as the value of its `start-<name>` / `stop-<name>` ops.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tobtest.nemesis.faults import Faults
from tobtest.nemesis.proxy_client import ProxyControl


class NodeProcesses(Protocol):
    """What a nemesis may do to the node processes. The runner's cluster (tobtest/cluster.py)
    is one; it is declared here so that nemesis/ never imports the runner's types."""

    @property
    def nodes(self) -> Mapping[str, Any]:
        """Node name -> its process record, whose `state` says running, paused or killed."""

    def kill(self, name: str) -> None: ...
    def restart(self, name: str) -> None: ...
    def pause(self, name: str) -> None: ...
    def resume(self, name: str) -> None: ...
    def signal_running(self, name: str, signum: int) -> bool:
        """Signals a running node without changing its state; False if it is not running."""

    def client_address(self, name: str) -> tuple[str, int]: ...
    async def status(self, name: str, timeout_s: float = ...) -> dict[str, Any]: ...
    async def wait_ready(self, names: list[str], timeout_s: float = ...) -> None: ...


@dataclass
class NemesisContext:
    node_names: list[str]
    proxy: ProxyControl
    # Names of the nodes that currently claim to lead (from their status); [] if none.
    primaries: Callable[[], Awaitable[list[str]]]
    # The node processes, for process faults (kill, pause) and status polls.
    cluster: NodeProcesses
    # Link faults in force for the whole run (background latency); nemeses restore them.
    base_link_faults: list[dict[str, Any]] = field(default_factory=list)
    # The primitives every fault goes through; they log the steps executed (see faults.py).
    faults: Faults = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.faults = Faults(self)


class Nemesis(ABC):
    name: str = "?"
    # Node capabilities it needs (tobtest.node_kind.CAPABILITIES): a run on a node kind
    # without them is refused before it starts.
    needs: frozenset[str] = frozenset()

    def __init__(self, rng: random.Random, options: dict[str, Any] | None = None) -> None:
        self.rng = rng
        self.options = options or {}
        self.active = False

    @property
    def start_f(self) -> str:
        return f"start-{self.name}"

    @property
    def stop_f(self) -> str:
        return f"stop-{self.name}"

    @abstractmethod
    async def start(self, ctx: NemesisContext) -> Any:
        """Injects the fault; returns what was done (the history op's value)."""

    @abstractmethod
    async def stop(self, ctx: NemesisContext) -> Any:
        """Ends the fault it started; returns what was done."""

    async def heal(self, ctx: NemesisContext) -> Any:
        """Undoes everything, whatever the state; by default the same as stop."""
        return await self.stop(ctx)

    def describe_active(self) -> str:
        return self.name if self.active else ""
