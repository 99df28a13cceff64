"""tobtest/maelstrom/clock.py: a node's clock as libfaketime's timestamp file says it."""

from __future__ import annotations

import asyncio

import pytest

from tobtest.maelstrom.clock import ClockRequestError, FakeClock


def test_bump_skew_and_reset_write_offset_and_rate(tmp_path):
    path = tmp_path / "faketime.txt"
    clock = FakeClock(path)
    assert path.read_text() == "+0.000 x1\n"
    clock.apply({"op": "bump", "delta_ms": -250})
    assert path.read_text() == "-0.250 x1\n"
    clock.started_at -= 10.0  # the node has run for 10 s
    state = clock.apply({"op": "skew", "rate": 2.0})
    # libfaketime scales time since the node started: the offset takes back those 10 s,
    # so the node's clock goes on from where it was, twice as fast.
    assert state["rate"] == 2.0 and -10.3 < state["offset_ms"] / 1000 < -10.2
    assert path.read_text().endswith(" x2\n")
    assert clock.apply({"op": "reset"}) == {"offset_ms": 0.0, "rate": 1.0, "strobing": False}
    assert clock.env("/lib/faketime.so")["FAKETIME_TIMESTAMP_FILE"] == str(path)


@pytest.mark.parametrize(
    "request_", [{"op": "warp"}, {"op": "skew", "rate": 0}, {"op": "bump"}, {"op": "skew"}]
)
def test_a_bad_request_is_refused_and_changes_nothing(tmp_path, request_):
    clock = FakeClock(tmp_path / "faketime.txt")
    with pytest.raises(ClockRequestError):
        clock.apply(request_)
    assert clock.state() == {"offset_ms": 0.0, "rate": 1.0, "strobing": False}


def test_a_strobe_flips_the_offset_and_ends_where_it_began(tmp_path):
    async def scenario() -> tuple[bool, str]:
        clock = FakeClock(tmp_path / "faketime.txt")
        clock.apply({"op": "strobe", "delta_ms": 500, "period_ms": 5, "duration_ms": 10})
        await asyncio.sleep(0)  # the strobe's first flip
        flipped = (tmp_path / "faketime.txt").read_text()
        strobing = clock.state()["strobing"]
        clock.apply({"op": "reset"})
        await asyncio.sleep(0)
        return strobing, flipped

    strobing, flipped = asyncio.run(scenario())
    assert strobing and flipped == "+0.500 x1\n"
    assert (tmp_path / "faketime.txt").read_text() == "+0.000 x1\n"
