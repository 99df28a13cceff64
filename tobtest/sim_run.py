"""One seed of `tobtest sim`: the built-in protocol cores in the in-process simulator, with
random clients and faults, recorded as a tobtest history and checked.

    result = run_seed(SimSpec(protocol="paxos", seed=7, bugs=("deliver-on-arrival",)))
    result.valid          # False: the simulator's checks or the history's checkers said so
    result.kinds          # ["sim-order", "total-order:incompatible-order", ...]

This module (and only this one, imported lazily by the `sim` command) imports node code:
the harness talks to nodes only over the wire, but the simulator exists to run the pure
cores in-process (`node/sim.py`), so here the cores are the system under test.

A run: `time_ms` of clients and faults, then `settle_ms` healed with every node up, then a
final `local` read of every node. Clients are closed loops like the runner's workers: one
op at a time per process; a broadcast (unique value `v`, msg_id `m<v>`) that gets no reply
within half the op timeout is resubmitted with the same msg_id to another node; a reply
never seen within the timeout makes the op `info`, and the client goes on as a new process;
a `lease` read refused with `not-leader` is followed at once by one at the leader named.
Faults, in independent streams (so they overlap): the network's per-message loss,
duplication, delay spikes and reordering (`NetConfig`); one network fault at a time, a
random `partition`, a one-way `cut`, a `slow` sender, `weather` (a stretch of the harsh
network), a `stall` (the leader frozen just after a heartbeat, cut off while frozen, woken
still cut off; what reached it before the cut is read on waking) or a `flip` (the leader
cut off; once another leads, the rest crash and restart from their records with only the
old leader to talk to), as the real nemeses of those names; crashes that always restart
from the node's records, and pauses, with quiet gaps between them; and clock rate changes
within the cores' drift bound (so a lease may rely on it). Lengths and the cores' timers
come from a named `Timing` (default `fast`: Multi-Paxos's election, lease and heartbeat at
a third of the node's). Bounded: virtual time, `max_events` and a wall-clock cap per seed;
a run cut short by either cap has verdict unknown unless something was already found.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tobtest.checker.compose import check_all, merge_valid
from tobtest.histories.op import Op
from tobtest.node.protocols import PROTOCOLS, protocol_class, protocol_entry
from tobtest.node.protocols.base import ProtocolConfig
from tobtest.node.read_from import PrefixDigests
from tobtest.node.sim import NetConfig, Simulation
from tobtest.sim_history import Outcome, SimHistory, broadcast_outcome, read_outcome
from tobtest.workloads.broadcast import BroadcastWorkload
from tobtest.workloads.read_cursor import ReadCursors

NETS: dict[str, NetConfig] = {
    "clean": NetConfig(),
    "lossy": NetConfig(drop=0.05, duplicate=0.05, delay_ms=(1.0, 10.0), spike=0.02, spike_ms=200.0),
    "harsh": NetConfig(drop=0.2, duplicate=0.2, delay_ms=(1.0, 40.0), spike=0.1, spike_ms=400.0),
}
FAULTS = ("partition", "cut", "slow", "weather", "stall", "flip", "crash", "pause", "clock")
NETWORK_FAULTS = ("partition", "cut", "slow", "weather", "stall", "flip")  # one at a time
PROCESS_FAULTS = ("crash", "pause")  # a stream of their own, overlapping the network's
# Read modes each core serves, from its registry entry (per-slot Paxos refuses `lease`).
READ_MODES: dict[str, tuple[str, ...]] = {name: e.read_modes for name, e in PROTOCOLS.items()}
DEFAULT_READ_MODES = ("local", "log")
CHUNK_MS = 250.0  # virtual time run between two looks at the wall clock
FINAL_READ_MS = 200.0  # virtual time the final reads get
SLOW_MS = (20.0, 200.0)  # extra delay on each message of a `slow` node
POLL_MS = 0.5  # how often stall looks for the leader's next heartbeat
# How often flip looks for a new leader: a tick (the real nemesis asks over the network,
# more slowly still); polling each node's status every 0.5 ms was a fifth of the run's cost.
FLIP_POLL_MS = 5.0


@dataclass(frozen=True)
class Timing:
    """The cores' timers (`ProtocolConfig` fields) and the faults' lengths, scaled to them:
    a fault must outlast an election timeout now and then to depose a leader."""

    config: dict[str, float]
    fault_ms: tuple[float, float]  # partition, cut, slow, crash, pause, clock
    stall_frozen_ms: tuple[float, float]  # frozen long enough for the others to elect
    stall_awake_ms: tuple[float, float]  # still cut off after waking
    flip_ms: tuple[float, float]  # cut off long enough for another to lead, then the rest
    heartbeat_wait_ms: float  # stall waits at most this long for the leader's heartbeat


TIMINGS: dict[str, Timing] = {
    # The real node's timers (ProtocolConfig's defaults).
    "node": Timing({}, (50.0, 500.0), (200.0, 700.0), (300.0, 1200.0), (50.0, 500.0), 100.0),
    # Multi-Paxos's election, lease and heartbeat at a third (tests/node's FAST): about
    # three times the leader changes and lease expiries per simulated second, at the same
    # cost per simulated second. Per-slot Paxos keeps the node's timers.
    "fast": Timing(
        {"heartbeat_ms": 20.0, "election_timeout_ms": 150.0, "lease_ms": 100.0},
        (30.0, 300.0), (150.0, 450.0), (100.0, 400.0), (350.0, 900.0), 40.0,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class SimSpec:
    """Everything that shapes one seed's run: equal specs give equal runs."""

    protocol: str
    seed: int
    nodes: int = 3
    bugs: tuple[str, ...] = ()
    time_ms: float = 10_000.0
    settle_ms: float = 3_000.0
    rate: float = 300.0  # ops per virtual second, over all clients
    concurrency: int | None = None  # clients; None: 4 per node
    read_fraction: float = 0.5
    read_modes: tuple[str, ...] | None = None  # None: every mode the protocol serves
    op_timeout_ms: float = 1_000.0
    net: str = "lossy"
    faults: tuple[str, ...] = FAULTS
    tick_ms: float = 5.0  # the cores' timer tick; the real node's is 5 ms
    timing: str = "fast"  # the cores' timers and the faults' lengths: a TIMINGS name
    max_events: int = 2_000_000
    wall_limit_s: float = 60.0
    # Tick every node at every tick_ms, not only when its core has a timer due: slower,
    # the same run if every core's `next_timer_ms` is right (a check on those answers).
    every_tick: bool = False
    # Reads ask from a position and record suffixes (`offset`), as the real node answers
    # them; False: whole logs, as before.
    read_from: bool = True
    # Stop the clients after this many ops (invocations), before time_ms if sooner; the
    # settle and the final reads follow at once.
    ops: int | None = None

    @property
    def clients(self) -> int:
        return self.concurrency if self.concurrency is not None else 4 * self.nodes

    @property
    def sim_ms(self) -> float:
        return self.time_ms + self.settle_ms + FINAL_READ_MS


