"""One ordered link of the proxy (src -> dst): accept, judge and forward whole messages.

Used by `tobtest.nemesis.proxy`, which owns one `Link` per ordered pair of nodes:

    link = Link(LinkConfig("n1", "n2", listen_port=7001, target_port=6002), shared, rng)
    server = await asyncio.start_server(link.handle_inbound, "127.0.0.1", 7001, limit=...)
    forwarder = asyncio.create_task(link.run_forwarder())

Messages are JSON Lines, forwarded byte for byte (the proxy never parses them: it is the
network, and a node must cope with garbage itself). A line longer than `max_line_bytes`
closes the connection it came on.

Path of a message: `handle_inbound` reads it and `admit` rolls the link-fault dice (loss,
duplicate, delay, reorder) and puts it in a bounded heap keyed by release time; the single
`run_forwarder` task releases due messages, checks the grudge at that moment (so a delayed
message that a partition has since cut off is dropped), and writes to dst's peer port over a
connection it opens lazily and reopens after dst restarts. While dst cannot be reached,
messages are dropped, as a network would, and reconnects back off from 50 ms to 200 ms.
Each link has its own task and heap, so a delay on one link never holds up another.

Bounds: the heap holds at most `max_pending_messages` and `max_pending_bytes` (a full heap
drops new arrivals, counted as `dropped_overflow`; src is never blocked). A dst that stops
reading (a paused node) first fills the kernel's socket buffers and up to 256 KiB in the
proxy, which it reads on resuming (stale messages, as after a real pause); past that the
forwarder waits `drain_timeout_s`, then drops the connection and what it held and treats
dst as unreachable for a backoff period. "forwarded" counts messages handed to the
connection to dst, so messages lost with such a connection are counted there.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tobtest.nemesis.linkfaults import PASS, LinkFaultSpec, decide

HOST = "127.0.0.1"
BACKOFF_INITIAL_S = 0.05
# Short, so that a restarted node is reachable from its peers within a fifth of a second of
# listening, as a consensus library's reconnect loop would have it: a longer cap kept a
# restarted node deaf to its peers for up to a second while it could already send to them,
# a one-way cut nobody asked for that steered restarts away from the elections and
# recoveries they are meant to meet.
BACKOFF_MAX_S = 0.2
IDLE_WAKE_S = 1.0
WRITE_BUFFER_MAX_BYTES = 256 * 1024


def log_line(text: str) -> None:
    """One stderr line, stamped with wall-clock time to line up with nodes' logs."""
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    print(f"tobtest proxy: {stamp} {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LinkConfig:
    src: str
    dst: str
    listen_port: int
    target_port: int
    # Where the destination node listens (another host's address in a run over SSH).
    target_host: str = HOST


@dataclass
class Settings:
    """Limits shared by every link; the config file may override each one."""

    max_line_bytes: int = 1_048_576
    max_pending_messages: int = 10_000
    max_pending_bytes: int = 64 * 1_048_576
    connect_timeout_s: float = 1.0
    drain_timeout_s: float = 5.0


@dataclass
class Shared:
    """State every link reads at forwarding time: the grudge and the limits."""

    settings: Settings = field(default_factory=Settings)
    grudge: dict[str, frozenset[str]] = field(default_factory=dict)
    log: Callable[[str], None] = field(default=lambda line: log_line(line))


@dataclass
class LinkStats:
    forwarded: int = 0
    dropped_grudge: int = 0
    dropped_loss: int = 0
    duplicated: int = 0
    delayed: int = 0
    reordered: int = 0
    dropped_unreachable: int = 0
    dropped_overflow: int = 0
    oversized_lines: int = 0
    connections: int = 0  # inbound connections from src open now
    accepted: int = 0  # inbound connections from src ever accepted


@dataclass
class _Held:
    """A message held back by the reorder toxic until the next one passes it."""

    line: bytes
    copies: int
    release_at: float
    deadline: float


class Link:
    """Carries the messages of one ordered pair; see the module docstring."""

    def __init__(self, config: LinkConfig, shared: Shared, rng: random.Random) -> None:
        self.config = config
        self.shared = shared
        self.rng = rng
        self.stats = LinkStats()
        self.faults: LinkFaultSpec | None = None
        self._pending: list[tuple[float, int, bytes]] = []
        self._pending_bytes = 0
        self._seq = itertools.count()
        self._last_release = 0.0
        self._held: _Held | None = None
        self._wakeup = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._out_reader_task: asyncio.Task[None] | None = None
        self._unreachable_until = 0.0
        self._backoff_s = BACKOFF_INITIAL_S
        self._inbound: set[asyncio.StreamWriter] = set()

    @property
    def name(self) -> str:
        return f"{self.config.src}->{self.config.dst}"

    def status(self) -> dict[str, Any]:
        return {"src": self.config.src, "dst": self.config.dst, **asdict(self.stats)}

    def set_faults(self, spec: LinkFaultSpec | None) -> None:
        self.faults = spec
        if spec is None or spec.reorder == 0:
            self._release_held(asyncio.get_running_loop().time(), behind=None)

    # ---- inbound: src -> proxy ---------------------------------------------------------------

    async def handle_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Reads lines from one connection of src until EOF, error or an oversized line.

        Reading waits for input without a timeout on purpose: an idle node is not a hang,
        and the connection ends on EOF, on error or when the proxy shuts down.
        """
        self.stats.connections += 1
        self.stats.accepted += 1
        self._inbound.add(writer)
        self.shared.log(f"link {self.name}: connection from src accepted")
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    break  # EOF; a partial last line is not a message
                except asyncio.LimitOverrunError:
                    self.stats.oversized_lines += 1
                    limit = self.shared.settings.max_line_bytes
                    self.shared.log(f"link {self.name}: line over {limit} bytes, closing")
                    break
                self.admit(line)
        except (ConnectionError, OSError):
            pass
        except Exception as exc:  # a bug must not take the proxy down; this connection goes
            self.shared.log(f"link {self.name}: inbound error {exc!r}, closing")
        finally:
            self.stats.connections -= 1
            self._inbound.discard(writer)
            writer.close()
            self.shared.log(f"link {self.name}: connection from src closed")

    def admit(self, line: bytes) -> None:
        """Rolls the fault dice for one message and queues it for release."""
        now = asyncio.get_running_loop().time()
        spec = self.faults
        decision = decide(spec, self.rng) if spec is not None else PASS
        if decision.drop:
            self.stats.dropped_loss += 1
            return
        release_at = now + decision.delay_ms / 1000.0
        if decision.delay_ms > 0:
            self.stats.delayed += 1
        if spec is None or spec.jitter_ms == 0:
            # FIFO unless jitter was asked for: no message overtakes an earlier one, even
            # when the delay changes or toxicity spares this message. Reorder is the held
            # message below, which deliberately lets the next one pass.
            release_at = max(release_at, self._last_release)
        self._last_release = max(self._last_release, release_at)
        if decision.reorder and self._held is None and spec is not None:
            hold_s = spec.reorder_hold_ms / 1000.0
            self._held = _Held(line, decision.copies, release_at, now + hold_s)
        else:
            self._push(release_at, line, decision.copies)
            self._release_held(now, behind=release_at)
        self._wakeup.set()

    def _push(self, release_at: float, line: bytes, copies: int) -> None:
        settings = self.shared.settings
        for copy in range(copies):
            if (
                len(self._pending) >= settings.max_pending_messages
                or self._pending_bytes + len(line) > settings.max_pending_bytes
            ):
                # A full router buffer drops new arrivals; src is never blocked by dst.
                self.stats.dropped_overflow += 1
                continue
            if copy > 0:
                self.stats.duplicated += 1
            heapq.heappush(self._pending, (release_at, next(self._seq), line))
            self._pending_bytes += len(line)

    def _release_held(self, now: float, behind: float | None) -> None:
        """Puts the held message back in line: behind a later one, or on its own at deadline."""
        held = self._held
        if held is None:
            return
        self._held = None
        if behind is not None:
            self.stats.reordered += 1
            release_at = max(held.release_at, behind)
        else:
            release_at = max(held.release_at, now)
        self._last_release = max(self._last_release, release_at)
        self._push(release_at, held.line, held.copies)
        self._wakeup.set()

    # ---- outbound: proxy -> dst --------------------------------------------------------------

    async def run_forwarder(self) -> None:
        """Releases due messages forever; cancelled at shutdown."""
        while True:
            try:
                await self._forward_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not silence the link for the whole run
                self.shared.log(f"link {self.name}: forwarder error {exc!r}, continuing")
                self._close_outbound()
                await asyncio.sleep(0.1)

    async def _forward_due(self) -> None:
        """Forwards what is due, or waits until something is (at most IDLE_WAKE_S)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._held is not None and self._held.deadline <= now:
            self._release_held(now, behind=None)
        if self._pending and self._pending[0][0] <= now:
            due: list[bytes] = []
            while self._pending and self._pending[0][0] <= now:
                due.append(heapq.heappop(self._pending)[2])
                self._pending_bytes -= len(due[-1])
            await self._forward(due)
        else:
            wake_at = now + IDLE_WAKE_S
            if self._pending:
                wake_at = min(wake_at, self._pending[0][0])
            if self._held is not None:
                wake_at = min(wake_at, self._held.deadline)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), max(0.0, wake_at - now))

    async def _forward(self, lines: list[bytes]) -> None:
        src, dst = self.config.src, self.config.dst
        for line in lines:
            if src in self.shared.grudge.get(dst, frozenset()):
                self.stats.dropped_grudge += 1
                continue
            writer = await self._connection()
            if writer is None:
                self.stats.dropped_unreachable += 1
                continue
            writer.write(line)
            self.stats.forwarded += 1
            # Waiting only past a bound keeps the common path cheap and the buffer bounded.
            if writer.transport.get_write_buffer_size() > WRITE_BUFFER_MAX_BYTES:
                await self._drain(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(writer.drain(), self.shared.settings.drain_timeout_s)
        except (TimeoutError, ConnectionError, OSError) as exc:
            # dst stopped reading (paused or dead): drop the connection and what it buffered,
            # as a TCP user timeout would, and treat dst as unreachable for a backoff period.
            self.shared.log(f"link {self.name}: send to dst failed ({type(exc).__name__})")
            self._close_outbound()
            self._mark_unreachable()

    async def _connection(self) -> asyncio.StreamWriter | None:
        """The open connection to dst, a new one, or None while dst is unreachable."""
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        self._close_outbound()
        loop = asyncio.get_running_loop()
        if loop.time() < self._unreachable_until:
            return None
        host, port = self.config.target_host, self.config.target_port
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.shared.settings.connect_timeout_s
            )
        except (TimeoutError, OSError) as exc:
            if self._backoff_s == BACKOFF_INITIAL_S:
                self.shared.log(f"link {self.name}: dst port {port} unreachable ({exc!r})")
            self._mark_unreachable()
            return None
        self._backoff_s = BACKOFF_INITIAL_S
        self._writer = writer
        self._out_reader_task = asyncio.create_task(self._watch_outbound(reader, writer))
        self.shared.log(f"link {self.name}: connected to dst port {port}")
        return writer

    def _mark_unreachable(self) -> None:
        loop = asyncio.get_running_loop()
        self._unreachable_until = loop.time() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, BACKOFF_MAX_S)

    async def _watch_outbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Discards anything dst sends back and notices at once when dst closes or dies."""
        try:
            while await reader.read(65_536):
                pass
        except (ConnectionError, OSError):
            pass
        if self._writer is writer:
            self.shared.log(f"link {self.name}: dst closed the connection")
            self._writer = None
        writer.close()

    def _close_outbound(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None
        if self._out_reader_task is not None:
            self._out_reader_task.cancel()
            self._out_reader_task = None

    def close(self) -> None:
        """Drops every connection of this link (shutdown)."""
        self._close_outbound()
        for writer in list(self._inbound):
            writer.transport.abort()
