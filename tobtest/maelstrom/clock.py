"""A Maelstrom node's clock, moved through libfaketime's timestamp file (the shim's part).

    clock = FakeClock(Path("n1.data/faketime.txt"))   # writes "+0.000 x1"
    clock.env("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")  # for the node's launch
    clock.started()                                    # the node starts now
    clock.apply({"op": "skew", "rate": 2.0})           # the same requests as the built-in node

The node runs with libfaketime preloaded (LD_PRELOAD), reading its offset and rate from
the file (FAKETIME_TIMESTAMP_FILE, "+OFFSET xRATE"); every clock it reads, wall and
monotonic, follows. libfaketime re-reads the file when a whole second has passed since it
last did (FAKETIME_CACHE_DURATION=1, counted in whole seconds), so a change takes effect
within two seconds and a strobe flips at most every two seconds. libfaketime applies a
rate since the process started, so a new rate comes with an offset that keeps the node's
clock continuous (to within the time between the shim's spawn and libfaketime's start).
`reset` is the real clock again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

CACHE_DURATION_S = 1
MIN_RATE, MAX_RATE = 0.01, 100.0


class ClockRequestError(ValueError):
    """A clock request with a wrong op or value; the message is the error text."""


class FakeClock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset_s = 0.0
        self.rate = 1.0
        self.started_at = time.time()
        self._strobe: asyncio.Task[None] | None = None
        self._write()

    def env(self, lib: str) -> dict[str, str]:
        return {
            "LD_PRELOAD": lib,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_CACHE_DURATION": str(CACHE_DURATION_S),
        }

    def started(self) -> None:
        self.started_at = time.time()

    def _write(self) -> None:
        # Written whole and renamed, so libfaketime never reads half a line.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset_s:+.3f} x{self.rate:g}\n")
        os.replace(tmp, self.path)

    def state(self) -> dict[str, Any]:
        return {
            "offset_ms": round(self.offset_s * 1000, 1),
            "rate": self.rate,
            "strobing": self._strobe is not None and not self._strobe.done(),
        }

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Applies one `clock` request (bump, skew, strobe, reset); returns the state."""
        op = request.get("op")
        try:
            if op == "bump":
                self.offset_s += float(request["delta_ms"]) / 1000
            elif op == "skew":
                rate = float(request["rate"])
                if not MIN_RATE <= rate <= MAX_RATE:
                    raise ClockRequestError(f"rate must be in {MIN_RATE}..{MAX_RATE}")
                # Keep the node's clock where it is: libfaketime scales since its start.
                self.offset_s += (time.time() - self.started_at) * (self.rate - rate)
                self.rate = rate
            elif op == "strobe":
                self._stop_strobe()
                self._strobe = asyncio.create_task(self._run_strobe(
                    float(request["delta_ms"]) / 1000, float(request["period_ms"]) / 1000,
                    float(request["duration_ms"]) / 1000,
                ))  # fmt: skip
            elif op == "reset":
                self._stop_strobe()
                self.offset_s, self.rate = 0.0, 1.0
            else:
                raise ClockRequestError(f"unknown clock op {op!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ClockRequestError(str(exc)) from None
        self._write()
        return self.state()

    def _stop_strobe(self) -> None:
        if self._strobe is not None:
            self._strobe.cancel()
            self._strobe = None

    async def _run_strobe(self, delta_s: float, period_s: float, duration_s: float) -> None:
        base = self.offset_s
        deadline = time.monotonic() + duration_s
        up = False
        with contextlib.suppress(asyncio.CancelledError):
            while time.monotonic() < deadline:
                up = not up
                self.offset_s = base + (delta_s if up else 0.0)
                self._write()
                # Faster flips would fall between libfaketime's reads.
                await asyncio.sleep(max(period_s, 2 * CACHE_DURATION_S))
        self.offset_s = base
        self._write()