@dataclass
class SeedResult:
    spec: SimSpec
    valid: bool | str
    violations: list[str]
    kinds: list[str]  # anomaly kinds, prefixed by who found them
    results: dict[str, Any]  # check_all's, plus the simulator's findings
    history: list[Op]
    sim_ms: float
    wall_s: float
    events: int
    cut_short: str | None = None  # why the run stopped early, if it did
    counts: dict[str, int] = field(default_factory=dict)


def bug_names(protocol: str) -> tuple[str, ...]:
    """Every seeded bug the protocol's registry entry declares, both catalogues."""
    return protocol_entry(protocol).all_bugs


def known_protocols() -> list[str]:
    return sorted(PROTOCOLS)


@dataclass
class _Pending:
    client: int
    process: int
    f: str
    value: Any
    targets: list[int]  # nodes to try, in order
    mode: str | None = None
    attempt: int = 0
    request_id: int = 0
    final: bool = False
    read_from: dict[str, Any] | None = None  # a read's `from` and `digest`, when it asks so


class _Clients:
    """Closed-loop clients over a simulation, recording into a `SimHistory`."""

    def __init__(self, sim: Simulation, spec: SimSpec, history: SimHistory) -> None:
        self.sim, self.spec, self.history = sim, spec, history
        self.rng = sim.client_rng
        self.modes = spec.read_modes or READ_MODES.get(spec.protocol, DEFAULT_READ_MODES)
        self.think_ms = 1_000.0 * spec.clients / spec.rate
        self.pending: dict[int, _Pending] = {}  # request id -> the op waiting on it
        self.next_value = 0
        self.next_process = spec.clients
        self.end_ms = spec.time_ms
        # Reads from a position: each client's cursor per node (as the runner's workers
        # keep them), and each node's digests, as the node's shell keeps them
        # (node/read_from.py). Final reads (client -1) ask for whole logs.
        self.cursors = ReadCursors()
        self.digests = [PrefixDigests() for _ in range(spec.nodes)]
        self.issued = 0
        # Forget each read's whole log once its client took it (the simulator's own read
        # checks then cannot run): memory linear in the run, for measuring long runs.
        self.release_reads = False

    def done(self) -> bool:
        """All `spec.ops` ops were issued and answered (never, without `ops`)."""
        return self.spec.ops is not None and self.issued >= self.spec.ops and not self.pending

    def start(self) -> None:
        for c in range(self.spec.clients):
            self.sim.at(self.rng.uniform(0.0, self.think_ms), lambda c=c: self._issue(c, c))

    def on_reply(self, request_id: int) -> None:
        if request_id in self.pending:
            self.sim.at(self.sim.now_ms, lambda: self._answered(request_id))

    def final_reads(self) -> list[_Pending]:
        ops = []
        for node in range(self.spec.nodes):
            op = _Pending(-1, self._fresh_process(), "read", None, [node], "local", final=True)
            self.history.invoke(self.sim.now_ms, op.process, "read", node, None,
                                read_mode="local", final=True)  # fmt: skip
            self._submit(op)
            ops.append(op)
        return ops

    def finish(self) -> None:
        """Completes every op still open as `info` (no reply came within the run)."""
        for rid, op in list(self.pending.items()):
            del self.pending[rid]
            self._complete(op, None, rid)

    # ---- internals --------------------------------------------------------------------

    def _client_field(self, client: int) -> dict[str, int]:
        """What a read op records of its client, as the runner's: with reads from a
        position, the client whose cursor it moves."""
        return {"client": client} if self.spec.read_from else {}

    def _suffix_outcome(self, op: _Pending, values: list[Any]) -> Outcome:
        """A read's outcome as the node answers a read from a position (its shell, on the
        whole log the core replied) and the client records it (value and offset)."""
        assert op.read_from is not None
        node = op.targets[op.attempt]
        answer = self.digests[node].answer(values, op.read_from["from"], op.read_from["digest"])
        taken = self.cursors.take((op.client, node), answer)
        assert taken is not None  # the answer is always a list from 0 or from the cursor
        value, offset = taken
        return Outcome("ok", value, extra={"offset": offset} if offset else {})

    def _fresh_process(self) -> int:
        self.next_process += 1
        return self.next_process - 1

    def _issue(self, client: int, process: int, lease_at: tuple[int, str] | None = None) -> None:
        now, rng, n = self.sim.now_ms, self.rng, self.spec.nodes
        if now >= self.end_ms or (self.spec.ops is not None and self.issued >= self.spec.ops):
            return
        self.issued += 1
        if lease_at is not None:  # a lease read that follows a leader hint
            node, mode = lease_at
            op = _Pending(client, process, "read", None, [node], mode)
            self.history.invoke(now, process, "read", node, None, read_mode=op.mode,
                                **self._client_field(client))  # fmt: skip
            self._submit(op)
            return
        node = rng.randrange(n)
        if rng.random() < self.spec.read_fraction:
            op = _Pending(client, process, "read", None, [node], rng.choice(self.modes))
            self.history.invoke(now, process, "read", node, None, read_mode=op.mode,
                                **self._client_field(client))  # fmt: skip
        else:
            value, self.next_value = self.next_value, self.next_value + 1
            targets = [node]
            if n > 1:
                targets.append(rng.choice([i for i in range(n) if i != node]))
            op = _Pending(client, process, "broadcast", value, targets)
            self.history.invoke(now, process, "broadcast", node, value)
        self._submit(op)

    def _submit(self, op: _Pending) -> None:
        sim, node = self.sim, op.targets[op.attempt]
        if op.f == "broadcast":
            rid = sim.broadcast(sim.now_ms, node, msg_id=f"m{op.value}", value=op.value)
        else:
            rid = sim.read(sim.now_ms, node, mode=op.mode or "local")
            if self.spec.read_from and op.client >= 0:
                op.read_from = self.cursors.request_fields((op.client, node))
        op.request_id = rid
        self.pending[rid] = op
        budget_ms = self.spec.op_timeout_ms / len(op.targets)
        sim.at(sim.now_ms, lambda: self._refused(rid))
        if not op.final:
            sim.at(sim.now_ms + budget_ms, lambda: self._timed_out(rid))

    def _refused(self, rid: int) -> None:
        # A node that was down refuses the connection at once.
        if rid in self.pending and self.sim.requests[rid].lost:
            self._fail_attempt(rid, {"type": "error", "code": "connection-refused", "text": ""})

    def _timed_out(self, rid: int) -> None:
        if rid in self.pending:
            self._fail_attempt(rid, None)

    def _answered(self, rid: int) -> None:
        reply = self.sim.requests[rid].reply
        if rid not in self.pending or reply is None:
            return  # lost with a crash: the client waits for its timeout
        op = self.pending[rid]
        if op.f == "broadcast" and reply.get("type") != "broadcast_ok":
            self._fail_attempt(rid, reply)
            return
        del self.pending[rid]
        self._complete(op, reply, rid)

    def _fail_attempt(self, rid: int, reply: dict[str, Any] | None) -> None:
        op = self.pending.pop(rid)
        if op.f == "broadcast" and op.attempt + 1 < len(op.targets):
            op.attempt += 1
            self._submit(op)
            return
        if op.f == "broadcast" and op.attempt > 0:
            reply = None  # after a retry, any failure leaves the broadcast's fate open
        self._complete(op, reply, rid)

    def _complete(self, op: _Pending, reply: dict[str, Any] | None, rid: int) -> None:
        now = self.sim.now_ms
        if op.f == "broadcast":
            outcome = broadcast_outcome(op.value, reply, op.attempt, len(op.targets))
            answered = op.targets[op.attempt] if op.attempt > 0 else None
            self.history.complete(now, op.process, outcome, node=answered)
        else:
            outcome = read_outcome(reply)
            if outcome.type == "ok" and op.read_from is not None:
                outcome = self._suffix_outcome(op, outcome.value)
                if self.release_reads and reply is not None:
                    reply["value"] = None
            self.history.complete(now, op.process, outcome)
        if op.final or op.client < 0:
            return
        # Jepsen: a process with an indeterminate op never issues another.
        process = self._fresh_process() if outcome.type == "info" else op.process
        hint = reply.get("leader") if reply is not None else None
        if (
            op.mode == "lease"
            and reply is not None
            and reply.get("code") == "not-leader"
            and isinstance(hint, int)
            and 0 <= hint < self.spec.nodes
        ):
            # The client asks the leader the node named, at once (a new op): lease reads
            # then reach leaders, new ones too, as often as any read reaches any node.
            self.sim.at(now, lambda: self._issue(op.client, process, (hint, "lease")))
            return
        at_ms = now + self.rng.uniform(0.0, 2.0 * self.think_ms)
        self.sim.at(at_ms, lambda: self._issue(op.client, process))


