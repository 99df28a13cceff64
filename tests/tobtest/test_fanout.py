"""Suites run N at a time: the CPU cap, a case process's report of a port in use, and real
suites with --jobs 2 (every case ran on its own ports, one line each, nothing left; Ctrl-C)."""

from __future__ import annotations

import doctest
import json
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

import tobtest.fanout
from tests.conftest import (
    assert_no_processes_left,
    subprocess_env,
    tobtest_argv,
    tobtest_processes,
)
from tests.tobtest.test_cli import run_cli
from tobtest.fanout import effective_jobs, key_digest
from tobtest.ports import ports_needed
from tobtest.suite import case_name, load_suite

TINY = """
name: tiny
defaults: {time_limit: 3, nemesis_interval: 1, rate: 30}
matrix:
  workload: [broadcast, txn, register]
seeds: [5]
"""


def write_suite(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_docstring_examples():
    assert doctest.testmod(tobtest.fanout).failed == 0


@pytest.mark.parametrize(
    ("requested", "cases", "cpu_count", "jobs"),
    [(1, 5, 2, 1), (2, 5, 2, 2), (8, 5, 2, 2), (4, 3, 8, 3), (4, 0, 2, 1)],
)
def test_jobs_are_capped_at_the_cpus_and_the_cases(requested, cases, cpu_count, jobs):
    got, notice = effective_jobs(requested, cases, cpu_count)
    assert got == jobs
    assert (notice is not None) == (min(requested, cases) > cpu_count)


def worker(tmp_path: Path, suite: Path, base_port: int, key: str) -> tuple[int, Path]:
    result_path = tmp_path / "result.json"
    argv = [sys.executable, "-m", "tobtest.fanout", "--suite", str(suite),
            "--store", str(tmp_path / "store"), "--case", "0", "--key", key,
            "--base-port", str(base_port), "--result", str(result_path)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, timeout=60, env=subprocess_env())
    return done.returncode, result_path


def test_a_case_process_reports_a_port_in_use_so_the_case_can_start_again(tmp_path):
    suite = write_suite(tmp_path)
    config = load_suite(suite).cases[0]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, result_path = worker(tmp_path, suite, busy.getsockname()[1], key_digest(config))
    assert code == 0
    result = json.loads(result_path.read_text())
    assert result["port_in_use"] is True and result["valid"] == "unknown"
    assert "already in use" in result["error"]


def test_a_case_process_refuses_a_suite_file_that_changed(tmp_path):
    code, result_path = worker(tmp_path, write_suite(tmp_path), 20000, key="0" * 16)
    assert code == 1 and not result_path.exists()


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_two_at_a_time_every_case_runs_on_its_own_ports(tmp_path):
    suite = write_suite(tmp_path)
    junit = tmp_path / "junit.xml"
    store = tmp_path / "store"
    result = run_cli("run", "--suite", str(suite), "--jobs", "2", "--junit-xml", str(junit),
                     "--store", str(store))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    names = [case_name(c) for c in load_suite(suite).cases]
    # One whole line per finished case, numbered in the order they ended.
    rows = [ln for ln in result.stdout.splitlines() if re.match(r"\[\d/3\] ", ln)]
    assert [row[:5] for row in rows] == ["[1/3]", "[2/3]", "[3/3]"]
    assert sorted(row[6:].split("  ")[0].strip() for row in rows) == sorted(names)
    assert all("VALID" in row and str(store) in row for row in rows)
    table = result.stdout[result.stdout.rindex("suite tiny") :]  # the title, then rows
    assert all(name in table for name in names) and table.count("VALID") == 3
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "3" and root.get("failures") == "0"
    assert [c.get("name") for c in root.findall("testcase")] == names  # file order
    runs = [store / name.split()[0] / "latest" for name in names]
    bases = [yaml.safe_load((run / "test.yaml").read_text())["base_port"] for run in runs]
    ports = [p for base in bases for p in range(base, base + ports_needed(3))]
    assert len(ports) == len(set(ports))  # leases never hand one port to two cases
    for run in runs:  # each case's own output, in its own run folder
        assert "Verdict: VALID" in (run / "console.log").read_text()
    assert_no_processes_left(tmp_path)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_ctrl_c_ends_every_case_and_every_process(tmp_path):
    suite = write_suite(tmp_path, TINY.replace("time_limit: 3", "time_limit: 30"))
    argv = tobtest_argv("run", "--suite", str(suite), "--jobs", "2", "--store", str(tmp_path))
    parent = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=subprocess_env(), stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while len(tobtest_processes(tmp_path)) < 8 and time.monotonic() < deadline:
            assert parent.poll() is None, parent.communicate()
            time.sleep(0.2)
        assert len(tobtest_processes(tmp_path)) == 8  # two clusters: 3 nodes and a proxy each
        parent.send_signal(signal.SIGINT)
        stdout, _ = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 130
    assert "suite interrupted" in stdout
    assert_no_processes_left(tmp_path, timeout_s=1.0)
    logs = list(tmp_path.glob("*/latest/console.log"))
    assert len(logs) == 2 and all("interrupted" in log.read_text() for log in logs)
