"""A run's nodes on other hosts, over SSH: the plan, the checks before it, the cluster.

    setup = await preflight(config)        # RemoteError: one line, before anything runs
    cluster = RemoteCluster(spec, run_dir, setup)          # tobtest.remote_cluster
    await cluster.start()                  # each host: its proxies, then its nodes
    cluster.pause("n2"); cluster.kill("n3"); cluster.restart("n3")   # as tobtest.cluster
    await cluster.finish()                 # every remote process ended; logs and data fetched

Node i runs on host i (`--host`, in order; with fewer hosts than nodes they take turns).
Each host runs its share of the proxy layer: the links out of its own nodes, listening on
its address and forwarding to the destination node's host, so every partition shape and
link fault applies as in a local run; the proxies' control requests go to every host
(`ProxyFanout`). Every remote process runs under `tobtest.remote_agent serve`, the SSH
session's own process, which kills it when the session ends: a runner that exits, is
interrupted or is SIGKILLed leaves nothing running on any host. Pause, resume and kill are
signals the agent sends to the node's pid; restart starts it again on the same data folder.
The remote side runs `REMOTE_PYTHON -m tobtest...` (default: this interpreter's path), so
tobtest must be installed there under that path, or `--remote-python` names one that has
it; each run works in a folder of its own under `--remote-dir` (default /tmp/tobtest-remote),
fetched into the run's store at the end (nodes/<n>.log, nodes/<n>.data, proxy-<host>.log)
and then removed from the host.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tobtest.nemesis.proxy_client import ProxyControl, ProxyUnavailable
from tobtest.ports import PortPlan
from tobtest.remote_ssh import (
    RemoteError,
    SshTarget,
    agent_check,
    connect,
)

DEFAULT_REMOTE_DIR = "/tmp/tobtest-remote"
# Plans tried when a host has taken ports that tobtest chose (without --base-port).
PLAN_ATTEMPTS = 3
PORT_TAKEN = "is taken ("  # how the agent's check says so (tobtest.remote_agent.check)


def read_hosts_file(path: Path) -> list[str]:
    """One host a line; blank lines and '#' comments skipped. RemoteError if unreadable."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RemoteError(f"--hosts-file {path}: {exc.strerror or exc}") from None
    hosts = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    hosts = [h for h in hosts if h]
    if not hosts:
        raise RemoteError(f"--hosts-file {path}: no host in it")
    return hosts


@dataclass(frozen=True)
class RemoteSetup:
    """What the checks established: where each node runs, on which ports, with what."""

    targets: tuple[SshTarget, ...]  # per node id
    addresses: tuple[str, ...]  # per node id: the address its sockets (and its proxies) bind
    ports: PortPlan
    python: str
    remote_dir: str  # this run's own folder, on every host
    # A --node-cmd node's program, which every host must have; None: the built-in node.
    node_program: str | None = None

    def hosts(self) -> dict[SshTarget, list[int]]:
        """Each host and the ids of the nodes it runs."""
        by_host: dict[SshTarget, list[int]] = {}
        for i, target in enumerate(self.targets):
            by_host.setdefault(target, []).append(i)
        return by_host

    def host_dir(self, target: SshTarget) -> str:
        """The host's own folder of this run."""
        return f"{self.remote_dir}/{target.host}"

    def host_ports(self, ids: list[int]) -> list[int]:
        """The ports a host binds: its nodes', the links out of them, the proxy control."""
        p = self.ports
        ports = [p.control_port] + [p.client_ports[i] for i in ids]
        ports += [p.peer_ports[i] for i in ids]
        ports += [port for (s, _), port in sorted(p.links.items()) if s in ids]
        return ports


def _address(host: str) -> str:
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise RemoteError(f"host {host}: cannot resolve it ({exc.strerror or exc})") from None
    return str(infos[0][4][0])


