"""`tobtest run --nemesis-schedule` and `--replay-schedule`: bad input is one line and exit
254 before anything starts; the reproduce command and suites carry the schedule; and one
bounded real run of examples/flip.yaml, replayed from its stored schedule.yaml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, assert_no_processes_left, subprocess_env, tobtest_argv
from tobtest import cli
from tobtest.config import TestConfig
from tobtest.suite import SuiteError, load_suite

FLIP = str(REPO / "examples" / "flip.yaml")


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(["run", *args])
    return int(info.value.code or 0), capsys.readouterr().err


def test_a_bad_schedule_is_one_line_and_exit_254_before_anything_starts(
    tmp_path, capsys, monkeypatch
) -> None:
    started: list[TestConfig] = []
    monkeypatch.setattr("tobtest.console.run_with_console", lambda c: started.append(c) or 0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: n7\n")
    code, err = run_cli(["--nemesis-schedule", str(bad), "--store", str(tmp_path)], capsys)
    assert code == 254 and not started
    assert len(err.strip().splitlines()) == 1
    assert f"{bad}:4: unknown target 'n7'" in err


def test_a_schedule_run_lists_what_it_uses_and_reproduces_with_the_file(
    tmp_path, capsys, monkeypatch
) -> None:
    started: list[TestConfig] = []
    monkeypatch.setattr("tobtest.console.run_with_console", lambda c: started.append(c) or 0)
    code, _ = run_cli(["--nemesis-schedule", FLIP, "--seed", "3", "--store", str(tmp_path)],
                      capsys)  # fmt: skip
    assert code == 0
    config = started[0]
    assert config.nemesis == ["partition", "kill"] and config.nemesis_schedule == FLIP
    assert config.test_name == "paxos-broadcast-schedule-flip"
    command = config.reproduce_command()
    assert f"--nemesis-schedule {FLIP}" in command and "--nemesis " not in command
    code, err = run_cli(["--nemesis-schedule", FLIP, "--nemesis", "kill"], capsys)
    assert code == 254 and "replaces --nemesis" in err


def test_replaying_a_run_without_schedule_yaml_is_one_line_and_exit_254(tmp_path, capsys) -> None:
    old = tmp_path / "t" / "20260101T000000"
    old.mkdir(parents=True)
    (old / "history.jsonl").write_text("")
    (old / "test.yaml").write_text("seed: 4\n")
    code, err = run_cli(["--replay-schedule", "t/20260101T000000", "--store", str(tmp_path)],
                        capsys)  # fmt: skip
    assert code == 254 and len(err.strip().splitlines()) == 1
    assert "has no schedule.yaml" in err
    code, err = run_cli(["--replay-schedule", "nowhere", "--store", str(tmp_path)], capsys)
    assert code == 254 and "no run at nowhere" in err


def test_a_replay_takes_the_runs_options_unless_given(tmp_path, capsys, monkeypatch) -> None:
    started: list[TestConfig] = []
    monkeypatch.setattr("tobtest.console.run_with_console", lambda c: started.append(c) or 0)
    run = tmp_path / "t" / "20260101T000000"
    run.mkdir(parents=True)
    (run / "history.jsonl").write_text("")
    stored = TestConfig(protocol="multipaxos", nemesis=["flip"], seed=11, rate=30,
                        store=str(tmp_path), bugs=["forget-promise"])  # fmt: skip
    (run / "test.yaml").write_text(yaml.safe_dump(stored.to_dict()))
    (run / "schedule.yaml").write_text("steps:\n- {at_s: 1.0, do: kill, nodes: [n1]}\n")
    code, _ = run_cli(["--replay-schedule", str(run), "--rate", "20"], capsys)
    assert code == 0
    replay = started[0]
    assert (replay.protocol, replay.seed, replay.bugs) == ("multipaxos", 11, ["forget-promise"])
    assert replay.rate == 20 and replay.replay_schedule == str(run.resolve())
    assert "--replay-schedule" in replay.reproduce_command()


def test_a_suite_case_takes_a_nemesis_schedule(tmp_path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"matrix:\n  protocol: [multipaxos]\n  nemesis-schedule: [{FLIP}]\n")
    (case,) = load_suite(suite).cases
    assert case.nemesis_schedule == FLIP and case.nemesis == ["partition", "kill"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - do: nap\n")
    suite.write_text(f"matrix:\n  nemesis-schedule: [{bad}]\n")
    with pytest.raises(SuiteError, match=rf"{bad}:2: unknown do 'nap'"):
        load_suite(suite)


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_flip_yaml_on_real_nodes_stores_its_schedule_and_replays_it(tmp_path) -> None:
    def tobtest_run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = tobtest_argv("run", "--protocol", "multipaxos", "--time-limit", "9",
                            "--store", str(tmp_path), *args)  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env=subprocess_env(), cwd=REPO)  # fmt: skip

    done = tobtest_run("--nemesis-schedule", "examples/flip.yaml", "--seed", "2")
    assert done.returncode == 0, done.stderr + done.stdout
    assert_no_processes_left(tmp_path)
    (run,) = (tmp_path / "multipaxos-broadcast-schedule-flip").glob("2*")
    steps = yaml.safe_load((run / "schedule.yaml").read_text())["steps"]
    first = steps[0]
    assert first["do"] == "partition" and first["source"]["line"] == 15
    assert first["source"]["targets"] == {"isolate": "leader"}
    assert (run / "nemesis-schedule.yaml").read_text() == Path(FLIP).read_text()
    history = (run / "history.jsonl").read_text()
    assert '"f":"heal-all"' in history and '"f":"wait-leader-change"' in history

    again = tobtest_run("--replay-schedule", str(run))
    assert again.returncode == 0, again.stderr + again.stdout
    assert_no_processes_left(tmp_path)
    (replayed,) = (tmp_path / "multipaxos-broadcast-replay").glob("2*")
    assert yaml.safe_load((replayed / "test.yaml").read_text())["seed"] == 2
    replay_steps = yaml.safe_load((replayed / "schedule.yaml").read_text())["steps"]
    main = [s for s in steps if s["at_s"] < 9]
    assert [s["do"] for s in replay_steps[: len(main)]] == [s["do"] for s in main]
