"""Runs one TOB node: `python -m tobtest.node --id 0 --n 3 --protocol paxos ...`.

    python -m tobtest.node --id 0 --n 3 --protocol paxos --client-port 7100 \
        --peer-port 7200 --peer 1=127.0.0.1:7301 --peer 2=127.0.0.1:7302 --seed 42

`--peer J=HOST:PORT` says where to send messages for node J (in a tobtest run: the proxy's
link from this node to J). `--bug NAME` turns on a deliberate, documented bug (a fixture
for testing the framework; see PROTOCOL.md). Logs go to stderr. Exit codes: 0 on SIGTERM or
when the parent process is gone, 2 on bad arguments, 3 when a port is already in use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import errno
import logging
import os
import signal
import sys

from tobtest.node.protocols import PROTOCOLS
from tobtest.node.protocols.base import ProtocolConfig
from tobtest.node.server import NodeConfig, NodeServer

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Asks Linux to SIGKILL us when our parent dies, so a SIGKILLed runner leaves no nodes.

    SIGKILL rather than SIGTERM because a paused (SIGSTOPped) node cannot handle SIGTERM.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl took effect.
    if os.getppid() != parent_pid:
        sys.exit(0)


def parse_peer(text: str) -> tuple[int, tuple[str, int]]:
    try:
        node, addr = text.split("=", 1)
        host, port = addr.rsplit(":", 1)
        return int(node), (host, int(port))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--peer wants ID=HOST:PORT, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tobtest.node", description=__doc__.split("\n")[0])
    p.add_argument("--id", type=int, required=True, help="this node's id, 0..n-1")
    p.add_argument("--n", type=int, required=True, help="number of nodes")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="paxos")
    p.add_argument("--client-port", type=int, required=True)
    p.add_argument("--peer-port", type=int, required=True)
    p.add_argument("--peer", type=parse_peer, action="append", default=[], metavar="ID=HOST:PORT")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--host", default="127.0.0.1", help="the address its client and peer sockets listen on"
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--parent-pid", type=int, default=None)
    p.add_argument("--bug", action="append", default=[], metavar="NAME")
    p.add_argument("--tick-ms", type=float, default=None)
    p.add_argument(
        "--disk-fault",
        choices=["none", "lose-unsynced"],
        default="none",
        help="lose-unsynced: writes not yet fsynced are lost when the node is killed",
    )
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s n{args.id + 1} %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    protocol_config = ProtocolConfig(bugs=frozenset(args.bug))
    if args.tick_ms is not None:
        protocol_config = dataclasses.replace(protocol_config, tick_ms=args.tick_ms)
    config = NodeConfig(
        node_id=args.id,
        n=args.n,
        protocol=args.protocol,
        client_port=args.client_port,
        peer_port=args.peer_port,
        peers=dict(args.peer),
        seed=args.seed,
        data_dir=args.data_dir,
        parent_pid=args.parent_pid,
        bugs=frozenset(args.bug),
        protocol_config=protocol_config,
        lose_unsynced=args.disk_fault == "lose-unsynced",
        host=args.host,
    )
    return asyncio.run(run(config))


async def run(config: NodeConfig) -> int:
    server = NodeServer(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    try:
        await server.serve_forever()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"tobtest node {config.name}: {exc.strerror}: {exc}", file=sys.stderr)
            return 3
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
