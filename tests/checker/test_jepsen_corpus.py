"""Real Jepsen histories with known verdicts (../shared/corpus, see its README), one test a file.

Each set is checked under its source's reading:
- porcupine-etcd (Jepsen logs, verdicts in VERDICTS.tsv): cas-register starting nil, a nil
  read saw no value, a `:fail :cas` ran and returned false, `:fail :read :timed-out` has an
  unknown result;
- porcupine-kv (EDN op lines, verdict in the name): kv with get/put/append on strings,
  checked per key;
- knossos (EDN vectors, verdict in the folder): a `:fail` did not happen, a nil read matches
  anything; cas-register starts at 0, multi-register at {x 0, y 0}, and the mutex free.

The corpus is data read at test time, never copied into the repository; without it these
tests skip.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tobtest.checker.linearizable import check
from tobtest.histories.formats import detect_format, read_history

REPO = Path(__file__).resolve().parents[2]
CORPUS = (REPO.parent / "shared" / "corpus").resolve()

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"shared corpus not found at {CORPUS}: these tests need ../shared/corpus",
)

ETCD_READING: dict[str, Any] = {
    "model": "cas-register",
    "fail_means": "returned-false",
    "nil_read": "no-value",
    "initial": None,
}
KNOSSOS_READING: dict[str, Any] = {"fail_means": "did-not-happen", "nil_read": "unknown"}


def etcd_verdicts() -> dict[str, str]:
    path = CORPUS / "porcupine-etcd" / "VERDICTS.tsv"
    if not path.exists():
        return {}
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    return {name: verdict.strip() for name, verdict in rows}


def files(folder: str, pattern: str) -> list[Path]:
    return sorted((CORPUS / folder).glob(pattern))


ETCD = etcd_verdicts()
KV = files("porcupine-kv", "*.txt")
KNOSSOS: list[tuple[Path, str, Any, bool]] = [
    *((p, "cas-register", 0, True) for p in files("knossos/cas-register/good", "*.edn")),
    *((p, "cas-register", 0, False) for p in files("knossos/cas-register/bad", "*.edn")),
    *(
        (p, "multi-register", {"x": 0, "y": 0}, True)
        for p in files("knossos/multi-register/good", "*.edn")
    ),
    *((p, "mutex", False, False) for p in files("knossos/mutex/bad", "*.edn")),
]


def test_every_set_is_complete():
    assert len(ETCD) == 103 and {p.name for p in files("porcupine-etcd", "*.log")} == set(ETCD)
    assert len(KV) == 6
    counts = {(model, valid): 0 for _, model, _, valid in KNOSSOS}
    for _, model, _, valid in KNOSSOS:
        counts[model, valid] += 1
    assert counts == {
        ("cas-register", True): 113,
        ("cas-register", False): 7,
        ("multi-register", True): 1,
        ("mutex", False): 1,
    }


@pytest.mark.parametrize("name", sorted(ETCD))
def test_porcupine_etcd_history_gets_its_verdict(name):
    path = CORPUS / "porcupine-etcd" / name
    ops = read_history(path)
    r = check(ops, **ETCD_READING)
    if ETCD[name] == "skip-empty":
        assert ops == [] and r["valid"] is True and r["calls"] == 0
        return
    assert detect_format(path.read_text()) == "jepsen-log"
    assert r["valid"] is {"linearizable": True, "not-linearizable": False}[ETCD[name]], r
    if r["valid"] is False:
        assert r["anomaly_types"] == ["nonlinearizable"]
        assert r["failed_op"]["invoke_index"] < r["failed_op"]["index"]


@pytest.mark.parametrize("path", KV, ids=lambda p: p.name)
def test_porcupine_kv_history_gets_its_verdict_key_by_key(path):
    assert detect_format(path.read_text()) == "edn"
    ops = read_history(path)
    r = check(ops, "kv", time_limit_s=30.0)
    assert r["partitions"] == len({op.extra["key"] for op in ops}) > 1
    assert r["valid"] is path.stem.endswith("-ok"), r
    if r["valid"] is False:
        assert r["anomalies"]["nonlinearizable"][0]["key"] == r["key"]


@pytest.mark.parametrize(
    ("path", "model", "initial", "valid"),
    KNOSSOS,
    ids=[f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p, *_ in KNOSSOS],
)
def test_knossos_history_gets_its_verdict(path, model, initial, valid):
    r = check(read_history(path), model, initial=initial, **KNOSSOS_READING)
    assert r["valid"] is valid, r


def test_knossos_history_of_nemesis_ops_only_has_no_calls():
    ops = read_history(CORPUS / "knossos/cas-register/good/mongodb-v0-ack-rollback-.edn")
    assert ops and all(op.process == "nemesis" for op in ops)
    result = check(ops, initial=0, **KNOSSOS_READING)
    assert result["valid"] is True and result["calls"] == 0, result


def test_the_blamed_op_is_the_impossible_read_not_an_op_after_it():
    # Knossos's file notes that WGL once blamed the read after the concurrent pair.
    r = check(
        read_history(CORPUS / "knossos/cas-register/bad/rethink-fail-minimal.edn"),
        initial=0,
        **KNOSSOS_READING,
    )
    assert r["failed_op"]["f"] == "read" and r["failed_op"]["value"] == 3
    assert r["failed_op"]["index"] == 4


def test_an_immediate_failure_has_an_empty_prefix():
    r = check(
        read_history(CORPUS / "knossos/cas-register/bad/immediate-failure.edn"),
        initial=0,
        **KNOSSOS_READING,
    )
    assert r["linearized"] == [] and r["failed_op"]["value"] == 3


def test_the_whole_porcupine_etcd_set_checks_well_within_budget():
    histories = [read_history(CORPUS / "porcupine-etcd" / name) for name in sorted(ETCD)]
    started = time.perf_counter()
    for ops in histories:
        check(ops, **ETCD_READING)
    elapsed_s = time.perf_counter() - started
    # About 0.15 s when measured alone; the margin is for a loaded machine with 2 cores.
    assert elapsed_s < 3.0, f"porcupine-etcd took {elapsed_s:.2f} s"
