"""Tests of the seeded simulator, and of per-slot Paxos run in it over many seeds and faults."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest

from tobtest.node.protocols.base import (
    ClientBroadcast,
    Deliver,
    Effects,
    Event,
    PeerMessage,
    Protocol,
    ProtocolConfig,
    Reply,
    Send,
    Tick,
)
from tobtest.node.protocols.paxos import PaxosProtocol
from tobtest.node.sim import Delivery, NetConfig, Request, Simulation

LOSSY = NetConfig(drop=0.1, duplicate=0.1, delay_ms=(1.0, 20.0), spike=0.05, spike_ms=300.0)
HARSH = NetConfig(drop=0.25, duplicate=0.3, delay_ms=(1.0, 60.0), spike=0.2, spike_ms=500.0)


def paxos_run(
    seed: int,
    n: int = 3,
    net: NetConfig = LOSSY,
    bugs: tuple[str, ...] = (),
    ops: int = 40,
    retry_after_ms: float | None = 300.0,
    reload_fraction: float = 0.5,
) -> Simulation:
    """Clients and faults for 2 s, then healed, everyone up and 4 s of quiet."""
    config = ProtocolConfig(bugs=frozenset(bugs))
    sim = Simulation(PaxosProtocol, n=n, seed=seed, config=config, net=net)
    sim.random_clients(ops, start_ms=0.0, end_ms=2_000.0, retry_after_ms=retry_after_ms)
    sim.random_faults(start_ms=0.0, end_ms=2_000.0, reload_fraction=reload_fraction)
    sim.run(2_000.0)
    sim.settle(quiet_ms=4_000.0)
    return sim


def unanswered(sim: Simulation) -> list[Request]:
    """Requests that reached a node which never crashed since, yet got no reply."""
    return [r for r in sim.requests.values() if r.sent and not r.lost and r.reply is None]


# ---- per-slot Paxos over many seeds ----------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "net", "seeds"),
    [
        (3, LOSSY, range(0, 100)),
        (3, HARSH, range(100, 150)),
        (5, LOSSY, range(150, 180)),
        (2, LOSSY, range(180, 195)),
        (1, HARSH, range(195, 200)),
    ],
    ids=["n3-lossy", "n3-harsh", "n5-lossy", "n2-lossy", "n1-harsh"],
)
def test_paxos_is_safe_and_live_under_faults(n: int, net: NetConfig, seeds: range) -> None:
    acked_total = 0
    for seed in seeds:
        sim = paxos_run(seed, n=n, net=net)
        problems = sim.violations() + [f"unanswered {r}" for r in unanswered(sim)]
        assert not sim.truncated, f"reproduce with seed {seed}"
        assert problems == [], f"reproduce with seed {seed}: {problems[:5]}"
        acked_total += sum(1 for r in sim.requests.values() if r.reply)
        assert len({len(d) for d in sim.deliveries}) == 1  # all caught up after the quiet
    assert acked_total > 20 * len(seeds)  # the runs did real work, not just faults


def test_a_seed_replays_exactly() -> None:
    first, second, other = paxos_run(11), paxos_run(11), paxos_run(12)
    assert first.trace == second.trace and len(first.trace) > 50
    assert first.sent == second.sent and first.events == second.events
    assert first.status() == second.status()
    assert first.trace != other.trace


@pytest.mark.parametrize(
    ("bug", "check"),
    [
        ("deliver-on-arrival", Simulation.check_prefix_compatible),
        ("no-dedupe", Simulation.check_no_duplicates),
        ("ack-on-choose", Simulation.check_acks),
    ],
)
def test_each_fixture_bug_is_caught_for_some_seeds(bug: str, check: Any) -> None:
    caught = [seed for seed in range(20) if check(paxos_run(seed, bugs=(bug,)))]
    assert caught, f"{bug} was never caught"
    for seed in caught[:3]:  # the same seeds are clean without the bug
        assert check(paxos_run(seed)) == []


def test_a_minority_makes_no_progress_until_healed() -> None:
    sim = Simulation(PaxosProtocol, n=3, seed=3, net=NetConfig(delay_ms=(1.0, 5.0)))
    sim.partition(0.0, Simulation.split([0], [1, 2]))
    cut_off = sim.broadcast(10.0, node=0)
    majority = sim.broadcast(10.0, node=1)
    sim.run(1_000.0)
    assert sim.requests[cut_off].reply is None and sim.requests[majority].reply is not None
    assert sim.deliveries[0] == []
    sim.heal(1_000.0)
    sim.run(3_000.0)
    assert sim.requests[cut_off].reply is not None
    assert sim.delivered_ids(0) == sim.delivered_ids(1) and len(sim.delivered_ids(0)) == 2
    assert sim.violations() == []


def test_a_node_restarted_from_its_records_rejoins() -> None:
    sim = Simulation(PaxosProtocol, n=3, seed=5, net=NetConfig(delay_ms=(1.0, 5.0)))
    for k in range(5):
        sim.broadcast(10.0 * k, node=k % 3)
    sim.crash(200.0, node=2)
    lost = sim.broadcast(300.0, node=2)
    for k in range(5):
        sim.broadcast(300.0 + 10.0 * k, node=k % 2)
    sim.restart(600.0, node=2, reload=True)
    sim.run(600.0)
    assert sim.persisted[2]
    sim.run(3_000.0)
    assert sim.requests[lost].lost and sim.requests[lost].reply is None
    status = sim.status()[2]
    assert status["delivered"] == len(sim.deliveries[2]) == 10
    assert sim.violations() == []


# ---- the simulator's own mechanics, with a trivial core ---------------------------------------


class Echo(Protocol):
    """Delivers each broadcast at once and tells every peer; records what it saw, and when."""

    name = "echo"

    def __init__(self, node_id: int, n: int, rng: random.Random, config: Any = None) -> None:
        super().__init__(node_id, n, rng, config)
        self.seen: list[tuple[float, Event]] = []
        self.delivered = 0

    def step(self, event: Event, now_ms: float) -> Effects:
        self.seen.append((now_ms, event))
        fx = Effects()
        if isinstance(event, ClientBroadcast):
            fx.deliver.append(Deliver(self.delivered, event.msg_id, event.value))
            fx.reply.append(
                Reply(
                    event.request_id,
                    {"type": "broadcast_ok", "msg_id": event.msg_id, "position": self.delivered},
                )
            )
            fx.send += [Send(p, {"type": "told", "about": (event.msg_id,)}) for p in self.peers()]
            self.delivered += 1
        return fx

    def status(self, now_ms: float) -> dict[str, Any]:
        return {"seen": len(self.seen)}


def echo_sim(net: NetConfig, n: int = 2, **kw: Any) -> Simulation:
    return Simulation(Echo, n=n, seed=1, config=ProtocolConfig(tick_ms=10.0), net=net, **kw)


def peer_messages(sim: Simulation, node: int) -> list[tuple[float, PeerMessage]]:
    core = sim.nodes[node].core
    assert isinstance(core, Echo)
    return [(t, e) for t, e in core.seen if isinstance(e, PeerMessage)]


def test_messages_arrive_within_the_delay_as_json() -> None:
    sim = echo_sim(NetConfig(delay_ms=(20.0, 30.0)))
    sim.broadcast(100.0, node=0, msg_id="a")
    sim.run(1_000.0)
    [(t, message)] = peer_messages(sim, 1)
    assert 120.0 <= t <= 130.0
    assert message.src == 0 and message.body == {"type": "told", "about": ["a"]}  # JSON: a list
    assert sim.requests[1].reply == {"type": "broadcast_ok", "msg_id": "a", "position": 0}


def test_drop_duplicate_and_one_way_partitions() -> None:
    dropped = echo_sim(NetConfig(drop=1.0))
    dropped.broadcast(0.0, node=0)
    dropped.run(100.0)
    assert peer_messages(dropped, 1) == [] and dropped.dropped == 1
    doubled = echo_sim(NetConfig(duplicate=1.0))
    doubled.broadcast(0.0, node=0)
    doubled.run(100.0)
    assert len(peer_messages(doubled, 1)) == 2
    one_way = echo_sim(NetConfig())
    one_way.partition(0.0, {(0, 1)})
    one_way.broadcast(10.0, node=0)
    one_way.broadcast(10.0, node=1)
    one_way.run(100.0)
    assert peer_messages(one_way, 1) == [] and len(peer_messages(one_way, 0)) == 1
    assert Simulation.split([0], [1, 2]) == {(0, 1), (0, 2), (1, 0), (2, 0)}


def test_ticks_clocks_pauses_and_crashes() -> None:
    sim = echo_sim(NetConfig(), n=1)
    sim.set_clock(100.0, node=0, rate=2.0, jump_ms=1_000.0)
    sim.pause(200.0, node=0)
    held = sim.broadcast(250.0, node=0)
    sim.resume(300.0, node=0)
    sim.crash(400.0, node=0)
    refused = sim.broadcast(450.0, node=0)
    sim.restart(500.0, node=0)
    sim.run(600.0)
    core = sim.nodes[0].core
    assert isinstance(core, Echo)
    ticks = [t for t, e in core.seen if not isinstance(e, ClientBroadcast)]
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert min(gaps) == pytest.approx(10.0)  # tick_ms apart before the clock change
    assert any(g == pytest.approx(20.0) for g in gaps)  # twice as fast after it
    assert any(g > 1_000.0 for g in gaps)  # the jump
    assert sim.requests[held].reply_ms == 300.0  # held while paused, handled at resume
    assert sim.requests[refused].lost and sim.requests[refused].reply is None
    # No ticks while paused (sim 200..300) or down (400..500): node time 1300..1500, 1700..1900.
    assert not any(1_301.0 < t < 1_499.0 or 1_701.0 < t < 1_899.0 for t in ticks)


class Alarm(Echo):
    """Echo whose core says a tick could matter only from `alarm_ms` on (its clock), or
    never (None)."""

    def __init__(self, *args: Any, alarm_ms: float | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.alarm_ms = alarm_ms

    def next_timer_ms(self, now_ms: float) -> float | None:
        return self.alarm_ms


def alarm_ticks(alarm_ms: float | None, rate: float = 1.0, every_tick: bool = False) -> list[float]:
    config = ProtocolConfig(tick_ms=10.0)
    sim = Simulation(partial(Alarm, alarm_ms=alarm_ms), n=1, seed=1, config=config,
                     every_tick=every_tick)  # fmt: skip
    sim.set_clock(0.0, node=0, rate=rate)
    sim.broadcast(50.0, node=0)  # a step between ticks: the timer is asked again
    sim.run(400.0)
    core = sim.nodes[0].core
    assert isinstance(core, Alarm)
    return [t for t, e in core.seen if isinstance(e, Tick)]


def test_a_core_is_ticked_only_from_the_time_its_timer_names() -> None:
    every = alarm_ticks(None, every_tick=True)  # the real node's ticker: every 10 ms
    gaps = [b - a for a, b in zip(every, every[1:], strict=False)]
    assert len(every) == 40 and gaps == pytest.approx([10.0] * 39)
    assert alarm_ticks(None) == []  # nothing due: no tick at all, the broadcast still runs
    # From the first point of the same grid at or after 333 ms on, every point (still due).
    assert alarm_ticks(333.0) == [t for t in every if t >= 333.0]
    # A clock twice as fast reaches 500 at 250 ms of virtual time.
    assert alarm_ticks(500.0, rate=2.0) == [2.0 * t for t in every if t >= 250.0]


def test_runs_are_bounded() -> None:
    sim = echo_sim(NetConfig(), max_events=50)
    sim.run(10_000.0)
    assert sim.truncated and sim.events == 50
    timed = echo_sim(NetConfig(), max_time_ms=100.0)
    timed.run(10_000.0)
    assert timed.truncated and timed.now_ms == 100.0


def test_checks_catch_hand_made_anomalies() -> None:
    sim = echo_sim(NetConfig(), n=2)
    assert sim.violations() == []
    sim.deliveries[0] = [Delivery(0, "a", "a", 1.0), Delivery(1, "b", "b", 2.0)]
    sim.deliveries[1] = [Delivery(0, "b", "b", 1.0), Delivery(1, "b", "b", 2.0)]
    assert sim.check_prefix_compatible() == ["node 1 order diverges from the longest at position 0"]
    assert sim.check_no_duplicates() == ["node 1 delivered b more than once"]
    early = Request(1, "broadcast", 0, 0.0, msg_id="a", value="a", reply_ms=0.5)
    early.reply = {"type": "broadcast_ok", "msg_id": "a", "position": 0}  # delivered later
    missing = Request(2, "broadcast", 0, 0.0, msg_id="c", value="c", reply_ms=3.0)
    missing.reply = {"type": "broadcast_ok", "msg_id": "c", "position": 1}
    stale = Request(3, "read", 1, 5.0, mode="log", reply={"type": "read_ok", "value": ["a"]})
    crooked = Request(4, "read", 1, 5.0, mode="local", reply={"type": "read_ok", "value": ["b"]})
    sim.requests = {r.request_id: r for r in (early, missing, stale, crooked)}
    assert len(sim.check_acks()) == 2
    assert sim.check_acked_everywhere() == [
        "acked c never delivered at node 0",
        "acked a never delivered at node 1",
        "acked c never delivered at node 1",
    ]
    assert sim.check_reads() == [
        "log read 3 misses acked ['c']",
        "read 4 is not a prefix of the delivered order",
    ]
