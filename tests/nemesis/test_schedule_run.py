"""The schedule executor (nemesis/schedule_run.py) on a fake cluster and proxy, with fake
status replies: role resolution, waits that time out, seeded sleeps, the executed log it
leaves, and the replay of such a log. Timeouts are tiny; nothing asserts a duration."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import pytest

from tests.nemesis.test_faults_steps import make_ctx
from tobtest.histories.recorder import Recorder
from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.schedule_file import parse_schedule
from tobtest.nemesis.schedule_run import ReplayDriver, Resolver, ScheduleDriver

NAMES = ["n1", "n2", "n3"]
BOUND_S = 10.0  # no test here should come near it: a hang fails instead of blocking


def lead(leader: str | None, ballot: int = 1, named: str | None = None) -> dict[str, Any]:
    """Statuses in which `leader` claims to lead (or none does, each naming `named`)."""
    ids = {n: k for k, n in enumerate(NAMES)}
    out: dict[str, Any] = {}
    for n in NAMES:
        role = "leader" if n == leader else "follower"
        out[n] = {"role": role, "ballot": [ballot, ids[n]],
                  "leader": ids.get(named or leader or "")}  # fmt: skip
    return out


class FakeStatuses:
    """Status replies by call: each poll takes the next state, the last one repeats."""

    def __init__(self, *states: dict[str, Any]) -> None:
        self.states = list(states)
        self.calls = 0

    async def __call__(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        state = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return {n: state.get(n) for n in names}


def resolve(target: Any, statuses: FakeStatuses, seed: int = 1, **bound: list[str]):
    resolver = Resolver(NAMES, random.Random(seed), statuses)
    resolver.bindings.update(bound)
    notes: list[str] = []
    nodes = asyncio.run(resolver.resolve(target, notes))
    return nodes, notes


def test_leader_and_followers_come_from_the_status_replies() -> None:
    assert resolve("leader", FakeStatuses(lead("n2"))) == (["n2"], [])
    assert resolve("followers", FakeStatuses(lead("n2")))[0] == ["n1", "n3"]
    both = lead("n1", ballot=1)
    both["n3"] = {"role": "leader", "ballot": [5, 2], "leader": 2}
    nodes, notes = resolve("leader", FakeStatuses(both))
    assert nodes == ["n3"] and "highest ballot" in notes[0]


def test_with_nobody_leading_the_leader_falls_back_and_says_how() -> None:
    nodes, notes = resolve("leader", FakeStatuses(lead(None, named="n3")))
    assert nodes == ["n3"] and "named leader" in notes[0]
    silent = {n: {"role": "follower", "ballot": [0, 0], "leader": None} for n in NAMES}
    nodes, notes = resolve("leader", FakeStatuses(silent))
    assert len(nodes) == 1 and "at random" in notes[0]


def test_picks_bindings_and_random_roles() -> None:
    st = FakeStatuses(lead("n1"))
    target = {"pick": "half", "except": ["$old", "$new"]}
    assert resolve(target, st, old=["n1"], new=["n2"])[0] == ["n3"]
    assert resolve(target, st, old=["n1"], new=[])[0] in (["n2"], ["n3"])
    assert len(resolve("majority", st)[0]) == 2 and len(resolve("minority", st)[0]) == 1
    assert resolve(["n3", "$x", "n1"], st, x=["n3"])[0] == ["n1", "n3"]
    assert resolve({"except": "leader"}, st)[0] == ["n2", "n3"]
    assert resolve("one", st, seed=4) == resolve("one", st, seed=4)  # seeded


def run_schedule(
    text: str, statuses: FakeStatuses, tmp_path, seed: int = 1, limit_s: float = 5.0
) -> tuple[ScheduleDriver, NemesisContext]:
    ctx = make_ctx()
    recorder = Recorder(tmp_path / f"history-{seed}-{time.monotonic_ns()}.jsonl")
    driver = ScheduleDriver(parse_schedule(text, "t.yaml", 3), ctx, recorder, seed,
                            statuses=statuses)  # fmt: skip

    async def go() -> None:
        ctx.faults.start_clock()
        await asyncio.wait_for(driver.run(until=time.monotonic() + limit_s), BOUND_S)
        await driver.heal_all()

    asyncio.run(go())
    recorder.close()
    return driver, ctx


def nemesis_ops(driver: ScheduleDriver) -> list[tuple[str, str, Any]]:
    return [(op.type, op.f, op.value) for op in driver.recorder.ops]


FLIP = """\
loop: false
steps:
  - do: partition
    isolate: leader
    as: old
  - wait: leader-change
    from: $old
    timeout_s: 2
    poll_s: 0.001
    as: new
  - remember: {pick: half, except: [$old, $new]}
    as: victims
  - wait: accepted-unchosen
    nodes: $victims
    timeout_s: 2
  - do: kill
    nodes: $victims
  - do: partition
    sides: [[$old, $victims]]
  - do: restart
    nodes: $victims
  - do: heal
