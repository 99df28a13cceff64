"""A test's whole configuration: a plain record that is written to `test.yaml` as it is.

    config = TestConfig(nodes=3, protocol="paxos", nemesis=["partition"], seed=42)
    config.to_dict()          # what test.yaml holds
    config.reproduce_command()  # "tobtest run --nodes 3 ... --seed 42"

Defaults are the short default test that `tobtest run` runs with no arguments.
"""

from __future__ import annotations

import dataclasses
import random
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tobtest.nemesis.partition import DEFAULT_SHAPES
from tobtest.node_kind import node_kind_for

# The broadcast workload's read fraction when it draws from several modes.
MIXED_READ_FRACTION = 0.2


@dataclass
class TestConfig:
    __test__ = False  # not a pytest test class, despite the name

    nodes: int = 3
    protocol: str = "paxos"
    workload: str = "broadcast"
    # The exploring nemesis (`--nemesis all`): every fault kind, one at a time.
    nemesis: list[str] = field(default_factory=lambda: ["explore"])
    nemesis_interval_s: float = 5.0
    # A schedule file (docs/schedules.md) run instead of the periodic nemeses; `nemesis`
    # then lists the nemeses whose faults it uses.
    nemesis_schedule: str | None = None
    # A run folder whose executed schedule.yaml is replayed at its offsets.
    replay_schedule: str | None = None
    partition_shapes: list[str] = field(default_factory=lambda: list(DEFAULT_SHAPES))
    # Which nodes kill, pause, clock and disk faults hit (None: each nemesis's default mix).
    nemesis_targets: list[str] | None = None
    # Background one-way latency on every link for the whole run (0: none), like a WAN.
    link_delay_ms: float = 0.0
    time_limit_s: float = 20.0
    rate: float = 50.0
    # None: two clients per node.
    concurrency: int | None = None
    # None: the workload's default (broadcast: 0.1; register: 0.4).
    read_fraction: float | None = None
    # None: the workload's default (broadcast: every mode the protocol serves; register: log).
    read_modes: list[str] | None = None
    seed: int = field(default_factory=lambda: random.SystemRandom().randrange(1, 2**31))
    store: str = "store"
    name: str | None = None
    bugs: list[str] = field(default_factory=list)
    # A node command template (`--node-cmd`, tobtest.node_kind.CommandKind) instead of the
    # built-in node, with the capabilities and read modes it declares.
    node_cmd: str | None = None
    node_caps: list[str] = field(default_factory=list)
    node_read_modes: list[str] | None = None
    # A Maelstrom node command (`--maelstrom`, tobtest.maelstrom): run behind a shim each.
    maelstrom: str | None = None
    # Checkers run beside the workload's own (`--checker`), e.g. total-order on a
    # Maelstrom broadcast whose node claims a total order.
    extra_checkers: list[str] = field(default_factory=list)
    base_port: int | None = None
    # Other hosts for the nodes, reached over SSH (tobtest.remote): node i on host i. Empty:
    # every node on this machine, on 127.0.0.1.
    hosts: list[str] = field(default_factory=list)
    ssh_user: str | None = None
    ssh_key: str | None = None
    ssh_port: int = 22
    # The python with tobtest on the hosts (default: this interpreter's path) and the folder
    # under which each run works there (default: /tmp/tobtest-remote).
    remote_python: str | None = None
    remote_dir: str | None = None
    op_timeout_s: float = 2.0
    # Send ops to the node that claims to lead (when exactly one does), not a random node.
    route_to_leader: bool = False
    # The exploring nemesis prefers moves that reached new states (False: uniform choice).
    explore_feedback: bool = True
    # After healing: wait until nodes stop delivering (bounded), then read every node.
    quiesce_timeout_s: float = 20.0
    quiet_period_s: float = 1.0
    final_read_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        # A Maelstrom run left at the built-in node's protocol is labelled as what it is.
        if self.maelstrom is not None and self.protocol == "paxos":
            self.protocol = "maelstrom"

    @property
    def client_count(self) -> int:
        return self.concurrency if self.concurrency is not None else 2 * self.nodes

    @property
    def test_name(self) -> str:
        if self.name:
            return self.name
        nemesis = "+".join(self.nemesis) or "none"
        if self.replay_schedule is not None:
            nemesis = "replay"
        elif self.nemesis_schedule is not None:
            nemesis = "schedule-" + Path(self.nemesis_schedule).stem
        return f"{self.protocol}-{self.workload}-{nemesis}"

    def workload_options(self) -> dict[str, Any]:
        """The workload's options: the read modes and fraction given, else its defaults
        (a broadcast run reads in every mode its node kind serves under its protocol, so
        stale reads (log, lease) and lost or reordered ones (local) all show)."""
        modes = self.read_modes
        fraction = self.read_fraction
        if modes is None and self.workload == "broadcast":
            kind = node_kind_for(self)
            offered = kind.protocols()
            known = offered is None or self.protocol in offered
            modes = list(kind.read_modes(self.protocol) if known else ("local",))
            if fraction is None and len(modes) > 1:
                fraction = MIXED_READ_FRACTION
        options: dict[str, Any] = {"read_modes": modes}
        if fraction is not None:
            options["read_fraction"] = fraction
        return options

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["concurrency"] = self.client_count
        data["test_name"] = self.test_name
        return data

    def reproduce_command(self) -> str:
        """The `tobtest run` command that replays this run's schedule (seeded choices): every
        option that matters for replay, from the one option table (tobtest/options.py)."""
        from tobtest.options import reproduce_args  # the table builds TestConfigs itself

        return shlex.join(["tobtest", "run", *reproduce_args(self)])
