"""Quiescence: after the heal, has every node caught up with the others? Pure, fed statuses.

    q = Quiescence(quiet_period_s=1.0)
    q.observe({"n1": status1, "n2": None, "n3": status3}, now_s=0.2)  # None: no reply
    q.settled                      # True once the nodes agree, unchanged for the quiet period
    q.final_read_extra("n2")       # {"caught_up": False, "behind_by": None, "node_status": None}
    q.report()                     # for results.json: who caught up, who lagged, and why

The runner polls every node's `status` (the wire protocol's reply; node internals are never
imported) until `settled` or its bound (`quiesce_timeout_s`), then reads every node.

The nodes *agree* when every node answered, all report the same log progress
(`chosen_index` where every status has it, else `delivered`) and, where every status has a
`leader` field, all name the same, non-null leader. They have *settled* when they agree and
no node's progress, delivered count or leader has changed for `quiet_period_s`. Why not
only wait for delivered counts to stand still: a node just restarted stands still too,
until it hears from the leader (after a kill the proxy reconnects to it with a back-off of
up to a second), and its final read then lacks everything it has yet to catch up on.

When the bound passes first, a node is caught up if its progress is the highest any node
reported; the others (and nodes that did not answer) are not, and their final reads say so
(`caught_up: false`, how far behind, the status): the total-order checker then reports a
`not-caught-up` node, a liveness failure, instead of every broadcast it lacks as `lost`.

Statuses with neither `chosen_index` nor `delivered` (another node kind) get the older rule:
settled once every `delivered` value stood still for the quiet period; nobody is judged
(`caught_up` is left out of the final reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROGRESS_KEYS = ("chosen_index", "delivered")
# Left out of the status a lagging node's final read carries: bulky and beside the point.
BULKY_STATUS_KEYS = frozenset({"messages_sent", "messages_received"})


def _count(status: dict[str, Any] | None, key: str) -> int | None:
    value = None if status is None else status.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def progress_key(statuses: dict[str, dict[str, Any] | None]) -> str | None:
    """The field that measures log progress in every answering node's status, or None."""
    answered = [s for s in statuses.values() if s is not None]
    for key in PROGRESS_KEYS:
        if answered and all(_count(s, key) is not None for s in answered):
            return key
    return None


def disagreement(statuses: dict[str, dict[str, Any] | None]) -> str | None:
    """Why these statuses do not show caught-up nodes (None: they agree). See the module doc.

    >>> s = {"chosen_index": 5, "delivered": 4, "leader": 0}
    >>> disagreement({"n1": s, "n2": {**s, "chosen_index": 3}})
    'chosen_index differs: n1 5, n2 3'
    >>> disagreement({"n1": s, "n2": s}) is None
    True
    """
    silent = [n for n, s in statuses.items() if s is None]
    if silent:
        return f"no status from {', '.join(silent)}"
    key = progress_key(statuses)
    if key is None:
        return "statuses carry no chosen_index or delivered"
    values = {n: _count(s, key) for n, s in statuses.items()}
    if len(set(values.values())) > 1:
        return f"{key} differs: " + ", ".join(f"{n} {v}" for n, v in values.items())
    if all(s is not None and "leader" in s for s in statuses.values()):
        leaders = {n: s.get("leader") for n, s in statuses.items() if s is not None}
        if None in leaders.values() or len({repr(v) for v in leaders.values()}) > 1:
            return "no agreed leader: " + ", ".join(f"{n} {v}" for n, v in leaders.items())
    return None


def _signature(statuses: dict[str, dict[str, Any] | None]) -> tuple[Any, ...]:
    """What must stand still for the quiet period: each node's progress and leader."""
    return tuple(
        (n, None)
        if s is None
        else (n, _count(s, "chosen_index"), _count(s, "delivered"), repr(s.get("leader")))
        for n, s in sorted(statuses.items())
    )


@dataclass
class NodeCatchUp:
    """How one node stood when quiescence ended."""

    caught_up: bool | None  # None: its status cannot tell (the older rule)
    progress: int | None = None
    behind_by: int | None = None  # in units of the progress key; None if it did not answer
    status: dict[str, Any] | None = None


@dataclass
class Quiescence:
    """Consumes status polls (see the module doc); `settled` says when to stop polling."""

    quiet_period_s: float
    settled: bool = False
    last: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    polls: int = 0
    waited_s: float = 0.0
    _signature: tuple[Any, ...] | None = None
    _still_since_s: float = 0.0
    _first_s: float | None = None

    @property
    def agreement(self) -> bool:
        """True when statuses carry progress fields (agreement rule), else the older rule."""
        return progress_key(self.last) is not None

    def observe(self, statuses: dict[str, dict[str, Any] | None], now_s: float) -> bool:
        """Takes one poll of every node (None: no reply) at `now_s`; returns `settled`."""
        self.polls += 1
        self._first_s = now_s if self._first_s is None else self._first_s
        self.waited_s = now_s - self._first_s
        self.last = dict(statuses)
        if self.agreement:
            signature: tuple[Any, ...] | None = _signature(statuses)
            if disagreement(statuses) is not None:
                signature = None  # never settled while they disagree
        else:  # the older rule: every delivered count present and standing still
            delivered = tuple((n, _count(s, "delivered")) for n, s in sorted(statuses.items()))
            signature = None if any(v is None for _, v in delivered) else delivered
        if signature is None or signature != self._signature:
            self._signature, self._still_since_s = signature, now_s
            self.settled = False
        else:
            self.settled = now_s - self._still_since_s >= self.quiet_period_s
        return self.settled

    def nodes(self) -> dict[str, NodeCatchUp]:
        """Each node's standing in the last poll: caught up if its progress is the highest."""
        key = progress_key(self.last)
        if key is None:
            return {n: NodeCatchUp(None, status=s) for n, s in self.last.items()}
        progress = {n: _count(s, key) for n, s in self.last.items()}
        best = max(v for v in progress.values() if v is not None)
        out = {}
        for n, s in self.last.items():
            p = progress[n]
            behind = None if p is None else best - p
            out[n] = NodeCatchUp(p is not None and p >= best, p, behind, s)
        return out

    def final_read_extra(self, node: str) -> dict[str, Any]:
        """Fields for `node`'s final read op: `caught_up`, and for a lagging node how far
        behind it was and its status (so a re-check of the history alone can tell)."""
        standing = self.nodes().get(node)
        if standing is None or standing.caught_up is None:
            return {}
        if standing.caught_up:
            return {"caught_up": True}
        status = standing.status
        compact = None if status is None else {
            k: v for k, v in status.items() if k not in BULKY_STATUS_KEYS
        }  # fmt: skip
        return {"caught_up": False, "behind_by": standing.behind_by, "node_status": compact}

    def report(self) -> dict[str, Any]:
        """What results.json keeps: settled or not, why not, and every node's standing."""
        nodes = self.nodes()
        return {
            "settled": self.settled,
            "rule": "agreement" if self.agreement else "delivered-still",
            "progress_key": progress_key(self.last),
            "waited_s": round(self.waited_s, 3),
            "polls": self.polls,
            "reason": None if self.settled else disagreement(self.last) or "still changing",
            "not_caught_up": sorted(n for n, c in nodes.items() if c.caught_up is False),
            "nodes": {
                n: {"caught_up": c.caught_up, "progress": c.progress, "behind_by": c.behind_by}
                for n, c in sorted(nodes.items())
            },
        }