"""


def test_the_flip_steps_on_a_fake_cluster_leave_the_expected_executed_log(tmp_path) -> None:
    window = lead("n2", ballot=2)
    window["n3"]["accepted_unchosen"] = 1
    statuses = FakeStatuses(lead("n1"), lead("n1"), lead("n2", ballot=2), window)
    driver, ctx = run_schedule(FLIP, statuses, tmp_path)
    steps = [{k: v for k, v in s.items() if k != "at_s"} for s in ctx.faults.executed]
    assert [(s["do"], s.get("nodes", s.get("grudge"))) for s in steps[:5]] == [
        ("partition", {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
        ("kill", ["n3"]),
        ("partition", {"n1": ["n2"], "n2": ["n1", "n3"], "n3": ["n2"]}),
        ("restart", ["n3"]),
        ("heal", None),
    ]
    assert steps[1]["source"] == {"line": 16, "targets": {"nodes": "$victims"}}
    assert [s["do"] for s in steps[5:]] == ["resume", "restart", "heal", "link-clear",
                                            "clock-reset"]  # heal_all  # fmt: skip
    ops = nemesis_ops(driver)
    assert [f for t, f, _ in ops if t == "invoke"] == [
        "partition", "wait-leader-change", "remember", "wait-accepted-unchosen", "kill",
        "partition", "restart", "heal", "heal-all",
    ]  # fmt: skip
    assert all(t in ("invoke", "ok") for t, _, _ in ops)
    oks = {f: v for t, f, v in ops if t == "ok"}
    assert oks["wait-leader-change"]["leader"] == "n2" and oks["wait-leader-change"]["met"]
    assert oks["wait-accepted-unchosen"]["met"] is True
    assert oks["remember"]["nodes"] == ["n3"]
    assert driver.faults_applied == 5 and driver.describe() == "none"


def test_a_wait_that_times_out_goes_on_or_skips_the_rest_of_the_iteration(tmp_path) -> None:
    text = """\
loop: false
steps:
  - wait: leader-change
    timeout_s: 0.02
    poll_s: 0.005
    on_timeout: {on}
  - do: kill
    nodes: n2
"""
    still = FakeStatuses(lead("n1"))
    driver, ctx = run_schedule(text.format(on="continue"), still, tmp_path)
    assert [s["do"] for s in ctx.faults.executed][0] == "kill"
    wait = [v for t, f, v in nemesis_ops(driver) if f == "wait-leader-change" and t == "ok"][0]
    assert wait["met"] is False and wait["on_timeout"] == "continue" and wait["from"] == ["n1"]
    driver, ctx = run_schedule(text.format(on="skip"), FakeStatuses(lead("n1")), tmp_path)
    assert "kill" not in [s["do"] for s in ctx.faults.executed]


def test_a_skip_ends_only_the_innermost_repeat_iteration(tmp_path) -> None:
    text = """\
loop: false
steps:
  - repeat: 2
    steps:
      - wait: answers
        nodes: n2
        timeout_s: 0.01
        on_timeout: skip
      - do: kill
        nodes: n1
  - do: pause
    nodes: n3
