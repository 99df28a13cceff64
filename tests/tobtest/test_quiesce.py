"""Quiescence after the heal, driven with made-up status replies (no processes, no clocks).

The false alarm it exists for: a node just restarted from its log stands still (it has not
heard from the leader yet), so "delivered counts stood still for a second" read it while it
lacked hundreds of broadcasts. Times below are the fake `now_s` given to `observe`.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from tobtest import runner as runner_module
from tobtest.config import TestConfig
from tobtest.quiesce import Quiescence, disagreement
from tobtest.runner import Runner


def mp(chosen: int, leader: int | None = 0, **more: Any) -> dict[str, Any]:
    """A Multi-Paxos-like status reply."""
    status = {"role": "follower", "leader": leader, "ballot": [4, 0], "chosen_index": chosen}
    return {**status, "delivered": chosen - 1, **more}


def healthy(chosen: int = 4791) -> dict[str, dict[str, Any] | None]:
    return {"n1": mp(chosen, role="leader"), "n2": mp(chosen), "n3": mp(chosen)}


def feed(q: Quiescence, polls: list[dict[str, dict[str, Any] | None]], every_s: float = 0.2):
    """Observes each poll in turn at 0, every_s, 2 every_s, ...; returns `settled` after each."""
    return [q.observe(statuses, i * every_s) for i, statuses in enumerate(polls)]


def test_a_restarted_node_standing_still_behind_the_others_is_not_settled():
    restarted = {**healthy(), "n3": mp(4028, leader=None, ballot=[3, 2])}
    q = Quiescence(quiet_period_s=1.0)
    assert feed(q, [restarted] * 20) == [False] * 20  # 4 s of stillness: still not settled
    assert "chosen_index differs" in disagreement(restarted)


def test_settles_once_the_restarted_node_caught_up_and_the_quiet_period_passed():
    restarted = {**healthy(), "n3": mp(4028, leader=None)}
    q = Quiescence(quiet_period_s=1.0)
    settled = feed(q, [restarted] * 3 + [healthy()] * 7)
    # Agreement from the 4th poll (0.6 s); settled 1 s later, at the 9th (1.6 s).
    assert settled == [False] * 8 + [True, True]
    assert all(n.caught_up for n in q.nodes().values())
    assert q.final_read_extra("n3") == {"caught_up": True}
    assert q.report()["settled"] is True and q.report()["not_caught_up"] == []


def test_agreement_must_hold_still_for_the_quiet_period():
    q = Quiescence(quiet_period_s=1.0)
    # The nodes agree at every poll but the log still grows (late decisions landing).
    assert not any(feed(q, [healthy(4700 + i) for i in range(10)]))


def test_a_node_that_names_no_leader_keeps_it_unsettled_but_is_caught_up():
    polls = [{**healthy(), "n2": mp(4791, leader=None)}] * 10
    q = Quiescence(quiet_period_s=1.0)
    assert not any(feed(q, polls))
    assert q.report()["reason"].startswith("no agreed leader")
    assert q.report()["not_caught_up"] == []


def test_a_node_never_caught_up_is_reported_with_how_far_behind_and_its_status():
    stuck = mp(4028, leader=None, messages_sent={"catchup": 3}, messages_received={})
    polls = [{**healthy(), "n3": stuck}] * 10
    q = Quiescence(quiet_period_s=1.0)
    assert not any(feed(q, polls))  # the runner stops at its bound and reads anyway
    extra = q.final_read_extra("n3")
    assert extra["caught_up"] is False and extra["behind_by"] == 4791 - 4028
    assert extra["node_status"]["chosen_index"] == 4028
    assert "messages_sent" not in extra["node_status"]  # bulky counters stay out of the op
    assert q.final_read_extra("n1") == {"caught_up": True}
    report = q.report()
    assert report["not_caught_up"] == ["n3"] and report["progress_key"] == "chosen_index"
    assert report["nodes"]["n3"] == {"caught_up": False, "progress": 4028, "behind_by": 763}
    assert "chosen_index differs" in report["reason"]


def test_a_node_that_does_not_answer_is_not_caught_up():
    polls = [{**healthy(), "n2": None}] * 10
    q = Quiescence(quiet_period_s=0.5)
    assert not any(feed(q, polls))
    assert disagreement(polls[0]) == "no status from n2"
    assert q.final_read_extra("n2") == {"caught_up": False, "behind_by": None, "node_status": None}


def test_per_slot_paxos_statuses_have_no_leader_and_agree_on_chosen_index():
    paxos = {n: {"role": "proposer", "chosen_index": 50, "delivered": 48} for n in "abc"}
    q = Quiescence(quiet_period_s=0.4)
    assert feed(q, [paxos] * 4) == [False, False, True, True]


def test_delivered_alone_is_compared_when_a_status_has_no_chosen_index():
    polls = [{"n1": {"delivered": 9}, "n2": {"delivered": 7}}] * 5
    q = Quiescence(quiet_period_s=0.2)
    assert not any(feed(q, polls))
    assert q.report()["progress_key"] == "delivered"
    assert q.report()["not_caught_up"] == ["n2"]


def test_statuses_without_progress_fields_get_the_older_rule_and_no_judgement():
    # Another node kind: nothing to compare, so nobody is called caught up or not.
    q = Quiescence(quiet_period_s=0.4)
    assert not any(feed(q, [{"n1": {"role": "x"}, "n2": {"role": "y"}}] * 5))
    assert q.report()["rule"] == "delivered-still"
    assert q.final_read_extra("n1") == {} and q.report()["not_caught_up"] == []


# ---- the runner's loop around it, with fake statuses ----------------------------------------


def fake_runner(tmp_path, monkeypatch, polls: list, **config: Any) -> Runner:
    runner = Runner(TestConfig(store=str(tmp_path), seed=1, **config))
    replies = iter(polls)

    async def statuses(self: Runner, timeout_s: float = 1.0) -> dict[str, Any]:
        return next(replies, polls[-1])

    monkeypatch.setattr(Runner, "_statuses", statuses)
    monkeypatch.setattr(runner_module, "QUIESCE_POLL_S", 0.0)
    return runner


def test_runner_quiesce_waits_for_the_lagging_node(tmp_path, monkeypatch):
    restarted = {**healthy(), "n3": mp(4028, leader=None)}
    runner = fake_runner(tmp_path, monkeypatch, [restarted] * 5 + [healthy()], quiet_period_s=0.0)
    q = asyncio.run(runner._quiesce())
    assert q.settled and q.polls == 7  # 5 behind, then agreement seen twice
    assert runner.quiescence is q


def test_runner_quiesce_stops_at_its_bound_and_final_reads_say_who_lagged(tmp_path, monkeypatch):
    stuck = {**healthy(), "n3": mp(4028, leader=None)}
    runner = fake_runner(tmp_path, monkeypatch, [stuck], quiesce_timeout_s=0.0)
    runner.cluster = SimpleNamespace(names=["n1", "n2", "n3"])  # type: ignore[assignment]
    reads: dict[str, dict[str, Any]] = {}

    async def final_read(self: Runner, node: str, op: dict[str, Any]) -> None:
        reads[node] = op

    async def save_statuses(self: Runner) -> None:
        pass

    monkeypatch.setattr(Runner, "_final_read", final_read)
    monkeypatch.setattr(Runner, "_save_statuses", save_statuses)
    asyncio.run(runner._final_phase())
    assert runner.quiescence is not None and not runner.quiescence.settled
    assert reads["n1"]["caught_up"] is True and reads["n1"]["final"] is True
    assert reads["n3"]["caught_up"] is False and reads["n3"]["behind_by"] == 763
    assert reads["n3"]["node_status"]["leader"] is None
    assert runner.quiescence.report()["not_caught_up"] == ["n3"]


@pytest.mark.parametrize("poll", [{"n1": None, "n2": None}])
def test_nobody_answering_judges_nobody(poll):
    q = Quiescence(quiet_period_s=0.2)
    assert not any(feed(q, [poll] * 3))
    assert q.report()["not_caught_up"] == [] and q.final_read_extra("n1") == {}


# ---- on real processes ----------------------------------------------------------------------


def run_with_a_node_cut_off_past_the_heal(tmp_path, monkeypatch, cut_after_s: float = 1.5):
    """A short Multi-Paxos run in which, `cut_after_s` into the main phase, a follower stops
    hearing the others (it still reaches them) and goes on hearing nothing for 2.5 s after
    the main phase: as a node restarted at the heal does until the proxy reconnects to it,
    only longer. Returns the runner's result and the node that was cut off."""
    cut: list[str] = []
    main_phase = Runner._main_phase

    async def main_phase_with_a_cut(self: Runner, proxy: Any) -> None:
        assert self.cluster is not None
        names = self.cluster.names

        async def cut_one() -> None:
            await asyncio.sleep(cut_after_s)
            primaries = await self._primaries()
            cut.append(next(n for n in reversed(names) if n not in primaries))
            await proxy.grudge({cut[0]: [n for n in names if n != cut[0]]})

        async def lift() -> None:
            await asyncio.sleep(2.5)
            await proxy.heal()

        task = asyncio.create_task(cut_one())
        try:
            await main_phase(self, proxy)
        finally:
            task.cancel()
        self._lift_cut = asyncio.create_task(lift())  # type: ignore[attr-defined]

    monkeypatch.setattr(Runner, "_main_phase", main_phase_with_a_cut)
    config = TestConfig(
        protocol="multipaxos", nemesis=[], time_limit_s=4, rate=100, store=str(tmp_path), seed=3
    )
    return asyncio.run(Runner(config).run()), cut


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_a_node_still_cut_off_after_the_heal_is_read_only_once_it_caught_up(tmp_path, monkeypatch):
    result, cut = run_with_a_node_cut_off_past_the_heal(tmp_path, monkeypatch)
    assert len(cut) == 1
    quiesce = result.results["quiesce"]
    # Delivered counts stood still on the cut-off node for 2.5 s: the older rule read it
    # after 1 s and reported every broadcast it lacked as lost.
    assert quiesce["settled"] is True and quiesce["waited_s"] >= 2.0, quiesce
    assert result.valid is True, result.results
