"""Suites: matrix expansion, one-line errors that say where, JUnit XML, and a real suite."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import assert_no_processes_left
from tests.tobtest.test_cli import run_cli
from tobtest.config import TestConfig
from tobtest.suite import (
    CaseResult,
    Shard,
    SuiteError,
    junit_xml,
    load_suite,
    parse_shard,
    shard_cases,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_matrix_times_seeds(tmp_path):
    path = write(
        tmp_path,
        """
name: s
defaults: {time-limit: 3, nodes: 5}
matrix:
  workload: [broadcast, txn]
  nemesis: [partition, "kill,pause", none]
test_count: 2
""",
    )
    suite = load_suite(path, store=str(tmp_path))
    assert len(suite.cases) == 2 * 3 * 2
    assert {c.seed for c in suite.cases} == {1, 2}
    assert all(c.nodes == 5 and c.time_limit_s == 3 for c in suite.cases)
    assert {tuple(c.nemesis) for c in suite.cases} == {("partition",), ("kill", "pause"), ()}


def test_the_example_suite_loads():
    suite = load_suite(REPO / "examples" / "ci-suite.yaml")
    assert len(suite.cases) == 18  # 3 protocols x 3 workloads x 2 nemesis sets


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("matrix: {protocol: [paxos, raftish]}", "matrix.protocol: unknown value 'raftish'"),
        ("defaults: {time_limit: soon}", "defaults.time_limit: expected a number"),
        ("defaults: {colour: blue}", "defaults.colour: unknown option"),
        ("matrix: {nemesis: [flood]}", "matrix.nemesis: unknown nemesis flood"),
        ("matrix: {protocol: [paxos], bug: [lease-from-ack]}", "unknown bug lease-from-ack"),
        ("matrix: {workload: broadcast}", "matrix.workload: expected a non-empty list"),
        ("matrix: {}\nseeds: [1, -2]", "seeds: expected a list of non-negative integers"),
        ("matrix: {}\nseeds: [1]\ntest_count: 2", "either 'seeds' or 'test_count'"),
        ("matrix: {}\nextra: 1", "unknown key 'extra'"),
        ("matrix: [1, 2", "suite.yaml:1:"),
        ("- just\n- a list", "a suite is a mapping"),
    ],
)
def test_bad_suites_get_one_line_that_says_where(tmp_path, text, where):
    with pytest.raises(SuiteError) as info:
        load_suite(write(tmp_path, text))
    message = str(info.value)
    assert where in message
    assert "\n" not in message


def test_bad_suite_on_the_command_line_exits_254(tmp_path):
    result = run_cli("run", "--suite", str(write(tmp_path, "defaults: {nodes: lots}")))
    assert result.returncode == 254
    assert result.stderr.strip().splitlines() == [
        f"tobtest: {tmp_path / 'suite.yaml'}: defaults.nodes: expected an integer, got 'lots'"
        " (try 'tobtest run --help')"
    ]


def test_junit_xml_has_a_case_per_run_and_failures_with_the_summary():
    cases = [
        CaseResult(TestConfig(seed=1), True, "store/a", 1.0, "total-order: True"),
        CaseResult(TestConfig(seed=2), False, "store/b", 2.0, "total-order: False anomalies: lost"),
        CaseResult(TestConfig(seed=3), "unknown", "store/c", 0.5, "crashed", error="boom"),
    ]
    root = ET.fromstring(junit_xml("s", cases))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    testcases = root.findall("testcase")
    assert len(testcases) == 3
    failure = testcases[1].find("failure")
    assert failure is not None and failure.text is not None
    assert "anomalies: lost" in failure.text
    assert "store/b" in failure.text and "--seed 2" in failure.text
    error = testcases[2].find("error")
    assert error is not None and error.get("message") == "boom"
    assert testcases[0].find("failure") is None


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_real_suite_prints_a_table_and_writes_junit(tmp_path):
    path = write(
        tmp_path,
        """
name: tiny
defaults: {time_limit: 3, nemesis_interval: 1, rate: 30}
matrix:
  workload: [broadcast, txn]
seeds: [5]
""",
    )
    junit = tmp_path / "out" / "junit.xml"
    result = run_cli(
        "run", "--suite", str(path), "--junit-xml", str(junit), "--store", str(tmp_path / "s")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1/2]" in result.stdout and "[2/2]" in result.stdout
    assert result.stdout.count("VALID") >= 4  # a row per case as it ends, then the table
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "0"
    assert_no_processes_left(tmp_path)


def test_a_suite_runs_a_node_command_within_what_it_declares(tmp_path):
    node = f"{sys.executable} examples/nodes/leader_log.py --id {{id}}"
    text = f"""
