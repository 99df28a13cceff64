"""Maelstrom nodes nobody here wrote, under real faults: Maelstrom's own Python demo nodes
(`raft.py`, a lin-kv Raft; `broadcast.py`, gossip) from ../shared/maelstrom (or
$TOBTEST_MAELSTROM_DIR), and what tobtest finds in each. Skipped, saying why, without them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    assert_no_processes_left,
    subprocess_env,
    tobtest_argv,
    tobtest_processes,
)
from tests.tobtest.test_cli import run_cli

REPO = Path(__file__).resolve().parents[3]
MAELSTROM = Path(os.environ.get("TOBTEST_MAELSTROM_DIR", REPO.parent / "shared" / "maelstrom"))
DEMO = MAELSTROM / "demo-python"
PYTHON3 = shutil.which("python3")
NODES = REPO / "tests" / "helpers" / "maelstrom_nodes.py"

needs_demo = pytest.mark.skipif(
    not (DEMO / "raft.py").is_file() or PYTHON3 is None,
    reason=f"Maelstrom's demo nodes are not at {DEMO} (set TOBTEST_MAELSTROM_DIR), "
    "or there is no python3 to run them",
)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def demo(name: str) -> str:
    return shlex.join([str(PYTHON3), str(DEMO / name)])


def helper(kind: str) -> str:
    return shlex.join([sys.executable, str(NODES), kind])


def results_of(store: Path) -> dict:
    return json.loads(((store / "latest").resolve() / "results.json").read_text())


def history_of(store_or_run: Path) -> list[dict]:
    """The history of a run folder, or of a store's latest run."""
    run = store_or_run if (store_or_run / "history.jsonl").exists() else store_or_run / "latest"
    path = run.resolve() / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@needs_demo
def test_the_gossip_demo_loses_nothing_under_partitions(tobtest_cluster):
    result = tobtest_cluster.run(
        maelstrom=demo("broadcast.py"), workload="broadcast",
        nemesis="partition", nemesis_interval_s=2, time_limit_s=8, rate=30, seed=1,
    )  # fmt: skip
    assert result.valid is True, result.summary()
    assert result.run_path.parent.name == "maelstrom-broadcast-partition"
    counts = result.results["checkers"]["set-full"]["counts"]
    assert counts["acknowledged"] > 50 and counts["stable"] == counts["acknowledged"]
    assert counts["lost"] == 0 and result.results["faults_applied"] >= 2
    # Gossip crossed the proxy: Maelstrom's figure of merit, messages per op.
    assert result.results["network"]["messages_per_op"] > 0
    assert not tobtest_cluster.leftover_pids()


@needs_demo
def test_the_gossip_demo_loses_what_a_killed_node_knew(tobtest_cluster):
    # It keeps its messages in memory and each gossip task remembers what it sent, so a
    # node restarted empty never hears of the older messages again: lost, as set-full says.
    result = tobtest_cluster.run(
        maelstrom=demo("broadcast.py"), workload="broadcast",
        nemesis="kill", nemesis_targets=["one"], nemesis_interval_s=2, time_limit_s=8,
        rate=30, seed=1,
    )  # fmt: skip
    assert result.valid is False, result.summary()
    set_full = result.results["checkers"]["set-full"]
    assert set_full["anomaly_types"] == ["lost"]
    assert "in memory" in result.results["node_note"]
    kills = [op for op in history_of(result.run_path) if op["f"] == "start-kill"]
    assert kills  # the nemesis's kills, as history ops
    assert not tobtest_cluster.leftover_pids()


@needs_demo
@pytest.mark.parametrize("nemesis", ["partition", "pause"])
def test_the_raft_demo_is_linearizable_under_partitions_and_pauses(tobtest_cluster, nemesis):
    result = tobtest_cluster.run(
        maelstrom=demo("raft.py"), workload="lin-kv",
        nemesis=nemesis, nemesis_interval_s=3, time_limit_s=12, rate=20, seed=2,
    )  # fmt: skip
    assert result.valid is True, result.summary()
    lin = result.results["checkers"]["linearizable"]
    assert lin["valid"] is True
    ops = result.results["ops"]
    assert ops["ok"] >= 10 and result.results["faults_applied"] >= 2
    assert not tobtest_cluster.leftover_pids()


