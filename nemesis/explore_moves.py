"""The moves of the exploring nemesis: one fault kind at a time, aimed at protocol roles.

    move = MOVES_BY_NAME["isolate-leader"]
    value, undo = await move.start(explorer)   # fault in force; value says what, to whom
    ...                                          # hold it
    await undo()                                 # and lift it

Each move is one of Jepsen's fault kinds (partition, kill, pause, clock, link) or a short
sequence of them that reaches a state where recovery code runs: a leader deposed while its
accepts are in flight (`stall-leader`, `depose-and-crash`, `flip`), short frequent leader
changes (`leader-churn`), each new leader cut off in its first round trips (`leader-hop`),
a deposed leader whose messages arrive late (`delay-leader`), an acceptor killed while it
holds accepted-unchosen slots (`kill-unchosen`), a lease holder cut off while its clock
runs slow and the others' fast (`lease-race`). Targets are bound to roles from the nodes'
status (`leader`, `follower`); where no node claims to lead (per-slot Paxos), a random node
stands in. Every draw comes from the explorer's seeded rng. Clock moves stay within the
nodes' stated drift bound while lease reads are checked (beyond it a correct lease is
allowed to fail), and go further when they are not.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tobtest.nemesis.grudge import PARTITION_SHAPES, complete_grudge, isolate

if TYPE_CHECKING:
    from tobtest.nemesis.explore import ExploringNemesis

Undo = Callable[[], Awaitable[Any]]
WAIT_POLL_S = 0.02
# How often a move that waits for a new leader polls: a new leader's first round trips (its
# first appends, its no-op, the first accepts of its recovery) take tens of milliseconds
# under the weather, and a move timed "just after an election" must land inside them.
ELECT_POLL_S = 0.005
# How soon after taking the lead a hopped leader is cut off (log-uniform, in seconds):
# from inside its first round trip to after a few heartbeats.
HOP_AFTER_S = (0.001, 0.4)
HOPS = (2, 5)  # how many leaders in a row a hop cuts off
# A move timed inside a new leader's first round trips slows every link for its length
# when no weather is in force (latency log-uniform in this range, each link its own within
# a third to three times of it): on calm loopback a round trip takes well under a
# millisecond, and there is no "inside" to land in.
ROUND_TRIP_MS = (20.0, 150.0)
FLAP_S = (1.0, 4.0)  # how long the network flaps
FLAP_STEP_MS = (20.0, 400.0)  # how long each partition (or heal) of a flap lasts
STARVE_PERIOD_MS = (10, 20, 50, 100)  # a starved node's duty cycle
STARVE_STOPPED = (0.3, 0.9)  # the share of each period it spends stopped
ELECT_WAIT_S = 3.0  # how long a move waits for another node to take the lead
WINDOW_WAIT_S = 1.5  # how long kill-unchosen waits for a node holding unchosen accepts


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Move:
    name: str
    kind: str  # partition | kill | pause | clock | link | sequence (of several kinds)
    start: Callable[[ExploringNemesis], Awaitable[tuple[dict[str, Any], Undo]]]
    # What it acts on: "net" (partitions), "link" (toxics), "proc" (kill, pause), "clock".
    # A move may run inside another's hold only if the two share none of these.
    uses: frozenset[str] = frozenset()
    # Only offered when the run checks lease reads (False) or does not (True); None: always.
    wild_clock: bool | None = None


def log_uniform(rng: Any, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


# ---- targets ------------------------------------------------------------------------------


async def leader_or_random(ex: ExploringNemesis) -> tuple[str, bool]:
    """The node that leads now (fresh status), or a random running node; True if a leader."""
    await ex.observer.poll()
    running = ex.ctx.faults.running() or list(ex.ctx.node_names)
    fallback = ex.rng.choice(running)  # drawn either way, so the stream does not depend on it
    leader = ex.observer.leader()
    return (leader, True) if leader in running else (fallback, False)


def others(ex: ExploringNemesis, node: str) -> list[str]:
    return [n for n in ex.ctx.node_names if n != node]


async def wait_for_new_leader(ex: ExploringNemesis, old: str, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await ex.observer.poll()
        leaders = [n for n in (ex.observer.last.leaders if ex.observer.last else []) if n != old]
        if leaders:
            return leaders[0]
        await asyncio.sleep(ELECT_POLL_S)
    return None


# ---- partitions ---------------------------------------------------------------------------


async def isolate_leader(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    node, is_leader = await leader_or_random(ex)
    grudge = await ex.ctx.faults.partition(isolate(ex.ctx.node_names, [node]))
    return {"nodes": [node], "leader": is_leader, "grudge": grudge}, ex.ctx.faults.heal


async def isolate_one(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    node = ex.rng.choice(list(ex.ctx.node_names))
    grudge = await ex.ctx.faults.partition(isolate(ex.ctx.node_names, [node]))
    return {"nodes": [node], "grudge": grudge}, ex.ctx.faults.heal


async def split(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    shape = ex.rng.choice(sorted(PARTITION_SHAPES))
    grudge = await ex.ctx.faults.partition(PARTITION_SHAPES[shape](ex.ctx.node_names, ex.rng))
    return {"shape": shape, "grudge": grudge}, ex.ctx.faults.heal


async def mute_leader(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """One way: the others stop hearing the leader, which still hears them (and so hears
    the ballot that deposes it)."""
    node, is_leader = await leader_or_random(ex)
    grudge = await ex.ctx.faults.partition({n: [node] for n in others(ex, node)})
    return {"nodes": [node], "leader": is_leader, "grudge": grudge}, ex.ctx.faults.heal


async def deaf_leader(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """One way: the leader stops hearing the others, whose grants its heartbeats renew."""
    node, is_leader = await leader_or_random(ex)
    grudge = await ex.ctx.faults.partition({node: others(ex, node)})
    return {"nodes": [node], "leader": is_leader, "grudge": grudge}, ex.ctx.faults.heal


async def leader_churn(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Short, frequent leader changes: isolate whoever leads until another node takes
    over (or a while passes), heal at once, again, two to four times."""
    deposed: list[str] = []
    for _ in range(ex.rng.randint(2, 4)):
        node, is_leader = await leader_or_random(ex)
        await ex.ctx.faults.partition(isolate(ex.ctx.node_names, [node]))
        if is_leader:
            await wait_for_new_leader(ex, node, ELECT_WAIT_S)
        else:
            await asyncio.sleep(ex.rng.uniform(0.3, 1.0))
        await ex.ctx.faults.heal()
        deposed.append(node)
        await asyncio.sleep(ex.rng.uniform(0.0, 0.3))
    return {"nodes": deposed}, _nothing


