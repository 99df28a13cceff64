"""What the exploring nemesis sees of a cluster: node status, polled, and the history so far,
boiled down to a small abstract state.

    observer = Observer(ctx, history=lambda: recorder.ops)
    task = asyncio.create_task(observer.run(until))
    observer.leader()     # "n2": the one node that claims to lead, else the one most name
    observer.state()      # ("leaders=1", "lease", "unchosen", "avail", "cut", ...)

Only fields of the wire protocol's `status` reply are read (`role`, `leader`,
`accepted_unchosen`, `lease_remaining_ms`, `phase1_rounds`, `delivered`, `step_downs`); a
node that reports fewer still gets a state from its answers and from the history (ops
acknowledged, failed or left indeterminate in the last second), so exploration still has
something to steer by. Every poll has a timeout; the observer never raises.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tobtest.workloads.client import ClientError

if TYPE_CHECKING:
    from tobtest.histories.op import Op
    from tobtest.nemesis.base import NemesisContext

POLL_INTERVAL_S = 0.1
POLL_TIMEOUT_S = 0.3
HISTORY_WINDOW_S = 1.0
LAG_SLOTS = 50  # a node this many deliveries behind the most advanced one is "lagging"

State = tuple[str, ...]


def abstract_state(
    statuses: dict[str, dict[str, Any] | None],
    faults: dict[str, Any],
    recent: Counter[str],
) -> State:
    """The abstract state of one observation: which protocol situation the cluster is in
    (leaders, elections, unchosen accepts, lease, lag), which faults are in force, and how
    clients fare. Pure, so tests and the novelty search can rely on it.

    >>> abstract_state({"n1": {"role": "leader", "lease_remaining_ms": 40.0},
    ...                 "n2": {"role": "follower", "leader": 0}, "n3": None},
    ...                {"down": 0, "paused": 0, "cut": True}, Counter(ok=3))
    ('leaders=1', 'lease', 'minority-out', 'leader-while-cut', 'avail')
    """
    answered = {n: s for n, s in statuses.items() if s is not None}
    roles = Counter(str(s.get("role")) for s in answered.values())
    tags = (
        [f"leaders={min(roles['leader'], 2)}"]
        if any("role" in s for s in answered.values())
        else []
    )
    if roles["candidate"]:
        tags.append("electing")
    named = {s.get("leader") for s in answered.values() if s.get("leader") is not None}
    if len(named) > 1:
        tags.append("split-view")  # nodes name different leaders
    if any((s.get("accepted_unchosen") or 0) > 0 for s in answered.values()):
        tags.append("unchosen")
    if any((s.get("lease_remaining_ms") or 0) > 0 for s in answered.values()):
        tags.append("lease")
    delivered = [s["delivered"] for s in answered.values() if isinstance(s.get("delivered"), int)]
    if delivered and max(delivered) - min(delivered) >= LAG_SLOTS:
        tags.append("lagging")
    # Which faults are in force is left out on purpose: a state says how the system
    # responds (so novelty rewards reaching new protocol situations, not merely injecting a
    # fault not injected before); of the faults it keeps only how many nodes are out.
    out = len(statuses) - len(answered)
    if out:
        tags.append("minority-out" if out < (len(statuses) + 1) // 2 else "majority-out")
    if faults.get("cut") and roles["leader"]:
        tags.append("leader-while-cut")
    tags.append("avail" if recent["ok"] else "stuck")
    if recent["info"]:
        tags.append("indeterminate")
    return tuple(tags)


@dataclass
class Observation:
    at_s: float
    statuses: dict[str, dict[str, Any] | None]
    state: State
    leaders: list[str] = field(default_factory=list)


class Observer:
    """Polls every node's status in the background and keeps what it learnt."""

    def __init__(
        self,
        ctx: NemesisContext,
        history: Callable[[], Sequence[Op]] | None = None,
        interval_s: float = POLL_INTERVAL_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.history = history
        self.interval_s = interval_s
        self.now = now
        self.last: Observation | None = None
        self.states_seen: Counter[State] = Counter()
        self.transitions_seen: Counter[tuple[State, State]] = Counter()
        # Events, counted over the run.
        self.leader_changes = 0
        self.elections = 0  # Phase 1 rounds started, summed over nodes (restarts included)
        self.step_downs = 0
        self._leader: str | None = None
        self._rounds: dict[str, int] = {}
        self._step_downs: dict[str, int] = {}
        self.last_leader_change_s: float | None = None
        self._history_seen = 0
        self._recent: list[tuple[float, str]] = []

    # ---- polling --------------------------------------------------------------------------

    async def poll(self) -> Observation:
        names = list(self.ctx.node_names)

        async def one(name: str) -> dict[str, Any] | None:
            try:
                return await self.ctx.cluster.status(name, timeout_s=POLL_TIMEOUT_S)
            except (TimeoutError, ClientError, OSError):
                return None

        replies = await asyncio.gather(*(one(n) for n in names))
        statuses = dict(zip(names, replies, strict=True))
        return self._observe(statuses)

    async def run(self, until: float) -> None:
        while self.now() < until:
            await self.poll()
            await asyncio.sleep(self.interval_s)

    def _faults_in_force(self) -> dict[str, Any]:
        faults = self.ctx.faults
        return {
            "down": len(faults.down()),
            "paused": len(faults.paused()),
            "cut": bool(faults.grudge),
            "toxic": bool(faults.link_faults),
            "clock": bool(faults.clocks),
        }

    def _recent_outcomes(self, now_s: float) -> Counter[str]:
        if self.history is not None:
            ops = self.history()
            for op in ops[self._history_seen :]:
                if op.type in ("ok", "fail", "info") and op.process != "nemesis":
                    self._recent.append((now_s, op.type))
            self._history_seen = len(ops)
        self._recent = [(t, k) for t, k in self._recent if now_s - t <= HISTORY_WINDOW_S]
        return Counter(k for _, k in self._recent)

    def _observe(self, statuses: dict[str, dict[str, Any] | None]) -> Observation:
        now_s = self.now()
        state = abstract_state(statuses, self._faults_in_force(), self._recent_outcomes(now_s))
        leaders = sorted(n for n, s in statuses.items() if s and s.get("role") == "leader")
        obs = Observation(now_s, statuses, state, leaders)
        if self.last is not None:
            self.transitions_seen[(self.last.state, state)] += 1
        self.states_seen[state] += 1
        self._count_events(obs)
        self.last = obs
        return obs

    def _count_events(self, obs: Observation) -> None:
        if len(obs.leaders) == 1 and obs.leaders[0] != self._leader:
            if self._leader is not None:
                self.leader_changes += 1
                self.last_leader_change_s = obs.at_s
            self._leader = obs.leaders[0]
        for name, status in obs.statuses.items():
            if not status:
                continue
            for key, seen, total in (
                ("phase1_rounds", self._rounds, "elections"),
                ("step_downs", self._step_downs, "step_downs"),
            ):
                value = status.get(key)
                if isinstance(value, int):
                    # A restarted node counts from 0 again: count what it did since.
                    delta = value - seen.get(name, 0) if value >= seen.get(name, 0) else value
                    setattr(self, total, getattr(self, total) + delta)
                    seen[name] = value

    # ---- what the nemesis asks ------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any] | None:
        return self.last.statuses.get(name) if self.last is not None else None

    def leader(self) -> str | None:
        """The node that claims to lead; if none or several do, the one most nodes name."""
        if self.last is None:
            return None
        if len(self.last.leaders) == 1:
            return self.last.leaders[0]
        named = Counter(
            s.get("leader")
            for s in self.last.statuses.values()
            if s and s.get("leader") is not None
        )
        names = list(self.ctx.node_names)
        for leader_id, _ in named.most_common(1):
            if isinstance(leader_id, int) and 0 <= leader_id < len(names):
                return names[leader_id]
        return self.last.leaders[0] if self.last.leaders else None

    def drift_bound(self) -> float | None:
        """The clock assumption the nodes state in their status (the smallest), if any."""
        if self.last is None:
            return None
        bounds = [
            float(s["drift_bound"])
            for s in self.last.statuses.values()
            if s and isinstance(s.get("drift_bound"), int | float)
        ]
        return min(bounds) if bounds else None
