"""The node contract: how a node is launched and what it can do, in one place.

    kind = node_kind_for(config)      # BUILTIN, or a CommandKind for `--node-cmd`
    kind.argv(launch)                 # one node's command line (a NodeLaunch says id, ports...)
    kind.read_modes("paxos")          # ("local", "log"): the reads it serves
    check_config(config)              # NodeKindError: a fault or read it cannot serve

The harness (cluster, CLI, suites, runner, nemeses, workloads) asks a `NodeKind` and never
imports the node package: the built-in node (`python -m tobtest.node`) is one kind, any
program speaking `node/PROTOCOL.md` started from a `--node-cmd` template is another. What
the built-in node offers is written here as data; `tests/tobtest/test_node_kind.py` checks
it against the node package, so the two cannot drift apart.

Capabilities (`CAPABILITIES`) are what faults and workloads need beyond the required wire
protocol (broadcast, `local` reads, `status`). A nemesis declares `needs` (a set of them);
a run whose nemesis, schedule or workload needs one the node kind lacks, or reads in a mode
it does not serve, is refused before anything starts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import string
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

CAPABILITIES: dict[str, str] = {
    "clock": "answers the `clock` control request (the clock nemesis; the exploring one)",
    "durable": "a killed node restarts from its data directory keeping what it acked "
    "(the disk fault, the exploring nemesis; implies restart)",
    "restart": "a killed node may be started again, even if it loses its state (kill, flip): "
    "a kill that loses state is then the node's own doing, as Maelstrom's kill is",
    "disk": "runs in lose-unsynced mode when launched so (the disk nemesis; the exploring one)",
    "disk-latency": "answers the `disk` control request, a slow disk (the exploring nemesis "
    "uses it when there; schedule steps `disk`)",
    "read-from": "answers a read's `from` and `digest` with only the entries past `from` "
    "(reads then record suffixes, so histories grow linearly; without it, whole logs)",
    "kv": "applies read/write/cas commands and acks with their result (the register workload)",
    "txn": "applies list-append transactions and acks with their reads (the txn workload)",
}
# What each workload needs beyond broadcast and reads.
WORKLOAD_NEEDS: dict[str, frozenset[str]] = {
    "broadcast": frozenset(),
    "register": frozenset({"kv"}),
    "txn": frozenset({"txn"}),
}
# The read modes of the wire protocol (node/PROTOCOL.md); every node serves `local`.
READ_MODES: tuple[str, ...] = ("local", "log", "lease")
DISK_FAULTS: tuple[str, ...] = ("none", "lose-unsynced")


class NodeKindError(ValueError):
    """A run this node kind cannot serve, or a bad node command; one line for the user."""


def check_runnable(program: str, option: str) -> None:
    """Raises NodeKindError unless `program` (of the command given with `option`) exists
    and may be run, as exec finds it."""
    if "/" in program:
        runnable = os.path.isfile(program) and os.access(program, os.X_OK)
    else:
        runnable = shutil.which(program) is not None
    if not runnable:
        raise NodeKindError(f"{option}: cannot run {program!r}: no such executable file")


def node_name(node_id: int) -> str:
    """Nodes are numbered 0..n-1 on the wire and named n1..nN in histories and grudges."""
    return f"n{node_id + 1}"


@dataclass(frozen=True)
class NodeLaunch:
    """Everything one node's command line may say."""

    node_id: int
    n: int
    protocol: str
    client_port: int
    peer_port: int
    # node id -> where to send its messages (in a run: this node's proxy link to it).
    peers: dict[int, tuple[str, int]]
    data_dir: Path
    seed: int
    parent_pid: int
    bugs: tuple[str, ...] = ()
    disk_fault: str = "none"
    extra_args: tuple[str, ...] = ()
    # Where the harness serves a node kind's services (Maelstrom's lin-kv...), if it does.
    service_port: int | None = None
    # node id -> its own peer socket, bypassing the proxy: only for what is not node-to-node
    # traffic (a Maelstrom node's reply to a client whose shim is another node's).
    direct_peers: dict[int, tuple[str, int]] = field(default_factory=dict)
    # The address its sockets listen on (another host's own in a run over SSH).
    host: str = HOST

    @property
    def name(self) -> str:
        return node_name(self.node_id)


