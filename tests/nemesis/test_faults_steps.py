"""The fault primitives (`nemesis/faults.py`) on a fake cluster and proxy: each acts only on
nodes in the state it needs, and every step executed is logged with its offset and resolved
arguments, so that the log replays through `apply_step`."""

from __future__ import annotations

import asyncio
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.faults import STEP_KINDS


class FakeProxy:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def grudge(self, grudge: Any) -> None:
        self.calls.append(("grudge", grudge))

    async def heal(self) -> None:
        self.calls.append(("heal", None))

    async def link_faults(self, faults: Any) -> None:
        self.calls.append(("link_faults", faults))

    async def clear_link_faults(self) -> None:
        self.calls.append(("clear", None))


class FakeCluster:
    def __init__(self, names: list[str]) -> None:
        self.nodes = {n: SimpleNamespace(state=SimpleNamespace(value="running")) for n in names}
        self.calls: list[tuple[str, str]] = []

    def _set(self, name: str, verb: str, state: str) -> None:
        self.calls.append((verb, name))
        self.nodes[name].state = SimpleNamespace(value=state)

    def kill(self, name: str) -> None:
        self._set(name, "kill", "killed")

    def restart(self, name: str) -> None:
        self._set(name, "restart", "running")

    def pause(self, name: str) -> None:
        self._set(name, "pause", "paused")

    def resume(self, name: str) -> None:
        self._set(name, "resume", "running")

    async def wait_ready(self, names: list[str]) -> None:
        return None

    def signal_running(self, name: str, signum: int) -> bool:
        if self.nodes[name].state.value != "running":
            return False
        self.calls.append((signal.Signals(signum).name, name))
        return True

    def client_address(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", 1)  # nothing listens: clock requests are not answered


def make_ctx(base: list[dict[str, Any]] | None = None) -> NemesisContext:
    names = ["n1", "n2", "n3"]

    async def primaries() -> list[str]:
        return ["n1"]

    return NemesisContext(names, FakeProxy(), primaries, FakeCluster(names), base or [])  # type: ignore[arg-type]


def test_process_steps_act_only_on_nodes_in_the_needed_state() -> None:
    ctx = make_ctx()

    async def scenario() -> None:
        faults = ctx.faults
        assert await faults.kill(["n2", "n9"]) == ["n2"]  # unknown names are left out
        assert await faults.kill(["n2", "n3"]) == ["n3"]  # n2 is down already
        assert await faults.pause(["n1", "n2"]) == ["n1"]  # only a running node pauses
        assert faults.down() == ["n2", "n3"] and faults.paused() == ["n1"]
        assert await faults.restart(faults.down()) == ["n2", "n3"]
        assert await faults.resume(["n1", "n2"]) == ["n1"]

    asyncio.run(scenario())
    assert [s["do"] for s in ctx.faults.executed] == [
        "kill", "kill", "pause", "restart", "resume"
    ]  # fmt: skip
    assert ctx.cluster.calls == [
        ("kill", "n2"), ("kill", "n3"), ("pause", "n1"),
        ("restart", "n2"), ("restart", "n3"), ("resume", "n1"),
    ]  # fmt: skip


def test_network_steps_are_logged_resolved_and_keep_the_background_latency() -> None:
    base = [{"src": "*", "dst": "*", "delay_ms": 20}]
    ctx = make_ctx(base)
    toxic = {"src": "n1", "dst": "n2", "loss": 0.5}

    async def scenario() -> None:
        await ctx.faults.partition({"n2": ["n1"], "n3": []})
        await ctx.faults.link([toxic])
        await ctx.faults.link_clear()
        await ctx.faults.heal()

    asyncio.run(scenario())
    steps = ctx.faults.executed
    assert steps[0]["grudge"] == {"n2": ["n1"]}  # nodes that drop nothing are left out
    assert steps[1]["faults"] == [toxic]
    assert ctx.proxy.calls[1] == ("link_faults", [*base, toxic])
    assert ctx.proxy.calls[2] == ("link_faults", base)  # link-clear restores the background
    assert [s["do"] for s in steps] == ["partition", "link", "link-clear", "heal"]
    assert all(set(s) - {"at_s", "do"} <= set(STEP_KINDS[s["do"]]) for s in steps)
    assert all(s["at_s"] >= 0 for s in steps)


def test_a_clock_step_lists_only_the_nodes_that_answered() -> None:
    ctx = make_ctx()
    applied = asyncio.run(ctx.faults.clock({"n1": {"op": "skew", "rate": 2.0}}))
    assert applied == {}
    assert ctx.faults.executed[-1] == {"at_s": ctx.faults.executed[-1]["at_s"], "do": "clock",
                                       "nodes": {}}  # fmt: skip


def test_an_executed_log_replays_through_apply_step() -> None:
    ctx = make_ctx()

    async def original() -> None:
        await ctx.faults.partition({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
        await ctx.faults.kill(["n3"])
        await ctx.faults.restart(["n3"])
        await ctx.faults.heal()

    asyncio.run(original())
    log = [dict(s) for s in ctx.faults.executed]
    replay = make_ctx()

    async def again() -> None:
        for step in log:
            await replay.faults.apply_step(step)

    asyncio.run(again())
    strip = [{k: v for k, v in s.items() if k != "at_s"} for s in replay.faults.executed]
    assert strip == [{k: v for k, v in s.items() if k != "at_s"} for s in log]
    with pytest.raises(ValueError, match="unknown step"):
        asyncio.run(replay.faults.apply_step({"do": "explode"}))


def test_weather_is_the_background_under_toxics_and_never_below_the_runs_own() -> None:
    run_base = [{"src": "*", "dst": "*", "delay_ms": 20}]
    ctx = make_ctx(list(run_base))
    toxic = {"src": "n1", "dst": "n2", "loss": 0.5}

    async def scenario() -> None:
        await ctx.faults.weather(80.0, 10.0)
        await ctx.faults.link([toxic])
        await ctx.faults.weather(5.0)  # below the run's 20 ms: the run's latency stays
        await ctx.faults.heal_everything()

    asyncio.run(scenario())
    wan = {"src": "*", "dst": "*", "delay_ms": 80.0, "jitter_ms": 10.0}
    assert ctx.proxy.calls[0] == ("link_faults", [wan])
    assert ctx.proxy.calls[1] == ("link_faults", [wan, toxic])
    assert ctx.proxy.calls[2] == ("link_faults", [*run_base, toxic])
    assert ctx.base_link_faults == run_base, "healing restores the run's own latency"
    steps = [s for s in ctx.faults.executed if s["do"] == "weather"]
    assert steps[0] == {"at_s": steps[0]["at_s"], "do": "weather", "delay_ms": 80.0,
                        "jitter_ms": 10.0}  # fmt: skip


def test_weather_links_are_per_link_over_the_background_and_replay() -> None:
    run_base = [{"src": "*", "dst": "*", "delay_ms": 20}]
    ctx = make_ctx(list(run_base))
    links = [
        {"src": "n1", "dst": "n2", "delay_ms": 90.0, "jitter_ms": 9.0, "loss": 0.05},
        {"src": "n2", "dst": "n1", "delay_ms": 3.0},  # below the run's 20 ms: raised to it
    ]

    async def scenario() -> None:
        await ctx.faults.weather(30.0, 0.0, links)
        await ctx.faults.heal_everything()

    asyncio.run(scenario())
    sent = ctx.proxy.calls[0]
    assert sent[0] == "link_faults"
    assert sent[1][0] == {"src": "*", "dst": "*", "delay_ms": 30.0, "jitter_ms": 0.0}
    assert sent[1][1] == links[0] and sent[1][2] == {**links[1], "delay_ms": 20.0}
    assert ctx.base_link_faults == run_base, "healing restores the run's own latency"
    step = next(s for s in ctx.faults.executed if s["do"] == "weather")
    assert step["links"][1]["delay_ms"] == 20.0 and "links" in STEP_KINDS["weather"]

    replay = make_ctx(list(run_base))
    asyncio.run(replay.faults.apply_step(step))
    assert replay.proxy.calls[0] == sent, "the logged step replays the same links"


def test_throttle_stops_and_starts_a_node_until_unthrottled_and_heal_ends_it() -> None:
    ctx = make_ctx()
    cluster = ctx.cluster

    async def scenario() -> tuple[list[str], int]:
        throttled = await ctx.faults.throttle(["n1", "n9"], stopped_ms=5, period_ms=10)
        await ctx.faults.throttle(["n1"], stopped_ms=5, period_ms=10)  # already: no second
        await asyncio.sleep(0.1)
        await ctx.faults.kill(["n2"])
        assert await ctx.faults.throttle(["n2"], 5, 10) == [], "a killed node is not throttled"
        await ctx.faults.unthrottle(["n1"])
        cycles = len(cluster.calls)
        await asyncio.sleep(0.05)
        assert len(cluster.calls) == cycles, "unthrottled: no more signals"
        await ctx.faults.throttle(["n3"], stopped_ms=50, period_ms=100)
        await asyncio.sleep(0.01)  # inside n3's first stop
        await ctx.faults.heal_everything()
        return throttled, cycles

    throttled, cycles = asyncio.run(scenario())
    assert throttled == ["n1"] and not ctx.faults.throttles
    stops = [c for c in cluster.calls if c == ("SIGSTOP", "n1")]
    starts = [c for c in cluster.calls if c == ("SIGCONT", "n1")]
    assert len(stops) >= 5 and len(stops) == len(starts), "every stop is followed by a start"
    n3 = [verb for verb, name in cluster.calls if name == "n3" and verb.startswith("SIG")]
    assert n3 and n3[-1] == "SIGCONT", "healing never leaves a node stopped"
    steps = [s for s in ctx.faults.executed if s["do"] in ("throttle", "unthrottle")]
    assert steps[0]["nodes"] == ["n1"] and steps[0]["stopped_ms"] == 5
    assert {"throttle", "unthrottle"} <= set(STEP_KINDS)
    with pytest.raises(ValueError, match="throttle needs"):
        asyncio.run(ctx.faults.apply_step({"do": "throttle", "nodes": ["n1"]}))