async def slow_round_trips(ex: ExploringNemesis) -> float | None:
    """Under calm weather, slows every link (see ROUND_TRIP_MS); the latency drawn, or None
    when weather is in force already (its own latency does the same)."""
    if ex.stormy:
        return None
    delay = log_uniform(ex.rng, *ROUND_TRIP_MS)
    names = list(ex.ctx.node_names)
    links = []
    for src in names:
        for dst in (n for n in names if n != src):
            link_ms = round(delay * log_uniform(ex.rng, 1.0 / 3.0, 3.0), 1)
            links.append({"src": src, "dst": dst, "delay_ms": link_ms,
                          "jitter_ms": round(link_ms * ex.rng.uniform(0.0, 0.3), 1)})  # fmt: skip
    await ex.ctx.faults.link(links)
    return round(delay, 1)


def _heal_and_calm(ex: ExploringNemesis, slowed: float | None) -> Undo:
    async def undo() -> None:
        await ex.ctx.faults.heal()
        if slowed is not None:
            await ex.ctx.faults.link_clear()

    return undo


async def leader_hop(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Each new leader is cut off in its first round trips, two to five times in a row:
    whoever leads is isolated a moment after it took the lead (from within its first round
    trip to a few heartbeats later), every other node, the previously cut-off one included,
    on the other side, until one of them leads; then that one is cut off in turn. Leaders
    that held the lead for a moment each, with entries or accepts of their own that reached
    few nodes, meet again as candidates and as each other's voters: the states where a
    leader's recovery of its predecessors' work (which entries count as committed, which
    accepted value to carry on) decides what survives."""
    hopped: list[str] = []
    slowed = await slow_round_trips(ex)
    node, is_leader = await leader_or_random(ex)
    for _ in range(ex.rng.randint(*HOPS)):
        await asyncio.sleep(log_uniform(ex.rng, *HOP_AFTER_S))
        await ex.ctx.faults.partition(isolate(ex.ctx.node_names, [node]))
        hopped.append(node)
        new = await wait_for_new_leader(ex, node, ELECT_WAIT_S) if is_leader else None
        if new is None:
            # No leader (per-slot Paxos, or no election in time): hop to a random node.
            rest = [n for n in ex.ctx.faults.running() if n != node] or [node]
            node, is_leader = ex.rng.choice(rest), False
            await asyncio.sleep(ex.rng.uniform(0.1, 0.5))
        else:
            node = new
    return {"nodes": hopped, "slowed_ms": slowed}, _heal_and_calm(ex, slowed)


async def flap(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """A flapping network: for a second or a few, the partition changes every few tens to
    hundreds of milliseconds (a drawn shape, a one-way cut of one link, or healed), so
    that the changes land inside rounds: accepts that reach some acceptors and not others,
    replies lost after their request took effect, a decision one node never hears (the
    proxy drops a message cut off while it is delayed). Ends healed."""
    names = list(ex.ctx.node_names)
    until = ex.now() + ex.rng.uniform(*FLAP_S)
    changes = cuts = heals = 0
    while ex.now() < until:
        draw = ex.rng.random()
        if draw < 0.3:
            await ex.ctx.faults.heal()
            heals += 1
        elif draw < 0.6:
            src, dst = ex.rng.sample(names, 2)
            await ex.ctx.faults.partition({dst: [src]})
            cuts += 1
        else:
            shape = ex.rng.choice(sorted(PARTITION_SHAPES))
            await ex.ctx.faults.partition(PARTITION_SHAPES[shape](names, ex.rng))
        changes += 1
        await asyncio.sleep(log_uniform(ex.rng, *FLAP_STEP_MS) / 1000.0)
    await ex.ctx.faults.heal()
    return {"changes": changes, "one_way_cuts": cuts, "heals": heals}, _nothing


# ---- processes ----------------------------------------------------------------------------


def _restart_undo(ex: ExploringNemesis, nodes: list[str]) -> Undo:
    async def undo() -> list[str]:
        return await ex.ctx.faults.restart(nodes)

    return undo


async def _kill(ex: ExploringNemesis, nodes: list[str], **value: Any) -> tuple[dict, Undo]:
    logs = {n: (ex.observer.status(n) or {}).get("delivered") for n in nodes}
    killed = await ex.ctx.faults.kill(nodes)
    ex.note_restart_with_log(killed, logs)
    return {"nodes": killed, **value}, _restart_undo(ex, killed)


async def kill_leader(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    node, is_leader = await leader_or_random(ex)
    return await _kill(ex, [node], leader=is_leader)


async def kill_follower(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    node, _ = await leader_or_random(ex)
    rest = [n for n in ex.ctx.faults.running() if n != node] or [node]
    return await _kill(ex, [ex.rng.choice(rest)])


async def kill_minority(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    names = list(ex.ctx.node_names)
    count = max(1, (len(names) - 1) // 2)
    return await _kill(ex, sorted(ex.rng.sample(names, count)))


async def kill_majority(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    names = list(ex.ctx.node_names)
    return await _kill(ex, sorted(ex.rng.sample(names, len(names) // 2 + 1)))


async def kill_all(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Every node at once: a power cut of the whole cluster (what fsync is for)."""
    return await _kill(ex, list(ex.ctx.node_names))


async def kill_unchosen(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Kills a node the moment it holds a value it accepted and does not know chosen
    (status `accepted_unchosen`), so only its durable promise and accept guard that value
    when it comes back; a random node if that moment does not come soon."""
    deadline = time.monotonic() + WINDOW_WAIT_S
    fallback = ex.rng.choice(list(ex.ctx.node_names))
    while time.monotonic() < deadline:
        obs = await ex.observer.poll()
        holding = sorted(
            n
            for n, s in obs.statuses.items()
            if s and (s.get("accepted_unchosen") or 0) > 0 and n in ex.ctx.faults.running()
        )
        followers = [n for n in holding if n not in obs.leaders]
        if holding:
            return await _kill(ex, [(followers or holding)[0]], in_window=True)
        await asyncio.sleep(WAIT_POLL_S / 4)
    return await _kill(ex, [fallback], in_window=False)


async def pause_leader(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    node, is_leader = await leader_or_random(ex)
    paused = await ex.ctx.faults.pause([node])

    async def undo() -> list[str]:
        return await ex.ctx.faults.resume(paused)

    return {"nodes": paused, "leader": is_leader}, undo


async def pause_follower(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    node, _ = await leader_or_random(ex)
    rest = [n for n in ex.ctx.faults.running() if n != node] or [node]
    paused = await ex.ctx.faults.pause([ex.rng.choice(rest)])

    async def undo() -> list[str]:
        return await ex.ctx.faults.resume(paused)

    return {"nodes": paused}, undo


async def stall_leader(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """The leader freezes (a long GC pause) while replies to it are on their way, is cut
    off while frozen, and wakes still cut off, believing what it believed: its lease, its
    leadership, and the replies it finds waiting. On loopback a reply is in flight for well
    under a millisecond, so the links into the leader are slowed first (congestion before
    the pause), and the replies already sent arrive while it is frozen."""
    node, is_leader = await leader_or_random(ex)
    delay = round(log_uniform(ex.rng, 20.0, 150.0))
    inbound = [{"src": n, "dst": node, "delay_ms": delay} for n in others(ex, node)]
    await ex.ctx.faults.link(inbound)
    await asyncio.sleep(ex.rng.uniform(0.05, 0.3))
    paused = await ex.ctx.faults.pause([node])
    await asyncio.sleep(ex.rng.uniform(0.1, 0.5))  # replies already on their way get buffered
    await ex.ctx.faults.partition(isolate(ex.ctx.node_names, [node]))
    awake_s = ex.rng.uniform(0.3, 1.5)

    async def undo() -> None:
        await ex.ctx.faults.resume(paused)
        await asyncio.sleep(awake_s)
        await ex.ctx.faults.heal()
        await ex.ctx.faults.link_clear()

    value = {"nodes": [node], "leader": is_leader, "inbound_delay_ms": delay}
    return {**value, "cut_off_awake_s": round(awake_s, 3)}, undo


async def starve(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """A node starved of CPU for the hold (a noisy neighbour, GC thrash): stopped for most
    of every few tens of milliseconds, so it keeps working, late. The leader half the time:
    its heartbeats and lease renewals slip while its clock runs on; else any node, whose
    promises and accepts then trail the others'."""
    node, is_leader = await leader_or_random(ex)
    if ex.rng.random() < 0.5:
        node, is_leader = ex.rng.choice(list(ex.ctx.node_names)), False
    period_ms = float(ex.rng.choice(STARVE_PERIOD_MS))
    stopped_ms = round(period_ms * ex.rng.uniform(*STARVE_STOPPED), 1)
    throttled = await ex.ctx.faults.throttle([node], stopped_ms, period_ms)

    async def undo() -> list[str]:
        return await ex.ctx.faults.unthrottle(throttled)

    value = {"nodes": throttled, "leader": is_leader, "stopped_ms": stopped_ms}
    return {**value, "period_ms": period_ms}, undo


async def depose_and_crash(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Isolates the leader; once another node leads, kills one of its followers (it just
    promised the new ballot) and brings it back on the old leader's side of a flipped
    partition, briefly, before healing: recovery of a promise, against a stale leader."""
    slowed = await slow_round_trips(ex)
    old, is_leader = await leader_or_random(ex)
    await ex.ctx.faults.partition(isolate(ex.ctx.node_names, [old]))
    new = await wait_for_new_leader(ex, old, ELECT_WAIT_S) if is_leader else None
    rest = [n for n in ex.ctx.faults.running() if n not in (old, new)]
    value = {"old_leader": old, "new_leader": new, "slowed_ms": slowed}
    if not rest:
        return {**value, "restarted": []}, _heal_and_calm(ex, slowed)
    victim = ex.rng.choice(rest)
    # From inside the new leader's first round trip (its first append or accept not yet
    # on the victim, which has only promised or voted) to after it settled.
    await asyncio.sleep(log_uniform(ex.rng, *HOP_AFTER_S))
    await ex.ctx.faults.kill([victim])
    side = [old, victim]
    await ex.ctx.faults.partition(
        complete_grudge([side, [n for n in ex.ctx.node_names if n not in side]])
    )
    await ex.ctx.faults.restart([victim])
    return {**value, "restarted": [victim]}, _heal_and_calm(ex, slowed)


async def flip(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    value = await ex.flip.start(ex.ctx)

    async def undo() -> Any:
        return await ex.flip.stop(ex.ctx)

    return dict(value), undo


# ---- links --------------------------------------------------------------------------------


def _link_undo(ex: ExploringNemesis) -> Undo:
    return ex.ctx.faults.link_clear


async def delay_leader(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Delays (does not drop) everything the leader sends by more than an election
    timeout: the others elect a new leader while the old one's accepts and heartbeats are
    still on their way, and get them late."""
    node, is_leader = await leader_or_random(ex)
    delay = round(log_uniform(ex.rng, 300.0, 2000.0))
    toxic = {"delay_ms": delay, "jitter_ms": round(delay * ex.rng.uniform(0.0, 0.3))}
    faults = [{"src": node, "dst": d, **toxic} for d in others(ex, node)]
    await ex.ctx.faults.link(faults)
    return {"nodes": [node], "leader": is_leader, "toxic": "delay", "faults": faults}, _link_undo(
        ex
    )


async def slow_node(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    node = ex.rng.choice(list(ex.ctx.node_names))
    delay = round(log_uniform(ex.rng, 10.0, 300.0))
    toxic = {"delay_ms": delay, "jitter_ms": round(delay * ex.rng.uniform(0.0, 1.0))}
    faults = [
        {"src": s, "dst": d, **toxic}
        for s in ex.ctx.node_names
        for d in ex.ctx.node_names
        if s != d and node in (s, d)
    ]
    await ex.ctx.faults.link(faults)
    return {"nodes": [node], "toxic": "delay", "faults": faults}, _link_undo(ex)


async def flaky_links(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Loss, duplication or reordering on a random set of links."""
    names = list(ex.ctx.node_names)
    pairs = [(s, d) for s in names for d in names if s != d]
    links = sorted(ex.rng.sample(pairs, ex.rng.randint(1, len(pairs))))
    kind = ex.rng.choice(("loss", "duplicate", "reorder"))
    toxic: dict[str, Any] = {kind: ex.rng.choice((0.2, 0.4, 0.6))}
    if kind == "reorder":
        toxic["reorder_hold_ms"] = ex.rng.choice((10, 50, 150))
    faults = [{"src": s, "dst": d, **toxic} for s, d in links]
    await ex.ctx.faults.link(faults)
    return {"toxic": kind, "faults": faults}, _link_undo(ex)


# ---- clocks -------------------------------------------------------------------------------


def _clock_undo(ex: ExploringNemesis, nodes: list[str]) -> Undo:
    async def undo() -> list[str]:
        return await ex.ctx.faults.clock_reset(nodes)

    return undo


async def lease_race(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """The lease's worst case within the clock assumption: the leader's clock runs slow
    and the others' fast (rates within 1 +- drift bound), then the leader is cut off from
    its peers (its clients still reach it) until another node leads."""
    rho = ex.clock_bound()
    node, is_leader = await leader_or_random(ex)
    u = ex.rng.uniform(0.6, 1.0)
    requests = {n: {"op": "skew", "rate": round(1.0 + rho * u, 4)} for n in others(ex, node)}
    requests[node] = {"op": "skew", "rate": round(1.0 - rho * u, 4)}
    applied = await ex.ctx.faults.clock(requests)
    await asyncio.sleep(ex.rng.uniform(0.0, 0.3))
    await ex.ctx.faults.partition(isolate(ex.ctx.node_names, [node]))
    new = await wait_for_new_leader(ex, node, ELECT_WAIT_S) if is_leader else None

    async def undo() -> None:
        await ex.ctx.faults.heal()
        await ex.ctx.faults.clock_reset(list(applied))

    return {"nodes": applied, "leader": node if is_leader else None, "new_leader": new}, undo


async def skew_one(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    rho = ex.clock_bound()
    node = ex.rng.choice(list(ex.ctx.node_names))
    rate = round(1.0 + rho * ex.rng.uniform(-1.0, 1.0), 4)
    applied = await ex.ctx.faults.clock({node: {"op": "skew", "rate": rate}})
    return {"nodes": applied}, _clock_undo(ex, list(applied))


async def wild_clock(ex: ExploringNemesis) -> tuple[dict[str, Any], Undo]:
    """Beyond any drift bound (offered only when no read depends on clocks): jumps,
    strobes and rates from 0.3x to 3x, on the leader or on others."""
    node, _ = await leader_or_random(ex)
    targets = [node] if ex.rng.random() < 0.5 else others(ex, node)
    fault = ex.rng.choice(("bump", "strobe", "skew"))
    requests: dict[str, dict[str, Any]] = {}
    for name in targets:
        if fault == "bump":
            delta = log_uniform(ex.rng, 50.0, 3000.0) * ex.rng.choice((-1, 1))
            requests[name] = {"op": "bump", "delta_ms": round(delta, 1)}
        elif fault == "strobe":
            requests[name] = {
                "op": "strobe",
                "delta_ms": round(log_uniform(ex.rng, 50.0, 2000.0), 1),
                "period_ms": ex.rng.choice((5, 20, 100)),
                "duration_ms": ex.rng.choice((1000, 3000)),
            }
        else:
            requests[name] = {"op": "skew", "rate": ex.rng.choice((0.3, 0.5, 2.0, 3.0))}
    applied = await ex.ctx.faults.clock(requests)
    return {"fault": fault, "nodes": applied}, _clock_undo(ex, list(applied))


NET, LINK, PROC, CLOCK = (frozenset({x}) for x in ("net", "link", "proc", "clock"))
MOVES: tuple[Move, ...] = (
    Move("isolate-leader", "partition", isolate_leader, NET),
    Move("isolate-one", "partition", isolate_one, NET),
    Move("split", "partition", split, NET),
    Move("mute-leader", "partition", mute_leader, NET),
    Move("deaf-leader", "partition", deaf_leader, NET),
    Move("flap", "partition", flap, NET),
    Move("kill-leader", "kill", kill_leader, PROC),
    Move("kill-follower", "kill", kill_follower, PROC),
    Move("kill-minority", "kill", kill_minority, PROC),
    Move("kill-majority", "kill", kill_majority, PROC),
    Move("kill-all", "kill", kill_all, PROC),
    Move("kill-unchosen", "kill", kill_unchosen, PROC),
    Move("pause-leader", "pause", pause_leader, PROC),
    Move("pause-follower", "pause", pause_follower, PROC),
    Move("stall-leader", "pause", stall_leader, PROC | NET | LINK),
    Move("starve", "pause", starve, PROC),
    Move("delay-leader", "link", delay_leader, LINK),
    Move("slow-node", "link", slow_node, LINK),
    Move("flaky-links", "link", flaky_links, LINK),
    Move("lease-race", "clock", lease_race, CLOCK | NET),
    Move("skew-one", "clock", skew_one, CLOCK),
    Move("wild-clock", "clock", wild_clock, CLOCK, wild_clock=True),
    Move("leader-churn", "sequence", leader_churn, NET),
    Move("leader-hop", "sequence", leader_hop, NET | LINK),
    Move("depose-and-crash", "sequence", depose_and_crash, NET | PROC | LINK),
    Move("flip", "sequence", flip, NET | PROC),
)
MOVES_BY_NAME: dict[str, Move] = {m.name: m for m in MOVES}
KINDS: tuple[str, ...] = tuple(dict.fromkeys(m.kind for m in MOVES))