@dataclass(frozen=True)
class ProtocolInfo:
    """What the built-in node serves under one protocol."""

    read_modes: tuple[str, ...]
    bugs: tuple[str, ...]
    # Status fields the harness reads (quiesce, leader hints, the exploring nemesis).
    status_fields: frozenset[str]


class NodeKind(ABC):
    """A kind of node: its launch and its abilities."""

    capabilities: frozenset[str] = frozenset()
    # Whether the harness hosts services for these nodes (NodeLaunch.service_port).
    hosts_services: bool = False

    def signal_pid(self, pid: int) -> int:
        """The process that pause and resume signal, given the one launched."""
        return pid

    @abstractmethod
    def argv(self, launch: NodeLaunch) -> list[str]:
        """The command line that starts one node; it must die with `launch.parent_pid`."""

    @abstractmethod
    def protocols(self) -> tuple[str, ...] | None:
        """The protocols it offers; None: any name, passed to the node as it is."""

    @abstractmethod
    def read_modes(self, protocol: str) -> tuple[str, ...]:
        """The read modes it serves under `protocol`."""

    @abstractmethod
    def bugs(self, protocol: str) -> tuple[str, ...] | None:
        """Its seeded bugs under `protocol`; None: not declared (passed through)."""

    @abstractmethod
    def status_fields(self, protocol: str) -> frozenset[str]:
        """The status fields it reports (beyond `type`)."""


class BuiltinKind(NodeKind):
    """`python -m tobtest.node`: the node this repository ships (node/)."""

    capabilities = frozenset(
        {"clock", "durable", "restart", "disk", "disk-latency", "read-from", "kv", "txn"}
    )
    # Seeded bugs of the node's shell (node/server.py), not of a protocol core: every
    # protocol has them.
    SHELL_BUGS: tuple[str, ...] = ("no-fsync",)
    # Mirrors the node's protocol registry (node/protocols/registry.py: each entry's bugs,
    # read modes, and the status fields the harness reads); test_node_kind.py checks that
    # it still does. The harness keeps its own copy: it never imports the node package.
    PROTOCOLS: dict[str, ProtocolInfo] = {
        "paxos": ProtocolInfo(
            read_modes=("local", "log"),
            bugs=(
                "ack-on-choose",
                "deliver-on-arrival",
                "no-dedupe",
                "adopt-first-accepted",
                "chosen-from-promises",
                "accept-vs-accepted",
            ),
            status_fields=frozenset(
                {"role", "chosen_index", "delivered", "accepted_unchosen", "phase1_rounds"}
            ),
        ),  # fmt: skip
        "multipaxos": ProtocolInfo(
            read_modes=("local", "log", "lease"),
            bugs=(
                "ack-before-majority",
                "lease-from-ack",
                "forget-promise",
                "commit-any-ballot",
                "max-slot-chosen",
                "lease-before-barrier",
            ),
            status_fields=frozenset(
                {
                    "role",
                    "leader",
                    "ballot",
                    "chosen_index",
                    "delivered",
                    "accepted_unchosen",
                    "phase1_rounds",
                    "lease_remaining_ms",
                }
            ),
        ),  # fmt: skip
        "raft": ProtocolInfo(
            read_modes=("local", "log", "lease"),
            bugs=("commit-old-term", "vote-not-persisted", "no-truncate"),
            status_fields=frozenset(
                {
                    "role",
                    "leader",
                    "ballot",
                    "chosen_index",
                    "delivered",
                    "accepted_unchosen",
                    "phase1_rounds",
                    "lease_remaining_ms",
                }
            ),
        ),  # fmt: skip
    }

    def argv(self, launch: NodeLaunch) -> list[str]:
        argv = [
            sys.executable, "-m", "tobtest.node",
            "--id", str(launch.node_id),
            "--n", str(launch.n),
            "--protocol", launch.protocol,
            "--client-port", str(launch.client_port),
            "--peer-port", str(launch.peer_port),
            "--seed", str(launch.seed),
            "--parent-pid", str(launch.parent_pid),
            "--data-dir", str(launch.data_dir),
        ]  # fmt: skip
        for j, (host, port) in sorted(launch.peers.items()):
            argv += ["--peer", f"{j}={host}:{port}"]
        for bug in launch.bugs:
            argv += ["--bug", bug]
        if launch.disk_fault != "none":
            argv += ["--disk-fault", launch.disk_fault]
        if launch.host != HOST:
            argv += ["--host", launch.host]
        return argv + list(launch.extra_args)

    def protocols(self) -> tuple[str, ...]:
        return tuple(self.PROTOCOLS)

    def _info(self, protocol: str) -> ProtocolInfo:
        info = self.PROTOCOLS.get(protocol)
        if info is None:
            raise NodeKindError(
                f"unknown protocol {protocol!r} (known: {', '.join(sorted(self.PROTOCOLS))})"
            )
        return info

    def read_modes(self, protocol: str) -> tuple[str, ...]:
        return self._info(protocol).read_modes

    def bugs(self, protocol: str) -> tuple[str, ...]:
        return (*self._info(protocol).bugs, *self.SHELL_BUGS)

    def status_fields(self, protocol: str) -> frozenset[str]:
        return self._info(protocol).status_fields


