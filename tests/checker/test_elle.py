"""The Elle adapter, as far as it goes without Elle's jar: the export matches elle-cli's
documented JSON input, outcomes map to verdicts, and no jar means `unknown` with a reason.
The real run needs the jar (TOBTEST_ELLE_JAR) and Java 21+, and skips without them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.history_builder import HistoryBuilder
from tobtest.checker import checker_by_name
from tobtest.checker.elle import ENV_JAR, check, elle_ops, interpret, write_elle_json


def txn_history(bad: bool) -> list:
    """G1c when bad: T1 reads T2's append to key 2, T2 overwrote... as in Elle's examples."""
    h = HistoryBuilder()
    p = h.invoke(0, "txn", [["append", 1, 1], ["r", 2, None]])
    h.ok(p, [["append", 1, 1], ["r", 2, [1] if bad else []]])
    p = h.invoke(1, "txn", [["append", 1, 2], ["append", 2, 1]])
    h.ok(p, [["append", 1, 2], ["append", 2, 1]])
    p = h.invoke(2, "txn", [["r", 1, None]])
    h.ok(p, [["r", 1, [1, 2]]])
    h.nemesis("start-partition", {"n1": ["n2"]})
    return h.ops


def test_export_has_elle_clis_fields_and_no_nemesis_ops(tmp_path):
    path = write_elle_json(txn_history(bad=True), tmp_path / "h.json")
    ops = json.loads(path.read_text())
    assert isinstance(ops, list) and len(ops) == 6
    for op in ops:
        assert set(op) == {"index", "time", "type", "process", "f", "value"}
        assert op["type"] in ("invoke", "ok", "fail", "info") and op["f"] == "txn"
        assert isinstance(op["process"], int) and isinstance(op["index"], int)
    assert ops[1]["value"] == [["append", 1, 1], ["r", 2, [1]]]
    assert ops[0]["value"][1] == ["r", 2, None]


def test_broadcast_histories_are_exported_as_list_append():
    h = HistoryBuilder()
    h.broadcast(0, 7, "n1", position=0)
    h.read(1, "n1", [7])
    ops = elle_ops(h.ops, "list-append")
    assert [op["f"] for op in ops] == ["txn"] * 4
    assert ops[1]["value"] == [["append", "log", 7]]
    assert ops[3]["value"] == [["r", "log", [7]]]


@pytest.mark.parametrize(
    ("code", "stdout", "stderr", "valid"),
    [
        (0, '{"valid?": true, "anomaly-types": []}', "", True),
        (1, '{"valid?": false, "anomaly-types": ["G1c"]}', "", False),
        (0, '{"valid?": "unknown"}', "", "unknown"),
        (255, "", "java.lang.OutOfMemoryError", "unknown"),
        (1, "", 'Model "list-append" does not match this history', "unknown"),
    ],
)
def test_outcomes_map_to_verdicts(code, stdout, stderr, valid):
    result = interpret(code, stdout, stderr)
    assert result["valid"] == valid
    if code == 1 and stdout:
        assert result["anomaly_types"] == ["G1c"]
    if code == 255:
        assert "exit 255" in result["error"]


def test_without_a_jar_the_verdict_is_unknown_with_the_reason(monkeypatch):
    monkeypatch.delenv(ENV_JAR, raising=False)
    result = check(txn_history(bad=True))
    assert result["valid"] == "unknown"
    assert ENV_JAR in result["error"]
    assert check(txn_history(bad=True), elle_jar="/nope.jar")["error"].startswith("Elle jar")
    assert checker_by_name("elle") is check


def elle_jar() -> str:
    jar = os.environ.get(ENV_JAR)
    if not jar or not Path(jar).is_file():
        pytest.skip(f"Elle's jar is not available here: set {ENV_JAR} to an elle-cli jar")
    if shutil.which("java") is None:
        pytest.skip("java is not installed: Elle needs a JVM")
    return jar


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_elle_agrees_with_tobtests_list_append_checker():
    jar = elle_jar()
    from tobtest.checker.list_append import check as native

    for bad in (True, False):
        history = txn_history(bad)
        assert check(history, elle_jar=jar)["valid"] == native(history)["valid"] == (not bad)
