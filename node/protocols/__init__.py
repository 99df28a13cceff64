"""Pure protocol cores, one module per mode, and the registry the node and CLI read.

A core is a deterministic state machine (see `base.Protocol`): no sockets, no clock, no
random source of its own. Add a mode by writing a module and one entry in `PROTOCOLS`.
"""

from __future__ import annotations

from collections.abc import Callable

from tobtest.node.protocols.base import Protocol, ProtocolConfig

ProtocolFactory = Callable[..., Protocol]


def _paxos() -> type[Protocol]:
    from tobtest.node.protocols.paxos import PaxosProtocol

    return PaxosProtocol


def _multipaxos() -> type[Protocol]:
    from tobtest.node.protocols.multipaxos import MultiPaxosProtocol

    return MultiPaxosProtocol


def _raft() -> type[Protocol]:
    from tobtest.node.protocols.raft import RaftProtocol

    return RaftProtocol


# name -> loader of the core class; loaders keep imports lazy so a broken mode cannot
# stop the others from loading.
PROTOCOLS: dict[str, Callable[[], type[Protocol]]] = {
    "paxos": _paxos,
    "multipaxos": _multipaxos,
    "raft": _raft,
}


def protocol_class(name: str) -> type[Protocol]:
    """The core class for a protocol name; KeyError names the known ones."""
    try:
        loader = PROTOCOLS[name]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise KeyError(f"unknown protocol {name!r} (known: {known})") from None
    return loader()


__all__ = ["PROTOCOLS", "Protocol", "ProtocolConfig", "protocol_class"]