BUILTIN = BuiltinKind()

# `--node-cmd` placeholders: one word each, except `{peer_args}` and `{bug_args}`, which
# stand alone as a word and become zero or more words.
PLACEHOLDERS: dict[str, str] = {
    "id": "the node's id, 0..n-1",
    "name": "the node's name, n1..nN",
    "n": "the number of nodes",
    "protocol": "the --protocol given (default: custom)",
    "host": "the address it listens on: 127.0.0.1, or its host's with --host",
    "client_port": "the port its client socket listens on (at {host})",
    "peer_port": "the port its peer socket listens on (at {host})",
    "peers": "where to send to each other node: ID=127.0.0.1:PORT,... (the proxy's links)",
    "peer_args": "the same as words: --peer ID=127.0.0.1:PORT for each other node",
    "data_dir": "its data directory (kept across a kill and restart)",
    "seed": "the run's root seed",
    "bugs": "the --bug names, comma-separated (empty: none)",
    "bug_args": "the same as words: --bug NAME for each",
    "disk_fault": "none, or lose-unsynced when the disk nemesis runs",
}
WORD_PLACEHOLDERS = frozenset({"peer_args", "bug_args"})
# Declared with `--node-read-modes`, else these: every node serves `local`.
DEFAULT_COMMAND_READ_MODES: tuple[str, ...] = ("local",)
# The leader hints and quiesce read `role`, `leader` and `delivered` where a node has them.
COMMAND_STATUS_FIELDS = frozenset({"role", "leader", "delivered"})


def _placeholder_names(word: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(word) if name is not None]
    except ValueError as exc:
        raise NodeKindError(f"--node-cmd: bad template word {word!r}: {exc}") from None


