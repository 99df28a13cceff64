"""The proxy process that carries every node-to-node message, and the faults it injects.

One asyncio process carries all links, one per ordered pair of nodes (see `proxy_link`):

    python -m tobtest.nemesis.proxy --config proxy.json

    {"control_port": 7000, "seed": 42, "parent_pid": 1234, "max_line_bytes": 1048576,
     "links": [{"src": "n1", "dst": "n2", "listen_port": 7001, "target_port": 6002}, ...]}

Optional limits: "max_pending_messages" (per link, 10000), "max_pending_bytes" (per link,
64 MiB), "connect_timeout_s" (1.0), "drain_timeout_s" (5.0). Every socket is on 127.0.0.1,
unless "listen_host" names the address to listen on and a link's "target_host" where its
destination node listens (a run over SSH: each host runs the links out of its own nodes).
When all listeners are up it prints `ready` on stdout, and nothing more there. It logs one
line per connection and per control request (but not successful `status` polls) to stderr:
send that to a file, since a full pipe nobody reads would stall the proxy.

Control port, JSON Lines, many requests per connection (an "id" in a request is echoed):
    {"type": "grudge", "grudge": {"n2": ["n1"]}}      -> {"type": "ok"}  (n2 drops n1's)
    {"type": "heal"}                                   -> {"type": "ok"}  (clears the grudge)
    {"type": "link-faults", "faults": [{"src": "n1", "dst": "*", "delay_ms": 50, ...}]}
                                                       -> {"type": "ok"}  (replaces all)
    {"type": "clear-link-faults"}                      -> {"type": "ok"}
    {"type": "status"} -> {"type": "status_ok", "grudge": {...}, "faults": [...],
                           "links": [{"src", "dst", "forwarded", "dropped_grudge", ...}]}
    anything else                                      -> {"type": "error", "text": "..."}
Fault fields and their semantics are in `tobtest.nemesis.linkfaults`.

Exit codes: 0 on SIGTERM/SIGINT or when the parent is gone, 2 for a bad config, 3 when a
port cannot be bound (one line on stderr names the port and the link), 4 when the parent
was already gone at startup. With "parent_pid", Linux's PR_SET_PDEATHSIG kills the proxy
with its parent (the parent's thread, strictly: start it from the main thread), and a
0.5 s poll of getppid() covers the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tobtest.nemesis.grudge import normalize
from tobtest.nemesis.linkfaults import FaultSpecError, LinkFaultSpec, parse_faults, spec_for
from tobtest.nemesis.proxy_link import HOST, Link, LinkConfig, Settings, Shared

EXIT_OK = 0
EXIT_BAD_CONFIG = 2
EXIT_PORT_IN_USE = 3
EXIT_NO_PARENT = 4
PARENT_POLL_S = 0.5
CONTROL_WRITE_TIMEOUT_S = 5.0
PR_SET_PDEATHSIG = 1


class ConfigError(ValueError):
    """A proxy config that cannot be used."""


@dataclass(frozen=True)
class ProxyConfig:
    control_port: int
    links: list[LinkConfig]
    seed: int = 0
    parent_pid: int | None = None
    settings: Settings = field(default_factory=Settings)
    # The address every listener binds (this host's own in a run over SSH).
    listen_host: str = HOST

    @property
    def node_names(self) -> set[str]:
        return {link.src for link in self.links} | {link.dst for link in self.links}


def _port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"{what} must be a port number, got {value!r}")
    return value


def parse_config(raw: object) -> ProxyConfig:
    """Validates a config dict (as loaded from the JSON file)."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a JSON object")
    if not isinstance(raw.get("links"), list):
        raise ConfigError("config needs a list of links")
    links: list[LinkConfig] = []
    for item in raw["links"]:
        if not isinstance(item, dict):
            raise ConfigError(f"a link must be an object, got {item!r}")
        src, dst = item.get("src"), item.get("dst")
        if not isinstance(src, str) or not isinstance(dst, str) or not src or src == dst:
            raise ConfigError(f"a link needs distinct src and dst node names: {item!r}")
        what = f"listen_port of link {src}->{dst}"
        target = _port(item.get("target_port"), f"target_port of link {src}->{dst}")
        target_host = item.get("target_host", HOST)
        if not isinstance(target_host, str) or not target_host:
            raise ConfigError(f"target_host of link {src}->{dst} must be an address")
        listen = _port(item.get("listen_port"), what)
        links.append(LinkConfig(src, dst, listen, target, target_host))
    if len({(link.src, link.dst) for link in links}) != len(links):
        raise ConfigError("each ordered pair may have only one link")
    control_port = _port(raw.get("control_port"), "control_port")
    ports = [control_port] + [link.listen_port for link in links]
    if len(set(ports)) != len(ports):
        raise ConfigError("control_port and listen ports must all differ")
    seed = raw.get("seed", 0)
    parent_pid = raw.get("parent_pid")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("seed must be an integer")
    if parent_pid is not None and (isinstance(parent_pid, bool) or not isinstance(parent_pid, int)):
        raise ConfigError("parent_pid must be an integer or null")
    defaults = Settings()
    try:
        settings = Settings(
            max_line_bytes=int(raw.get("max_line_bytes", defaults.max_line_bytes)),
            max_pending_messages=int(
                raw.get("max_pending_messages", defaults.max_pending_messages)
            ),
            max_pending_bytes=int(raw.get("max_pending_bytes", defaults.max_pending_bytes)),
            connect_timeout_s=float(raw.get("connect_timeout_s", defaults.connect_timeout_s)),
            drain_timeout_s=float(raw.get("drain_timeout_s", defaults.drain_timeout_s)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a limit is not a number: {exc}") from exc
    if (
        settings.max_line_bytes < 16
        or settings.max_pending_messages < 1
        or settings.max_pending_bytes < settings.max_line_bytes
    ):
        raise ConfigError("max_line_bytes, max_pending_messages or max_pending_bytes too small")
    if settings.connect_timeout_s <= 0 or settings.drain_timeout_s <= 0:
        raise ConfigError("connect_timeout_s and drain_timeout_s must be positive")
    listen_host = raw.get("listen_host", HOST)
    if not isinstance(listen_host, str) or not listen_host:
        raise ConfigError("listen_host must be an address")
    return ProxyConfig(control_port, links, seed, parent_pid, settings, listen_host)


def load_config(path: str) -> ProxyConfig:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    return parse_config(raw)


class RequestError(ValueError):
    """A control request that gets an error reply."""


class Proxy:
    """All links of one process plus the control handler."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.shared = Shared(settings=config.settings)
        self.faults: list[LinkFaultSpec] = []
        self.links = [
            Link(lc, self.shared, random.Random(f"{config.seed}/{lc.src}->{lc.dst}"))
            for lc in config.links
        ]
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []

    # ---- control requests ------------------------------------------------------------------

    def handle_request(self, request: object) -> dict[str, Any]:
        """Answers one decoded control request; never raises."""
        try:
            if not isinstance(request, dict):
                raise RequestError("a request must be a JSON object")
            reply = self._dispatch(request)
        except (RequestError, FaultSpecError) as exc:
            reply = {"type": "error", "text": str(exc)}
        if isinstance(request, dict) and "id" in request:
            reply["id"] = request["id"]
        return reply

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        kind = request.get("type")
        if kind == "grudge":
            self.shared.grudge = self._parse_grudge(request.get("grudge"))
            return {"type": "ok"}
        if kind == "heal":
            self.shared.grudge = {}
            return {"type": "ok"}
        if kind == "link-faults":
            self._set_faults(parse_faults(request.get("faults"), self.config.node_names))
            return {"type": "ok"}
        if kind == "clear-link-faults":
            self._set_faults([])
            return {"type": "ok"}
        if kind == "status":
            return self.status()
        raise RequestError(f"unknown request type {kind!r}")

    def _parse_grudge(self, raw: object) -> dict[str, frozenset[str]]:
        if not isinstance(raw, dict):
            raise RequestError("grudge must be an object {node: [nodes it drops]}")
        names = self.config.node_names
        grudge: dict[str, frozenset[str]] = {}
        for node, dropped in raw.items():
            if not isinstance(dropped, list) or not all(isinstance(d, str) for d in dropped):
                raise RequestError(f"grudge[{node!r}] must be a list of node names")
            unknown = ({node} | set(dropped)) - names
            if unknown:
                raise RequestError(f"unknown node(s) in grudge: {', '.join(sorted(unknown))}")
            grudge[node] = frozenset(dropped) - {node}
        return grudge

    def _set_faults(self, specs: list[LinkFaultSpec]) -> None:
        self.faults = specs
        for link in self.links:
            link.set_faults(spec_for(specs, link.config.src, link.config.dst))

    def status(self) -> dict[str, Any]:
        return {
            "type": "status_ok",
            "grudge": normalize(self.shared.grudge),
            "faults": [spec.to_dict() for spec in self.faults],
            "links": [link.status() for link in self.links],
        }

    async def handle_control(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serves requests on one control connection until EOF or error."""
        log = self.shared.log
        log("control: connection accepted")
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    break
                except asyncio.LimitOverrunError:
                    await self._reply(writer, {"type": "error", "text": "request too long"})
                    break
                try:
                    request: object = json.loads(line)
                except ValueError:
                    request = None
                    reply: dict[str, Any] = {"type": "error", "text": "request is not JSON"}
                else:
                    reply = self.handle_request(request)
                if reply["type"] != "status_ok":  # a runner may poll status often
                    summary = line.decode("utf-8", "replace").strip()[:160]
                    outcome = f"{reply['type']} {reply.get('text', '')}".rstrip()
                    log(f"control: {summary} -> {outcome}")
                await self._reply(writer, reply)
        except (ConnectionError, OSError, TimeoutError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        writer.write(json.dumps(reply).encode() + b"\n")
        await asyncio.wait_for(writer.drain(), CONTROL_WRITE_TIMEOUT_S)

    # ---- lifecycle -------------------------------------------------------------------------

    async def listen(self) -> None:
        """Binds every port; raises PortInUse naming the first one that fails."""
        limit = self.config.settings.max_line_bytes
        host = self.config.listen_host
        bindings: list[tuple[int, str, Any]] = [
            (self.config.control_port, "control", self.handle_control)
        ]
        for link in self.links:
            bindings.append((link.config.listen_port, f"link {link.name}", link.handle_inbound))
        for port, what, handler in bindings:
            try:
                server = await asyncio.start_server(handler, host, port, limit=limit)
            except OSError as exc:
                self.close()
                raise PortInUse(port, what, exc) from exc
            self._servers.append(server)
        self._tasks = [asyncio.create_task(link.run_forwarder()) for link in self.links]

    def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        for link in self.links:
            link.close()

    async def shutdown(self) -> None:
        """Closes everything and waits (bounded) for the forwarders to end."""
        self.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 1.0)


class PortInUse(OSError):
    def __init__(self, port: int, what: str, cause: OSError) -> None:
        if cause.errno == errno.EADDRINUSE:
            text = f"port {port} ({what}) is already in use"
        else:
            text = f"cannot listen on port {port} ({what}): {cause.strerror or cause}"
        super().__init__(text)
        self.text = text


def arm_parent_death_signal(parent_pid: int) -> bool:
    """Asks Linux to SIGKILL us when our parent dies; True if the parent is still there."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the getppid() poll still ends us
    # Checked after arming: a parent that died just before would otherwise go unnoticed.
    return os.getppid() == parent_pid


async def _watch_parent(parent_pid: int, stop: asyncio.Event, log: Any) -> None:
    while not stop.is_set():
        await asyncio.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            log(f"parent {parent_pid} is gone, exiting")
            stop.set()


async def serve(config: ProxyConfig) -> int:
    """Runs the proxy until SIGTERM/SIGINT or the parent goes; returns the exit code."""
    proxy = Proxy(config)
    try:
        await proxy.listen()
    except PortInUse as exc:
        print(f"tobtest proxy: {exc.text}", file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = None
    if config.parent_pid is not None:
        watcher = asyncio.create_task(_watch_parent(config.parent_pid, stop, proxy.shared.log))
    print("ready", flush=True)
    ports = f"control {config.control_port}, {len(config.links)} links, seed {config.seed}"
    proxy.shared.log(f"listening on {config.listen_host} ({ports})")
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    await proxy.shutdown()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tobtest.nemesis.proxy",
        description="Carries node-to-node messages and injects partitions and link faults.",
    )
    parser.add_argument("--config", required=True, help="path of the proxy's JSON config")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"tobtest proxy: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_CONFIG
    if config.parent_pid is not None and not arm_parent_death_signal(config.parent_pid):
        print(f"tobtest proxy: parent {config.parent_pid} is gone", file=sys.stderr, flush=True)
        return EXIT_NO_PARENT
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