def _leader(sim: Simulation, exclude: int | None = None) -> int | None:
    """The up node that claims to lead with the highest ballot (None for per-slot Paxos)."""
    statuses = {i: sim.node_status(i) for i, node in enumerate(sim.nodes)
                if node.state == "up" and i != exclude}  # fmt: skip
    leading = [
        (s.get("ballot") or [0], i) for i, s in statuses.items() if s.get("role") == "leader"
    ]
    return max(leading)[1] if leading else None


def _network_faults(
    sim: Simulation, spec: SimSpec, history: SimHistory, kinds: tuple[str, ...]
) -> None:
    """One network fault after another, each healed before the next, until `time_ms`:
    `partition` (a random cut), `cut` (one way: a node still hears peers that no longer
    hear it), `slow` (every message of a node late, after newer ones of others), `weather`
    (a stretch of the `harsh` network: loss, duplicates and spikes that make duels), `stall`
    (freeze the leader, cut it off while frozen, wake it still cut off) and `flip` (cut
    the leader off; once another node leads, crash the rest and restart them from their
    records with only the old leader to talk to), as the real `stall` and `flip` nemeses
    do. Lengths from the spec's `Timing`."""
    rng, t, n, timing = sim.fault_rng, 0.0, spec.nodes, TIMINGS[spec.timing]
    while True:
        t += rng.uniform(0.0, timing.fault_ms[0])
        kind, order = rng.choice(kinds), list(range(n))
        rng.shuffle(order)
        if kind == "stall":  # frozen long enough for the others to elect, then cut off
            frozen_ms = rng.uniform(*timing.stall_frozen_ms)
            until = t + frozen_ms + rng.uniform(*timing.stall_awake_ms)
        else:
            until = t + rng.uniform(*(timing.flip_ms if kind == "flip" else timing.fault_ms))
        if until > spec.time_ms:
            return
        if kind == "stall":
            wait_ms = timing.heartbeat_wait_ms
            sim.at(t, lambda f=frozen_ms, o=order, w=wait_ms: _stall(sim, o, f, w))
        elif kind == "partition":
            cut = rng.randint(1, max(1, n - 1))
            sim.partition(t, sim.split(order[:cut], order[cut:]))
        elif kind == "cut":
            deaf = order[1 : 1 + rng.randint(1, max(1, n - 1))]
            sim.partition(t, {(order[0], k) for k in deaf})
        elif kind == "slow":
            sim.slow(t, order[0], rng.uniform(*SLOW_MS))
            sim.slow(until, order[0], 0.0)
        elif kind == "weather":  # a stretch of the harsh network, then the run's again
            _weather(sim, history, t, until, spec.net)
        else:
            down_ms, wait_ms = rng.uniform(5.0, 50.0), rng.uniform(0.0, 100.0)
            sim.at(t, lambda until=until, order=order, d=down_ms, w=wait_ms:
                   _flip(sim, order, until, d, w))  # fmt: skip
        sim.heal(until)
        t = until


