"""Port allocation for a run: every node's client and peer port, the proxy's links and control.

    plan = PortPlan.allocate(n=3, base_port=None)   # free ports chosen by the OS
    plan.client_ports[0], plan.link_port(0, 1)

With `base_port`, ports are consecutive from it and each is checked; one already in use
raises `PortInUse`, whose message is the one-line error the CLI prints.
"""

from __future__ import annotations

import contextlib
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
