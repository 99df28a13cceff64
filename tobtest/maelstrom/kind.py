"""The Maelstrom node kind: a node command run behind tobtest's shim (`--maelstrom CMD`).

    kind = MaelstromKind("python3 raft.py", setup=())
    kind.argv(launch)          # python -m tobtest.maelstrom.shim ... -- python3 raft.py
    kind.capabilities          # {"restart"}: a kill loses the node's state; no clock control
    kind.signal_pid(shim_pid)  # pause and resume stop the node, not its shim

Maelstrom nodes keep their state in memory: Maelstrom itself restarts a killed node with a
fresh `init`, and so does tobtest (kill is SIGKILL of the shim, which takes the node with
it; restart starts both again). So the kind declares `restart`, never `durable`: kills are
allowed and the report says that they lose state. It serves no tobtest read modes and no
clock control; its status (answered by the shim) has no role, leader or progress fields.
"""

from __future__ import annotations

import glob
import os
import shlex
import sys
from dataclasses import dataclass, field

import psutil

from tobtest.node_kind import NodeKind, NodeKindError, NodeLaunch, check_runnable

# The label of a Maelstrom run's `--protocol` (test name, store folder) unless given.
MAELSTROM_PROTOCOL = "maelstrom"
# Debian's libfaketime (`apt-get install faketime libfaketime`); TOBTEST_LIBFAKETIME may
# name another build, or be empty to do without.
LIBFAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"
LIBFAKETIME_ENV = "TOBTEST_LIBFAKETIME"


def libfaketime() -> str | None:
    """The libfaketime to preload into Maelstrom nodes for clock faults, or None."""
    if LIBFAKETIME_ENV in os.environ:
        path = os.environ[LIBFAKETIME_ENV]
        return path if path and os.path.isfile(path) else None
    found = sorted(glob.glob(LIBFAKETIME_GLOB))
    return found[0] if found else None


@dataclass(frozen=True)
class MaelstromKind(NodeKind):
    """A program that speaks Maelstrom's protocol on stdin/stdout, one shim per node."""

    command: str
    # Bodies (JSON text) each shim sends after `init`, e.g. the broadcast's `topology`.
    setup: tuple[str, ...] = ()
    # Whether the run moves clocks: only then is libfaketime preloaded into the nodes.
    clock_faults: bool = False
    words: tuple[str, ...] = field(init=False)
    # The harness serves lin-kv, seq-kv and lin-tso to these nodes (tobtest.maelstrom.services).
    hosts_services = True

    def __post_init__(self) -> None:
        try:
            words = tuple(shlex.split(self.command))
        except ValueError as exc:
            raise NodeKindError(f"--maelstrom: cannot split {self.command!r}: {exc}") from None
        if not words:
            raise NodeKindError("--maelstrom: empty command")
        object.__setattr__(self, "words", words)

    @property
    def capabilities(self) -> frozenset[str]:  # type: ignore[override]
        # Clock faults go through libfaketime's timestamp file, where it is installed.
        return frozenset({"restart", "clock"} if libfaketime() else {"restart"})

    @property
    def program(self) -> str:
        return self.words[0]

    def check_program(self) -> None:
        check_runnable(self.program, "--maelstrom")

    def argv(self, launch: NodeLaunch) -> list[str]:
        argv = [
            sys.executable, "-m", "tobtest.maelstrom.shim",
            "--id", str(launch.node_id),
            "--n", str(launch.n),
            "--client-port", str(launch.client_port),
            "--peer-port", str(launch.peer_port),
            "--service-port", str(launch.service_port),
            "--parent-pid", str(launch.parent_pid),
        ]  # fmt: skip
        for j, (host, port) in sorted(launch.peers.items()):
            argv += ["--peer", f"{j}={host}:{port}"]
        for j, (host, port) in sorted(launch.direct_peers.items()):
            argv += ["--client-route", f"{j}={host}:{port}"]
        for body in self.setup:
            argv += ["--setup", body]
        lib = libfaketime() if self.clock_faults else None
        if lib is not None:
            argv += ["--faketime", lib, "--clock-file", str(launch.data_dir / "faketime.txt")]
        return [*argv, "--", *self.words]

    def signal_pid(self, pid: int) -> int:
        """The node under the shim `pid`: pause stops the node alone, and the shim keeps
        taking messages for it meanwhile, as a network does for a paused machine."""
        try:
            children = psutil.Process(pid).children()
        except psutil.Error:
            return pid
        return children[0].pid if len(children) == 1 else pid

    def protocols(self) -> None:
        return None

    def read_modes(self, protocol: str) -> tuple[str, ...]:
        return ("local",)

    def bugs(self, protocol: str) -> None:
        return None

    def status_fields(self, protocol: str) -> frozenset[str]:
        return frozenset()