@dataclass(frozen=True)
class CommandKind(NodeKind):
    """Any program that speaks node/PROTOCOL.md, started from a template (`--node-cmd`).

    The template is split as a shell would (shlex) but run without a shell; each word's
    placeholders are filled in (see PLACEHOLDERS). It runs under `python -m tobtest.launch`,
    which makes it die with the runner (PR_SET_PDEATHSIG) and then execs it: the node's pid
    is the launcher's, and the cluster ends it by that pid.
    """

    template: str
    caps: frozenset[str] = frozenset()
    modes: tuple[str, ...] = DEFAULT_COMMAND_READ_MODES
    words: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        try:
            words = tuple(shlex.split(self.template))
        except ValueError as exc:
            raise NodeKindError(f"--node-cmd: cannot split {self.template!r}: {exc}") from None
        if not words:
            raise NodeKindError("--node-cmd: empty command")
        for word in words:
            for name in _placeholder_names(word):
                if name not in PLACEHOLDERS:
                    raise NodeKindError(
                        f"--node-cmd: unknown placeholder {{{name}}} "
                        f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
                    )
                if name in WORD_PLACEHOLDERS and word != "{" + name + "}":
                    raise NodeKindError(f"--node-cmd: {{{name}}} must be a word of its own")
        if "{" in words[0]:
            raise NodeKindError("--node-cmd: the program (first word) takes no placeholder")
        unknown = sorted(self.caps - set(CAPABILITIES))
        if unknown:
            raise NodeKindError(
                f"--node-caps: unknown capability {', '.join(unknown)} "
                f"(known: {', '.join(CAPABILITIES)})"
            )
        bad_modes = [m for m in self.modes if m not in READ_MODES]
        if bad_modes or not self.modes:
            raise NodeKindError(
                f"--node-read-modes: unknown read mode {', '.join(bad_modes) or '(empty)'} "
                f"(known: {', '.join(READ_MODES)})"
            )
        object.__setattr__(self, "words", words)

    @property
    def capabilities(self) -> frozenset[str]:  # type: ignore[override]
        # A node that restarts keeping its state can be restarted.
        return self.caps | ({"restart"} if "durable" in self.caps else set())

    @property
    def program(self) -> str:
        return self.words[0]

    def check_program(self) -> None:
        check_runnable(self.program, "--node-cmd")

    def fill(self, launch: NodeLaunch) -> list[str]:
        """The node's own command line: the template with its placeholders filled in."""
        peers = sorted(launch.peers.items())
        values = {
            "id": str(launch.node_id),
            "name": launch.name,
            "host": launch.host,
            "n": str(launch.n),
            "protocol": launch.protocol,
            "client_port": str(launch.client_port),
            "peer_port": str(launch.peer_port),
            "peers": ",".join(f"{j}={host}:{port}" for j, (host, port) in peers),
            "data_dir": str(launch.data_dir),
            "seed": str(launch.seed),
            "bugs": ",".join(launch.bugs),
            "disk_fault": launch.disk_fault,
        }
        argv: list[str] = []
        for word in self.words:
            if word == "{peer_args}":
                argv += [a for j, (h, p) in peers for a in ("--peer", f"{j}={h}:{p}")]
            elif word == "{bug_args}":
                argv += [a for bug in launch.bugs for a in ("--bug", bug)]
            else:
                argv.append(word.format(**values))
        return argv

    def argv(self, launch: NodeLaunch) -> list[str]:
        launcher = [sys.executable, "-m", "tobtest.launch", "--parent-pid", str(launch.parent_pid)]
        return [*launcher, "--", *self.fill(launch)]

    def protocols(self) -> None:
        return None

    def read_modes(self, protocol: str) -> tuple[str, ...]:
        return self.modes

    def bugs(self, protocol: str) -> None:
        return None

    def status_fields(self, protocol: str) -> frozenset[str]:
        return COMMAND_STATUS_FIELDS


# ---- a run's node kind ----------------------------------------------------------------------

# A command node's protocol when none is given: a label for the test name and `{protocol}`.
CUSTOM_PROTOCOL = "custom"
# The read mode each workload reads in when the run names none (broadcast: every mode the
# node kind serves, see TestConfig.workload_options).
WORKLOAD_DEFAULT_READS: dict[str, tuple[str, ...]] = {"register": ("log",)}


def node_kind_for(config: Any) -> NodeKind:
    """The node kind a run config (`TestConfig`) names: BUILTIN unless `node_cmd` is set."""
    maelstrom = getattr(config, "maelstrom", None)
    if maelstrom is not None:
        from tobtest.maelstrom.kind import MaelstromKind
        from tobtest.nemesis.registry import needs_of
        from tobtest.workloads.maelstrom import setup_bodies

        clock = any("clock" in needs for needs in needs_of(list(config.nemesis)).values())
        return MaelstromKind(maelstrom, setup_bodies(config.workload, config.nodes), clock)
    template = getattr(config, "node_cmd", None)
    if template is None:
        return BUILTIN
    modes = getattr(config, "node_read_modes", None)
    return CommandKind(
        template,
        frozenset(getattr(config, "node_caps", None) or ()),
        tuple(modes) if modes else DEFAULT_COMMAND_READ_MODES,
    )


