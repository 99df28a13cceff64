"""Runs nemeses on a schedule and records each fault as history ops of process "nemesis".

    scheduler = NemesisScheduler([partition], ctx, recorder, interval_s=5.0)
    task = asyncio.create_task(scheduler.run(until=deadline))
    ...
    await scheduler.heal_all()   # before the final reads

With several nemeses, each alternates start and stop every `interval_s`, their phases
staggered evenly across the interval, so faults overlap and compose. Start/stop ops are an
`invoke` followed by `ok` (or `info` if applying the fault failed), value = what was done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from tobtest.histories.op import NEMESIS
from tobtest.histories.recorder import Recorder
from tobtest.nemesis.base import Nemesis, NemesisContext

log = logging.getLogger("tobtest.nemesis")
NEMESIS_OP_TIMEOUT_S = 10.0


class NemesisDriver(Protocol):
    """What the runner asks of whatever injects a run's faults: this periodic scheduler,
    the exploring nemesis, or a schedule file being executed."""

    faults_applied: int

    async def run(self, until: float) -> None:
        """Injects faults until the monotonic time `until`."""

    async def heal_all(self) -> None:
        """Undoes every fault in force (recorded as history ops), before the final reads."""

    def describe(self) -> str:
        """The faults in force now, in a few words ("none" when none)."""


class NemesisScheduler:
    def __init__(
        self,
        nemeses: list[Nemesis],
        ctx: NemesisContext,
        recorder: Recorder,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nemeses = nemeses
        self.ctx = ctx
        self.recorder = recorder
        self.interval_s = interval_s
        self.clock = clock
        self.faults_applied = 0

    def describe(self) -> str:
        active = [n.describe_active() for n in self.nemeses if n.active]
        return "; ".join(active) if active else "none"

    async def _apply(self, nemesis: Nemesis, f: str, action: Any) -> None:
        self.recorder.record("invoke", NEMESIS, f, None)
        try:
            value = await asyncio.wait_for(action(self.ctx), NEMESIS_OP_TIMEOUT_S)
        except Exception as exc:  # a failed fault is recorded, and the run goes on
            log.warning("nemesis %s failed: %s", f, exc)
            self.recorder.record("info", NEMESIS, f, None, error=f"{type(exc).__name__}: {exc}")
            return
        self.recorder.record("ok", NEMESIS, f, value)
        self.faults_applied += 1

    async def _run_one(self, nemesis: Nemesis, offset_s: float, until: float) -> None:
        await asyncio.sleep(offset_s)
        while True:
            # Wait a full interval, but never past the end of the main phase.
            remaining = until - self.clock()
            if remaining <= self.interval_s:
                return
            await asyncio.sleep(self.interval_s)
            if nemesis.active:
                await self._apply(nemesis, nemesis.stop_f, nemesis.stop)
            else:
                await self._apply(nemesis, nemesis.start_f, nemesis.start)

    async def run(self, until: float) -> None:
        """Runs until the monotonic time `until`; returns early if there are no nemeses."""
        count = len(self.nemeses)
        await asyncio.gather(
            *(
                self._run_one(nemesis, self.interval_s * k / count, until)
                for k, nemesis in enumerate(self.nemeses)
            )
        )

    async def heal_all(self) -> None:
        for nemesis in self.nemeses:
            f = f"heal-{nemesis.name}"
            await self._apply(nemesis, f, nemesis.heal)