def plan(config: Any) -> RemoteSetup:
    """The setup a config asks for, before any host is asked; RemoteError if it cannot be."""
    hosts: list[str] = list(config.hosts)
    n = config.nodes
    if len(hosts) > n:
        raise RemoteError(f"{len(hosts)} hosts for {n} nodes: give at most one host per node")
    if getattr(config, "maelstrom", None):
        raise RemoteError("--host runs the built-in node or a --node-cmd node (not --maelstrom)")
    node_cmd = getattr(config, "node_cmd", None)
    if node_cmd is not None and "{host}" not in node_cmd:
        # Its proxies reach it at its host's address: a node on 127.0.0.1 is out of reach.
        raise RemoteError("--node-cmd with --host: the command needs {host}, the address "
                          "the node listens on (its host's)")  # fmt: skip
    key = config.ssh_key
    if key is not None and not Path(key).expanduser().is_file():
        raise RemoteError(f"--ssh-key {key}: no such file")
    by_name = {h: SshTarget(h, config.ssh_user, key, config.ssh_port) for h in hosts}
    address_of = {h: _address(h) for h in hosts}
    names = [hosts[i % len(hosts)] for i in range(n)]
    ports = PortPlan.allocate(n, config.base_port, check_local=False)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    remote_dir = f"{config.remote_dir or DEFAULT_REMOTE_DIR}/{stamp}-{os.getpid()}"
    return RemoteSetup(
        targets=tuple(by_name[h] for h in names),
        addresses=tuple(address_of[h] for h in names),
        ports=ports,
        python=config.remote_python or sys.executable,
        remote_dir=remote_dir,
        node_program=shlex.split(node_cmd)[0] if node_cmd is not None else None,
    )


async def preflight(config: Any) -> RemoteSetup:
    """Plans the run and asks every host whether it can take its share (SSH reachable, key
    accepted, python there with tobtest, its ports free, its folder writable), all hosts at
    once; the first reason one cannot is a RemoteError. Ports tobtest chose itself (no
    --base-port) that a host has taken are chosen again, a few times. Nothing is left
    running."""
    for attempt in range(PLAN_ATTEMPTS):
        setup = plan(config)
        replies = await asyncio.gather(
            *(_check_host(setup, t, ids) for t, ids in setup.hosts().items()),
            return_exceptions=True,
        )
        problems: list[str] = []
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
            problems += reply
        if not problems:
            return setup
        chosen_here = config.base_port is None and attempt + 1 < PLAN_ATTEMPTS
        if not (chosen_here and all(PORT_TAKEN in p for p in problems)):
            raise RemoteError(problems[0])
    raise AssertionError("unreachable: the last attempt raises or returns")


async def _check_host(setup: RemoteSetup, target: SshTarget, ids: list[int]) -> list[str]:
    """The reasons `target` cannot take its share, each naming the host."""
    conn = await connect(target)
    try:
        request = {
            "address": setup.addresses[ids[0]],
            "ports": setup.host_ports(ids),
            # A --node-cmd node is started through tobtest.launch, which ties it to the agent.
            "modules": [
                "tobtest.node" if setup.node_program is None else "tobtest.launch",
                "tobtest.nemesis.proxy",
            ],
            "programs": [setup.node_program] if setup.node_program is not None else [],
            "dirs": [setup.host_dir(target)],
        }
        errors = await agent_check(conn, target, setup.python, request)
    finally:
        conn.close()
    return [f"host {target}: {e}" for e in errors]


class ProxyFanout(ProxyControl):
    """The control port of every host's proxy as one: each request goes to all of them (the
    grudge and link faults name nodes, and each proxy applies them to its own links); a
    status merges their links. A proxy whose host is gone is left out."""

    def __init__(self, controls: Mapping[SshTarget, ProxyControl], down: set[SshTarget]) -> None:
        super().__init__("(every host)", 0)
        self.controls = dict(controls)
        self.down = down

    async def request(self, message: Mapping[str, Any], expect: str = "ok") -> dict[str, Any]:
        live = [(t, c) for t, c in self.controls.items() if t not in self.down]
        if not live:
            raise ProxyUnavailable("no host's proxy is reachable")
        replies = await asyncio.gather(
            *(c.request(message, expect) for _, c in live), return_exceptions=True
        )
        good: list[dict[str, Any]] = []
        for (target, _), reply in zip(live, replies, strict=True):
            if isinstance(reply, BaseException):
                if target in self.down:  # dropped meanwhile: its nodes are recorded as crashed
                    continue
                raise reply
            good.append(reply)
        if not good:
            raise ProxyUnavailable("no host's proxy is reachable")
        merged = dict(good[0])
        if expect == "status_ok":
            merged["links"] = [link for reply in good for link in reply.get("links", [])]
        return merged

    async def close(self) -> None:
        for control in self.controls.values():
            await control.close()
