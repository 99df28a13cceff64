"""Multi-Paxos helpers: ballots, log entries and the leader-lease parameters with their check.

Ballots are `(round, node_id)` pairs compared as pairs (on the wire `[round, node_id]`
lists); round >= 1 for a real ballot, so `ZERO` is below them all. Entries are the same
JSON dicts as in per-slot Paxos: `{"k": "msg", "id", "v"}`, `{"k": "read", "id"}` and
`{"k": "noop"}`.

`lease_params(config)` derives the timing of the lease from a `ProtocolConfig` and raises
`ValueError` when the lease could outlive the grants that protect it:

    params = lease_params(ProtocolConfig(election_timeout_ms=500, lease_ms=300))
    params.grant_ms, params.max_lease_ms   # 500.0, 404.09...

The derivation (also in PROTOCOL.md, "Multi-Paxos"): a follower grants a lease when a
heartbeat arrives, for `grant_ms = election_timeout_ms` of its own clock; the leader's lease
runs `lease_ms` of its clock from the send time of the heartbeat round a majority acked.
With clock rates within [1 - rho, 1 + rho], a grant lasts at least grant_ms / (1 + rho) real
ms after the heartbeat arrives (so after it was sent), and the lease at most
lease_ms / (1 - rho) real ms after the send. The lease ends first if
lease_ms < grant_ms * (1 - rho) / (1 + rho); we also keep `margin_ms` (one tick) spare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tobtest.node.protocols.base import ProtocolConfig
from tobtest.node.protocols.entries import Entry, nat

Ballot = tuple[int, int]
ZERO: Ballot = (0, 0)
EntryKey = tuple[str, str]  # (kind, id): client msg ids and read-marker ids never collide


def parse_ballot(x: Any, n: int) -> Ballot | None:
    """A wire ballot `[round, node_id]` with round >= 1 and 0 <= node_id < n, else None."""
    ok = isinstance(x, list | tuple) and len(x) == 2 and nat(x[0]) and nat(x[1])
    return (x[0], x[1]) if ok and x[0] >= 1 and x[1] < n else None


def entry_key(entry: Entry) -> EntryKey | None:
    """The dedupe key of a msg or read entry; None for a no-op."""
    return None if entry["k"] == "noop" else (entry["k"], entry["id"])


@dataclass(frozen=True)
class LeaseParams:
    """Timing of the Multi-Paxos core, all in (virtual) ms of the node's own clock."""

    heartbeat_ms: float
    election_timeout_ms: float  # a follower's timeout is drawn in [this, 2 x this]
    grant_ms: float  # how long a follower refuses competing ballots after a heartbeat
    lease_ms: float  # how long after a majority-acked heartbeat's send the leader serves
    drift_bound: float  # rho: clocks run at a rate within [1 - rho, 1 + rho]
    margin_ms: float  # spare time between the longest lease and the shortest grant
    max_lease_ms: float  # grant_ms * (1 - rho) / (1 + rho) - margin_ms
    resend_ms: float  # an unanswered accept or prepare is repeated after this long
    forward_timeout_ms: float  # a forwarded client entry not yet delivered is re-forwarded
    catchup_ms: float  # at most one catch-up request per this long (unless answered)


def lease_params(config: ProtocolConfig) -> LeaseParams:
    """The core's timing for `config`; ValueError if the lease is unsafe or a value is bad."""
    rho = config.drift_bound
    positive = {
        "tick_ms": config.tick_ms,
        "heartbeat_ms": config.heartbeat_ms,
        "election_timeout_ms": config.election_timeout_ms,
        "lease_ms": config.lease_ms,
        "proposal_timeout_ms": config.proposal_timeout_ms,
    }
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"multipaxos needs {name} > 0, got {value}")
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"drift_bound must be in [0, 1), got {rho}")
    if config.heartbeat_ms >= config.election_timeout_ms:
        raise ValueError(
            f"heartbeat_ms ({config.heartbeat_ms}) must be below election_timeout_ms "
            f"({config.election_timeout_ms}), or followers depose a live leader"
        )
    grant_ms = config.election_timeout_ms
    margin_ms = config.tick_ms
    max_lease_ms = grant_ms * (1.0 - rho) / (1.0 + rho) - margin_ms
    if config.lease_ms > max_lease_ms:
        raise ValueError(
            f"lease_ms {config.lease_ms} is unsafe: with election_timeout_ms (the grant) "
            f"{grant_ms}, drift_bound {rho} and a margin of {margin_ms} it must be at most "
            f"{max_lease_ms:.1f}"
        )
    return LeaseParams(
        heartbeat_ms=config.heartbeat_ms,
        election_timeout_ms=config.election_timeout_ms,
        grant_ms=grant_ms,
        lease_ms=config.lease_ms,
        drift_bound=rho,
        margin_ms=margin_ms,
        max_lease_ms=max_lease_ms,
        resend_ms=config.proposal_timeout_ms / 2,
        forward_timeout_ms=max(config.proposal_timeout_ms, 4 * config.heartbeat_ms),
        catchup_ms=config.heartbeat_ms,
    )
