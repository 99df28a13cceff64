"""Tests of `tobtest sim` through click's CliRunner (and `main`, for the real exit codes)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from tobtest.cli import cli, main

SHORT = ["--time-ms", "1500", "--settle-ms", "1500"]


def sim(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["sim", *args])
    return result.exit_code, result.output


def test_the_correct_core_passes_its_seeds_and_says_how_fast() -> None:
    code, out = sim("--protocol", "paxos", "--seeds", "3", *SHORT)
    assert code == 0, out
    assert "seeds: 3 run, 0 failing;" in out and "simulated s per real s" in out
    assert "replay:" not in out


def test_a_seeded_bug_fails_with_a_replay_line_that_replays_it() -> None:
    code, out = sim("--protocol", "paxos", "--seed", "1", "--bug", "deliver-on-arrival", *SHORT)
    assert code == 1, out
    [failing] = [line for line in out.splitlines() if line.startswith("seed 1 ")]
    assert "INVALID" in failing and "sim-order" in failing
    assert "total-order:incompatible-order" in failing
    [replay] = [line.split("replay: ", 1)[1] for line in out.splitlines() if "replay:" in line]
    assert replay.startswith("tobtest sim --protocol paxos --seed 1 --bug deliver-on-arrival")
    code2, out2 = sim(*shlex.split(replay)[2:])
    assert code2 == 1 and failing in out2  # the same seed, the same anomalies


def test_seeds_spread_over_processes_report_as_in_one() -> None:
    args = ["--protocol", "paxos", "--seeds", "2", "--bug", "deliver-on-arrival", *SHORT]
    _, alone = sim(*args, "--jobs", "1")
    _, spread = sim(*args)  # the default: one process per CPU, at most one per seed
    jobs = spread.rsplit("jobs ", 1)[1].rstrip(")\n")
    assert alone.rsplit("jobs ", 1)[1].startswith("1)") and 1 <= int(jobs) <= 2
    assert alone.splitlines()[:-1] == spread.splitlines()[:-1]  # all but the timing


def test_store_writes_a_run_that_check_reads(tmp_path: Path) -> None:
    args = ["--protocol", "paxos", "--seed", "2", "--bug", "deliver-on-arrival", *SHORT]
    code, out = sim(*args, "--store", str(tmp_path))
    assert code == 1
    run = tmp_path / "sim-paxos-seed2" / "latest"
    assert (run / "history.jsonl").is_file() and (run / "results.json").is_file()
    checked = CliRunner().invoke(cli, ["check", "--store", str(tmp_path), "sim-paxos-seed2"])
    assert checked.exit_code == 1, checked.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--protocol", "zab"], "unknown protocol 'zab'"),
        (["--protocol", "paxos", "--bug", "forget-promise"], "not a seeded bug of this core"),
        (["--protocol", "paxos", "--bug", "no-fsync"], "node-shell bug"),
        (["--protocol", "paxos", "--read-mode", "lease"], "does not serve lease reads"),
        (["--protocol", "raft", "--bug", "forget-promise"], "not a seeded bug of this core"),
        (["--faults", "meteor"], "unknown fault meteor"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_bad_arguments_exit_254_with_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sim", *args])
    assert exit_.value.code == 254
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
    if "--seeds" not in args:  # click's own range errors keep click's code under CliRunner
        assert sim(*args)[0] == 254


def test_every_bug_catalogue_of_the_core_is_accepted() -> None:
    from tobtest.node.protocols import multipaxos
    from tobtest.sim_run import bug_names

    names = bug_names("multipaxos")
    assert set(multipaxos.BUGS) <= set(names)
    for attr in dir(multipaxos):
        if attr.endswith("BUGS"):
            assert set(getattr(multipaxos, attr)) <= set(names)


def test_raft_runs_clean_and_knows_its_seeded_bugs() -> None:
    from tobtest.node.protocols import raft
    from tobtest.sim_run import bug_names

    assert bug_names("raft") == raft.BUGS
    code, out = sim("--protocol", "raft", "--seeds", "2", *SHORT)
    assert code == 0, out
