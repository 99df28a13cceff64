"""The exploring nemesis (`--nemesis all`): one fault at a time, chosen from what it sees.

    explorer = ExploringNemesis(ctx, recorder, seed=7, options={"lease_reads": True})
    await explorer.run(until=deadline)    # moves, one after another, until the deadline
    await explorer.heal_all()             # everything lifted before the final reads
    explorer.summary()                    # what it reached: moves, situations, states

A fixed toggle of every fault at once keeps a cluster unavailable; protocols break in
narrow states instead (a leader change with accepts in flight, an acceptor restarted just
after it promised, a lease holder whose clock runs slow, a deposed leader whose messages
arrive late). So, as Jepsen's nemesis packages do, the explorer injects one fault kind at a
time with a random stagger: it draws a kind (partition, kill, pause, clock, link; never the
same twice in a row while others remain), then a move of that kind (`explore_moves`: aimed
at the node that leads now, timed on what the nodes report), holds it for a drawn while,
lifts it, and waits a drawn gap, short right after a leader change so that the next fault
lands while recovery runs. Underneath, in stretches of a few seconds, it changes the
weather: per-link latency, jitter and some loss, and, where nodes take the `disk` control
request, slow disks (synced writes that complete late while what needs no write does
not). Within a kind it prefers, as Mallory does (CCS 2023), the moves that led to
abstract states and transitions not seen before (`observe.abstract_state`, from node
status and the history so far): each move's score is the novelty it produced, and the
choice is weighted by score with a floor, so every move keeps being tried.

Every fault goes through `ctx.faults` (so the run's `schedule.yaml` replays it) and into the
history as a `start-MOVE` / `stop-MOVE` op pair of process `nemesis`, whose value says what
was done to whom and in which situations it struck; `summary()` goes to results.json as
`exploration`, which the report and `tobtest show` print. Every choice comes from one
seeded rng; the nodes' timing is real, so a seed replays the choices, not the run (the
stored schedule replays the faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tobtest.histories.op import NEMESIS
from tobtest.histories.recorder import Recorder
from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.explore_moves import KINDS, MOVES, Move, log_uniform
from tobtest.nemesis.flip import FlipNemesis
from tobtest.nemesis.observe import Observer

log = logging.getLogger("tobtest.nemesis.explore")

MOVE_TIMEOUT_S = 15.0  # one move's start or undo; beyond it the move is recorded as failed
MIN_MOVE_S = 1.0  # no new move starts closer than this to the end of the main phase
# How long a fault of each kind is held (log-uniform between the two, in seconds).
HOLD_S: dict[str, tuple[float, float]] = {
    "partition": (0.3, 3.0),
    "kill": (0.1, 2.0),
    "pause": (0.2, 2.0),
    "clock": (0.5, 3.0),
    "link": (0.5, 3.0),
    "sequence": (0.3, 2.0),  # held after its steps ran (a flip's flipped partition)
}
RECENT_LEADER_CHANGE_S = 1.5  # a gap after a leader change this recent is kept short
SCORE_FLOOR = 0.5  # every move keeps at least a third of the best one's weight
# Moves that meet a leader change head on: right after one, half the time the next move is
# one of these (they aim at whoever leads now: the new leader, still in its first rounds).
REACTIONS: tuple[str, ...] = (
    "kill-follower", "kill-unchosen", "isolate-leader", "mute-leader", "delay-leader",
    "pause-leader", "stall-leader", "leader-hop", "depose-and-crash",
)  # fmt: skip
# Network weather: how long a stretch of calm or of WAN-like latency lasts, and how slow the
# WAN gets. On loopback a message is in flight for well under a millisecond, so without
# latency a fault almost never lands while accepts, acks or heartbeats are on their way.
WEATHER_S = (4.0, 12.0)
# Now and then a second fault lands inside a move's hold (a move of another kind acting on
# other things: a kill inside a partition, a clock skew under lossy links), as Jepsen's
# composed nemeses overlap: the two-fault states one fault at a time never reaches.
OVERLAP_P = 0.35
WEATHER_DELAY_MS = (5.0, 150.0)
# Within a stretch every ordered link has weather of its own, as the routes of a real
# network differ: its latency is the stretch's times a factor in [1/SPREAD, SPREAD], with
# jitter up to half of it, so that one node hears another's messages well before a third
# does (a reply overtakes a decision, a new leader's accept a deposed one's). Half the
# stretches also lose and duplicate a few messages per link, so that a round reaches some
# acceptors and not others (a partial Phase 2, a decision one node never hears) and its
# resends and the recovery after it run.
WEATHER_LINK_SPREAD = 3.0
WEATHER_LOSSY_P = 0.5
WEATHER_LOSS_MAX = 0.1
WEATHER_DUPLICATE_MAX = 0.05
# Disk weather, where nodes take the `disk` control request (capability `disk-latency`):
# stretches in which some nodes' disks are slow, each its own latency per synced write.
# A node that syncs before it answers (a promise, an accept, a vote) then answers late
# while what needs no write (a heartbeat's ack, a lease grant, a read) goes out at once:
# the windows between "acked" and "durably agreed" that recovery and leases must respect
# stay open for many milliseconds instead of a few microseconds.
DISK_WEATHER_S = (4.0, 12.0)
DISK_SLOW_P = 0.5  # a stretch has slow disks
DISK_NODE_P = 0.6  # in a slow stretch, each node's disk is slow
DISK_DELAY_MS = (2.0, 150.0)
DEFAULT_CLOCK_BOUND = 0.05  # when nodes state no drift bound and lease reads are checked


class ExploringNemesis:
    """A `NemesisDriver` (see `nemesis.schedule`) that explores fault sequences."""

    name = "explore"
    # Every kind of fault, and every kill is a power cut (lose-unsynced).
    needs = frozenset({"clock", "durable", "disk"})
    node_args = ("--disk-fault", "lose-unsynced")

    def __init__(
        self,
        ctx: NemesisContext,
        recorder: Recorder,
        seed: int,
        options: dict[str, Any] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        options = options or {}
        self.ctx = ctx
        self.recorder = recorder
        self.now = now
        self.rng = random.Random(f"{seed}:nemesis:explore")
        self.flip = FlipNemesis(random.Random(f"{seed}:nemesis:explore:flip"))
        self.lease_reads = bool(options.get("lease_reads", True))
        self.feedback = bool(options.get("feedback", True))
        self.disk_latency = bool(options.get("disk_latency", False))
        kinds = list(options.get("kinds") or KINDS)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(KINDS)}")
        self.moves: list[Move] = [
            m
            for m in MOVES
            if m.kind in kinds and (m.wild_clock is None or m.wild_clock != self.lease_reads)
        ]
        self.kinds = [k for k in KINDS if any(m.kind == k for m in self.moves)]
        self.observer = Observer(ctx, history=lambda: recorder.ops, now=now)
        self.faults_applied = 0
        self.current = "none"
        self._last_kinds: list[str] = []
        self.tries: Counter[str] = Counter()
        self.novelty: Counter[str] = Counter()
        self.situations: Counter[str] = Counter()
        self.restarts_with_log = 0
        self.weather_changes = 0
        self._weather_until = 0.0
        self._stormy = False
        self.disk_changes = 0
        self._disk_until = 0.0
        self._slow_disks = False
        self.reactions = 0
        self.overlaps = 0

    @property
    def stormy(self) -> bool:
        """A stretch of weather is in force (links slow, maybe lossy)."""
        return self._stormy

    # ---- the driver -----------------------------------------------------------------------

    def describe(self) -> str:
        return self.current

    async def run(self, until: float) -> None:
        if not self.moves:
            return
        watcher = asyncio.create_task(self.observer.run(until))
        try:
            await self.observer.poll()
            react = False
            while until - self.now() > MIN_MOVE_S:
                await self._weather()
                await self._disk_weather()
                move = self._choose(react)
                seen = self._seen()
                started = self.now()
                await self._play(move, until)
                await self._gap(until)
                self._learn(move, seen)
                changed = self.observer.last_leader_change_s
                react = changed is not None and changed >= started and self.rng.random() < 0.5
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def heal_all(self) -> None:
        if self._slow_disks:  # heal_everything resets the disks
            self._slow_disks = False
            self.recorder.record("invoke", NEMESIS, "stop-slow-disk", None)
            self.recorder.record("ok", NEMESIS, "stop-slow-disk", {"healed": True})
        if self._stormy:  # heal_everything calms the links too: the stretch ends here
            self._stormy = False
            self.recorder.record("invoke", NEMESIS, "stop-weather", None)
            self.recorder.record("ok", NEMESIS, "stop-weather", {"healed": True})
        self.recorder.record("invoke", NEMESIS, "heal-explore", None)
        try:
            value = await asyncio.wait_for(self.ctx.faults.heal_everything(), MOVE_TIMEOUT_S)
        except Exception as exc:
            self.recorder.record("info", NEMESIS, "heal-explore", None, error=_error(exc))
            return
        self.current = "none"
        self.recorder.record("ok", NEMESIS, "heal-explore", value)

    def summary(self) -> dict[str, Any]:
        obs = self.observer
        return {
            "nemesis": "explore",
            "feedback": self.feedback,
            "moves": dict(sorted(self.tries.items())),
            "kinds": dict(sorted(Counter(_kind(m) for m in self.tries.elements()).items())),
            "situations": dict(self.situations.most_common()),
            "leader_changes": obs.leader_changes,
            "elections": obs.elections,
            "step_downs": obs.step_downs,
            "restarts_with_log": self.restarts_with_log,
            "reactions": self.reactions,
            "overlaps": self.overlaps,
            "weather_changes": self.weather_changes,
            "disk_changes": self.disk_changes,
            "states": len(obs.states_seen),
            "transitions": len(obs.transitions_seen),
            "novelty": dict(sorted(self.novelty.items())),
        }

    # ---- choosing -------------------------------------------------------------------------

    def _choose(self, react: bool = False) -> Move:
        rng = self.rng
        reactions = [m for m in self.moves if m.name in REACTIONS]
        if react and reactions:
            self.reactions += 1
            return rng.choice(reactions)
        fresh = [k for k in self.kinds if k not in self._last_kinds[-1:]] or self.kinds
        kind = rng.choice(fresh)
        self._last_kinds.append(kind)
        moves = [m for m in self.moves if m.kind == kind]
        untried = [m for m in moves if self.tries[m.name] == 0]
        if self.feedback and untried:
            return rng.choice(untried)  # every move of a kind is tried before any is preferred
        weights = [self._weight(m) for m in moves]
        return rng.choices(moves, weights=weights)[0]

    def _weight(self, move: Move) -> float:
        """Feedback on: SCORE_FLOOR plus the move's mean novelty relative to the best mean
        of the moves tried, so the most novel move is drawn at most 3x as often as the
        least (the search keeps its breadth); an untried move counts as the best."""
        if not self.feedback:
            return 1.0
        means = [self.novelty[m] / t for m, t in self.tries.items() if t]
        best = max(means, default=0.0)
        tries = self.tries[move.name]
        if tries == 0 or best <= 0:
            return SCORE_FLOOR + 1.0
        return SCORE_FLOOR + (self.novelty[move.name] / tries) / best

    def _seen(self) -> tuple[int, int]:
        return len(self.observer.states_seen), len(self.observer.transitions_seen)

    def _learn(self, move: Move, before: tuple[int, int]) -> None:
        states, transitions = self._seen()
        # New transitions count fully, new states twice: a state never reached is rarer.
        reward = 2 * (states - before[0]) + (transitions - before[1])
        self.tries[move.name] += 1
        self.novelty[move.name] += reward

    # ---- playing a move -------------------------------------------------------------------

    async def _play(self, move: Move, until: float, nested: bool = False) -> None:
        before = await self.observer.poll()
        situations = self._situations(before.statuses, before.leaders)
        start_f, stop_f = f"start-{move.name}", f"stop-{move.name}"
        self.recorder.record("invoke", NEMESIS, start_f, None)
        try:
            value, undo = await asyncio.wait_for(move.start(self), MOVE_TIMEOUT_S)
        except Exception as exc:
            log.warning("explore move %s failed: %s", move.name, exc)
            self.recorder.record("info", NEMESIS, start_f, None, error=_error(exc))
            await self._recover()
            return
        targets = _targets(value)
        situations += self._target_situations(before.statuses, before.leaders, targets)
        for label in situations:
            self.situations[label] += 1
        self.current = _describe(move.name, value)
        self.faults_applied += 1
        self.recorder.record("ok", NEMESIS, start_f, {**value, "situations": situations})
        lo, hi = HOLD_S[move.kind]
        hold_s = min(log_uniform(self.rng, lo, hi), max(0.0, until - self.now() - 0.5))
        inner = self._inner(move) if not nested and self.rng.random() < OVERLAP_P else None
        if inner is None:
            await asyncio.sleep(hold_s)
        else:
            held = self.now()
            await asyncio.sleep(hold_s * self.rng.uniform(0.1, 0.6))
            seen = self._seen()
            await self._play(inner, until, nested=True)
            self._learn(inner, seen)
            await asyncio.sleep(max(0.0, hold_s - (self.now() - held)))
        self.recorder.record("invoke", NEMESIS, stop_f, None)
        try:
            lifted = await asyncio.wait_for(undo(), MOVE_TIMEOUT_S)
        except Exception as exc:
            log.warning("explore undo of %s failed: %s", move.name, exc)
            self.recorder.record("info", NEMESIS, stop_f, None, error=_error(exc))
            await self._recover()
            return
        self.current = "none"
        self.recorder.record("ok", NEMESIS, stop_f, {"lifted": _jsonable(lifted)})

    async def _weather(self) -> None:
        """Between moves, now and then: calm links, or a stretch of WAN-like weather that
        the next moves play out under (`weather_links`)."""
        if "link" not in self.kinds or self.now() < self._weather_until:
            return
        self._weather_until = self.now() + self.rng.uniform(*WEATHER_S)
        stormy = self.rng.random() < 0.5
        if not stormy and not self._stormy:
            return
        delay = round(log_uniform(self.rng, *WEATHER_DELAY_MS), 1) if stormy else 0.0
        links = weather_links(self.rng, list(self.ctx.node_names), delay) if stormy else []
        if self._stormy:  # the stretch in force ends (the report shades it until here)
            self.recorder.record("invoke", NEMESIS, "stop-weather", None)
            self.recorder.record("ok", NEMESIS, "stop-weather", {"next_delay_ms": delay})
        self._stormy = False
        f = "start-weather" if stormy else "calm-weather"
        self.recorder.record("invoke", NEMESIS, f, None)
        try:
            await asyncio.wait_for(self.ctx.faults.weather(delay, 0.0, links), MOVE_TIMEOUT_S)
        except Exception as exc:
            self.recorder.record("info", NEMESIS, f, None, error=_error(exc))
            return
        self._stormy = stormy
        self.weather_changes += 1
        self.faults_applied += 1 if stormy else 0  # a stretch of weather is a fault too
        self.recorder.record("ok", NEMESIS, f, describe_weather(delay, links))

    async def _disk_weather(self) -> None:
        """Between moves, now and then: normal disks, or a stretch in which some nodes'
        disks are slow (see DISK_DELAY_MS), under which the next moves play out."""
        if not self.disk_latency or self.now() < self._disk_until:
            return
        self._disk_until = self.now() + self.rng.uniform(*DISK_WEATHER_S)
        slow = self.rng.random() < DISK_SLOW_P
        if not slow and not self._slow_disks:
            return
        requests: dict[str, dict[str, float]] = {}
        if slow:
            for name in self.ctx.node_names:
                if self.rng.random() < DISK_NODE_P:
                    delay = round(log_uniform(self.rng, *DISK_DELAY_MS), 1)
                    jitter = round(delay * self.rng.uniform(0.0, 0.5), 1)
                    requests[name] = {"fsync_delay_ms": delay, "jitter_ms": jitter}
        if self._slow_disks:
            self._slow_disks = False
            self.recorder.record("invoke", NEMESIS, "stop-slow-disk", None)
            try:
                reset = await asyncio.wait_for(self.ctx.faults.disk_reset(), MOVE_TIMEOUT_S)
            except Exception as exc:
                self.recorder.record("info", NEMESIS, "stop-slow-disk", None, error=_error(exc))
                return
            self.recorder.record("ok", NEMESIS, "stop-slow-disk", {"nodes": reset})
        if not requests:
            return
        self.recorder.record("invoke", NEMESIS, "start-slow-disk", None)
        try:
            applied = await asyncio.wait_for(self.ctx.faults.disk(requests), MOVE_TIMEOUT_S)
        except Exception as exc:
            self.recorder.record("info", NEMESIS, "start-slow-disk", None, error=_error(exc))
            return
        self._slow_disks = True
        self.disk_changes += 1
        self.faults_applied += 1
        value = {n: r["fsync_delay_ms"] for n, r in applied.items()}
        self.recorder.record("ok", NEMESIS, "start-slow-disk", {"fsync_delay_ms": value})

    def _inner(self, outer: Move) -> Move | None:
        """A move to overlap with `outer`: of another kind, acting on other things."""
        if outer.kind == "sequence":
            return None
        fits = [
            m
            for m in self.moves
            if m.kind not in (outer.kind, "sequence") and not (m.uses & outer.uses)
        ]
        if not fits:
            return None
        self.overlaps += 1
        return self.rng.choices(fits, weights=[self._weight(m) for m in fits])[0]

    async def _recover(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ctx.faults.heal_everything(), MOVE_TIMEOUT_S)
        self.current = "none"

    async def _gap(self, until: float) -> None:
        """A short gap right after a leader change (the next fault meets recovery), else a
        drawn one, often short too."""
        changed = self.observer.last_leader_change_s
        recent = changed is not None and self.now() - changed <= RECENT_LEADER_CHANGE_S
        if recent or self.rng.random() < 0.5:
            gap_s = self.rng.uniform(0.0, 0.3)
        else:
            gap_s = log_uniform(self.rng, 0.3, 2.0)
        await asyncio.sleep(min(gap_s, max(0.0, until - self.now())))

    # ---- what the moves ask ---------------------------------------------------------------

    def clock_bound(self) -> float:
        """How far clock moves may push rates: the nodes' stated drift bound while lease
        reads are checked (beyond it a correct lease may fail), else well past it."""
        stated = self.observer.drift_bound()
        if not self.lease_reads:
            return max(0.5, stated or 0.0)
        return stated if stated is not None else DEFAULT_CLOCK_BOUND

    def note_restart_with_log(self, killed: list[str], logs: dict[str, Any]) -> None:
        """Counts kills of nodes that had delivered something (they restart from a log)."""
        with_log = [n for n in killed if isinstance(logs.get(n), int) and logs[n] > 0]
        self.restarts_with_log += len(with_log)

    def _situations(
        self, statuses: dict[str, dict[str, Any] | None], leaders: list[str]
    ) -> list[str]:
        labels: list[str] = []
        answered = [s for s in statuses.values() if s]
        if any(s.get("role") == "candidate" for s in answered):
            labels.append("during an election")
        changed = self.observer.last_leader_change_s
        if changed is not None and self.now() - changed <= RECENT_LEADER_CHANGE_S:
            labels.append("just after a leader change")
        if len(leaders) > 1:
            labels.append("two nodes claiming to lead")
        if any((statuses.get(n) or {}).get("in_flight") for n in leaders):
            labels.append("leader with accepts in flight")
        if self.observer.last is not None and "avail" in self.observer.last.state:
            labels.append("under load")
        return labels

    def _target_situations(
        self, statuses: dict[str, dict[str, Any] | None], leaders: list[str], targets: list[str]
    ) -> list[str]:
        labels: list[str] = []
        hit = [statuses.get(n) or {} for n in targets]
        if any(n in leaders for n in targets):
            labels.append("hit the leader")
        if any((s.get("lease_remaining_ms") or 0) > 0 for s in hit):
            labels.append("hit a lease holder")
        if any((s.get("accepted_unchosen") or 0) > 0 for s in hit):
            labels.append("hit a node holding accepted-unchosen slots")
        return labels


def weather_links(rng: random.Random, names: list[str], delay_ms: float) -> list[dict[str, Any]]:
    """One stretch's weather, per ordered link (see WEATHER_LINK_SPREAD): latency around
    `delay_ms`, jitter, and in a lossy stretch some loss and duplication."""
    lossy = rng.random() < WEATHER_LOSSY_P
    links: list[dict[str, Any]] = []
    for src in names:
        for dst in names:
            if src == dst:
                continue
            spread = WEATHER_LINK_SPREAD
            link_ms = round(delay_ms * log_uniform(rng, 1.0 / spread, spread), 1)
            spec: dict[str, Any] = {"src": src, "dst": dst, "delay_ms": link_ms}
            spec["jitter_ms"] = round(link_ms * rng.uniform(0.0, 0.5), 1)
            if lossy:
                spec["loss"] = round(rng.uniform(0.0, WEATHER_LOSS_MAX), 3)
                spec["duplicate"] = round(rng.uniform(0.0, WEATHER_DUPLICATE_MAX), 3)
            links.append(spec)
    return links


def describe_weather(delay_ms: float, links: list[dict[str, Any]]) -> dict[str, Any]:
    """A stretch of weather for the history: its latency, the spread over its links, and
    the worst loss and duplication on any link (schedule.yaml keeps every link's)."""
    value: dict[str, Any] = {"delay_ms": delay_ms}
    if links:
        delays = [float(spec["delay_ms"]) for spec in links]
        value["link_delay_ms"] = [min(delays), max(delays)]
        for key in ("loss", "duplicate"):
            worst = max((float(spec.get(key, 0.0)) for spec in links), default=0.0)
            if worst > 0:
                value[f"{key}_max"] = worst
    return value


def _kind(name: str) -> str:
    return next((m.kind for m in MOVES if m.name == name), "?")


def _targets(value: dict[str, Any]) -> list[str]:
    nodes = value.get("nodes")
    names: list[str] = list(nodes) if isinstance(nodes, list | dict) else []
    for key in ("old_leader",):
        if isinstance(value.get(key), str):
            names.append(value[key])
    return [str(n) for n in names]


def _describe(name: str, value: dict[str, Any]) -> str:
    targets = _targets(value)
    return f"{name} {','.join(targets)}".strip() if targets else name


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, dict | list | str | int | float | bool) else None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