def test_a_txn_node_on_the_lin_kv_service_is_checked_as_list_append(tobtest_cluster):
    result = tobtest_cluster.run(
        maelstrom=helper("txn"), workload="txn-list-append",
        nemesis="partition", nemesis_interval_s=2, time_limit_s=5, rate=30, seed=1,
    )  # fmt: skip
    assert result.valid is True, result.summary()
    assert result.results["ops"]["ok"] > 50
    assert list(result.results["checkers"]) == ["list-append"]
    assert not tobtest_cluster.leftover_pids()
    # A stored Maelstrom run is re-checked with its own workload's checkers.
    recheck = run_cli("check", str(result.run_path))
    assert recheck.returncode == 0 and "list-append: VALID" in recheck.stdout


def one_line_error(result) -> str:
    """The error: the last line on stderr (above it, at most the run's progress lines)."""
    assert result.returncode == 254, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("tobtest: --maelstrom: ") or len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("/no/such/maelstrom-node", "--maelstrom: cannot run '/no/such/maelstrom-node'"),
        (
            helper("exit"),
            "--maelstrom: node n1 exited with 1: tobtest shim: node n1 "
            "(python maelstrom_nodes.py) exited with 3",
        ),
        (helper("chatty"), "printed a line that is not a Maelstrom message"),
    ],
)
def test_a_node_that_cannot_start_is_one_line_and_254(tmp_path, command, says):
    result = run_cli("run", "--maelstrom", command, "--workload", "lin-kv", "--time-limit", "2",
                     "--nodes", "1", "--store", str(tmp_path))  # fmt: skip
    assert says in one_line_error(result)
    assert_no_processes_left(tmp_path)


def test_clock_faults_are_refused_without_libfaketime(tmp_path, monkeypatch):
    monkeypatch.setenv("TOBTEST_LIBFAKETIME", "")  # run_cli passes the environment on
    result = run_cli("run", "--maelstrom", helper("echo"), "--workload", "lin-kv",
                     "--nemesis", "clock", "--store", str(tmp_path))  # fmt: skip
    line = one_line_error(result)
    assert "nemesis clock needs node capability clock" in line and "libfaketime" in line
    assert not (tmp_path / "latest").exists()  # refused before anything started


def test_a_node_that_breaks_the_protocol_mid_run_is_a_recorded_crash(tmp_path):
    result = run_cli(
        "run", "--maelstrom", helper("garbage-later"), "--workload", "lin-kv",
        "--nemesis", "none", "--time-limit", "2", "--store", str(tmp_path),
    )  # fmt: skip
    assert result.returncode in (0, 2), result.stdout + result.stderr
    crashes = [op for op in history_of(tmp_path) if op["f"] == "crash"]
    assert sorted(op["value"]["node"] for op in crashes) == ["n1", "n2", "n3"]
    assert all("not a Maelstrom message" in op["value"]["reason"] for op in crashes)
    assert results_of(tmp_path)["ops"]  # the run went on and was checked
    assert (
        "node-to-node, 0 per op" in result.stdout and "keep their state in memory" in result.stdout
    )
    assert_no_processes_left(tmp_path)


def test_a_sigkilled_runner_leaves_no_shim_and_no_node(tmp_path):
    runner = subprocess.Popen(
        tobtest_argv("run", "--maelstrom", helper("echo"), "--workload", "lin-kv",
                     "--time-limit", "60", "--nemesis", "none", "--store", str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        history = tmp_path / "latest" / "history.jsonl"
        while not (history.exists() and len(history.read_text().splitlines()) >= 20):
            assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
            time.sleep(0.2)
        procs = tobtest_processes(tmp_path)  # the proxy, 3 shims and their 3 nodes
        assert len(procs) == 7
        # A stopped node cannot notice anything: the parent-death signals must end it.
        node = next(p for p in procs if str(NODES) in " ".join(p.cmdline()))
        node.suspend()
        runner.kill()
        runner.wait(timeout=10)
    finally:
        if runner.poll() is None:
            runner.kill()
        runner.communicate()
    assert_no_processes_left(tmp_path, timeout_s=5.0)
