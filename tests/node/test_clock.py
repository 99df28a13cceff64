"""The virtual clock: offsets, rates and strobes over a fake real clock."""

import pytest

from tobtest.node.clock import VirtualClock


class FakeTime:
    def __init__(self) -> None:
        self.ms = 1000.0

    def __call__(self) -> float:
        return self.ms


def test_runs_at_real_pace_from_zero():
    real = FakeTime()
    clock = VirtualClock(real)
    real.ms += 250
    assert clock.now_ms() == pytest.approx(250)


def test_bump_and_rate_and_reset():
    real = FakeTime()
    clock = VirtualClock(real)
    clock.bump(100)
    assert clock.now_ms() == pytest.approx(100)
    real.ms += 100
    clock.set_rate(2.0)
    real.ms += 100
    # 100 ms at 1x, then 100 ms at 2x, plus the 100 ms bump.
    assert clock.now_ms() == pytest.approx(100 + 100 + 200)
    clock.reset()
    real.ms += 10
    assert clock.now_ms() == pytest.approx(300 + 10)
    assert clock.describe() == {"offset_ms": 0.0, "rate": 1.0, "strobing": False}


def test_strobe_flips_offset_each_period_then_stops():
    real = FakeTime()
    clock = VirtualClock(real)
    clock.strobe(delta_ms=1000, period_ms=10, duration_ms=40)
    seen = []
    for _ in range(6):
        seen.append(round(clock.now_ms() - (real.ms - 1000)))
        real.ms += 10
    assert seen == [0, 1000, 0, 1000, 0, 0]
    assert clock.describe()["strobing"] is False


def test_bad_rate_is_refused():
    clock = VirtualClock(FakeTime())
    with pytest.raises(ValueError):
        clock.set_rate(0)
