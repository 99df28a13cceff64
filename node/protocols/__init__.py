"""Pure protocol cores, one module per mode, and the registry the node and CLI read.

A core is a deterministic state machine (see `base.Protocol`): no sockets, no clock, no
random source of its own. Each core has one `ProtocolEntry` in `registry.ENTRIES` (its
class, config fields, read modes, status fields and seeded bugs); `PROTOCOLS` maps names to
them. Add a mode by writing its module(s) and one entry (README, "Adding a protocol").

    protocol_class("paxos")          # <class PaxosProtocol>
    PROTOCOLS["paxos"].read_modes    # ("local", "log")
"""

from __future__ import annotations

from tobtest.node.protocols.base import Protocol, ProtocolConfig
from tobtest.node.protocols.registry import (
    PROTOCOLS,
    ProtocolEntry,
    protocol_class,
    protocol_entry,
)

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "ProtocolConfig",
    "ProtocolEntry",
    "protocol_class",
    "protocol_entry",
]
