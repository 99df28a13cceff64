"""An in-process, seeded network simulator that drives any protocol core (`base.Protocol`).

A virtual clock and one priority queue of events (message arrivals, node ticks, client
requests, faults); the network drops, duplicates, delays and reorders messages, partitions
block ordered (src, dst) pairs, nodes crash and restart, pause and resume, and their clocks
can drift. Every random choice comes from streams derived from the seed, so a seed replays a
run exactly. It records every node's `Deliver` sequence and every request's reply and checks
them: prefix-compatible orders, no duplicates, acks that match deliveries, acked messages
delivered everywhere once the faults heal, and reads that are prefixes of the order.

    sim = Simulation(PaxosProtocol, n=3, seed=7, net=NetConfig(drop=0.1, duplicate=0.1))
    sim.random_clients(count=30, start_ms=0, end_ms=1_000)
    sim.random_faults(start_ms=0, end_ms=1_000)
    sim.run(1_000)                      # the faulty period
    sim.settle(quiet_ms=3_000)          # heal everything, restart everyone, run on
    assert sim.violations() == [], f"reproduce with seed {sim.seed}"

Ticks fall on a grid per node (a random phase, then every `tick_ms`), as the real node's
ticker, but a node is ticked only from the point at which its core says a tick could change
anything (`Protocol.next_timer_ms`, asked after each of its steps): the ticks skipped would
have done nothing, so the run is the one ticked at every point (`every_tick=True`), at
about half the events.

Bounded: a run stops at `max_time_ms` of virtual time or after `max_events` events
(`truncated` is then set). A crashed node keeps its in-memory core (as if all of it were
persisted) unless it restarts with `reload=True`, which builds a fresh core and feeds it the
node's `persist` records through `restore`.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import random
from _json import encode_basestring_ascii, make_encoder, make_scanner
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from tobtest.node.protocols.base import (
    ClientBroadcast,
    ClientRead,
    Effects,
    Event,
    PeerMessage,
    Protocol,
    ProtocolConfig,
    Tick,
)

_MSG, _TICK, _CLIENT, _ACTION, _HELD = 0, 1, 2, 3, 4  # _HELD: a message read on waking
_TICK_EVENT = Tick()  # no fields, frozen: one instance serves every tick
# A tick is due once the node's clock is within this of the time its core named: a tick a
# hair early does nothing and the next is scheduled, one late could miss a deadline.
TICK_EARLY_MS = 1e-6
INF = float("inf")
PAUSE_BUFFER_MAX = 10_000  # events a paused node holds before it starts losing them
# json.dumps and json.loads as their C parts, without the per-call set-up (a third of their
# cost on small bodies): the same text and the same objects. No check for cycles (a cyclic
# body raises RecursionError instead of ValueError).
_ENCODE = make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None,
                       ": ", ", ", False, False, True)  # fmt: skip
_SCAN = make_scanner(cast(Any, json.JSONDecoder()))  # json.loads's settings


def _to_text(body: Any) -> str:
    return "".join(_ENCODE(body, 0))


@dataclass(frozen=True)
class NetConfig:
    """Per-message faults. Overlapping delays reorder; a spike delays far past the rest."""

    drop: float = 0.0  # probability a message is lost
    duplicate: float = 0.0  # probability a message arrives twice
    delay_ms: tuple[float, float] = (1.0, 10.0)  # uniform one-way delay
    spike: float = 0.0  # probability of an extra delay of up to spike_ms
    spike_ms: float = 200.0


@dataclass
class Request:
    """One client request as the simulator saw it; `reply` stays None if none came."""

    request_id: int
    kind: str  # "broadcast" or "read"
    node: int
    submitted_ms: float
    msg_id: str | None = None
    value: Any = None
    mode: str | None = None
    reply: dict[str, Any] | None = None
    reply_ms: float | None = None
    delivered_at_reply: int = 0  # how many messages the node had delivered when it replied
    lost: bool = False  # the node was down, or crashed before replying
    sent: bool = False  # reached a running node
    epoch: int = 0  # the node's incarnation it reached


@dataclass
class Delivery:
    position: int
    msg_id: str
    value: Any
    time_ms: float


@dataclass
class _Node:
    core: Protocol
    state: str = "up"  # up | down | paused
    epoch: int = 0  # bumped by each crash: replies to older requests are lost
    buffer: list[tuple[int, Any, Any, Any]] = field(default_factory=list)  # held while paused
    clock_base_ms: float = 0.0
    clock_t0_ms: float = 0.0
    clock_rate: float = 1.0
    timer: Callable[[float], float | None] | None = None  # the core's next_timer_ms, if used


class Simulation:
    """A seeded simulated cluster of `n` cores of `protocol_cls`; see the module docstring."""

    def __init__(
        self,
        protocol_cls: Callable[..., Protocol],
        n: int,
        seed: int,
        config: ProtocolConfig | None = None,
        net: NetConfig | None = None,
        max_time_ms: float = 600_000.0,
        max_events: int = 5_000_000,
        hold_arrived: bool = False,
        every_tick: bool = False,
    ) -> None:
        self.protocol_cls, self.n, self.seed = protocol_cls, n, seed
        # False: a node is ticked only at the first point of its tick grid at which its core
        # says a tick could change anything (`Protocol.next_timer_ms`); the ticks before
        # would have done nothing. True: at every point, as the real node's ticker does
        # (to check that the cores' answers change nothing).
        self.every_tick = every_tick
        # True: a message that reached a paused node through the partitions then in force
        # waits in its buffer (a socket's) and is read on waking whatever the partitions are
        # by then, as on real processes. False: held messages meet the partitions in force
        # when the node resumes.
        self.hold_arrived = hold_arrived
        self.config = config or ProtocolConfig()
        self.net = net or NetConfig()
        self.max_time_ms, self.max_events = max_time_ms, max_events
        root = random.Random(seed)
        self._seeds = random.Random(root.getrandbits(64))  # seeds for (re)started cores
        self._net_rng = random.Random(root.getrandbits(64))
        self.client_rng = random.Random(root.getrandbits(64))
        self.fault_rng = random.Random(root.getrandbits(64))
        self.nodes = [_Node(core=self._new_core(i)) for i in range(n)]
        for node in self.nodes:
            node.timer = self._timer_of(node.core)
        self.now_ms = 0.0
        self.events = 0
        self.truncated = False
        self.blocked: set[tuple[int, int]] = set()
        self.slow_ms: dict[int, float] = {}  # node -> extra delay on each message it sends
        self.requests: dict[int, Request] = {}
        self.deliveries: list[list[Delivery]] = [[] for _ in range(n)]
        self.persisted: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        self.trace: list[tuple[Any, ...]] = []  # deliveries, replies and faults, in order
        self.sent: dict[str, int] = {}
        self.dropped = 0
        self.anomalies: list[str] = []  # replies to unknown or already answered requests
        # Called with the request id of each reply, after the reply is recorded.
        self.on_reply: Callable[[int], None] | None = None
        self._heap: list[tuple[float, int, int, Any, Any, Any]] = []
        self._seq = 0
        self._next_request_id = 1
        # Node i's ticks fall on its grid phase + k * tick_ms (virtual time); the one
        # scheduled is in the heap with the node's current generation, older ones are void.
        self._tick_phase = [root.uniform(0.0, self.config.tick_ms) for _ in range(n)]
        self._tick_at: list[float | None] = list(self._tick_phase)
        self._tick_gen = [0] * n
        # The time (node clock) each scheduled tick was placed for; None: the next point.
        self._tick_named: list[float | None] = [None] * n
        for i in range(n):
            self._push(self._tick_phase[i], _TICK, i, 0)

    # ---- scheduling: clients and faults -----------------------------------------------------

    def broadcast(
        self,
        at_ms: float,
        node: int,
        msg_id: str | None = None,
        value: Any = None,
        retry_after_ms: float | None = None,
    ) -> int:
        """Schedules a broadcast; returns its request id. Without a reply after
        `retry_after_ms`, the client resubmits the same msg_id to the next node (once)."""
        rid = self._new_request_id()
        msg_id = msg_id if msg_id is not None else f"m{rid}"
        value = value if value is not None else msg_id  # unique values make reads checkable
        req = Request(rid, "broadcast", node, at_ms, msg_id=msg_id, value=value)
        self.requests[rid] = req
        self._push(at_ms, _CLIENT, rid)
        if retry_after_ms is not None:
            self.at(at_ms + retry_after_ms, lambda: self._retry(req))
        return rid

    def read(self, at_ms: float, node: int, mode: str = "local") -> int:
        rid = self._new_request_id()
        self.requests[rid] = Request(rid, "read", node, at_ms, mode=mode)
        self._push(at_ms, _CLIENT, rid)
        return rid

    def at(self, at_ms: float, action: Callable[[], None]) -> None:
        """Runs `action()` at virtual time `at_ms` (for faults and custom scenarios)."""
        self._push(at_ms, _ACTION, action)

    def crash(self, at_ms: float, node: int) -> None:
        self.at(at_ms, lambda: self._crash(node))

    def restart(self, at_ms: float, node: int, reload: bool = False) -> None:
        self.at(at_ms, lambda: self._restart(node, reload))

    def pause(self, at_ms: float, node: int) -> None:
        self.at(at_ms, lambda: self._pause(node))

    def resume(self, at_ms: float, node: int) -> None:
        self.at(at_ms, lambda: self._resume(node))

    def partition(self, at_ms: float, blocked: Iterable[tuple[int, int]]) -> None:
        """From `at_ms`, drops every message from src to dst for each (src, dst) given."""
        pairs = set(blocked)
        self.at(at_ms, lambda: self._set_blocked(pairs))

    def heal(self, at_ms: float) -> None:
        self.at(at_ms, lambda: self._set_blocked(set()))

    def set_clock(self, at_ms: float, node: int, rate: float = 1.0, jump_ms: float = 0.0) -> None:
        """From `at_ms`, `node`'s clock runs at `rate` and first jumps by `jump_ms`."""
        self.at(at_ms, lambda: self._set_clock(node, rate, jump_ms))

    def slow(self, at_ms: float, node: int, extra_ms: float) -> None:
        """From `at_ms`, every message `node` sends takes `extra_ms` longer (0: normal)."""
        self.at(at_ms, lambda: self._set_slow(node, extra_ms))

    @staticmethod
    def split(*groups: Iterable[int]) -> set[tuple[int, int]]:
        """The (src, dst) pairs a partition into `groups` blocks, both directions."""
        sets = [set(g) for g in groups]
        return {(a, b) for g in sets for h in sets if g is not h for a in g for b in h}

    def random_clients(
        self,
        count: int,
        start_ms: float,
        end_ms: float,
        read_fraction: float = 0.2,
        read_modes: tuple[str, ...] = ("local", "log"),
        retry_after_ms: float | None = None,
    ) -> None:
        """Schedules `count` requests at random times and nodes (from `client_rng`)."""
        rng = self.client_rng
        for _ in range(count):
            at_ms, node = rng.uniform(start_ms, end_ms), rng.randrange(self.n)
            if rng.random() < read_fraction:
                self.read(at_ms, node, rng.choice(read_modes))
            else:
                self.broadcast(at_ms, node, retry_after_ms=retry_after_ms)

    def random_faults(
        self,
        start_ms: float,
        end_ms: float,
        kinds: tuple[str, ...] = ("partition", "crash", "pause"),
        duration_ms: tuple[float, float] = (50.0, 500.0),
        reload_fraction: float = 0.0,
        slow_ms: tuple[float, float] = (50.0, 300.0),
        clock_rates: tuple[float, float] = (0.9, 1.1),
    ) -> None:
        """Schedules one fault after another (each healed before the next) until `end_ms`.

        A partition isolates a random minority or splits the cluster at random; a crash takes
        a random node down (restarting with `reload=True` with `reload_fraction` chance); a
        pause freezes one. Drawn from `fault_rng`. Kinds taken only when named in `kinds`:
        `cut`, a one-way partition (a node still hears some peers that no longer hear it);
        `slow`, a node whose messages all take `slow_ms` longer (they arrive late, after
        newer ones of others); `clock`, a node whose clock runs at a rate drawn from
        `clock_rates` (the default stays within the cores' drift bound), then at 1 again.
        Call it twice (say network kinds and process kinds) for faults that overlap."""
        rng, t = self.fault_rng, start_ms
        while True:
            t += rng.uniform(0.0, duration_ms[0])
            until = t + rng.uniform(*duration_ms)
            if until > end_ms:
                return
            kind, node = rng.choice(kinds), rng.randrange(self.n)
            if kind == "partition":
                nodes = list(range(self.n))
                rng.shuffle(nodes)
                cut = rng.randint(1, max(1, self.n - 1))
                self.partition(t, self.split(nodes[:cut], nodes[cut:]))
                self.heal(until)
            elif kind == "crash":
                self.crash(t, node)
                self.restart(until, node, reload=rng.random() < reload_fraction)
            elif kind == "pause":
                self.pause(t, node)
                self.resume(until, node)
            elif kind == "cut":
                others = [k for k in range(self.n) if k != node]
                deaf = rng.sample(others, rng.randint(1, len(others)))
                self.partition(t, {(node, k) for k in deaf})
                self.heal(until)
            elif kind == "slow":
                extra_ms = rng.uniform(*slow_ms)
                self.slow(t, node, extra_ms)
                self.slow(until, node, 0.0)
            elif kind == "clock":
                self.set_clock(t, node, rate=rng.uniform(*clock_rates))
                self.set_clock(until, node, rate=1.0)
            t = until

    # ---- running ------------------------------------------------------------------------------

    def run(self, until_ms: float) -> None:
        """Processes every event up to virtual time `until_ms` (within the run's bounds)."""
        until_ms = min(until_ms, self.max_time_ms)
        heap, gens, pop, dispatch = self._heap, self._tick_gen, heapq.heappop, self._dispatch
        while heap:
            t, _, kind, a, b, c = heap[0]
            if t > until_ms:
                break
            if kind == _TICK and b != gens[a]:
                pop(heap)  # a tick rescheduled since: not an event
                continue
            if self.events >= self.max_events:
                self.truncated = True
                return
            pop(heap)
            self.now_ms = t
            self.events += 1
            if kind == _ACTION:
                a()
            else:
                dispatch(kind, a, b, c)
        if heap and heap[0][0] > self.max_time_ms:
            self.truncated = True
        self.now_ms = max(self.now_ms, until_ms)

    def settle(self, quiet_ms: float) -> None:
        """Heals the network, brings every node up, then runs `quiet_ms` more. Faults
        scheduled for later still happen: call it once the faulty period has been run."""
        self.run(self.now_ms)
        self._set_blocked(set())
        for i, node in enumerate(self.nodes):
            if node.state == "down":
                self._restart(i, reload=False)
            elif node.state == "paused":
                self._resume(i)
        self.run(self.now_ms + quiet_ms)

    def status(self) -> list[dict[str, Any]]:
        return [self.node_status(i) for i in range(self.n)]

    def node_status(self, i: int) -> dict[str, Any]:
        return self.nodes[i].core.status(self._node_now(i))

    # ---- checks -------------------------------------------------------------------------------

    def delivered_ids(self, node: int) -> list[str]:
        return [d.msg_id for d in self.deliveries[node]]

    def check_prefix_compatible(self) -> list[str]:
        """Every node's delivered order is a prefix of the longest one."""
        orders = [self.delivered_ids(i) for i in range(self.n)]
        longest = max(orders, key=len)
        return [
            f"node {i} order diverges from the longest at position {_diverges_at(o, longest)}"
            for i, o in enumerate(orders)
            if o != longest[: len(o)]
        ]

    def check_no_duplicates(self) -> list[str]:
        out = []
        for i in range(self.n):
            dups = sorted(m for m, k in Counter(self.delivered_ids(i)).items() if k > 1)
            out += [f"node {i} delivered {m} more than once" for m in dups]
            bad = [d for k, d in enumerate(self.deliveries[i]) if d.position != k]
            out += [f"node {i} delivered {d.msg_id} at position {d.position}" for d in bad[:1]]
        return out

    def check_acks(self) -> list[str]:
        """Each broadcast_ok names a message the node had already delivered at that position."""
        out = []
        for req in self.requests.values():
            if req.reply is None or req.reply.get("type") != "broadcast_ok":
                continue
            pos, mine = req.reply.get("position"), self.deliveries[req.node]
            if not (isinstance(pos, int) and 0 <= pos < req.delivered_at_reply):
                pos = None
            if pos is None or mine[pos].msg_id != req.msg_id or req.reply["msg_id"] != req.msg_id:
                out.append(
                    f"request {req.request_id} acked {req.msg_id} at {pos} on node "
                    f"{req.node} before delivering it there"
                )
        return out

    def check_acked_everywhere(self) -> list[str]:
        """Every acked broadcast is delivered at every node (meaningful after `settle`)."""
        acked = {str(r.msg_id) for r in self.requests.values() if _ok(r, "broadcast_ok")}
        out = []
        for i in range(self.n):
            missing = acked - set(self.delivered_ids(i))
            out += [f"acked {m} never delivered at node {i}" for m in sorted(missing)[:5]]
        return out

    def check_reads(self) -> list[str]:
        """Read results are prefixes of the order; a log or lease read (linearizable) sees
        every broadcast acked before it was sent."""
        orders = [[d.value for d in self.deliveries[i]] for i in range(self.n)]
        longest = max(orders, key=len)
        acks: list[tuple[float, Any]] = sorted(
            ((r.reply_ms, r.value) for r in self.requests.values()
             if _ok(r, "broadcast_ok") and r.reply_ms is not None),
            key=lambda a: a[0],
        )  # fmt: skip
        # A read of prefix length L misses an ack sent before it iff that value is not in
        # the first L of the order: keep, over the acks so far, the furthest first place.
        first_at: dict[Any, int] = {}
        for k, v in enumerate(longest):
            first_at.setdefault(v, k)
        ack_ms: list[float] = []
        reach: list[int] = []
        furthest = -1
        for t, v in acks:
            furthest = max(furthest, first_at.get(v, len(longest)))
            ack_ms.append(t)
            reach.append(furthest)
        out = []
        for req in self.requests.values():
            if not _ok(req, "read_ok"):
                continue
            assert req.reply is not None
            seen = req.reply.get("value")
            if not isinstance(seen, list) or seen != longest[: len(seen)]:
                out.append(f"read {req.request_id} is not a prefix of the delivered order")
            elif req.mode in ("log", "lease"):
                before = bisect.bisect_left(ack_ms, req.submitted_ms)  # acked strictly before
                if before == 0 or reach[before - 1] < len(seen):
                    continue
                stale = {v for _, v in acks[:before]} - set(seen)
                missed = sorted(stale, key=str)[:3]
                out.append(f"{req.mode} read {req.request_id} misses acked {missed}")
        return out

    def violations(self) -> list[str]:
        """All checks; empty means the run is valid. Print `self.seed` to reproduce."""
        return (
            self.check_prefix_compatible()
            + self.check_no_duplicates()
            + self.check_acks()
            + self.check_acked_everywhere()
            + self.check_reads()
            + self.anomalies
        )

    # ---- internals ----------------------------------------------------------------------------

    def _new_core(self, i: int) -> Protocol:
        rng = random.Random(self._seeds.getrandbits(64))
        return self.protocol_cls(node_id=i, n=self.n, rng=rng, config=self.config)

    def _timer_of(self, core: Protocol) -> Callable[[float], float | None] | None:
        return None if self.every_tick else getattr(core, "next_timer_ms", None)

    def _new_request_id(self) -> int:
        rid, self._next_request_id = self._next_request_id, self._next_request_id + 1
        return rid

    def _push(self, at_ms: float, kind: int, a: Any, b: Any = None, c: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at_ms, self._seq, kind, a, b, c))

    def _node_now(self, i: int) -> float:
        node = self.nodes[i]
        return node.clock_base_ms + node.clock_rate * (self.now_ms - node.clock_t0_ms)

    def _dispatch(self, kind: int, a: Any, b: Any, c: Any) -> None:
        if kind == _TICK:
            self._tick_at[a] = self._tick_named[a] = None
            if self.nodes[a].state == "up":
                self._step(a, _TICK_EVENT)
            return
        i = a if kind in (_MSG, _HELD) else self.requests[a].node
        node = self.nodes[i]
        if node.state == "paused":
            if kind == _MSG and self.hold_arrived:
                if (b, a) in self.blocked:
                    return  # cut off before it reached the node
                kind = _HELD
            if len(node.buffer) < PAUSE_BUFFER_MAX:
                node.buffer.append((kind, a, b, c))
            return
        if kind in (_MSG, _HELD):
            if node.state == "up" and (kind == _HELD or (b, a) not in self.blocked):
                self._step(a, PeerMessage(src=b, body=_SCAN(c, 0)[0]))
        else:
            self._submit(self.requests[a])

    def _submit(self, req: Request) -> None:
        node = self.nodes[req.node]
        if node.state != "up":
            req.lost = True  # connection refused
            return
        req.sent, req.epoch = True, node.epoch
        event: Event
        if req.kind == "broadcast":
            assert req.msg_id is not None
            event = ClientBroadcast(request_id=req.request_id, msg_id=req.msg_id, value=req.value)
        else:
            event = ClientRead(request_id=req.request_id, mode=req.mode or "local")
        self._step(req.node, event)

    def _step(self, i: int, event: Event) -> None:
        node = self.nodes[i]  # the clock as _node_now's, inline: this runs for every event
        fx = node.core.step(
            event, node.clock_base_ms + node.clock_rate * (self.now_ms - node.clock_t0_ms)
        )
        self._apply(i, fx)
        self._schedule_tick(i)

    def _schedule_tick(self, i: int) -> None:
        """Puts node i's next tick at the first point of its grid after now at which its
        clock has reached the time its core names (the next point if it names none later).
        Runs after every step of the node, so it is kept cheap."""
        node = self.nodes[i]
        if node.state != "up":
            return
        now, hook, rate = self.now_ms, node.timer, node.clock_rate
        at_ms, named = now, None  # at_ms: when (virtual time) the clock reaches it
        if hook is not None and rate > 0:  # (a stopped clock: every tick, as without)
            clock_now = node.clock_base_ms + rate * (now - node.clock_t0_ms)
            named = hook(clock_now)
            if named is None or named == INF:
                self._cancel_tick(i)
                return
            if named <= clock_now:
                named = None
            elif named == self._tick_named[i]:
                return  # the tick in the heap was placed for this very time
            else:
                # TICK_EARLY_MS, far above the rounding of these sums, makes sure that
                # the point found is never after the first one whose clock reaches it.
                at_ms = node.clock_t0_ms + (named - TICK_EARLY_MS - node.clock_base_ms) / rate
        tick_ms, phase = self.config.tick_ms, self._tick_phase[i]
        k = math.ceil((at_ms - phase) / tick_ms)
        if phase + k * tick_ms <= now:
            k += 1  # strictly after now
        at = phase + k * tick_ms
        self._tick_named[i] = named
        if at == self._tick_at[i]:
            return
        self._tick_gen[i] += 1
        self._tick_at[i] = at
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, _TICK, i, self._tick_gen[i], None))

    def _cancel_tick(self, i: int) -> None:
        self._tick_gen[i] += 1
        self._tick_at[i] = self._tick_named[i] = None

    def _apply(self, i: int, fx: Effects) -> None:
        if not (fx.send or fx.persist or fx.deliver or fx.reply):
            return  # most ticks
        if fx.persist:
            self.persisted[i].extend(fx.persist)
        if fx.send:
            self._transmit(i, fx)
        mine = self.deliveries[i]
        for d in fx.deliver:
            mine.append(Delivery(d.position, d.msg_id, d.value, self.now_ms))
            self.trace.append((self.now_ms, "deliver", i, d.position, d.msg_id))
        for r in fx.reply:
            # The body itself, not its text: a read's reply holds the whole delivered
            # order, and encoding it cost more than the read. Cores build fresh replies.
            self.trace.append((self.now_ms, "reply", i, r.request_id, r.body))
            req = self.requests.get(r.request_id)
            if req is None or req.node != i:
                self.anomalies.append(f"node {i} replied to unknown request {r.request_id}")
            elif req.epoch != self.nodes[i].epoch or req.lost:
                pass  # the client's connection died with the crash
            elif req.reply is not None:
                self.anomalies.append(f"node {i} replied twice to request {r.request_id}")
            else:
                req.reply, req.reply_ms, req.delivered_at_reply = r.body, self.now_ms, len(mine)
            if self.on_reply is not None:
                self.on_reply(r.request_id)

    def _transmit(self, i: int, fx: Effects) -> None:
        # Bodies travel as JSON text, as on the wire: a receiver never shares a sender's
        # objects. A body sent to several peers is encoded once.
        body, text, sent = None, "", self.sent
        rng, net, blocked, n, now = self._net_rng, self.net, self.blocked, self.n, self.now_ms
        slow_ms, (low_ms, high_ms) = self.slow_ms.get(i, 0.0), net.delay_ms
        for send in fx.send:
            if send.body is not body:
                body = send.body
                text = _to_text(body)  # must be JSON-serialisable
            kind = body.get("type", "?")
            sent[kind] = sent.get(kind, 0) + 1
            # The network: lost, or one or two copies, each with a delay of its own (drawn
            # as random.uniform does, without its call).
            dest = send.dest
            if not 0 <= dest < n or (i, dest) in blocked or rng.random() < net.drop:
                self.dropped += 1
                continue
            copies = 2 if rng.random() < net.duplicate else 1
            for _ in range(copies):
                delay_ms = low_ms + (high_ms - low_ms) * rng.random()
                if rng.random() < net.spike:
                    delay_ms += net.spike_ms * rng.random()
                delay_ms += slow_ms
                self._seq += 1
                heapq.heappush(self._heap, (now + delay_ms, self._seq, _MSG, dest, i, text))

    def _retry(self, req: Request) -> None:
        if req.reply is None:
            self._push(self.now_ms, _CLIENT, self._copy_request(req))

    def _copy_request(self, req: Request) -> int:
        rid = self._new_request_id()
        node = (req.node + 1) % self.n
        copy = Request(rid, "broadcast", node, self.now_ms, msg_id=req.msg_id, value=req.value)
        self.requests[rid] = copy
        return rid

    def _crash(self, i: int) -> None:
        node = self.nodes[i]
        if node.state == "down":
            return
        for req in self.requests.values():
            if req.node == i and req.sent and req.reply is None and req.epoch == node.epoch:
                req.lost = True  # the client sees its connection drop
        node.state, node.epoch, node.buffer = "down", node.epoch + 1, []
        self._cancel_tick(i)
        self.trace.append((self.now_ms, "crash", i))

    def _restart(self, i: int, reload: bool) -> None:
        node = self.nodes[i]
        if node.state != "down":
            return
        if reload:
            node.core = self._new_core(i)
            node.core.restore(list(self.persisted[i]))
            node.timer = self._timer_of(node.core)
        node.state = "up"
        self._schedule_tick(i)
        self.trace.append((self.now_ms, "restart", i, reload))

    def _pause(self, i: int) -> None:
        if self.nodes[i].state == "up":
            self.nodes[i].state = "paused"
            self._cancel_tick(i)
            self.trace.append((self.now_ms, "pause", i))

    def _resume(self, i: int) -> None:
        node = self.nodes[i]
        if node.state != "paused":
            return
        node.state, held, node.buffer = "up", node.buffer, []
        self.trace.append((self.now_ms, "resume", i))
        self._schedule_tick(i)
        for kind, a, b, c in held:
            self._dispatch(kind, a, b, c)

    def _set_blocked(self, pairs: set[tuple[int, int]]) -> None:
        self.blocked = pairs
        self.trace.append((self.now_ms, "blocked", sorted(pairs)))

    def _set_slow(self, i: int, extra_ms: float) -> None:
        self.slow_ms[i] = extra_ms
        self.trace.append((self.now_ms, "slow", i, extra_ms))

    def _set_clock(self, i: int, rate: float, jump_ms: float) -> None:
        node = self.nodes[i]
        node.clock_base_ms = self._node_now(i) + jump_ms
        node.clock_t0_ms, node.clock_rate = self.now_ms, rate
        self._tick_named[i] = None  # the same deadline falls elsewhere in virtual time
        self._schedule_tick(i)


def _ok(req: Request, reply_type: str) -> bool:
    return req.reply is not None and req.reply.get("type") == reply_type


def _diverges_at(a: list[str], b: list[str]) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
