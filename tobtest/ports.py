"""Port allocation for a run: every node's client and peer port, the proxy's links and control.

    plan = PortPlan.allocate(n=3, base_port=None)   # free ports chosen by the OS
    plan.client_ports[0], plan.link_port(0, 1)

With `base_port`, ports are consecutive from it and each is checked; one already in use
raises `PortInUse`, whose message is the one-line error the CLI prints.

Concurrent runs of one suite (`tobtest run --suite F --jobs 2`) take disjoint blocks:

    leases = PortLeases()
    base = leases.lease(ports_needed(3))    # a run's --base-port; no other lease overlaps
    leases.release(base)
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass

HOST = "127.0.0.1"


class PortInUse(Exception):
    pass


def ports_needed(n: int) -> int:
    # client + peer per node, one proxy link per ordered pair, one proxy control port.
    return 2 * n + n * (n - 1) + 1


@dataclass(frozen=True)
class PortPlan:
    n: int
    client_ports: tuple[int, ...]
    peer_ports: tuple[int, ...]
    control_port: int
    links: dict[tuple[int, int], int]

    def link_port(self, src: int, dst: int) -> int:
        return self.links[(src, dst)]

    @classmethod
    def allocate(cls, n: int, base_port: int | None = None, check_local: bool = True) -> PortPlan:
        """With `check_local` False (nodes on other hosts, which check their own ports), a
        `base_port` plan is not checked here."""
        count = ports_needed(n)
        if base_port is None:
            ports = _free_ports(count)
        else:
            if not 1024 <= base_port <= 65535 - count:
                raise PortInUse(
                    f"--base-port {base_port} leaves no room for {count} ports "
                    f"(it must be in 1024..{65535 - count})"
                )
            ports = list(range(base_port, base_port + count))
            for port in ports if check_local else []:
                if not port_is_free(port):
                    raise PortInUse(
                        f"port {port} on {HOST} is already in use (from --base-port {base_port})"
                    )
        it = iter(ports)
        client = tuple(next(it) for _ in range(n))
        peer = tuple(next(it) for _ in range(n))
        control = next(it)
        links = {(s, d): next(it) for s in range(n) for d in range(n) if s != d}
        return cls(n, client, peer, control, links)


class PortLeases:
    """Disjoint blocks of consecutive ports for runs that start at the same time.

    Ports the OS picks (bind to port 0) come from its ephemeral range, the same range it
    takes the source ports of outgoing connections from: a port picked for one run, then
    closed until its node binds it, can meanwhile become another run's client connection.
    So the blocks lie below the ephemeral range, where the OS hands out nothing by itself;
    each port of a block is checked free, and no two live leases overlap. A process outside
    this one can still take a port between the check and the bind: the proxy or node then
    fails with `PortInUse`, before any op has run.
    """

    def __init__(self, first_port: int | None = None, last_port: int | None = None) -> None:
        ephemeral_low = _ephemeral_low()
        self.last_port = last_port if last_port is not None else ephemeral_low - 1
        self.first_port = (
            first_port if first_port is not None else max(1024, self.last_port - LEASE_SPAN)
        )
        if not 1024 <= self.first_port <= self.last_port <= 65535:
            raise ValueError(f"no room for port leases in {self.first_port}..{self.last_port}")
        self._leased: dict[int, int] = {}  # base port -> count
        # Start where this process's id points, so two suites started side by side (two
        # checkouts, two CI jobs on one host) begin their searches far apart.
        span = self.last_port - self.first_port + 1
        self._next = self.first_port + (os.getpid() * 211) % span

    def lease(self, count: int) -> int:
        """The base port of `count` consecutive free ports that no live lease holds."""
        span = self.last_port - self.first_port + 1
        if count > span:
            raise PortInUse(f"{count} ports do not fit in {self.first_port}..{self.last_port}")
        start = self._next - self.first_port
        for step in range(span):  # bounded: every start position once, from where it left off
            base = self.first_port + (start + step) % span
            if base + count - 1 > self.last_port or self._overlaps(base, count):
                continue
            if all(port_is_free(p) for p in range(base, base + count)):
                self._leased[base] = count
                # The next lease starts past this block, so a block just released is not
                # handed out again at once (its ports may still be closing).
                self._next = base + count if base + count <= self.last_port else self.first_port
                return base
        raise PortInUse(f"no {count} consecutive free ports in {self.first_port}..{self.last_port}")

    def release(self, base: int) -> None:
        self._leased.pop(base, None)

    def _overlaps(self, base: int, count: int) -> bool:
        return any(
            base < held + held_count and held < base + count
            for held, held_count in self._leased.items()
        )


# How many ports below the ephemeral range leases use: room for ~100 five-node runs.
LEASE_SPAN = 8000
EPHEMERAL_RANGE_PATH = "/proc/sys/net/ipv4/ip_local_port_range"
EPHEMERAL_LOW_DEFAULT = 32768  # Linux's default, where the range cannot be read


def _ephemeral_low() -> int:
    try:
        with open(EPHEMERAL_RANGE_PATH) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_LOW_DEFAULT


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    # Hold every socket open until all are bound, so the OS hands out distinct ports.
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
