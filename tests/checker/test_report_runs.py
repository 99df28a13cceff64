"""Realistic run folders without a cluster, for the report, `show` and `serve` tests.

    run_dir = make_run(store, "paxos-broadcast-partition", "20260101T120000", seed=3, bug=True)
    run_dir = make_explore_run(store, "multipaxos-broadcast-explore", "20260101T120000", seed=3)

`simulate_broadcast_run` plays a 3-node TOB at `rate` ops/s over `concurrency` clients with
one partition that isolates n1, and records the history a real run would (nemesis ops with
their grudges, `info` timeouts after which the client goes on as a new process, final reads
after healing). With `bug=True` the isolated node acks broadcasts on arrival, as the paxos
node's `deliver-on-arrival` fixture bug does, so its order diverges: incompatible-order and
realtime anomalies. The run folder's results.json is what the real total-order checker says
of that history (nothing is hard-coded), and node logs, status files and the `latest` links
are laid out as the runner lays them. `make_explore_run` does the same under the exploring
nemesis (`--nemesis all`): its partition becomes the move `isolate-leader`, a `kill-leader`
comes before it, each with the `situations` it struck in, and results.json holds the
`exploration` summary the explorer would write.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import os
import random
from pathlib import Path
from typing import Any

import yaml

from tobtest.checker.compose import check_all
from tobtest.histories.op import NEMESIS, Op

NODES = ("n1", "n2", "n3")
ISOLATED = "n1"
OP_TIMEOUT_NS = 2_000_000_000
MS = 1_000_000


class _Sim:
    def __init__(self, rng: random.Random, concurrency: int, bug: bool) -> None:
        self.rng, self.bug, self.concurrency = rng, bug, concurrency
        self.ops: list[Op] = []
        self.events: list[tuple[int, int, str, Any]] = []
        self.seq = 0
        self.order: list[int] = []  # the majority's order
        self.positions: dict[int, int] = {}  # value -> its place in `order`
        self.frozen: list[int] | None = None  # what the isolated node had when cut off
        self.extra: list[int] = []  # bug: broadcasts the isolated node delivered on arrival
        self.diverged: list[int] | None = None  # bug: the isolated node's order after healing
        self.partitioned = False
        self.processes = list(range(concurrency))
        self.busy: set[int] = set()
        self.next_value = 0

    def at(self, t: int, kind: str, data: Any = None) -> None:
        heapq.heappush(self.events, (t, self.seq, kind, data))
        self.seq += 1

    def record(self, t: int, type_: str, process: Any, f: str, value: Any, **extra: Any) -> Op:
        node = extra.pop("node", None)
        error = extra.pop("error", None)
        op = Op(len(self.ops), t, type_, process, f, value, node, error, extra)
        self.ops.append(op)
        return op

    def sequence(self, value: int) -> None:
        if value not in self.positions:
            self.positions[value] = len(self.order)
            self.order.append(value)

    def view(self, node: str) -> list[int]:
        if node != ISOLATED:
            return list(self.order)
        if self.diverged is not None:
            seen = set(self.diverged)
            return self.diverged + [v for v in self.order if v not in seen]
        if self.frozen is not None:
            return self.frozen + self.extra
        return list(self.order)

    def invoke(self, t: int) -> None:
        idle = [s for s in range(self.concurrency) if s not in self.busy]
        if not idle:
            return
        slot, node = self.rng.choice(idle), self.rng.choice(NODES)
        process = self.processes[slot]
        self.busy.add(slot)
        if self.rng.random() < 0.1:
            self.record(t, "invoke", process, "read", None, node=node, read_mode="local")
            self.at(t + self.rng.randint(MS // 2, 2 * MS), "read", (slot, node))
            return
        value, self.next_value = self.next_value, self.next_value + 1
        self.record(t, "invoke", process, "broadcast", value, node=node)
        if self.partitioned and node == ISOLATED:
            if self.bug:
                self.extra.append(value)
                position = len(self.view(node)) - 1
                self.at(t + self.rng.randint(MS, 3 * MS), "ok", (slot, value, node, position))
            else:
                self.at(t + OP_TIMEOUT_NS, "info", (slot, value, node))
            return
        latency = int(self.rng.lognormvariate(1.4, 0.35) * MS) * (2 if self.partitioned else 1)
        self.at(t + latency * 4 // 5, "sequence", value)
        self.at(t + latency, "ok", (slot, value, node, None))

    def handle(self, t: int, kind: str, data: Any) -> None:
        if kind == "tick":
            self.invoke(t)
        elif kind == "sequence":
            self.sequence(data)
        elif kind == "ok":
            slot, value, node, position = data
            if position is None:
                position = self.positions.get(value)
            extra = {} if position is None else {"position": position}
            self.record(t, "ok", self.processes[slot], "broadcast", value, node=node, **extra)
            self.busy.discard(slot)
        elif kind == "info":
            slot, value, node = data
            process = self.processes[slot]
            self.record(t, "info", process, "broadcast", value, node=node, error="timeout")
            self.processes[slot] = process + self.concurrency
            self.busy.discard(slot)
            if self.rng.random() < 0.5:  # indeterminate: some land after the heal
                self.at(t + 400 * MS, "late", value)
        elif kind == "late":
            self.sequence(data)
        elif kind == "nemesis-ok":
            self.nemesis_ok(t, data)
        elif kind == "read":
            slot, node = data
            process = self.processes[slot]
            self.record(t, "ok", process, "read", self.view(node), node=node, read_mode="local")
            self.busy.discard(slot)
        else:
            self.nemesis(t, kind)

    def nemesis(self, t: int, kind: str) -> None:
        """Invokes a fault; it is in place, and recorded ok, 2 ms later."""
        f = {"start": "start-partition", "stop": "stop-partition", "heal": "heal-partition"}[kind]
        self.record(t, "invoke", NEMESIS, f, None)
        self.at(t + 2 * MS, "nemesis-ok", kind)

    def nemesis_ok(self, t: int, kind: str) -> None:
        f = {"start": "start-partition", "stop": "stop-partition", "heal": "heal-partition"}[kind]
        if kind == "start":
            self.partitioned, self.frozen = True, list(self.order)
            others = [n for n in NODES if n != ISOLATED]
            grudge = {ISOLATED: others, **{n: [ISOLATED] for n in others}}
            value: Any = {"shape": "one", "grudge": grudge}
        else:
            if self.partitioned and self.bug:
                self.diverged = (self.frozen or []) + self.extra
                for v in self.extra:
                    self.sequence(v)
            self.partitioned, self.frozen, self.extra = False, None, []
            value = {"grudge": {}}
        self.record(t, "ok", NEMESIS, f, value)


def simulate_broadcast_run(
    rng: random.Random,
    duration_s: float = 10.0,
    rate: float = 50.0,
    concurrency: int = 6,
    partition_s: tuple[float, float] = (4.0, 7.5),
    bug: bool = False,
) -> list[Op]:
    sim = _Sim(rng, concurrency, bug)
    end = int(duration_s * 1e9)
    t0 = 300 * MS
    for k in range(int(duration_s * rate)):
        sim.at(t0 + int(k * 1e9 / rate) + rng.randint(0, MS), "tick")
    sim.at(t0 + int(partition_s[0] * 1e9), "start")
    sim.at(t0 + int(partition_s[1] * 1e9), "stop")
    while sim.events and sim.events[0][0] <= t0 + end + OP_TIMEOUT_NS:
        t, _, kind, data = heapq.heappop(sim.events)
        sim.handle(t, kind, data)
    t = max(op.time_ns for op in sim.ops) + 5 * MS
    sim.events = [e for e in sim.events if e[2] == "late"]  # the clients have stopped
    sim.nemesis(t, "heal")
    while sim.events:  # late arrivals land while the cluster quiesces
        t, _, kind, data = heapq.heappop(sim.events)
        sim.handle(t, kind, data)
    t += 1_000 * MS
    first = max(sim.processes) + 1
    for i, node in enumerate(NODES):
        sim.record(
            t + i * 100_000,
            "invoke",
            first + i,
            "read",
            None,
            node=node,
            read_mode="local",
            final=True,
        )
    for i, node in enumerate(NODES):
        sim.record(
            t + 2 * MS + i * 100_000,
            "ok",
            first + i,
            "read",
            sim.view(node),
            node=node,
            read_mode="local",
            final=True,
        )
    return sim.ops


def run_config(test_name: str, seed: int, bug: bool, concurrency: int = 6) -> dict[str, Any]:
    return {
        "nodes": 3,
        "protocol": "paxos",
        "workload": "broadcast",
        "nemesis": ["partition"],
        "nemesis_interval_s": 5.0,
        "time_limit_s": 10.0,
        "rate": 50.0,
        "concurrency": concurrency,
        "read_modes": ["local"],
        "seed": seed,
        "bugs": ["deliver-on-arrival"] if bug else [],
        "op_timeout_s": 2.0,
        "test_name": test_name,
    }


def write_run(
    store: Path,
    test_name: str,
    stamp: str,
    history: list[Op],
    config: dict[str, Any],
    checkers: tuple[str, ...] = ("total-order",),
    partial: bool = False,
) -> Path:
    """Lays out a run folder as the runner does; `partial`: killed before checking."""
    run_dir = store / test_name / stamp
    (run_dir / "nodes").mkdir(parents=True)
    (run_dir / "test.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    lines = "".join(op.to_json() + "\n" for op in history)
    if partial:  # the recorder was killed mid-line
        lines += '{"index":' + str(len(history)) + ',"time_ns":99,"type":"inv'
    (run_dir / "history.jsonl").write_text(lines)
    for i, node in enumerate(NODES):
        (run_dir / "nodes" / f"{node}.log").write_text(
            f"2026-01-01 12:00:00,000 {node} INFO {node} up: protocol=paxos pid={4000 + i}\n"
        )
        status = {"type": "status_ok", "role": "proposer", "delivered": 100 + i, "max_ballot": 7}
        (run_dir / "nodes" / f"{node}.status.json").write_text(json.dumps(status))
    (run_dir / "proxy.log").write_text("tobtest proxy: listening on 127.0.0.1\n")
    if not partial:
        results = check_all(history, list(checkers))
        seed = config.get("seed")
        results["seed"] = seed
        results["reproduce"] = f"tobtest run --nemesis partition --time-limit 10 --seed {seed}"
        counts: dict[str, int] = {}
        for op in history:
            if op.process != NEMESIS and op.type != "invoke":
                counts[op.type] = counts.get(op.type, 0) + 1
        results["ops"] = counts
        results["faults_applied"] = sum(
            1 for op in history if op.process == NEMESIS and op.type == "ok"
        )
        (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    _link(store / test_name / "latest", stamp)
    _link(store / "latest", f"{test_name}/{stamp}")
    return run_dir


def _link(link: Path, target: str) -> None:
    if link.is_symlink():
        link.unlink()
    os.symlink(target, link)


def make_run(
    store: Path, test_name: str, stamp: str, seed: int, bug: bool = False, partial: bool = False
) -> Path:
    history = simulate_broadcast_run(random.Random(seed), bug=bug)
    if partial:
        history = history[: len(history) * 2 // 3]
    return write_run(
        store, test_name, stamp, history, run_config(test_name, seed, bug), partial=partial
    )


def test_simulated_runs_get_the_verdicts_they_stand_for(tmp_path: Path) -> None:
    valid = make_run(tmp_path, "t", "20260101T120000", seed=3)
    invalid = make_run(tmp_path, "t", "20260101T120100", seed=3, bug=True)
    ok = json.loads((valid / "results.json").read_text())
    bad = json.loads((invalid / "results.json").read_text())
    assert ok["valid"] is True, ok["checkers"]["total-order"].get("anomaly_types")
    assert bad["valid"] is False
    kinds = set(bad["checkers"]["total-order"]["anomaly_types"])
    assert {"incompatible-order", "realtime"} <= kinds
    assert (tmp_path / "latest").resolve() == invalid.resolve()


def test_simulated_run_looks_like_a_real_one() -> None:
    ops = simulate_broadcast_run(random.Random(5))
    nemesis = [op for op in ops if op.process == NEMESIS]
    assert [op.f for op in nemesis if op.type == "ok"] == [
        "start-partition",
        "stop-partition",
        "heal-partition",
    ]
    assert any(op.type == "info" for op in ops), "ops sent to the isolated node time out"
    assert sum(1 for op in ops if op.extra.get("final") and op.type == "ok") == len(NODES)
    assert [op.index for op in ops] == list(range(len(ops)))
    assert all(a.time_ns <= b.time_ns for a, b in zip(ops, ops[1:], strict=False))


# The exploring nemesis's summary of a run with the two faults `explore_history` records.
EXPLORATION: dict[str, Any] = {
    "nemesis": "explore",
    "feedback": True,
    "moves": {"isolate-leader": 1, "kill-leader": 1},
    "kinds": {"kill": 1, "partition": 1},
    "situations": {
        "under load": 2,
        "hit the leader": 2,
        "hit a lease holder": 1,
        "leader with accepts in flight": 1,
        "hit a node holding accepted-unchosen slots": 1,
    },
    "leader_changes": 2,
    "elections": 3,
    "step_downs": 1,
    "restarts_with_log": 1,
    "weather_changes": 4,
    "disk_changes": 2,
    "states": 9,
    "transitions": 14,
    "novelty": {"isolate-leader": 5, "kill-leader": 7},
}


def explore_history(history: list[Op]) -> list[Op]:
    """`history` as the exploring nemesis would have recorded its faults: the partition is
    `isolate-leader` of n1, the final heal `heal-explore`, and a `kill-leader` of n2 (with a
    restart) goes in a second after the start."""
    renamed = {"start-partition": "start-isolate-leader", "stop-partition": "stop-isolate-leader"}
    ops = []
    for op in history:
        if op.process == NEMESIS:
            f = renamed.get(op.f, "heal-explore")
            value = op.value
            if f == "start-isolate-leader" and op.type == "ok":
                situations = ["under load", "hit the leader", "hit a lease holder"]
                grudge = value["grudge"]
                value = {"nodes": [ISOLATED], "leader": True, "grudge": grudge}
                value["situations"] = situations
            elif f == "stop-isolate-leader" and op.type == "ok":
                value = {"lifted": None}
            op = dataclasses.replace(op, f=f, value=value)
        ops.append(op)
    t = ops[0].time_ns + 1_000 * MS
    kill = {"nodes": ["n2"], "leader": True, "situations": [
        "leader with accepts in flight", "under load", "hit the leader",
        "hit a node holding accepted-unchosen slots"]}  # fmt: skip
    for dt, type_, f, value in (
        (0, "invoke", "start-kill-leader", None),
        (2, "ok", "start-kill-leader", kill),
        (400, "invoke", "stop-kill-leader", None),
        (450, "ok", "stop-kill-leader", {"lifted": ["n2"]}),
    ):
        ops.append(Op(-1, t + dt * MS, type_, NEMESIS, f, value))
    ops.sort(key=lambda op: op.time_ns)
    return [dataclasses.replace(op, index=i) for i, op in enumerate(ops)]


def make_explore_run(store: Path, test_name: str, stamp: str, seed: int, bug: bool = False) -> Path:
    history = explore_history(simulate_broadcast_run(random.Random(seed), bug=bug))
    config = {**run_config(test_name, seed, bug), "protocol": "multipaxos", "nemesis": ["all"]}
    run_dir = write_run(store, test_name, stamp, history, config)
    results = json.loads((run_dir / "results.json").read_text())
    results["exploration"] = EXPLORATION
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return run_dir
