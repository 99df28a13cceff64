"""The node's virtual clock: real monotonic time, shifted and scaled by the clock nemesis.

    clock = VirtualClock(monotonic_ms=lambda: time.monotonic() * 1000)
    clock.bump(250.0)       # jump 250 ms ahead
    clock.set_rate(2.0)     # from now on run twice as fast
    clock.now_ms()

Every timeout, heartbeat and lease in the node reads this clock, never the real one, so
skewing it is how tobtest breaks the timing assumptions of leases. The clock is monotonic
only while the offset is not bumped backwards: a backwards bump is a fault on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class VirtualClock:
    def __init__(self, monotonic_ms: Callable[[], float]) -> None:
        self._real_ms = monotonic_ms
        self._anchor_real_ms = monotonic_ms()
        self._anchor_virtual_ms = 0.0
        self._rate = 1.0
        self._offset_ms = 0.0
        # strobe: flip the offset between 0 and delta_ms every period_ms until end (real ms).
        self._strobe: tuple[float, float, float, float] | None = None

    def _base_ms(self) -> float:
        return self._anchor_virtual_ms + (self._real_ms() - self._anchor_real_ms) * self._rate

    def now_ms(self) -> float:
        offset = self._offset_ms
        if self._strobe is not None:
            start_ms, delta_ms, period_ms, end_ms = self._strobe
            real = self._real_ms()
            if real >= end_ms:
                self._strobe = None
            elif int((real - start_ms) // period_ms) % 2 == 1:
                offset += delta_ms
        return self._base_ms() + offset

    def bump(self, delta_ms: float) -> None:
        self._offset_ms += delta_ms

    def set_rate(self, rate: float) -> None:
        if not 0.01 <= rate <= 100.0:
            raise ValueError(f"clock rate {rate} out of range [0.01, 100]")
        # Re-anchor so the virtual time is continuous at the moment the rate changes.
        self._anchor_virtual_ms = self._base_ms()
        self._anchor_real_ms = self._real_ms()
        self._rate = rate

    def strobe(self, delta_ms: float, period_ms: float, duration_ms: float) -> None:
        if period_ms <= 0 or duration_ms <= 0:
            raise ValueError("strobe period_ms and duration_ms must be positive")
        start = self._real_ms()
        self._strobe = (start, delta_ms, period_ms, start + duration_ms)

    def reset(self) -> None:
        """Back to real time's pace with no offset (virtual time stays continuous in rate)."""
        self._anchor_virtual_ms = self._base_ms()
        self._anchor_real_ms = self._real_ms()
        self._rate = 1.0
        self._offset_ms = 0.0
        self._strobe = None

    def describe(self) -> dict[str, Any]:
        return {
            "offset_ms": round(self._offset_ms, 3),
            "rate": self._rate,
            "strobing": self._strobe is not None,
        }