def _weather(sim: Simulation, history: SimHistory, t: float, until: float, net: str) -> None:
    def set_net(name: str) -> None:
        sim.net = NETS[name]

    sim.at(t, lambda: set_net("harsh"))
    sim.at(until, lambda: set_net(net))
    history.nemesis(t, "start-weather", {"net": "harsh"})
    history.nemesis(until, "stop-weather", {"net": net})


def _stall(sim: Simulation, order: list[int], frozen_ms: float, wait_ms: float) -> None:
    """Freezes the leader just after it sends its next heartbeat (so that the acks arrive
    while it is frozen), cuts it off while frozen, and wakes it still cut off. Without a
    leader (per-slot Paxos, or none elected yet) it freezes a node at once."""
    old = _leader(sim)
    if old is None:
        _freeze(sim, order[0], [i for i in order if i != order[0]], frozen_ms)
        return
    round_ = sim.node_status(old).get("heartbeat_round")
    give_up_ms = sim.now_ms + wait_ms

    def look() -> None:
        status = sim.node_status(old)
        if status.get("heartbeat_round") == round_ and sim.now_ms < give_up_ms:
            sim.at(sim.now_ms + POLL_MS, look)
            return
        _freeze(sim, old, [i for i in order if i != old], frozen_ms)

    sim.at(sim.now_ms + POLL_MS, look)


