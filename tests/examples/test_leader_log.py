"""examples/nodes/leader_log.py, a node tobtest did not write, tested through the node
contract alone (`--node-cmd`): valid under partitions and kills, its seeded bug caught, and
every process ended whatever happens."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import assert_no_processes_left, subprocess_env, tobtest_argv
from tests.tobtest.test_cli import run_cli

REPO = Path(__file__).resolve().parents[2]
NODE = REPO / "examples" / "nodes" / "leader_log.py"
SCHEDULE = REPO / "examples" / "nodes" / "isolate-follower.yaml"
TEMPLATE = (
    f"{sys.executable} {NODE} --id {{id}} --n {{n}} --client-port {{client_port}} "
    "--peer-port {peer_port} {peer_args} --data-dir {data_dir} {bug_args}"
)
CAPS = ("--node-caps", "durable", "--node-read-modes", "local,log")


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 254, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tobtest: "), result.stderr
    return lines[0]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_correct_node_is_valid_under_partitions_and_kills(tobtest_cluster):
    result = tobtest_cluster.run(
        node_cmd=TEMPLATE, node_caps=["durable"], node_read_modes=["local", "log"],
        protocol="leader-log", nemesis="partition,kill", nemesis_interval_s=2,
        time_limit_s=12, seed=1,
    )  # fmt: skip
    assert result.valid is True, result.summary()
    counts = result.results["checkers"]["total-order"]["counts"]
    assert counts["broadcasts_ok"] > 100 and counts["final_reads"] == 3
    assert result.results["faults_applied"] >= 4
    stored = yaml.safe_load((result.run_path / "test.yaml").read_text())
    assert stored["node_cmd"] == TEMPLATE and stored["node_caps"] == ["durable"]
    assert "--node-cmd" in result.results["reproduce"]
    # Its own status reply, as the harness saved it: n1 leads, everyone caught up.
    statuses = [
        json.loads((result.run_path / "nodes" / f"n{i}.status.json").read_text()) for i in (1, 2, 3)
    ]
    assert [s["role"] for s in statuses] == ["leader", "follower", "follower"]
    assert {s["delivered"] for s in statuses} == {counts["delivered_values"]}
    assert not tobtest_cluster.leftover_pids()


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_its_seeded_bug_is_caught_with_a_follower_cut_off(tmp_path):
    result = run_cli(
        "run", "--node-cmd", TEMPLATE, *CAPS, "--nemesis-schedule", str(SCHEDULE),
        "--bug", "follower-log-read", "--time-limit", "10", "--seed", "2",
        "--store", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Verdict: INVALID" in result.stdout
    results = json.loads(((tmp_path / "latest").resolve() / "results.json").read_text())
    total_order = results["checkers"]["total-order"]
    assert total_order["valid"] is False
    assert "stale-read" in total_order["anomaly_types"]
    assert "--bug follower-log-read --node-cmd" in results["reproduce"]
    assert_no_processes_left(tmp_path)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_sigkilled_runner_takes_the_node_commands_with_it(tmp_path):
    runner = subprocess.Popen(
        tobtest_argv("run", "--node-cmd", TEMPLATE, "--nemesis", "none", "--time-limit", "60",
                     "--store", str(tmp_path)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env(),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        nodes = wait_for_nodes(tmp_path, runner)
        # A stopped node cannot notice anything: the kernel's parent-death signal must end it.
        nodes[0].suspend()
        runner.kill()
        runner.wait(timeout=10)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)
    assert_no_processes_left(tmp_path, timeout_s=5.0)


def wait_for_nodes(tmp_path: Path, runner: subprocess.Popen[bytes]) -> list[psutil.Process]:
    from tests.conftest import tobtest_processes

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert runner.poll() is None, "the run ended early"
        procs = tobtest_processes(tmp_path)
        nodes = [p for p in procs if any(str(NODE) == part for part in p.cmdline())]
        history = tmp_path / "latest" / "history.jsonl"
        if len(nodes) == 3 and history.exists() and len(history.read_text().splitlines()) > 20:
            return nodes
        time.sleep(0.2)
    raise AssertionError("the cluster did not come up")


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("/definitely/not/a/node --id {id}", "cannot run '/definitely/not/a/node'"),
        ("sh -c 'exec sleep 30' {nope}", "unknown placeholder {nope}"),
    ],
)
def test_a_bad_node_command_is_one_line_and_starts_nothing(tmp_path, template, expected):
    line = one_line_error(
        run_cli("run", "--node-cmd", template, "--time-limit", "2", "--store", str(tmp_path))
    )
    assert expected in line
    assert_no_processes_left(tmp_path)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_node_command_that_exits_at_once_ends_the_run_with_one_line(tmp_path):
    result = run_cli(
        "run", "--node-cmd", "sh -c 'echo boom >&2; exit 1' {id}", "--time-limit", "2",
        "--store", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 254, result.stdout + result.stderr
    # After the run's banner and progress (it had started): the error, one line, and no
    # process left (the proxy and the other nodes were ended).
    errors = [ln for ln in result.stderr.splitlines() if "--node-cmd" in ln]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr
    assert re.fullmatch(r"tobtest: --node-cmd: node n\d exited with 1: boom", errors[0])
    assert_no_processes_left(tmp_path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--nemesis", "clock"),
            "nemesis clock needs node capability clock, which the "
            "--node-cmd node (python leader_log.py) lacks (declare it with --node-caps)",
        ),
        ((), "nemesis all (the exploring nemesis) needs node capability clock, disk"),
        (("--workload", "register"), "workload register needs node capability kv"),
        (("--read-mode", "lease"), "read mode lease is not served by the --node-cmd node"),
    ],
)
def test_a_fault_or_read_the_node_cannot_serve_is_refused_before_the_run(tmp_path, args, expected):
    nemesis = () if args else ("--nemesis", "all")
    line = one_line_error(
        run_cli("run", "--node-cmd", TEMPLATE, *CAPS, *nemesis, *args, "--store", str(tmp_path))
    )
    assert expected in line
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing started or stored
