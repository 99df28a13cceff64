"""The contract between a pure protocol core and the node shell around it.

A core is a state machine in the style of etcd's raft: the shell feeds it events together
with the current time, and it answers with `Effects` that the shell carries out, in order:
first `persist` (made durable before anything is sent), then `send`, `deliver` and `reply`.

    core = PaxosProtocol(node_id=0, n=3, rng=random.Random(7), config=ProtocolConfig())
    fx = core.step(ClientBroadcast(request_id=1, msg_id="c1-1", value=42), now_ms=0.0)
    for s in fx.send: ...      # peer messages, JSON-serialisable dicts with a "type"

A core never reads a clock, a random source, a socket or a file of its own: time comes in
as `now_ms` (the node's virtual clock, in milliseconds) and randomness from the seeded
`random.Random` given to its constructor. The same core therefore runs in the asyncio node
and in the in-process simulator (`tobtest.node.sim`), and a seed replays a simulation.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

READ_MODES: tuple[str, ...] = ("log", "lease", "local")


# ---- events (inputs) ------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerMessage:
    """A message from peer `src` (a node id). `body["type"]` names it."""

    src: int
    body: dict[str, Any]


@dataclass(frozen=True)
class ClientBroadcast:
    """A client asks to broadcast `value`; `msg_id` is unique per message (dedupe key).

    The core replies to `request_id` once the message is delivered at this node, with its
    position in the delivered order: {"type": "broadcast_ok", "position": k, "msg_id": ...}.
    """

    request_id: int
    msg_id: str
    value: Any


@dataclass(frozen=True)
class ClientRead:
    """A client asks for the delivered sequence. `mode` is one of READ_MODES.

    `local`: this node's delivered prefix at once. `log`: the read is itself an entry in the
    log and is answered with the prefix delivered before it (linearizable). `lease`: served
    by a leader holding a lease (multipaxos, raft); other cores refuse it with an error.
    Reply: {"type": "read_ok", "value": [...], "mode": mode}.
    """

    request_id: int
    mode: str = "local"


@dataclass(frozen=True)
class Tick:
    """Time passed; the shell sends one every few milliseconds."""


Event = PeerMessage | ClientBroadcast | ClientRead | Tick


# ---- effects (outputs) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    dest: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Deliver:
    """Message `msg_id` is delivered at this node at 0-based `position` in the total order."""

    position: int
    msg_id: str
    value: Any


@dataclass(frozen=True)
class Reply:
    """A reply to a client request. Errors are {"type": "error", "code": ..., "text": ...}."""

    request_id: int
    body: dict[str, Any]


@dataclass
class Effects:
    persist: list[dict[str, Any]] = field(default_factory=list)
    send: list[Send] = field(default_factory=list)
    deliver: list[Deliver] = field(default_factory=list)
    reply: list[Reply] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.persist.extend(other.persist)
        self.send.extend(other.send)
        self.deliver.extend(other.deliver)
        self.reply.extend(other.reply)


@dataclass(frozen=True)
class ProtocolConfig:
    """Timing and fault-fixture knobs of the cores. Times in (virtual) milliseconds.

    One flat record for every core; each reads only its own fields, named in its registry
    entry (`registry.ProtocolEntry.config_fields`, checked against the code by the contract
    test), and ignores the rest.
    """

    # How often the shell ticks a core (every protocol); the leader-based cores also read it.
    tick_ms: float = 5.0
    # A proposal that has not been chosen within this time is retried with a higher ballot
    # (paxos); multipaxos and raft resend and re-forward after parts of it.
    proposal_timeout_ms: float = 150.0
    # Per-slot Paxos: random extra wait before a retry, up to this much, so duelling
    # proposers back off.
    retry_jitter_ms: float = 100.0
    # Per-slot Paxos: how often a node tells its peers how far it has delivered.
    sync_interval_ms: float = 100.0
    # Per-slot Paxos: a hole below a chosen slot unfilled this long is filled with a no-op.
    hole_timeout_ms: float = 300.0
    # The leader-based cores (multipaxos, raft): heartbeats, elections, the leader's lease
    # and the clock drift it allows for (`multipaxos_params.lease_params`).
    heartbeat_ms: float = 50.0
    election_timeout_ms: float = 500.0
    lease_ms: float = 300.0
    drift_bound: float = 0.1
    # Seeded bugs (fixtures that prove the framework catches them); empty means correct.
    bugs: frozenset[str] = frozenset()


class Protocol(ABC):
    """A pure protocol core. Subclasses set `name` and implement `step` and `status`."""

    name: str = "?"

    def __init__(
        self, node_id: int, n: int, rng: random.Random, config: ProtocolConfig | None = None
    ) -> None:
        if not 0 <= node_id < n:
            raise ValueError(f"node_id {node_id} out of range for {n} nodes")
        self.node_id = node_id
        self.n = n
        self.rng = rng
        self.config = config or ProtocolConfig()

    @property
    def majority(self) -> int:
        return self.n // 2 + 1

    def peers(self) -> list[int]:
        return [i for i in range(self.n) if i != self.node_id]

    @abstractmethod
    def step(self, event: Event, now_ms: float) -> Effects:
        """Advances the state machine by one event and returns what the shell must do."""

    @abstractmethod
    def status(self, now_ms: float) -> dict[str, Any]:
        """Role, ballot, delivered length, Phase 1 rounds started, and other counters."""

    def restore(self, records: Iterable[dict[str, Any]]) -> None:  # noqa: B027 - optional hook
        """Rebuilds state from persisted records after a restart (durable-state issue)."""

    def next_timer_ms(self, now_ms: float) -> float | None:
        """The earliest time (this node's clock) at which a `Tick` could change anything,
        effects or state, given the state after the last step; None: no tick can until the
        next other event. The simulator skips the ticks before it (a tick is the next one
        of the node's tick grid at or after it), so an answer must never be late: a core
        that cannot tell answers `now_ms` (tick at every grid point, as the real node)."""
        return now_ms