def _freeze(sim: Simulation, old: int, others: list[int], frozen_ms: float) -> None:
    now = sim.now_ms
    sim.pause(now, old)
    # Cut off a little after freezing, as the real nemesis: what is already on its way
    # (the acks of its last heartbeat) lands in its buffer, to be read on waking.
    sim.partition(now + min(25.0, frozen_ms / 4), sim.split([old], others))
    sim.resume(now + frozen_ms, old)


def _flip(sim: Simulation, order: list[int], until: float, down_ms: float, wait_ms: float) -> None:
    old = _leader(sim)
    old = order[0] if old is None else old
    others = [i for i in order if i != old]
    sim.partition(sim.now_ms, sim.split([old], others))

    def look() -> None:
        if sim.now_ms + FLIP_POLL_MS + wait_ms + down_ms >= until:
            return
        new = _leader(sim, exclude=old)
        if new is None:
            if "leader" in sim.nodes[old].core.status(sim.now_ms):  # else none ever leads
                sim.at(sim.now_ms + FLIP_POLL_MS, look)
            return
        rest = [i for i in others if i != new][: len(order) // 2]
        t = sim.now_ms + wait_ms
        for victim in rest:
            sim.crash(t, victim)
            sim.restart(t + down_ms, victim, reload=True)
        sim.partition(t + down_ms, sim.split([old, *rest], [i for i in others if i not in rest]))

    sim.at(sim.now_ms + FLIP_POLL_MS, look)


def _fault_windows(sim: Simulation, spec: SimSpec) -> Iterator[tuple[float, float]]:
    """Back-to-back fault windows (start, end) in virtual ms, each after a quiet gap as long
    as a fault, drawn from `fault_rng`, until one would pass the faulty period's end."""
    rng, t, fault_ms = sim.fault_rng, 0.0, TIMINGS[spec.timing].fault_ms
    while True:
        t += rng.uniform(*fault_ms)
        until = t + rng.uniform(*fault_ms)
        if until > spec.time_ms:
            return
        yield t, until
        t = until


def _process_faults(sim: Simulation, spec: SimSpec, kinds: tuple[str, ...]) -> None:
    """A node crashed (restarting from its records) or paused, one at a time, with a
    quiet gap as long as a fault between two: on three nodes, a fault of each stream at
    once leaves no majority, so the network's faults need stretches without these."""
    rng = sim.fault_rng
    for t, until in _fault_windows(sim, spec):
        kind, node = rng.choice(kinds), rng.randrange(spec.nodes)
        if kind == "crash":
            sim.crash(t, node)
            sim.restart(until, node, reload=True)
        else:
            sim.pause(t, node)
            sim.resume(until, node)


def _clock_faults(sim: Simulation, spec: SimSpec, history: SimHistory, rho: float) -> None:
    """Clock rate changes within the drift bound, one node at a time, reset before the end."""
    rng = sim.fault_rng
    for t, until in _fault_windows(sim, spec):
        node = rng.randrange(spec.nodes)
        rate = round(rng.uniform(1.0 - 0.9 * rho, 1.0 + 0.9 * rho), 4)
        sim.set_clock(t, node, rate=rate)
        sim.set_clock(until, node, rate=1.0)
        history.nemesis(
            t, "start-clock", {"fault": "skew", "rate": rate, "nodes": [f"n{node + 1}"]}
        )
        history.nemesis(until, "stop-clock", {"reset": [f"n{node + 1}"]})


def run_seed(spec: SimSpec) -> SeedResult:
    """Runs and checks one seed; never raises for what the cores do (a core that raises is
    reported as an `unknown` verdict naming the exception)."""
    started = time.perf_counter()
    sim, ops, cut_short = _simulate(spec, release_reads=False)
    return _judge(spec, sim, ops, cut_short, started)


def simulate_history(spec: SimSpec) -> tuple[list[Op], str | None]:
    """One seed's history, unchecked, and why it was cut short (None: it ran whole). Each
    read's whole log is forgotten once recorded, so memory grows with the run, not with
    the sum of its reads: for measuring long runs (bench/history_size.py)."""
    _, ops, cut_short = _simulate(spec, release_reads=True)
    return ops, cut_short


def _simulate(spec: SimSpec, release_reads: bool) -> tuple[Simulation, list[Op], str | None]:
    started = time.perf_counter()
    config = ProtocolConfig(tick_ms=spec.tick_ms, bugs=frozenset(spec.bugs),
                            **TIMINGS[spec.timing].config)  # fmt: skip
    history = SimHistory(spec.nodes)
    cls = protocol_class(spec.protocol)
    sim = Simulation(cls, n=spec.nodes, seed=spec.seed, config=config, net=NETS[spec.net],
                     max_time_ms=spec.sim_ms + 60_000.0, max_events=spec.max_events,
                     hold_arrived=True, every_tick=spec.every_tick)  # fmt: skip
    clients = _Clients(sim, spec, history)
    clients.release_reads = release_reads
    sim.on_reply = clients.on_reply  # a client learns of its reply at that instant
    clients.start()
    # Independent streams, so that a node may be paused or crashed while partitioned.
    network = tuple(k for k in NETWORK_FAULTS if k in spec.faults)
    if network:
        _network_faults(sim, spec, history, network)
    process = tuple(k for k in PROCESS_FAULTS if k in spec.faults)
    if process:
        _process_faults(sim, spec, process)
    if "clock" in spec.faults:
        _clock_faults(sim, spec, history, config.drift_bound)
    deadline = started + spec.wall_limit_s
    cut_short: str | None = None
    try:
        cut_short = _run_until(sim, spec.time_ms, deadline, clients.done)
        # With `ops`, the main phase may end early: the rest follows from where it ended.
        main_end_ms = spec.time_ms if spec.ops is None else sim.now_ms
        if cut_short is None:
            sim.settle(quiet_ms=0.0)
            cut_short = _run_until(sim, main_end_ms + spec.settle_ms, deadline)
        if cut_short is None:
            clients.final_reads()
            cut_short = _run_until(sim, main_end_ms + spec.settle_ms + FINAL_READ_MS, deadline)
    except Exception as exc:  # noqa: BLE001 - a core that raises is a finding, not a crash
        cut_short = f"the core raised {type(exc).__name__}: {exc}"
    clients.finish()
    for t, f, value in _nemesis_from(sim):
        history.nemesis(t, f, value)
    return sim, history.ops(), cut_short


def _nemesis_from(sim: Simulation) -> list[tuple[float, str, Any]]:
    from tobtest.sim_history import nemesis_ops

    return nemesis_ops([e for e in sim.trace if e[1] not in ("deliver", "reply")])


def _run_until(
    sim: Simulation, until_ms: float, deadline: float, done: Callable[[], bool] | None = None
) -> str | None:
    while sim.now_ms < until_ms and not (done is not None and done()):
        sim.run(min(until_ms, sim.now_ms + CHUNK_MS))
        if sim.events >= sim.max_events:
            return f"stopped after {sim.events} events (max-events)"
        if time.perf_counter() > deadline:
            return f"stopped at {sim.now_ms:.0f} ms of virtual time (wall-clock cap)"
    return None


SIM_CHECKS = (
    ("sim-order", "check_prefix_compatible"),
    ("sim-duplicates", "check_no_duplicates"),
    ("sim-acks", "check_acks"),
    ("sim-lost", "check_acked_everywhere"),
    ("sim-reads", "check_reads"),
)


def _judge(
    spec: SimSpec, sim: Simulation, ops: list[Op], cut_short: str | None, started: float
) -> SeedResult:
    found = [(name, getattr(sim, check)()) for name, check in SIM_CHECKS]  # each once
    violations = [v for _, vs in found for v in vs] + sim.anomalies  # sim.violations()
    kinds = [name for name, vs in found if vs]
    if sim.anomalies:
        kinds.append("sim-replies")
    if violations and not kinds:
        kinds.append("sim-other")
    workload = BroadcastWorkload
    results = check_all(ops, workload.checkers, per_checker=workload.checker_options)
    for name, result in results["checkers"].items():
        found = result.get("anomaly_types") or sorted(result.get("anomalies") or {})
        kinds += [f"{name}:{kind}" for kind in found]
    verdicts: list[bool | str] = [results["valid"], not violations]
    if cut_short is not None:
        verdicts.append("unknown")
    valid = merge_valid(verdicts)
    results = {**results, "valid": valid, "simulator": {"violations": violations[:50],
               "violation_count": len(violations), "cut_short": cut_short,
               "events": sim.events, "messages_sent": sum(sim.sent.values())}}  # fmt: skip
    counts: dict[str, int] = {}
    for op in ops:
        if op.is_client and op.type != "invoke":
            counts[op.type] = counts.get(op.type, 0) + 1
    return SeedResult(spec, valid, violations, kinds, results, ops, sim.now_ms,
                      time.perf_counter() - started, sim.events, cut_short, counts)  # fmt: skip
