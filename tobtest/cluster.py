"""The processes of a run: the proxy and one node per id, started, faulted and always ended.

    cluster = Cluster(ClusterSpec(n=3, protocol="paxos", seed=1), run_dir)
    cluster.start()                 # proxy, then nodes; waits until all answer
    await cluster.status("n1")      # the node's status reply
    cluster.pause("n2"); cluster.resume("n2"); cluster.kill("n3"); cluster.restart("n3")
    cluster.stop()                  # every process ended, by pid

Every process is started with `--parent-pid`, so it dies with the runner even when the
runner is SIGKILLed (PR_SET_PDEATHSIG); `stop()` and an atexit hook end them on every other
path. Each node's state (running, paused, killed) is explicit, and each action asserts its
precondition, so a nemesis cannot resume a node it never paused.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import enum
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from tobtest.maelstrom.services import Services
from tobtest.maelstrom.services import bind_socket as bind_service_socket
from tobtest.maelstrom.services import serve as serve_services
from tobtest.nemesis.proxy_client import ProxyControl
from tobtest.node_kind import BUILTIN, NodeKind, NodeLaunch, node_name
from tobtest.ports import HOST, PortInUse, PortPlan
from tobtest.workloads.client import ClientError, request_once

READY_TIMEOUT_S = 20.0
# The exit code of a node or proxy whose port was taken (nemesis/proxy.py, the node shell).
EXIT_PORT_IN_USE = 3
# Set in the environment of every process a cluster starts, to the run's folder: so tests
# (and people) find a run's processes whatever their command line says.
RUN_DIR_ENV = "TOBTEST_RUN_DIR"
STOP_GRACE_S = 2.0


class ClusterError(Exception):
    """A process of the cluster could not start; the message is one line for the user."""


class NodeState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    KILLED = "killed"
    # Exited on its own during the run (a node that crashed): not restarted by the nemeses.
    CRASHED = "crashed"


@dataclass(frozen=True)
class ClusterSpec:
    n: int = 3
    protocol: str = "paxos"
    seed: int = 0
    bugs: tuple[str, ...] = ()
    base_port: int | None = None
    # Extra arguments appended to each node's command line (built-in node flags).
    node_args: tuple[str, ...] = ()
    # How a node is launched and what it can do (tobtest.node_kind).
    kind: NodeKind = BUILTIN
    # `lose-unsynced`: nodes start in the mode where unsynced writes die with the process.
    disk_fault: str = "none"


@dataclass
class NodeProcess:
    node_id: int
    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    state: NodeState = NodeState.KILLED
    log_file: IO[bytes] | None = field(default=None, repr=False)
    starts: int = 0
    # The process pause stopped (the node kind's signal_pid: a shim's node), until resumed.
    paused_pid: int | None = None


# Every process any Cluster in this interpreter started and has not yet reaped: the atexit
# hook ends them if the runner exits by a path that skipped `stop()`.
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def _end_all_live() -> None:
    for pid, popen in list(_LIVE.items()):
        _force_end(popen)
        _LIVE.pop(pid, None)


atexit.register(_end_all_live)


def _force_end(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        popen.send_signal(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=5)


def _wait_status(pid: int, *wanted: str, timeout_s: float = 1.0) -> None:
    """Signals arrive asynchronously: wait (bounded) until the process shows the effect,
    so that a fault recorded as done is in place."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() in wanted:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.002)


def last_line(path: Path) -> str:
    """The last non-blank line a process wrote to its log (its reason, when it exits)."""
    with contextlib.suppress(OSError):
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()
    return "(no output)"


