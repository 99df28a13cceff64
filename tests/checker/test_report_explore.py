"""report.html's "What the nemesis explored": from results.json's `exploration`, from the
history's nemesis ops without one, and nothing (no error) for a run without faults."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from tests.checker.test_report import Page
from tests.checker.test_report_runs import (
    EXPLORATION,
    make_explore_run,
    make_run,
    run_config,
    simulate_broadcast_run,
    write_run,
)
from tobtest.checker.report import write_report
from tobtest.checker.report_data import exploration, load_run
from tobtest.histories.op import NEMESIS


def _text_between(page_text: str, start: str, end: str) -> str:
    begin = page_text.index(start)
    return page_text[begin : page_text.index(end, begin)]


def test_report_of_an_explored_run_has_the_section_between_glance_and_checkers(
    tmp_path: Path,
) -> None:
    run_dir = make_explore_run(tmp_path, "multipaxos-broadcast-explore", "20260101T120000", 3)
    html = write_report(run_dir).read_text()
    page = Page(html)
    assert page.by_id["explored"]["tag"] == "section"
    assert html.index('id="explored"') < html.index('id="checkers"')
    text = page.all_text
    section = _text_between(text, "What the nemesis explored", "Checkers")
    assert section.startswith(
        "What the nemesis explored Verdict VALID after 2 faults: 2 aimed at the leader, 1 at a"
        " lease holder, 1 at nodes holding accepted-unchosen slots;"
    )
    for move, count in EXPLORATION["moves"].items():
        assert f"{move} {count} {EXPLORATION['novelty'][move]}" in section
    assert "hit a node holding accepted-unchosen slots 1" in section
    assert "partition 1" in section and "kill 1" in section
    assert "Phase 1 rounds 3" in section
    assert "restart from a non-empty log 1" in section
    assert "changes of network weather 4" in section and "stretches of slow disks 2" in section
    assert "distinct abstract states reached 9" in section
    assert "chosen by the novelty they produced" in section
    # The faults table describes explorer moves with their situations.
    faults = _text_between(text, "what was done ops", "Configuration")
    assert "kill-leader n2 [hit the leader, hit a node holding accepted-unchosen slots," in faults
    assert "isolate-leader n1: n1<-x-n2,n3 n2<-x-n1 n3<-x-n1 [hit the leader," in faults


def test_report_of_an_invalid_explored_run_says_which_fault_was_in_force(
    tmp_path: Path,
) -> None:
    run_dir = make_explore_run(tmp_path, "t", "20260101T120000", 3, bug=True)
    page = Page(write_report(run_dir).read_text())
    glance = _text_between(page.all_text, "What went wrong", "What the nemesis explored")
    assert "(during isolate-leader n1:" in glance
    assert "Verdict INVALID after 2 faults" in page.all_text


def test_report_without_exploration_derives_faults_by_kind_or_leaves_the_section_out(
    tmp_path: Path,
) -> None:
    periodic = make_run(tmp_path, "paxos-broadcast-partition", "20260101T120000", seed=3)
    page = Page(write_report(periodic).read_text())
    section = _text_between(page.all_text, "What the nemesis explored", "Checkers")
    assert "Verdict VALID after 1 fault: 1 partition." in section
    assert "results.json has no exploration summary" in section
    quiet = [op for op in simulate_broadcast_run(random.Random(3)) if op.process != NEMESIS]
    quiet = [dataclasses.replace(op, index=i) for i, op in enumerate(quiet)]
    run_dir = write_run(tmp_path, "none", "20260101T120100", quiet, run_config("none", 3, False))
    page = Page(write_report(run_dir).read_text())
    assert "explored" not in page.by_id
    assert "could not be built" not in page.all_text
    assert exploration(load_run(run_dir)) is None


def test_exploration_from_explorer_ops_alone_counts_moves_and_situations(tmp_path: Path) -> None:
    run_dir = make_explore_run(tmp_path, "t", "20260101T120000", 3)
    (run_dir / "results.json").unlink()  # a run killed before checking
    found = exploration(load_run(run_dir))
    assert found is not None and found.source == "history"
    assert found.moves == [("isolate-leader", 1, None), ("kill-leader", 1, None)]
    assert ("hit the leader", 2) in found.situations
    assert found.sentence.startswith("Verdict NOT CHECKED after 2 faults: 2 aimed at the leader")