"""
    silent = FakeStatuses({})  # nobody answers
    driver, ctx = run_schedule(text, silent, tmp_path)
    assert [s["do"] for s in ctx.faults.executed][0] == "pause"
    waits = [f for t, f, _ in nemesis_ops(driver) if t == "invoke" and f.startswith("wait")]
    assert waits == ["wait-answers", "wait-answers"]


def test_seeded_sleeps_are_the_same_for_a_seed(tmp_path) -> None:
    text = "loop: false\nsteps:\n  - repeat: 4\n    steps:\n      - sleep_s: [0, 0.01]\n"

    def drawn(seed: int) -> list[float]:
        driver, _ = run_schedule(text, FakeStatuses({}), tmp_path, seed=seed)
        return [v["sleep_s"] for t, f, v in nemesis_ops(driver) if f == "sleep" and t == "ok"]

    assert drawn(7) == drawn(7)
    assert drawn(7) != drawn(8)
    assert all(0 <= s <= 0.01 for s in drawn(7))


def test_the_time_limit_ends_a_long_sleep_and_the_loop(tmp_path) -> None:
    text = "steps:\n  - do: kill\n    nodes: n1\n  - sleep_s: 600\n"
    driver, ctx = run_schedule(text, FakeStatuses({}), tmp_path, limit_s=0.05)
    assert [s["do"] for s in ctx.faults.executed][0] == "kill"
    assert driver.iterations == 0  # the sleep was cut: the loop never came round again


def test_an_executed_log_replays_at_its_offsets(tmp_path) -> None:
    window = lead("n2", ballot=2)
    window["n3"]["accepted_unchosen"] = 1
    statuses = FakeStatuses(lead("n1"), lead("n1"), lead("n2", ballot=2), window)
    _, ctx = run_schedule(FLIP, statuses, tmp_path)
    executed = [dict(s) for s in ctx.faults.executed[:5]]
    replay_ctx = make_ctx()
    recorder = Recorder(tmp_path / "replay.jsonl")
    driver = ReplayDriver(executed, replay_ctx, recorder)

    async def go() -> None:
        replay_ctx.faults.start_clock()
        await asyncio.wait_for(driver.run(until=time.monotonic() + 5.0), BOUND_S)

    asyncio.run(go())
    strip = ("at_s", "source")
    again = [{k: v for k, v in s.items() if k not in strip} for s in replay_ctx.faults.executed]
    assert again == [{k: v for k, v in s.items() if k not in strip} for s in executed]
    assert all(
        b["at_s"] >= a["at_s"] for a, b in zip(executed, replay_ctx.faults.executed, strict=True)
    )
    oks = [op for op in recorder.ops if op.type == "ok"]
    assert [op.f for op in oks] == [s["do"] for s in executed]
    assert oks[0].value["replayed_at_s"] == executed[0]["at_s"]


def test_a_replay_stops_at_the_time_limit(tmp_path) -> None:
    replay_ctx = make_ctx()
    steps = [{"at_s": 0.0, "do": "kill", "nodes": ["n1"]}, {"at_s": 600.0, "do": "heal"}]
    driver = ReplayDriver(steps, replay_ctx, Recorder(None))

    async def go() -> None:
        replay_ctx.faults.start_clock()
        await asyncio.wait_for(driver.run(until=time.monotonic() + 0.05), BOUND_S)

    asyncio.run(go())
    assert [s["do"] for s in replay_ctx.faults.executed] == ["kill"]
    assert driver.skipped == 1


@pytest.mark.parametrize("kind", ["pause", "kill"])
def test_heal_all_undoes_process_faults_and_is_a_history_op(tmp_path, kind: str) -> None:
    text = f"loop: false\nsteps:\n  - do: {kind}\n    nodes: all\n"
    driver, ctx = run_schedule(text, FakeStatuses({}), tmp_path)
    assert ctx.faults.running() == NAMES
    assert [f for t, f, _ in nemesis_ops(driver) if t == "ok"][-1] == "heal-all"


def test_a_progress_wait_holds_until_each_node_commits_past_its_first_answer(tmp_path) -> None:
    text = """\
loop: false
steps:
  - wait: progress
    nodes: [n1, n2]
    timeout_s: 2
    poll_s: 0.001
  - do: kill
    nodes: n1
"""

    def at(n1: int, n2: int) -> dict[str, Any]:
        state = lead("n1")
        state["n1"]["chosen_index"], state["n2"]["delivered"] = n1, n2
        return state

    # n1 moves first; the wait holds until n2 (which reports only `delivered`) moves too.
    statuses = FakeStatuses(at(5, 3), at(6, 3), at(7, 3), at(7, 4))
    driver, ctx = run_schedule(text, statuses, tmp_path)
    oks = {f: v for t, f, v in nemesis_ops(driver) if t == "ok"}
    assert oks["wait-progress"]["met"] is True and statuses.calls == 4
    assert ctx.faults.executed[0]["do"] == "kill"
    # Nothing moves: the wait times out, and goes on.
    still = FakeStatuses(at(5, 3))
    text_short = text.replace("timeout_s: 2", "timeout_s: 0.02")
    driver, _ = run_schedule(text_short, still, tmp_path, seed=2)
    oks = {f: v for t, f, v in nemesis_ops(driver) if t == "ok"}
    assert oks["wait-progress"]["met"] is False