async def wait_answering(
    node: Any,
    status: Callable[..., Awaitable[dict[str, Any]]],
    ended: Callable[[Any], tuple[int | None, str] | None],
    timeout_s: float,
) -> None:
    """Polls `status(node.name)` until the node answers. Returns at once if the node was
    killed on purpose meanwhile (composed faults: nothing to wait for); `ended(node)` says
    whether it exited, with its code and reason: PortInUse for code 3 (a port taken),
    else ClusterError, as it is when no answer comes within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if node.state is NodeState.KILLED:
            return
        exited = ended(node)
        if exited is not None:
            code, reason = exited
            if code == EXIT_PORT_IN_USE:
                raise PortInUse(f"{node.name}: {reason}")
            raise ClusterError(f"node {node.name} exited with {code}: {reason}")
        try:
            await status(node.name, timeout_s=1.0)
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"node {node.name} did not answer within {timeout_s:g} s"
                ) from None
            await asyncio.sleep(0.05)


class Cluster:
    def __init__(self, spec: ClusterSpec, run_dir: Path, ports: PortPlan | None = None) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.ports = ports or PortPlan.allocate(spec.n, spec.base_port)
        self.names = [node_name(i) for i in range(spec.n)]
        self.proxy: subprocess.Popen[bytes] | None = None
        # Services the harness hosts for the node kind (Maelstrom's lin-kv, ...): the socket
        # is bound now, so that the nodes' command lines can name its port.
        self._service_sock = bind_service_socket() if spec.kind.hosts_services else None
        self._services: asyncio.Server | None = None
        self.services: Services | None = None
        self._proxy_log: IO[bytes] | None = None
        self.nodes: dict[str, NodeProcess] = {
            node_name(i): NodeProcess(
                node_id=i,
                name=node_name(i),
                argv=self._node_argv(i),
                log_path=run_dir / "nodes" / f"{node_name(i)}.log",
            )
            for i in range(spec.n)
        }

    # ---- start ----------------------------------------------------------------------------

    def _node_argv(self, i: int) -> list[str]:
        launch = NodeLaunch(
            node_id=i,
            n=self.spec.n,
            protocol=self.spec.protocol,
            client_port=self.ports.client_ports[i],
            peer_port=self.ports.peer_ports[i],
            peers={j: (HOST, self.ports.link_port(i, j)) for j in range(self.spec.n) if j != i},
            data_dir=self.run_dir / "nodes" / f"{node_name(i)}.data",
            seed=self.spec.seed,
            parent_pid=os.getpid(),
            bugs=self.spec.bugs,
            disk_fault=self.spec.disk_fault,
            extra_args=self.spec.node_args,
            service_port=self._service_port(),
            direct_peers={
                j: (HOST, self.ports.peer_ports[j]) for j in range(self.spec.n) if j != i
            },
        )
        return self.spec.kind.argv(launch)

    def _service_port(self) -> int | None:
        return None if self._service_sock is None else int(self._service_sock.getsockname()[1])

    async def start(self) -> None:
        """Starts the proxy and every node and waits until all of them answer."""
        try:
            if self._service_sock is not None:
                self.services = Services()
                self._services = await serve_services(self.services, self._service_sock)
            await self._start_proxy()
            for node in self.nodes.values():
                self._spawn(node)
            await self.wait_ready(list(self.nodes))
        except BaseException:
            self.stop()
            raise

    def _popen(self, argv: list[str], log: IO[bytes], stdout: Any) -> subprocess.Popen[bytes]:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=log,
            env={**os.environ, RUN_DIR_ENV: str(self.run_dir)},
            # Own session: a Ctrl-C in the terminal reaches only the runner, which then
            # ends the cluster in order instead of every process dying at once.
            start_new_session=True,
        )
        _LIVE[popen.pid] = popen
        return popen

    async def _start_proxy(self) -> None:
        config = {
            "control_port": self.ports.control_port,
            "links": [
                {
                    "src": node_name(s),
                    "dst": node_name(d),
                    "listen_port": port,
                    "target_port": self.ports.peer_ports[d],
                }
                for (s, d), port in sorted(self.ports.links.items())
            ],
            "seed": self.spec.seed,
            "parent_pid": os.getpid(),
        }
        config_path = self.run_dir / "proxy.json"
        config_path.write_text(json.dumps(config, indent=1))
        log_path = self.run_dir / "proxy.log"
        self._proxy_log = log_path.open("ab")
        argv = [sys.executable, "-m", "tobtest.nemesis.proxy", "--config", str(config_path)]
        self.proxy = self._popen(argv, self._proxy_log, subprocess.PIPE)
        assert self.proxy.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = b""
        while time.monotonic() < deadline and self.proxy.poll() is None:
            ready, _, _ = select.select([self.proxy.stdout], [], [], 0)
            if ready:
                line = self.proxy.stdout.readline()
                break
            await asyncio.sleep(0.02)
        self.proxy.stdout.close()
        if line.strip() != b"ready":
            code = self.proxy.poll()
            reason = last_line(log_path)
            if code == EXIT_PORT_IN_USE:
                raise PortInUse(reason)
            raise ClusterError(f"proxy did not start (exit {code}): {reason}")

    def _spawn(self, node: NodeProcess) -> None:
        # The data directory exists before any node kind starts (a node command need not
        # create it); the built-in node would make it itself.
        (node.log_path.parent / f"{node.name}.data").mkdir(parents=True, exist_ok=True)
        if node.log_file is None:
            node.log_file = node.log_path.open("ab")
        node.popen = self._popen(node.argv, node.log_file, subprocess.DEVNULL)
        node.state = NodeState.RUNNING
        node.starts += 1

    async def wait_ready(self, names: list[str], timeout_s: float = READY_TIMEOUT_S) -> None:
        """Waits until every named node answers `status`; fails fast if one exits."""

        def ended(node: NodeProcess) -> tuple[int | None, str] | None:
            assert node.popen is not None
            code = node.popen.poll()
            return None if code is None else (code, last_line(node.log_path))

        await asyncio.gather(
            *(wait_answering(self.nodes[name], self.status, ended, timeout_s) for name in names)
        )

    # ---- talk to nodes --------------------------------------------------------------------

    def client_address(self, name: str) -> tuple[str, int]:
        return HOST, self.ports.client_ports[self.nodes[name].node_id]

    async def status(self, name: str, timeout_s: float = 2.0) -> dict[str, Any]:
        host, port = self.client_address(name)
        return await request_once(host, port, {"type": "status"}, timeout_s)

    # ---- faults on processes --------------------------------------------------------------

    def pause(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is NodeState.RUNNING, f"pause {name}: it is {node.state.value}"
        assert node.popen is not None
        pid = self.spec.kind.signal_pid(node.popen.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        node.state = NodeState.PAUSED
        node.paused_pid = pid
        _wait_status(pid, psutil.STATUS_STOPPED)

    def resume(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is NodeState.PAUSED, f"resume {name}: it is {node.state.value}"
        assert node.popen is not None
        pid = node.paused_pid or node.popen.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        node.state = NodeState.RUNNING
        node.paused_pid = None
        _wait_status(pid, psutil.STATUS_RUNNING, psutil.STATUS_SLEEPING)

    def signal_running(self, name: str, signum: int) -> bool:
        """Sends `signum` to a node the cluster counts as running, without waiting for its
        effect and without changing its state (a throttle's brief stops and starts). True if
        it was sent."""
        node = self.nodes[name]
        if node.state is not NodeState.RUNNING or node.popen is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            node.popen.send_signal(signum)
            return True
        return False

    def kill(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is not NodeState.KILLED, f"kill {name}: it is already killed"
        assert node.popen is not None
        _force_end(node.popen)
        _LIVE.pop(node.popen.pid, None)
        node.state = NodeState.KILLED
        node.paused_pid = None

    def restart(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is NodeState.KILLED, f"restart {name}: it is {node.state.value}"
        self._spawn(node)

    def reap_crashed(self) -> list[tuple[str, int, str]]:
        """Nodes that exited on their own since the last call (not killed by a nemesis):
        each marked crashed, with its exit code and the last line of its log."""
        crashed = []
        for node in self.nodes.values():
            if node.state in (NodeState.RUNNING, NodeState.PAUSED) and node.popen is not None:
                code = node.popen.poll()
                if code is not None:
                    _LIVE.pop(node.popen.pid, None)
                    node.state = NodeState.CRASHED
                    crashed.append((node.name, code, last_line(node.log_path)))
        return crashed

    def pids(self) -> list[int]:
        pids = [n.popen.pid for n in self.nodes.values() if n.popen is not None]
        if self.proxy is not None:
            pids.append(self.proxy.pid)
        return pids

    def proxy_control(self) -> ProxyControl:
        """A control connection to the proxy."""
        return ProxyControl(HOST, self.ports.control_port)

    # ---- stop -----------------------------------------------------------------------------

    async def finish(self) -> None:
        """The end of a run: every process ended (as `stop`)."""
        self.stop()

    def stop(self) -> None:
        """Ends every process this cluster started (idempotent, never raises)."""
        popens = [n.popen for n in self.nodes.values() if n.popen is not None]
        if self.proxy is not None:
            popens.append(self.proxy)
        for popen in popens:
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    # A paused process keeps SIGTERM pending until it runs again.
                    popen.send_signal(signal.SIGCONT)
                    popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for popen in popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            _force_end(popen)
            _LIVE.pop(popen.pid, None)
        for node in self.nodes.values():
            node.state = NodeState.KILLED
            if node.log_file is not None:
                node.log_file.close()
                node.log_file = None
        if self._proxy_log is not None:
            self._proxy_log.close()
            self._proxy_log = None
        if self._services is not None:
            self._services.close()
            self._services = None
        if self._service_sock is not None:
            self._service_sock.close()
