"""The CLI end to end: exit codes, one-line errors, a real run, and clean-up on every path.

The runs here start real node and proxy processes (marked `integration`); each gives its
run its own store, so the processes it checks for are its own.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import assert_no_processes_left, subprocess_env, tobtest_argv, tobtest_processes
from tobtest.cli import main
from tobtest.histories.formats import read_history


def run_cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tobtest_argv(*args),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--nodes", "0"],
        ["run", "--nemesis", "flood"],
        ["run", "--protocol", "raftish"],
        ["run", "--partition-shapes", "triangle"],
        ["run", "--protocol", "multipaxos", "--bug", "no-truncate"],
        ["run", "--time-limit", "abc"],
        ["frobnicate"],
        ["check", "/definitely/not/a/run"],
    ],
)
def test_bad_arguments_exit_254_with_one_line(args, tmp_path):
    result = run_cli(*args, "--store", str(tmp_path)) if args[0] != "frobnicate" else run_cli(*args)
    assert result.returncode == 254, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("tobtest: ")


def test_a_bug_the_protocol_lacks_is_one_line_naming_the_ones_it_has(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--protocol", "raft", "--bug", "forget-promise", "--store", str(tmp_path)])
    assert info.value.code == 254
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("tobtest: unknown bug forget-promise: the built-in node has under raft:")
    assert "commit-old-term, vote-not-persisted, no-truncate, no-fsync" in line


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("run", "--base-port", str(port), "--store", str(tmp_path))
    assert result.returncode == 254
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "already in use" in result.stderr
    assert_no_processes_left(tmp_path)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_run_with_partitions_is_valid_and_leaves_nothing(tmp_path):
    result = run_cli(
        "run", "--nemesis", "partition", "--time-limit", "10", "--nemesis-interval", "2",
        "--seed", "11", "--store", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verdict: VALID" in result.stdout
    run_dir = (tmp_path / "latest").resolve()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["valid"] is True
    counts = results["checkers"]["total-order"]["counts"]
    assert counts["broadcasts_ok"] > 100
    assert counts["final_reads"] == 3
    history = read_history(run_dir / "history.jsonl")
    nemesis_ops = [op for op in history if op.process == "nemesis" and op.type == "ok"]
    assert any(op.f == "start-partition" and op.value["grudge"] for op in nemesis_ops)
    for name in ("n1", "n2", "n3"):
        assert (run_dir / "nodes" / f"{name}.log").stat().st_size > 0
        status = json.loads((run_dir / "nodes" / f"{name}.status.json").read_text())
        assert status["delivered"] == counts["delivered_values"]
    assert_no_processes_left(tmp_path)
    # The stored run checks again, with the same verdict.
    again = run_cli("check", str(run_dir))
    assert again.returncode == 0, again.stdout + again.stderr


def start_run(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        tobtest_argv("run", "--time-limit", "60", "--store", str(tmp_path), "--seed", "3", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
    )


def wait_for_cluster(tmp_path: Path, runner: subprocess.Popen[str], ops: int = 20) -> list[int]:
    """Waits until the run's 3 nodes and proxy are up and some ops are recorded."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert runner.poll() is None, runner.communicate()
        procs = tobtest_processes(tmp_path)
        history = tmp_path / "latest" / "history.jsonl"
        if len(procs) == 4 and history.exists() and len(history.read_text().splitlines()) >= ops:
            return [p.pid for p in procs]
        time.sleep(0.2)
    raise AssertionError("cluster did not come up")


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_ctrl_c_ends_every_process_and_keeps_the_history(tmp_path):
    runner = start_run(tmp_path)
    try:
        pids = wait_for_cluster(tmp_path, runner)
        runner.send_signal(signal.SIGINT)
        _, stderr = runner.communicate(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not [pid for pid in pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
    assert_no_processes_left(tmp_path, timeout_s=1.0)
    history = read_history(tmp_path / "latest" / "history.jsonl")
    assert len(history) >= 20


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_sigterm_ends_the_run_like_ctrl_c(tmp_path):
    runner = start_run(tmp_path)
    try:
        wait_for_cluster(tmp_path, runner)
        runner.terminate()
        runner.communicate(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130
    assert_no_processes_left(tmp_path, timeout_s=1.0)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_sigkilled_runner_leaves_no_process_and_a_checkable_history(tmp_path):
    runner = start_run(tmp_path, "--nemesis", "none")
    try:
        pids = wait_for_cluster(tmp_path, runner)
        # Pause one node first: a stopped process cannot poll for its parent, so this
        # proves the kernel's parent-death signal ends it.
        psutil.Process(pids[0]).suspend()
        runner.kill()
        runner.wait(timeout=10)
    finally:
        if runner.poll() is None:
            runner.kill()
        runner.communicate()
    assert_no_processes_left(tmp_path, timeout_s=5.0)
    history = read_history(tmp_path / "latest" / "history.jsonl")
    assert len(history) >= 20
    result = run_cli("check", str(tmp_path / "latest"))
    # No final reads were taken, so "lost" cannot be judged: unknown, not a crash.
    assert result.returncode in (0, 1, 2), result.stderr
    assert "Verdict:" in result.stdout


def test_plain_tobtest_prints_its_help_and_exits_0():
    result = run_cli()
    assert result.returncode == 0
    assert "Usage: tobtest" in result.stdout and "run" in result.stdout
    assert result.stderr == ""
