"""One entry per protocol core: what the node, the simulator and the tests know of it.

    entry = PROTOCOLS["raft"]
    entry.load()                 # <class RaftProtocol>, imported only now
    entry.config_fields          # ("drift_bound", "election_timeout_ms", ...): what it reads
    entry.make_config(bugs=["no-truncate"], heartbeat_ms=20.0)   # a ProtocolConfig
    entry.make_config(hole_timeout_ms=1.0)                       # ValueError: not raft's

An entry is data: the core it names is imported only by `load()`, so a broken core cannot
stop the others from loading, and listing the protocols costs no import. Every entry is held
to the same contract by tests/node/test_protocol_contract.py: its modules do no I/O, its
`status()` reports the declared fields, a core rebuilt by `restore()` from a node's records
has that node's delivered prefix, runs over many simulator seeds with faults are safe, and
the declared config fields, read modes and bugs are the ones its code has.

Adding a protocol: its modules in this folder, one `ProtocolEntry` in `ENTRIES` (README,
"Adding a protocol").
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tobtest.node.protocols.base import Protocol, ProtocolConfig

# What every core's status() reports: the node and the harness read these of any protocol.
COMMON_STATUS_FIELDS: frozenset[str] = frozenset(
    {"protocol", "node", "role", "delivered", "chosen_index", "phase1_rounds"}
)
# Counters and positions a leader-based core (multipaxos, raft) reports beyond them.
_LEADER_STATUS_FIELDS: frozenset[str] = frozenset(
    {
        "accepted_unchosen", "ballot", "elections_won", "forwards", "grant_remaining_ms",
        "heartbeat_round", "in_flight", "leader", "lease_reads", "lease_refusals",
        "lease_remaining_ms", "max_ballot", "messages_received", "messages_sent",
        "noops_proposed", "pending", "resends", "step_downs",
    }
)  # fmt: skip
# Read by the node's shell for every protocol (it ticks each core every `tick_ms`).
SHELL_CONFIG_FIELDS: tuple[str, ...] = ("tick_ms",)
# The leader's timing, lease and its check (multipaxos_params.lease_params).
_LEASE_CONFIG: tuple[str, ...] = (
    "drift_bound", "election_timeout_ms", "heartbeat_ms", "lease_ms", "proposal_timeout_ms",
    "tick_ms",
)  # fmt: skip


@dataclass(frozen=True)
class ProtocolEntry:
    """A protocol core and what it declares. Names in kebab-case for bugs, as on `--bug`."""

    name: str  # as on `--protocol`, and the `protocol` field of its status()
    description: str  # one line
    core: str  # "module:Class", the module in this package; imported by load()
    # The ProtocolConfig fields its modules read (besides `bugs`); the others it ignores.
    config_fields: tuple[str, ...]
    read_modes: tuple[str, ...]  # the ClientRead modes it serves; it refuses the others
    status_fields: frozenset[str]  # keys that status() always returns
    bugs: tuple[str, ...] = ()  # seeded bugs (ProtocolConfig.bugs), the loud catalogue
    subtle_bugs: tuple[str, ...] = ()  # the subtle catalogue (PROTOCOL.md)

    @property
    def module(self) -> str:
        """The dotted name of the core's module."""
        return f"{__package__}.{self.core.partition(':')[0]}"

    @property
    def all_bugs(self) -> tuple[str, ...]:
        return (*self.bugs, *self.subtle_bugs)

    def load(self) -> type[Protocol]:
        """The core class (imports its module)."""
        cls = getattr(importlib.import_module(self.module), self.core.partition(":")[2])
        if not (isinstance(cls, type) and issubclass(cls, Protocol)):
            raise TypeError(f"{self.name}: {self.core} is not a Protocol")
        return cls

    def config_defaults(self) -> dict[str, Any]:
        """Its config fields with their default values."""
        defaults = ProtocolConfig()
        return {name: getattr(defaults, name) for name in self.config_fields}

    def make_config(self, bugs: Iterable[str] = (), **fields: Any) -> ProtocolConfig:
        """A ProtocolConfig with `fields` changed; ValueError for a field or bug not its own
        (SHELL_CONFIG_FIELDS are every protocol's; the shell's bugs are not a core's)."""
        foreign = sorted(set(fields) - {*self.config_fields, *SHELL_CONFIG_FIELDS})
        if foreign:
            raise ValueError(
                f"{self.name} does not read {', '.join(foreign)} "
                f"(it reads: {', '.join(self.config_fields)})"
            )
        unknown = sorted(set(bugs) - set(self.all_bugs))
        if unknown:
            raise ValueError(f"{self.name} has no seeded bug {', '.join(unknown)}")
        return dataclasses.replace(ProtocolConfig(), bugs=frozenset(bugs), **fields)


ENTRIES: tuple[ProtocolEntry, ...] = (
    ProtocolEntry(
        name="paxos",
        description="per-slot Paxos: any node proposes, each slot pays Phase 1 and Phase 2",
        core="paxos:PaxosProtocol",
        config_fields=(
            "hole_timeout_ms",
            "proposal_timeout_ms",
            "retry_jitter_ms",
            "sync_interval_ms",
        ),
        read_modes=("local", "log"),
        status_fields=COMMON_STATUS_FIELDS
        | {
            "accepted_unchosen",
            "in_flight",
            "max_ballot",
            "max_chosen_slot",
            "noops_proposed",
            "pending",
            "resends",
            "rtt_ms",
        },
        bugs=("ack-on-choose", "deliver-on-arrival", "no-dedupe"),
        subtle_bugs=("adopt-first-accepted", "chosen-from-promises", "accept-vs-accepted"),
    ),
    ProtocolEntry(
        name="multipaxos",
        description="Multi-Paxos: a leader with a lease runs Phase 1 once, then Phase 2 alone",
        core="multipaxos:MultiPaxosProtocol",
        config_fields=_LEASE_CONFIG,
        read_modes=("local", "log", "lease"),
        status_fields=COMMON_STATUS_FIELDS
        | _LEADER_STATUS_FIELDS
        | {"barrier_slot", "catchups", "max_chosen_slot", "promised", "queued"},
        bugs=("ack-before-majority", "lease-from-ack", "forget-promise"),
        subtle_bugs=("commit-any-ballot", "max-slot-chosen", "lease-before-barrier"),
    ),
    ProtocolEntry(
        name="raft",
        description="Raft: terms and votes, a leader with a lease replicates by AppendEntries",
        core="raft:RaftProtocol",
        config_fields=_LEASE_CONFIG,
        read_modes=("local", "log", "lease"),
        status_fields=COMMON_STATUS_FIELDS
        | _LEADER_STATUS_FIELDS
        | {
            "drift_bound",
            "last_index",
            "last_term",
            "noop_index",
            "term",
            "truncations",
            "voted_for",
            "votes_granted",
            "votes_refused_sticky",
        },
        bugs=("commit-old-term", "vote-not-persisted", "no-truncate"),
    ),
)

# name -> entry, in the order above; the node's `--protocol` and `tobtest sim` choose from it.
PROTOCOLS: dict[str, ProtocolEntry] = {entry.name: entry for entry in ENTRIES}


def protocol_entry(name: str) -> ProtocolEntry:
    """The entry for a protocol name; KeyError names the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise KeyError(f"unknown protocol {name!r} (known: {known})") from None


def protocol_class(name: str) -> type[Protocol]:
    """The core class for a protocol name; KeyError names the known ones."""
    return protocol_entry(name).load()