def _who(kind: NodeKind) -> str:
    if isinstance(kind, CommandKind):
        # The program, and its script when an interpreter runs one: "python3 leader_log.py".
        shown = [Path(kind.program).name]
        if len(kind.words) > 1 and not kind.words[1].startswith("-") and "{" not in kind.words[1]:
            shown.append(Path(kind.words[1]).name)
        return f"the --node-cmd node ({' '.join(shown)})"
    words = getattr(kind, "words", None)
    if words:
        shown = [Path(w).name for w in words[:2] if not w.startswith("-")]
        return f"the --maelstrom node ({' '.join(shown)})"
    return "the built-in node"


def check_config(config: Any) -> NodeKind:
    """Refuses a run its node kind cannot serve; returns the kind. Raises NodeKindError.

    A seeded bug the kind does not declare under the protocol, a nemesis (or schedule)
    needing a capability the kind lacks, a workload it cannot run, a read mode it does not
    serve under the protocol: each is one line saying which.
    """
    from tobtest.nemesis.registry import needs_of

    kind = node_kind_for(config)
    check_program = getattr(kind, "check_program", None)
    # With --host the program runs on the hosts, which the run's preflight asks instead.
    if check_program is not None and not getattr(config, "hosts", None):
        check_program()
    who = _who(kind)
    protocol = config.protocol
    offered = kind.protocols()
    if offered is not None and protocol not in offered:
        raise NodeKindError(
            f"{who} does not offer protocol {protocol!r} (known: {', '.join(offered)})"
        )
    known_bugs = kind.bugs(protocol)
    unknown_bugs = [b for b in getattr(config, "bugs", ()) if b not in (known_bugs or ())]
    if known_bugs is not None and unknown_bugs:
        raise NodeKindError(
            f"unknown bug {', '.join(unknown_bugs)}: {who} has under {protocol}: "
            f"{', '.join(known_bugs)}"
        )
    have = kind.capabilities
    declare = " (declare it with --node-caps)" if isinstance(kind, CommandKind) else ""
    if kind.hosts_services and "clock" not in have:
        declare = " (its clock faults go through libfaketime: apt-get install libfaketime)"
    for name, needs in needs_of(list(config.nemesis)).items():
        missing = sorted(needs - have)
        if missing:
            shown = "all (the exploring nemesis)" if name == "explore" else name
            raise NodeKindError(
                f"nemesis {shown} needs node capability {', '.join(missing)}, which {who} "
                f"lacks{declare}"
            )
    if getattr(config, "maelstrom", None) is not None:
        from tobtest.workloads.maelstrom import MAELSTROM_WORKLOADS

        if config.workload not in MAELSTROM_WORKLOADS:
            raise NodeKindError(
                f"workload {config.workload} is not a Maelstrom workload (with --maelstrom: "
                f"{', '.join(MAELSTROM_WORKLOADS)})"
            )
        if config.read_modes:
            raise NodeKindError(f"{who} serves no read modes (--read-mode goes without it)")
        return kind
    if config.workload not in WORKLOAD_NEEDS:
        raise NodeKindError(
            f"workload {config.workload} is for Maelstrom nodes (it goes with --maelstrom); "
            f"{who} runs {', '.join(WORKLOAD_NEEDS)}"
        )
    missing = sorted(WORKLOAD_NEEDS.get(config.workload, frozenset()) - have)
    if missing:
        raise NodeKindError(
            f"workload {config.workload} needs node capability {', '.join(missing)}, which "
            f"{who} lacks{declare}"
        )
    served = kind.read_modes(protocol)
    wanted = config.read_modes or WORKLOAD_DEFAULT_READS.get(config.workload, ())
    unserved = [m for m in wanted if m not in served]
    if unserved:
        where = f"under {protocol}" if offered is not None else "(see --node-read-modes)"
        raise NodeKindError(
            f"read mode {', '.join(unserved)} is not served by {who} {where}; it serves "
            f"{', '.join(served)}"
        )
    return kind
