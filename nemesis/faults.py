"""The fault primitives every nemesis acts through, and the log of the steps they executed.

    faults = ctx.faults                       # one per run, made with the NemesisContext
    await faults.partition({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
    await faults.kill(["n2"]); await faults.restart(["n2"])
    await faults.clock({"n3": {"op": "skew", "rate": 2.0}})
    await faults.heal()
    faults.executed   # [{"at_s": 3.204, "do": "partition", "grudge": {...}}, ...]

Periodic nemeses, the exploring nemesis and schedule files all inject faults through these
methods, so a run's faults are one list of concrete steps (`do` one of `STEP_KINDS`, its
resolved nodes and values, and `at_s`, the offset from the start of the main phase). The
runner stores that list as the run's `schedule.yaml`, and `tobtest run --replay-schedule
RUN` feeds it back through `apply_step` at the same offsets. Each primitive acts only on
nodes in the state it needs (kill a node that is not down, pause a running one, ...), so a
replayed or composed step never trips the cluster's assertions; it records what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from tobtest.nemesis.grudge import normalize
from tobtest.workloads.client import ClientError, request_once

if TYPE_CHECKING:
    from tobtest.nemesis.base import NemesisContext

CLOCK_CONTROL_TIMEOUT_S = 1.0
DISK_DELAY_MAX_MS = 5_000.0  # the bound the `disk` control request takes (PROTOCOL.md)

# Every step a schedule may hold, with the keys it takes (beyond `at_s` and `do`).
STEP_KINDS: dict[str, tuple[str, ...]] = {
    "partition": ("grudge",),  # install a grudge {node: nodes it drops messages from}
    "heal": (),  # every link carries messages again
    "kill": ("nodes",),  # SIGKILL
    "restart": ("nodes",),  # start again from the same data directory, wait until it answers
    "pause": ("nodes",),  # SIGSTOP
    "resume": ("nodes",),  # SIGCONT
    "clock": ("nodes",),  # {node: clock request}: bump, strobe or skew its virtual clock
    "clock-reset": ("nodes",),  # back to the real clock
    # {node: {fsync_delay_ms, jitter_ms}}: each synced write completes that much later
    "disk": ("nodes",),
    "disk-reset": ("nodes",),  # a normal disk again
    "link": ("faults",),  # toxics on links (the background latency is kept underneath)
    "link-clear": (),  # only the background latency again
    # the background on the links from now on: latency on every link, and optionally links
    # with a weather of their own (delay, jitter, loss, duplicate)
    # starve nodes of CPU: each stopped `stopped_ms` of every `period_ms` until unthrottled
    "throttle": ("nodes", "stopped_ms", "period_ms"),
    "unthrottle": ("nodes",),  # back to full speed (default: every throttled node)
    "weather": ("delay_ms", "jitter_ms", "links"),
}


def _positive(x: Any) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool) and x > 0


def _state(ctx: NemesisContext, name: str) -> str:
    state = ctx.cluster.nodes[name].state
    return str(getattr(state, "value", state))


class Faults:
    """Applies fault steps to the context's cluster and proxy and logs each one executed."""

    def __init__(self, ctx: NemesisContext, now: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self._now = now
        self.t0 = now()
        self.executed: list[dict[str, Any]] = []
        # What is in force now: the explorer and the report read it.
        self.grudge: dict[str, list[str]] = {}
        self.clocks: dict[str, dict[str, Any]] = {}
        self.disks: dict[str, dict[str, Any]] = {}  # node -> its slow-disk request in force
        self.link_faults: list[dict[str, Any]] = []
        self._run_base: list[dict[str, Any]] | None = None  # the run's own background latency
        self.throttles: dict[str, asyncio.Task[None]] = {}  # node -> its duty cycle

    def start_clock(self) -> None:
        """Offsets count from now (the start of the main phase)."""
        self.t0 = self._now()

    def offset_s(self) -> float:
        return round(self._now() - self.t0, 3)

    def _log(self, do: str, **args: Any) -> dict[str, Any]:
        step = {"at_s": self.offset_s(), "do": do, **args}
        self.executed.append(step)
        return step

    def _names(self, nodes: Iterable[str], wanted: str) -> list[str]:
        known = set(self.ctx.node_names)
        return [n for n in nodes if n in known and _state(self.ctx, n) == wanted]

    # ---- network --------------------------------------------------------------------------

    async def partition(self, grudge: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
        cut = {k: v for k, v in normalize(grudge).items() if v}
        await self.ctx.proxy.grudge(cut)
        self.grudge = cut
        self._log("partition", grudge=cut)
        return cut

    async def heal(self) -> None:
        await self.ctx.proxy.heal()
        self.grudge = {}
        self._log("heal")

    async def link(self, faults: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        toxics = [dict(f) for f in faults]
        # Later specs win in the proxy, so the toxics override the background latency.
        await self.ctx.proxy.link_faults([*self.ctx.base_link_faults, *toxics])
        self.link_faults = toxics
        self._log("link", faults=toxics)
        return toxics

    async def weather(
        self,
        delay_ms: float,
        jitter_ms: float = 0.0,
        links: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Sets the background the links carry (under any toxics in force), as a WAN or a
        congested network would: messages stay in flight long enough for a fault to land
        while they are on their way. `delay_ms`/`jitter_ms` hold on every link; `links`
        (specs of one ordered link each: delay, jitter, loss, duplicate) give some links a
        weather of their own on top, as routes of a real network differ. No link's latency
        goes below the run's own `--link-delay-ms`."""
        if self._run_base is None:
            self._run_base = list(self.ctx.base_link_faults)
        base = list(self._run_base)
        if delay_ms > 0 or jitter_ms > 0:
            base.append({"src": "*", "dst": "*", "delay_ms": delay_ms, "jitter_ms": jitter_ms})
            base = [max(base, key=lambda f: f.get("delay_ms", 0.0))] if self._run_base else base
        floor_ms = max((float(f.get("delay_ms", 0.0)) for f in self._run_base), default=0.0)
        own = [dict(f) for f in links or []]
        for spec in own:
            spec["delay_ms"] = max(float(spec.get("delay_ms", 0.0)), floor_ms)
        base += own
        self.ctx.base_link_faults[:] = base
        if base or self.link_faults:
            await self.ctx.proxy.link_faults([*base, *self.link_faults])
        else:
            await self.ctx.proxy.clear_link_faults()
        extra: dict[str, Any] = {"links": own} if own else {}
        self._log("weather", delay_ms=delay_ms, jitter_ms=jitter_ms, **extra)
        return {"delay_ms": delay_ms, "jitter_ms": jitter_ms, **extra}

    async def link_clear(self) -> None:
        if self.ctx.base_link_faults:
            await self.ctx.proxy.link_faults(self.ctx.base_link_faults)
        else:
            await self.ctx.proxy.clear_link_faults()
        self.link_faults = []
        self._log("link-clear")

    # ---- processes ------------------------------------------------------------------------

    async def kill(self, nodes: Iterable[str]) -> list[str]:
        known = set(self.ctx.node_names)
        # A crashed node stays down: it is the node's failure, not a fault to undo.
        names = [n for n in nodes if n in known and _state(self.ctx, n) in ("running", "paused")]
        for name in names:
            self.ctx.cluster.kill(name)
            self.clocks.pop(name, None)  # a restarted node starts on the real clock
            self.disks.pop(name, None)  # and with a normal disk
        await self._settle(names)
        self._log("kill", nodes=names)
        return names

    async def restart(self, nodes: Iterable[str]) -> list[str]:
        names = self._names(nodes, "killed")
        for name in names:
            self.ctx.cluster.restart(name)
        # Logged before the wait: a replay restarts at the same offset and waits again.
        self._log("restart", nodes=names)
        await self.ctx.cluster.wait_ready(names)
        return names

    async def pause(self, nodes: Iterable[str]) -> list[str]:
        names = self._names(nodes, "running")
        for name in names:
            self.ctx.cluster.pause(name)
        await self._settle(names)
        self._log("pause", nodes=names)
        return names

    async def resume(self, nodes: Iterable[str]) -> list[str]:
        names = self._names(nodes, "paused")
        for name in names:
            self.ctx.cluster.resume(name)
        await self._settle(names)
        self._log("resume", nodes=names)
        return names

    async def _settle(self, names: list[str]) -> None:
        """Waits until the cluster's signals to `names` are in place, where it says so
        (nodes on other hosts: tobtest.remote); a local cluster's already are."""
        settle = getattr(self.ctx.cluster, "settle", None)
        if settle is not None and names:
            await settle(names)

    async def throttle(
        self, nodes: Iterable[str], stopped_ms: float, period_ms: float
    ) -> list[str]:
        """Starves running nodes of CPU, as a noisy neighbour or a run of GC pauses would:
        each is stopped (SIGSTOP) for `stopped_ms` of every `period_ms` until unthrottled.
        Unlike a pause it keeps working, late: timers fire late, replies and accepts leave
        late, its clients wait. The cluster still counts it as running; a kill or a pause
        of the node meanwhile wins (a stopped-by-throttle node is never resumed by it once
        the cluster counts it otherwise)."""
        stopped_s = max(0.0, min(stopped_ms, period_ms)) / 1000.0
        period_s = max(period_ms / 1000.0, 0.001)
        names = [n for n in self._names(nodes, "running") if n not in self.throttles]
        for name in names:
            self.throttles[name] = asyncio.create_task(self._duty_cycle(name, stopped_s, period_s))
        self._log("throttle", nodes=names, stopped_ms=stopped_ms, period_ms=period_ms)
        return names

    async def _duty_cycle(self, name: str, stopped_s: float, period_s: float) -> None:
        cluster = self.ctx.cluster
        while True:
            stopped = cluster.signal_running(name, signal.SIGSTOP)
            try:
                await asyncio.sleep(stopped_s)
            finally:  # also when unthrottled mid-stop: never leave the node stopped
                if stopped:
                    cluster.signal_running(name, signal.SIGCONT)
            await asyncio.sleep(period_s - stopped_s)

    async def unthrottle(self, nodes: Iterable[str] | None = None) -> list[str]:
        names = [n for n in (self.throttles if nodes is None else nodes) if n in self.throttles]
        for name in names:
            task = self.throttles.pop(name)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._log("unthrottle", nodes=names)
        return names

    def down(self) -> list[str]:
        return [n for n in self.ctx.node_names if _state(self.ctx, n) == "killed"]

    def paused(self) -> list[str]:
        return [n for n in self.ctx.node_names if _state(self.ctx, n) == "paused"]

    def running(self) -> list[str]:
        return [n for n in self.ctx.node_names if _state(self.ctx, n) == "running"]

    # ---- clocks ---------------------------------------------------------------------------

    async def _control(self, name: str, kind: str, body: Mapping[str, Any]) -> bool:
        """Sends a node a control request (`clock` or `disk`); True if it took it."""
        host, port = self.ctx.cluster.client_address(name)
        try:
            reply = await request_once(host, port, {"type": kind, **body}, CLOCK_CONTROL_TIMEOUT_S)
        except ClientError:
            return False
        return reply.get("type") == f"{kind}_ok"

    async def _controls(
        self, kind: str, requests: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Sends each known node its control request at once; those the nodes took."""
        items = [(n, dict(r)) for n, r in requests.items() if n in self.ctx.node_names]
        answered = await asyncio.gather(*(self._control(n, kind, r) for n, r in items))
        return {n: r for (n, r), ok in zip(items, answered, strict=True) if ok}

    async def clock(self, requests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Sends each node its clock request; returns (and logs) those the nodes took. A
        paused or down node does not answer and is left out."""
        applied = await self._controls("clock", requests)
        self.clocks.update(applied)
        self._log("clock", nodes=applied)
        return applied

    async def clock_reset(self, nodes: Iterable[str] | None = None) -> list[str]:
        names = list(nodes if nodes is not None else self.ctx.node_names)
        done = list(await self._controls("clock", {n: {"op": "reset"} for n in names}))
        for name in done:
            self.clocks.pop(name, None)
        self._log("clock-reset", nodes=done)
        return done

    # ---- disks ----------------------------------------------------------------------------

    async def disk(self, requests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Slows each node's disk: `{node: {"fsync_delay_ms": D, "jitter_ms": J}}`; every
        synced write of the node then completes D (+ up to J) ms later, and what the node
        sends after it waits behind it (capability `disk-latency`, PROTOCOL.md). Returns
        (and logs) the requests the nodes took; a paused or down node is left out."""
        applied = await self._controls("disk", requests)
        self.disks.update(applied)
        self._log("disk", nodes=applied)
        return applied

    async def disk_reset(self, nodes: Iterable[str] | None = None) -> list[str]:
        names = list(nodes if nodes is not None else self.disks)
        normal = {"fsync_delay_ms": 0.0, "jitter_ms": 0.0}
        done = list(await self._controls("disk", {n: normal for n in names}))
        for name in done:
            self.disks.pop(name, None)
        self._log("disk-reset", nodes=done)
        return done

    # ---- one step, as a schedule holds it -------------------------------------------------

    async def apply_step(self, step: Mapping[str, Any]) -> Any:
        """Applies one concrete step `{"do": KIND, ...}` (see STEP_KINDS)."""
        do = step.get("do")
        if do == "partition":
            return await self.partition(step.get("grudge") or {})
        if do == "heal":
            return await self.heal()
        if do == "link":
            return await self.link(step.get("faults") or [])
        if do == "link-clear":
            return await self.link_clear()
        if do == "weather":
            return await self.weather(
                float(step.get("delay_ms") or 0.0),
                float(step.get("jitter_ms") or 0.0),
                step.get("links") or None,
            )
        if do == "clock":
            return await self.clock(step.get("nodes") or {})
        if do == "throttle":
            stopped_ms, period_ms = step.get("stopped_ms"), step.get("period_ms")
            if not _positive(stopped_ms) or not _positive(period_ms):
                raise ValueError("throttle needs stopped_ms and period_ms, numbers > 0")
            return await self.throttle(step.get("nodes") or [], stopped_ms, period_ms)
        if do == "unthrottle":
            return await self.unthrottle(step.get("nodes"))
        if do == "clock-reset":
            return await self.clock_reset(step.get("nodes"))
        if do == "disk":
            return await self.disk(step.get("nodes") or {})
        if do == "disk-reset":
            return await self.disk_reset(step.get("nodes"))
        actions = {
            "kill": self.kill,
            "restart": self.restart,
            "pause": self.pause,
            "resume": self.resume,
        }
        if do in actions:
            return await actions[do](list(step.get("nodes") or []))
        raise ValueError(f"unknown step {do!r}; known: {', '.join(STEP_KINDS)}")

    async def heal_everything(self) -> dict[str, Any]:
        """Undoes every fault in force, whatever put it there (before the final reads)."""
        if self.throttles:
            await self.unthrottle()
        resumed = await self.resume(self.paused())
        restarted = await self.restart(self.down())
        await self.heal()
        if self._run_base is not None:
            await self.weather(0.0)
        await self.link_clear()
        reset = await self.clock_reset()
        out = {"resumed": resumed, "restarted": restarted, "clock_reset": reset}
        if self.disks:
            out["disk_reset"] = await self.disk_reset()
        return out
