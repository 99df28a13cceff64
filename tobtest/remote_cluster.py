"""The processes of a run on other hosts: `tobtest.cluster.Cluster`'s interface, over SSH.

    setup = await tobtest.remote.preflight(config)
    cluster = RemoteCluster(ClusterSpec(n=3, seed=1), run_dir, setup)
    await cluster.start()                  # each host: its proxies, then its nodes
    cluster.pause("n2"); await cluster.settle(["n2"])      # in place on its host
    cluster.kill("n3"); cluster.restart("n3"); await cluster.wait_ready(["n3"])
    await cluster.finish()                 # every remote process ended; logs and data fetched

Each remote process runs under its own `tobtest.remote_agent serve` session (see
`tobtest.remote` for the whole design): commands go down the session's stdin, events come
back on its stdout, and the session's end ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tobtest.cluster import (
    EXIT_PORT_IN_USE,
    READY_TIMEOUT_S,
    ClusterError,
    ClusterSpec,
    NodeState,
    wait_answering,
)
from tobtest.nemesis.proxy_client import ProxyControl
from tobtest.node_kind import NodeLaunch, node_name
from tobtest.ports import PortInUse
from tobtest.remote import ProxyFanout, RemoteSetup
from tobtest.remote_agent import AGENT_PID
from tobtest.remote_ssh import AgentProcess, SshTarget, connect, fetch_dir
from tobtest.workloads.client import request_once

log = logging.getLogger("tobtest.remote")
STOP_TIMEOUT_S = 5.0
# A pause waits up to 1 s on the host for the process to stop; the round trip comes on top.
SETTLE_TIMEOUT_S = 3.0


@dataclass
class RemoteNode:
    node_id: int
    name: str
    target: SshTarget
    address: str
    argv: list[str]
    state: NodeState = NodeState.KILLED
    starts: int = 0
    agent: AgentProcess | None = field(default=None, repr=False)
    remote_pid: int | None = None
    # (exit code, reason) once it ended on its own (or its session did), for reap_crashed.
    ended: tuple[int | None, str] | None = None
    # Commands sent to its agent, and those it has carried out (settle waits for them).
    sent: int = 0
    done: int = 0


class RemoteCluster:
    """`tobtest.cluster.Cluster`'s interface, for nodes on other hosts (see the module)."""

    def __init__(self, spec: ClusterSpec, run_dir: Path, setup: RemoteSetup) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.setup = setup
        self.ports = setup.ports
        self.names = [node_name(i) for i in range(spec.n)]
        self.nodes: dict[str, RemoteNode] = {
            node_name(i): RemoteNode(
                i, node_name(i), setup.targets[i], setup.addresses[i], self._node_argv(i)
            )
            for i in range(spec.n)
        }
        self._conns: dict[SshTarget, Any] = {}
        self._proxies: dict[SshTarget, AgentProcess] = {}
        self._proxy_ready: dict[SshTarget, asyncio.Future[str]] = {}
        self.down: set[SshTarget] = set()
        self._stopping = False

    # ---- start ----------------------------------------------------------------------------

    def _remote(self, target: SshTarget, *parts: str) -> str:
        """A path in `target`'s own folder of this run (hosts may share a file system)."""
        return "/".join([self.setup.host_dir(target), *parts])

    def _node_argv(self, i: int) -> list[str]:
        s, n, p = self.setup, self.spec.n, self.setup.ports
        launch = NodeLaunch(
            node_id=i,
            n=n,
            protocol=self.spec.protocol,
            client_port=p.client_ports[i],
            peer_port=p.peer_ports[i],
            # Its messages go to its own host's proxy links, which carry them to the peer.
            peers={j: (s.addresses[i], p.link_port(i, j)) for j in range(n) if j != i},
            data_dir=Path(self._remote(s.targets[i], "nodes", f"{node_name(i)}.data")),
            seed=self.spec.seed,
            parent_pid=0,
            bugs=self.spec.bugs,
            disk_fault=self.spec.disk_fault,
            extra_args=self.spec.node_args,
            host=s.addresses[i],
        )
        argv = self.spec.kind.argv(launch)
        argv[0] = s.python if argv[0] == sys.executable else argv[0]
        # It dies with the agent that runs it, whose pid only the host knows.
        argv[argv.index("--parent-pid") + 1] = AGENT_PID
        return argv

    def _proxy_config(self, target: SshTarget, ids: list[int]) -> dict[str, Any]:
        s, p = self.setup, self.setup.ports
        return {
            "control_port": p.control_port,
            "listen_host": s.addresses[ids[0]],
            "links": [
                {
                    "src": node_name(src),
                    "dst": node_name(dst),
                    "listen_port": port,
                    "target_host": s.addresses[dst],
                    "target_port": p.peer_ports[dst],
                }
                for (src, dst), port in sorted(p.links.items())
                if src in ids
            ],
            "seed": self.spec.seed,
            "parent_pid": AGENT_PID,
        }

    async def start(self) -> None:
        """Connects to every host, starts its proxies, then its nodes; waits until all
        answer. On any failure everything started is ended."""
        try:
            hosts = self.setup.hosts()
            conns = await asyncio.gather(*(connect(t) for t in hosts))
            self._conns = dict(zip(hosts, conns, strict=True))
            await asyncio.gather(*(self._start_proxy(t, ids) for t, ids in hosts.items()))
            await asyncio.gather(*(self._spawn(node) for node in self.nodes.values()))
            await self.wait_ready(list(self.nodes))
        except BaseException:
            self.stop()
            raise

    async def _start_proxy(self, target: SshTarget, ids: list[int]) -> None:
        tag = target.host
        config_path = self._remote(target, f"proxy-{tag}.json")
        spec = {
            "argv": [self.setup.python, "-m", "tobtest.nemesis.proxy", "--config", config_path],
            "log": self._remote(target, f"proxy-{tag}.log"),
            "dirs": [self._remote(target, "nodes")],
            "files": {config_path: json.dumps(self._proxy_config(target, ids), indent=1)},
            "stdout_events": True,
        }
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._proxy_ready[target] = ready

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == "stdout" and event.get("line") == "ready" and not ready.done():
                ready.set_result("ready")
            elif kind == "exited" and not ready.done():
                code = event.get("code")
                ready.set_exception(
                    (PortInUse if code == EXIT_PORT_IN_USE else ClusterError)(
                        f"host {tag}: the proxy exited ({code}): {event.get('reason')}"
                    )
                )
            elif kind in ("exited", "closed"):
                self._host_lost(target, f"its proxy ended ({event.get('reason', 'session')})")

        self._proxies[target] = await AgentProcess.open(
            self._conns[target], self.setup.python, spec, on_event
        )
        try:
            await asyncio.wait_for(ready, READY_TIMEOUT_S)
        except TimeoutError:
            raise ClusterError(f"host {tag}: the proxy did not start in time") from None

    def _host_lost(self, target: SshTarget, why: str) -> None:
        if self._stopping or target in self.down:
            return
        self.down.add(target)
        log.warning("host %s: %s; its nodes count as crashed", target, why)
        for node in self.nodes.values():
            if node.target == target and node.ended is None:
                node.ended = (None, f"host {target}: {why}")

    async def _spawn(self, node: RemoteNode) -> None:
        node.starts += 1
        node.ended = None
        node.state = NodeState.RUNNING
        if node.agent is not None and not node.agent.closed:
            self._send(node, {"do": "start"})
            return
        spec = {
            "argv": node.argv,
            "log": self._remote(node.target, "nodes", f"{node.name}.log"),
            "dirs": [self._remote(node.target, "nodes", f"{node.name}.data")],
        }

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == "started":
                node.remote_pid = event.get("pid")
            elif kind == "done":
                node.done += 1
            elif kind == "exited" and event.get("gen") == node.starts and node.ended is None:
                node.ended = (event.get("code"), str(event.get("reason", "")))
            elif kind == "closed" and not self._stopping and node.ended is None:
                node.ended = (None, f"host {node.target}: the SSH session ended")
                self._host_lost(node.target, "its SSH session ended")

        node.agent = await AgentProcess.open(
            self._conns[node.target], self.setup.python, spec, on_event
        )

    async def wait_ready(self, names: list[str], timeout_s: float = READY_TIMEOUT_S) -> None:
        """Waits until every named node answers `status`; fails fast if one exits."""

        def ended(node: RemoteNode) -> tuple[int | None, str] | None:
            return node.ended

        await asyncio.gather(
            *(wait_answering(self.nodes[name], self.status, ended, timeout_s) for name in names)
        )

    # ---- talk to nodes --------------------------------------------------------------------

    def client_address(self, name: str) -> tuple[str, int]:
        node = self.nodes[name]
        return node.address, self.ports.client_ports[node.node_id]

    async def status(self, name: str, timeout_s: float = 2.0) -> dict[str, Any]:
        host, port = self.client_address(name)
        return await request_once(host, port, {"type": "status"}, timeout_s)

    def proxy_control(self) -> ProxyControl:
        controls = {
            t: ProxyControl(self.setup.addresses[ids[0]], self.ports.control_port)
            for t, ids in self.setup.hosts().items()
        }
        return ProxyFanout(controls, self.down)

    # ---- faults on processes --------------------------------------------------------------

    def _send(self, node: RemoteNode, message: dict[str, Any]) -> None:
        assert node.agent is not None
        node.sent += 1
        node.agent.send(message)

    async def settle(self, names: list[str], timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Waits (bounded) until the named nodes' agents have carried out every command sent
        (a pause in place, a kill done), so that a fault recorded as done is in place, as
        the local cluster's signals are."""
        deadline = time.monotonic() + timeout_s
        for name in names:
            node = self.nodes[name]
            while node.done < node.sent and node.agent is not None and not node.agent.closed:
                if time.monotonic() > deadline:
                    log.warning("%s: its host has not confirmed a command yet", name)
                    return
                await asyncio.sleep(0.002)

    def pause(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is NodeState.RUNNING, f"pause {name}: it is {node.state.value}"
        self._send(node, {"do": "signal", "sig": "STOP"})
        node.state = NodeState.PAUSED

    def resume(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is NodeState.PAUSED, f"resume {name}: it is {node.state.value}"
        self._send(node, {"do": "signal", "sig": "CONT"})
        node.state = NodeState.RUNNING

    def signal_running(self, name: str, signum: int) -> bool:
        node = self.nodes[name]
        if node.state is not NodeState.RUNNING or node.agent is None or node.agent.closed:
            return False
        self._send(node, {"do": "signal", "sig": signal.Signals(signum).name[3:]})
        return True

    def kill(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is not NodeState.KILLED, f"kill {name}: it is already killed"
        self._send(node, {"do": "kill"})
        node.state = NodeState.KILLED

    def restart(self, name: str) -> None:
        node = self.nodes[name]
        assert node.state is NodeState.KILLED, f"restart {name}: it is {node.state.value}"
        node.starts += 1
        node.ended = None
        node.state = NodeState.RUNNING
        self._send(node, {"do": "start"})

    def reap_crashed(self) -> list[tuple[str, int, str]]:
        """Nodes that ended on their own (or whose host went) since the last call."""
        crashed = []
        for node in self.nodes.values():
            if node.state in (NodeState.RUNNING, NodeState.PAUSED) and node.ended is not None:
                node.state = NodeState.CRASHED
                code, reason = node.ended
                crashed.append((node.name, -1 if code is None else code, reason))
        return crashed

    def pids(self) -> list[int]:
        return []  # remote pids mean nothing here; the agents own them

    # ---- stop -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ends every session at once (idempotent, never raises): each agent sees EOF and
        kills what it runs. The path for errors; `finish` is the orderly one."""
        self._stopping = True
        agents = [n.agent for n in self.nodes.values() if n.agent is not None]
        for agent in [*agents, *self._proxies.values()]:
            agent.close()
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                conn.close()
        for node in self.nodes.values():
            node.state = NodeState.KILLED

    async def finish(self) -> None:
        """Stops every node (SIGTERM, then SIGKILL) and proxy, fetches each host's folder
        into the run's store, and closes every session. Bounded; never raises."""
        self._stopping = True
        agents = [n.agent for n in self.nodes.values() if n.agent is not None]
        agents += list(self._proxies.values())
        for agent in agents:
            agent.send({"do": "stop"})
        await asyncio.gather(*(a.wait_closed(STOP_TIMEOUT_S) for a in agents))

        async def fetch(target: SshTarget, conn: Any) -> None:
            try:
                folder = self.setup.host_dir(target)
                await fetch_dir(conn, self.setup.python, folder, self.run_dir)
            except Exception as exc:  # what was fetched is a record, not the verdict
                log.warning("host %s: could not fetch its folder: %r", target, exc)

        # Every host's files are its own (a folder per host), so they land side by side.
        live = [(t, c) for t, c in self._conns.items() if t not in self.down]
        await asyncio.gather(*(fetch(t, c) for t, c in live))
        self.stop()
