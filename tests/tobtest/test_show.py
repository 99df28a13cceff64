"""`tobtest show`: one run's verdicts, what the nemesis explored, figures, faults and
anomalies; `--list`; bad runs."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.checker.test_report_runs import (
    make_explore_run,
    make_run,
    run_config,
    simulate_broadcast_run,
    write_run,
)
from tobtest.cli_inspect import EXIT_BAD_ARGS, show
from tobtest.histories.op import NEMESIS


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    make_run(root, "paxos-broadcast-partition", "20260101T120000", seed=3)
    make_run(root, "paxos-broadcast-partition", "20260101T120100", seed=3, bug=True)
    make_run(root, "multipaxos-broadcast-none", "20260101T120200", seed=4, partial=True)
    return root


def _show(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(show, list(args), env={"COLUMNS": "200"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_show_an_invalid_run_names_verdict_counts_faults_and_anomalies(store: Path) -> None:
    run = "paxos-broadcast-partition/20260101T120100"
    code, out = _show(run, "--store", str(store))
    assert code == 0
    results = json.loads((store / run / "results.json").read_text())
    checker = results["checkers"]["total-order"]
    assert "total-order: INVALID" in out
    for kind, total in checker["counts"]["anomalies"].items():
        assert f"total-order {kind}: {total} found" in out
    first = checker["anomalies"]["realtime"][0]
    assert first["explanation"] in " ".join(out.split())
    assert f"op {first['ops'][0]}: invoke process" in out
    assert results["reproduce"] in out
    history = [json.loads(line) for line in (store / run / "history.jsonl").read_text().split()]
    ok_broadcasts = sum(1 for op in history if op["f"] == "broadcast" and op["type"] == "ok")
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["broadcast"])
    assert row[1] == str(ok_broadcasts)  # the ok column comes first
    assert "Faults applied: 1" in out
    assert "partition one n1<-x-n2,n3" in out
    assert "latency of ok ops p50" in out and "ok ops/s" in out


def test_show_defaults_to_the_latest_run(store: Path) -> None:
    code, out = _show("--store", str(store))
    assert code == 0
    assert "20260101T120200" in out  # make_run moved store/latest there last
    assert "NOT CHECKED" in out
    assert "results.json is missing" in out


def test_show_a_valid_run_by_its_test_folder(store: Path) -> None:
    (store / "paxos-broadcast-partition" / "latest").unlink()
    (store / "paxos-broadcast-partition" / "latest").symlink_to("20260101T120000")
    code, out = _show("paxos-broadcast-partition", "--store", str(store))
    assert code == 0
    assert "total-order: VALID" in out
    assert "Anomalies" not in out


def test_show_list_tables_every_run(store: Path) -> None:
    code, out = _show("--list", "--store", str(store))
    assert code == 0
    lines = [line for line in out.splitlines() if "20260101T" in line]
    assert len(lines) == 3
    assert "20260101T120200" in lines[0] and "NOT CHECKED" in lines[0]
    assert "INVALID" in lines[1] and "paxos" in lines[1] and "partition" in lines[1]
    assert "VALID" in lines[2] and "broadcast" in lines[2]


def test_unknown_run_or_store_is_a_one_line_error_with_exit_254(
    store: Path, tmp_path: Path
) -> None:
    for args in (
        ["no-such-run", "--store", str(store)],
        ["--store", str(tmp_path / "empty")],
        ["--list", "--store", str(tmp_path / "missing")],
    ):
        result = CliRunner().invoke(show, args)
        assert result.exit_code == EXIT_BAD_ARGS, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1


def test_show_list_of_an_empty_store(tmp_path: Path) -> None:
    code, out = _show("--list", "--store", str(tmp_path))
    assert code == 0
    assert out.strip() == f"no runs in store {tmp_path}"


@pytest.fixture(scope="module")
def explore_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explore-store")
    make_explore_run(root, "multipaxos-broadcast-explore", "20260101T120000", seed=3)
    make_explore_run(root, "multipaxos-broadcast-explore", "20260101T120100", seed=3, bug=True)
    quiet = [op for op in simulate_broadcast_run(random.Random(3)) if op.process != NEMESIS]
    quiet = [dataclasses.replace(op, index=i) for i, op in enumerate(quiet)]
    write_run(root, "paxos-broadcast-none", "20260101T120200", quiet, run_config("n", 3, False))
    return root


def _section(out: str) -> str:
    """The "What the nemesis explored" section of `show`'s output, squashed to one line."""
    start = out.index("What the nemesis explored")
    return " ".join(out[start : out.index("Key figures", start)].split())


def test_show_says_what_the_exploring_nemesis_explored(explore_store: Path) -> None:
    code, out = _show("multipaxos-broadcast-explore/20260101T120000", "--store", str(explore_store))
    assert code == 0
    section = _section(out)
    assert out.index("Checkers") < out.index("What the nemesis explored") < out.index("Key fig")
    assert (
        "Verdict VALID after 2 faults: 2 aimed at the leader, 1 at a lease holder, 1 at nodes"
        " holding accepted-unchosen slots; 1 while the leader had accepts in flight, 2 under"
        " load; 2 leader changes, 3 Phase 1 rounds, 1 restart from a non-empty log."
    ) in section
    assert "faults by kind: kill 1, partition 1" in section
    assert "1 move isolate-leader 5" in section and "1 move kill-leader 7" in section
    assert "2 hit the leader" in section and "1 hit a lease holder" in section
    assert "3 Phase 1 rounds, 1 step-down, 1 restart from a non-empty log" in section
    assert "reached 9 distinct abstract states, 14 transitions" in section
    assert "first showed" not in section  # nothing broke
    # The faults list names the moves with their situations.
    assert "kill-leader n2 [hit the leader, hit a node holding" in " ".join(out.split())


def test_show_of_an_invalid_explored_run_says_where_it_broke(explore_store: Path) -> None:
    code, out = _show("multipaxos-broadcast-explore/20260101T120100", "--store", str(explore_store))
    assert code == 0
    section = _section(out)
    assert section.count("Verdict INVALID after 2 faults: 2 aimed at the leader") == 1
    # The simulated bug diverges while n1 is cut off: its anomalies show under that fault.
    assert "total-order realtime first showed during isolate-leader n1:" in section


def test_show_without_exploration_derives_faults_by_kind_or_prints_nothing(
    store: Path, explore_store: Path
) -> None:
    code, out = _show("paxos-broadcast-partition/20260101T120000", "--store", str(store))
    assert code == 0
    section = _section(out)
    assert "from the history's nemesis ops" in section
    assert "Verdict VALID after 1 fault: 1 partition." in section
    code, out = _show("paxos-broadcast-none", "--store", str(explore_store))
    assert code == 0 and "total-order: VALID" in out
    assert "What the nemesis explored" not in out
    code, out = _show("multipaxos-broadcast-none/20260101T120200", "--store", str(store))
    assert code == 0  # a partial run: no results.json, a torn history; still no error