defaults: {{node-cmd: "{node}", node-caps: [durable], node-read-modes: [local, log]}}
matrix: {{nemesis: [partition, kill]}}
"""
    suite = load_suite(write(tmp_path, text))
    assert [c.nemesis for c in suite.cases] == [["partition"], ["kill"]]
    assert {c.protocol for c in suite.cases} == {"custom"}
    assert suite.cases[0].node_cmd == node and suite.cases[0].node_caps == ["durable"]
    refused = text.replace("[partition, kill]", "[clock]")
    with pytest.raises(SuiteError, match="nemesis clock needs node capability clock"):
        load_suite(write(tmp_path, refused))


def test_a_suite_runs_maelstrom_nodes_with_their_workloads_and_checkers(tmp_path):
    text = """
defaults: {maelstrom: "python3 raft.py", checker: [total-order]}
matrix: {workload: [broadcast, lin-kv], nemesis: [partition, kill]}
"""
    suite = load_suite(write(tmp_path, text))
    assert [(c.workload, c.nemesis) for c in suite.cases] == [
        ("broadcast", ["partition"]), ("broadcast", ["kill"]),
        ("lin-kv", ["partition"]), ("lin-kv", ["kill"]),
    ]  # fmt: skip
    assert {c.protocol for c in suite.cases} == {"maelstrom"}
    assert suite.cases[0].maelstrom == "python3 raft.py"
    assert suite.cases[0].extra_checkers == ["total-order"]
    with pytest.raises(SuiteError, match="workload register is not a Maelstrom workload"):
        load_suite(write(tmp_path, text.replace("[broadcast, lin-kv]", "[register]")))
    with pytest.raises(SuiteError, match="two kinds of node"):
        load_suite(write(tmp_path, text.replace("checker:", 'node-cmd: "x {id}", checker:')))


# ---- sharding ------------------------------------------------------------------------------


def example_cases() -> list[TestConfig]:
    return load_suite(REPO / "examples" / "ci-suite.yaml").cases


def names(shard: list[tuple[int, TestConfig]]) -> list[str]:
    return [config.reproduce_command() for _, config in shard]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 18, 25])
def test_shards_are_disjoint_complete_and_balanced(count):
    cases = example_cases()
    shards = [shard_cases(cases, Shard(i, count)) for i in range(1, count + 1)]
    indexes = [index for shard in shards for index, _ in shard]
    assert sorted(indexes) == list(range(len(cases)))  # every case once: disjoint, complete
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1
    for shard in shards:  # each shard in file order, each case with its index in the file
        assert [i for i, _ in shard] == sorted(i for i, _ in shard)
        assert all(cases[i] is config for i, config in shard)


def test_shards_are_the_same_in_every_process_and_in_any_file_order():
    cases = example_cases()
    first = [names(shard_cases(cases, Shard(i, 3))) for i in (1, 2, 3)]
    again = [names(shard_cases(example_cases(), Shard(i, 3))) for i in (1, 2, 3)]
    assert first == again
    reordered = list(reversed(cases))
    moved = [sorted(names(shard_cases(reordered, Shard(i, 3)))) for i in (1, 2, 3)]
    assert moved == [sorted(shard) for shard in first]


def test_no_shard_is_every_case_in_file_order():
    cases = example_cases()
    assert shard_cases(cases, None) == list(enumerate(cases))


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), (" 2 / 3", Shard(2, 3))])
def test_parse_shard(text, shard):
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["0/2", "3/2", "x/y", "1/0", "2", "-1/2", "1/2/3", ""])
def test_bad_shards_are_refused_in_one_line(text):
    with pytest.raises(ValueError) as info:
        parse_shard(text)
    assert "\n" not in str(info.value)


def test_a_shards_junit_testsuite_names_the_shard():
    cases = [CaseResult(TestConfig(seed=1), True, "store/a", 1.0, "total-order: True")]
    root = ET.fromstring(junit_xml("ci-smoke", cases, Shard(2, 3)))
    assert root.get("name") == "ci-smoke shard 2/3"
    testcase = root.find("testcase")
    assert testcase is not None and testcase.get("classname") == "tobtest.ci-smoke"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "0/2"], "Invalid value for '--shard': '0/2': I/N needs 1 <= I <= N"),
        (["--shard", "3/2"], "Invalid value for '--shard': '3/2': I/N needs 1 <= I <= N"),
        (["--shard", "x/y"], "Invalid value for '--shard': expected I/N"),
        (["--jobs", "0"], "Invalid value for '--jobs': 0 is not in the range"),
        (["--jobs", "two"], "Invalid value for '--jobs': 'two' is not a valid integer"),
    ],
)
def test_bad_fanout_flags_exit_254_with_one_line(tmp_path, args, message):
    suite = str(REPO / "examples" / "ci-suite.yaml")
    result = run_cli("run", "--suite", suite, *args, "--store", str(tmp_path))
    assert result.returncode == 254
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not any(tmp_path.iterdir())  # refused before any case ran


@pytest.mark.parametrize("flag", [["--jobs", "2"], ["--shard", "1/2"]])
def test_fanout_flags_go_with_a_suite(tmp_path, flag):
    result = run_cli("run", *flag, "--store", str(tmp_path))
    assert result.returncode == 254
    assert result.stderr.strip().splitlines() == [
        f"tobtest: {flag[0]} goes with --suite (try 'tobtest run --help')"
    ]
