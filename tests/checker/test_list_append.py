"""Tests for the Elle-style list-append checker: one hand-made history per anomaly kind,
the corpus in tests/histories/{valid,invalid}/list-append/, the TOB mapping, and
properties against generated histories and a brute-force serializability oracle."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import list_append_corpus
from tobtest.checker.elle_models import IMPLIED_ANOMALIES
from tobtest.checker.list_append import (
    broadcast_as_list_append,
    check,
    check_broadcast,
    generate_history,
)
from tobtest.histories.op import Op

CORPUS = Path(__file__).resolve().parents[1] / "histories"


class Hist:
    """Builds txn histories: mops are ("a", k, v) appends and ("r", k, value) reads."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def _add(self, type_: str, process: Any, value: Any, f: str = "txn", **extra: Any) -> int:
        self.ops.append(
            Op(len(self.ops), len(self.ops) * 1000, type_, process, f, value, extra=extra)
        )
        return len(self.ops) - 1

    def start(self, process: Any, *mops: tuple, **extra: Any) -> tuple[Any, tuple]:
        value = [["append", k, v] if f == "a" else ["r", k, None] for f, k, v in mops]
        self._add("invoke", process, value, **extra)
        return process, mops

    def end(self, pending: tuple[Any, tuple], type_: str = "ok", **extra: Any) -> int:
        process, mops = pending
        value = [
            ["append", k, v] if f == "a" else ["r", k, v if type_ == "ok" else None]
            for f, k, v in mops
        ]
        return self._add(type_, process, value, **extra)

    def txn(self, process: Any, *mops: tuple, type_: str = "ok", **extra: Any) -> int:
        return self.end(self.start(process, *mops, **extra), type_)


def kinds(h: Hist, **opts: Any) -> list[str]:
    return check(h.ops, **opts)["anomaly_types"]


# ---- anomalies without a graph ---------------------------------------------------------


def test_serial_history_is_valid_and_counts_txns() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1), ("r", "x", [1]))
    h.txn(1, ("r", "x", [1]), ("a", "y", 2))
    h.txn(0, ("r", "y", [2]), ("r", "x", [1]))
    r = check(h.ops)
    assert r["valid"] is True
    assert r["anomaly_types"] == [] and r["not"] == [] and r["also_not"] == []
    assert r["counts"]["txns"] == 3 and r["counts"]["ok"] == 3
    assert r["counts"]["edges"]["wr"] == 3  # T1->T2 (x), T2->T3 (y), T1->T3 (x)


def test_g1a_aborted_read_names_writer_and_reader() -> None:
    h = Hist()
    w = h.txn(0, ("a", "x", 1), type_="fail")
    r = h.txn(1, ("r", "x", [1]))
    result = check(h.ops)
    assert result["valid"] is False and result["anomaly_types"] == ["G1a"]
    case = result["anomalies"]["G1a"][0]
    assert case["ops"] == [w, r] and case["element"] == 1
    assert "failed" in case["explanation"]
    assert "read-committed" in result["not"]


def test_g1b_intermediate_read() -> None:
    h = Hist()
    p = h.start(0, ("a", "x", 1), ("a", "x", 2))
    q = h.start(1, ("r", "x", [1]))
    w = h.end(p)
    r = h.end(q)
    result = check(h.ops)
    assert result["anomalies"]["G1b"][0]["ops"] == [w, r]
    # Reading the intermediate state also makes a wr + rw cycle with the writer.
    assert "G-single" in result["anomaly_types"]


def test_own_intermediate_state_is_no_g1b() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1), ("r", "x", [1]), ("a", "x", 2))
    assert kinds(h) == []


def test_internal_read_contradicting_own_append() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1))
    op = h.txn(1, ("r", "x", [1]), ("a", "x", 2), ("r", "x", [1]))
    result = check(h.ops)
    case = result["anomalies"]["internal"][0]
    assert case["ops"] == [op] and case["expected"] == [1, 2] and case["read"] == [1]


def test_internal_with_unknown_prefix_checks_the_suffix() -> None:
    good, bad = Hist(), Hist()
    good.txn(0, ("a", "x", 1))
    good.txn(1, ("a", "x", 2), ("r", "x", [1, 2]))
    bad.txn(0, ("a", "x", 1))
    bad.txn(1, ("a", "x", 2), ("r", "x", [2, 1]))
    assert "internal" not in kinds(good)
    result = check(bad.ops)
    assert result["anomalies"]["internal"][0]["expected"] == ["...", 2]


def test_future_read() -> None:
    h = Hist()
    h.txn(0, ("r", "x", [1]), ("a", "x", 1))
    assert "future-read" in kinds(h)


def test_duplicate_elements() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1))
    op = h.txn(1, ("r", "x", [1, 1]))
    result = check(h.ops)
    case = result["anomalies"]["duplicate-elements"][0]
    assert case["ops"] == [op] and case["duplicates"] == [[1, 2]]
    assert result["not"] == ["read-uncommitted"]


def test_incompatible_order_reports_both_reads() -> None:
    h = Hist()
    p, q = h.start(0, ("a", "x", 1)), h.start(1, ("a", "x", 2))
    h.end(p)
    h.end(q)
    long_read = h.txn(2, ("r", "x", [1, 2]))
    a = h.start(3, ("r", "x", [2]))
    h.end(a)
    result = check(h.ops)
    case = result["anomalies"]["incompatible-order"][0]
    assert case["values"] == [[2], [1, 2]] and case["ops"][1] == long_read


def test_lost_update() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1))
    p = h.start(1, ("r", "x", [1]), ("a", "x", 2))
    q = h.start(2, ("r", "x", [1]), ("a", "x", 3))
    a, b = h.end(p), h.end(q)
    result = check(h.ops)
    assert result["anomalies"]["lost-update"][0]["ops"] == [a, b]


def test_dirty_update_and_garbage_read() -> None:
    h = Hist()
    f = h.txn(0, ("a", "x", 1), type_="fail")
    w = h.txn(1, ("a", "x", 2))
    h.txn(2, ("r", "x", [1, 2]))
    result = check(h.ops)
    assert result["anomalies"]["dirty-update"][0]["ops"] == [f, w]
    g = Hist()
    g.txn(0, ("r", "x", [7]))
    assert kinds(g) == ["garbage-read"]


# ---- cycles ----------------------------------------------------------------------------


def _overlapping(h: Hist, *txns: tuple[Any, ...]) -> list[int]:
    """Runs txns (process, *mops) concurrently: all invoked, then all completed."""
    pending = [h.start(t[0], *t[1:]) for t in txns]
    return [h.end(p) for p in pending]


def test_g0_write_cycle_with_explanation() -> None:
    h = Hist()
    t1, t2 = _overlapping(h, (0, ("a", "x", 1), ("a", "y", 1)), (1, ("a", "x", 2), ("a", "y", 2)))
    h.txn(2, ("r", "x", [1, 2]), ("r", "y", [2, 1]))
    result = check(h.ops)
    assert result["anomaly_types"] == ["G0"]
    case = result["anomalies"]["G0"][0]
    assert sorted(case["ops"]) == [t1, t2]
    assert [s["rel"] for s in case["cycle"]] == ["ww", "ww"]
    assert "appended 1 to key 'x' before" in case["explanation"]
    assert result["not"] == ["read-uncommitted"]


def test_g1c_circular_information_flow() -> None:
    h = Hist()
    _overlapping(h, (0, ("a", "x", 1), ("r", "y", [2])), (1, ("a", "y", 2), ("r", "x", [1])))
    result = check(h.ops)
    assert result["anomaly_types"] == ["G1c"]
    assert [s["rel"] for s in result["anomalies"]["G1c"][0]["cycle"]] == ["wr", "wr"]


def test_g_single_read_skew() -> None:
    h = Hist()
    _overlapping(h, (0, ("a", "x", 1), ("a", "y", 1)), (1, ("r", "x", []), ("r", "y", [1])))
    result = check(h.ops)
    assert result["anomaly_types"] == ["G-single"]
    assert sorted(s["rel"] for s in result["anomalies"]["G-single"][0]["cycle"]) == ["rw", "wr"]
    assert result["not"] == ["consistent-view", "repeatable-read"]
    assert check(h.ops, consistency_models=["read-committed"])["valid"] is True


def test_g2_item_write_skew_only_breaks_repeatable_read_and_up() -> None:
    h = Hist()
    _overlapping(
        h,
        (0, ("r", "x", []), ("r", "y", []), ("a", "x", 1)),
        (1, ("r", "x", []), ("r", "y", []), ("a", "y", 2)),
    )
    result = check(h.ops)
    assert result["anomaly_types"] == ["G2-item"]
    assert result["not"] == ["repeatable-read"]
    assert "snapshot-isolation" not in result["also_not"]
    assert check(h.ops, consistency_models=["snapshot-isolation"])["valid"] is True
    assert check(h.ops, consistency_models=["serializable"])["valid"] is False


def test_stale_read_is_g_single_realtime() -> None:
    h = Hist()
    w = h.txn(0, ("a", "x", 1))
    r = h.txn(1, ("r", "x", []))
    result = check(h.ops)
    assert result["anomaly_types"] == ["G-single-realtime"]
    steps = result["anomalies"]["G-single-realtime"][0]["cycle"]
    assert {(s["from"], s["to"], s["rel"]) for s in steps} == {(w, r, "realtime"), (r, w, "rw")}
    assert check(h.ops, consistency_models=["serializable"])["valid"] is True


def test_same_process_stale_read_is_process_variant_only() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1))
    h.txn(0, ("r", "x", []))
    result = check(h.ops)
    # The realtime cycle over the same txns is implied, so it is not reported again.
    assert result["anomaly_types"] == ["G-single-process"]
    assert result["not"] == ["strong-session-snapshot-isolation"]


def test_info_txn_counts_once_its_append_is_seen() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1), ("a", "y", 1), type_="info")
    h.txn(1, ("r", "x", [1]), ("r", "y", []))  # sees half of the info txn: read skew
    assert kinds(h) == ["G-single"]
    unseen = Hist()
    unseen.txn(0, ("a", "x", 1), type_="info")
    unseen.txn(1, ("r", "x", []))
    assert kinds(unseen) == []


def test_invoke_without_completion_is_indeterminate() -> None:
    h = Hist()
    h.start(0, ("a", "x", 1), ("a", "y", 1))
    h.txn(1, ("r", "x", [1]), ("r", "y", []))
    assert kinds(h) == ["G-single"]


def test_unread_append_still_orders_after_the_last_read_version() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1))
    h.txn(1, ("a", "x", 2))  # never read
    h.txn(2, ("r", "x", [1]))  # invoked after T2 completed: stale
    assert kinds(h) == ["G-single-realtime"]


def test_null_and_empty_reads_and_string_keys() -> None:
    h = Hist()
    h.txn(0, ("r", "k", None), ("a", "k", "a"))
    h.txn(1, ("r", "k", ["a"]), ("r", "other", []))
    assert check(h.ops)["valid"] is True


def test_nemesis_and_other_ops_are_ignored() -> None:
    h = Hist()
    h._add("invoke", "nemesis", None, f="start-partition")
    h.txn(0, ("a", "x", 1))
    h._add("info", "nemesis", None, f="start-partition")
    h._add("invoke", 3, None, f="status")
    h._add("ok", 3, None, f="status")
    h.txn(1, ("r", "x", [1]))
    assert check(h.ops)["valid"] is True


# ---- verdicts and options --------------------------------------------------------------


def test_malformed_histories_are_unknown() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1))
    h.txn(1, ("a", "x", 1))
    result = check(h.ops)
    assert result["valid"] == "unknown" and "more than once" in result["error"]
    bad = [Op(0, 0, "invoke", 0, "txn", []), Op(1, 1, "ok", 0, "txn", [["put", "x", 1]])]
    assert check(bad)["valid"] == "unknown"
    orphan = [Op(0, 0, "ok", 0, "txn", [])]
    assert check(orphan)["valid"] == "unknown"


def test_empty_history_and_dict_ops_and_a_single_model_name() -> None:
    assert check([])["anomaly_types"] == ["empty-transaction-graph"]
    assert check([])["valid"] == "unknown"
    h = Hist()
    h.txn(0, ("a", "x", 1))
    h.txn(1, ("r", "x", []))
    dicts = [op.to_dict() for op in h.ops]
    assert check(dicts)["anomaly_types"] == ["G-single-realtime"]
    assert check(dicts, consistency_models="serializable")["valid"] is True
    assert check([{"index": 0}])["valid"] == "unknown"


def test_unknown_consistency_model_raises() -> None:
    with pytest.raises(ValueError, match="unknown consistency model"):
        check([], consistency_models=["linearizable-ish"])


def test_time_limit_gives_unknown_when_cycles_were_not_searched() -> None:
    h = Hist()
    _overlapping(h, (0, ("a", "x", 1), ("a", "y", 1)), (1, ("r", "x", []), ("r", "y", [1])))
    result = check(h.ops, time_limit_s=0.0)
    assert result["valid"] == "unknown"
    assert result["anomaly_types"] == ["cycle-search-timeout"]
    # A graph-free anomaly still decides the verdict.
    h.txn(5, ("r", "x", [1, 1]))
    assert check(h.ops, time_limit_s=0.0)["valid"] is False


def test_max_cases_per_kind_keeps_true_totals() -> None:
    h = Hist()
    h.txn(0, ("a", "x", 1), type_="fail")
    for p in range(1, 6):
        h.txn(p, ("r", "x", [1]))
    result = check(h.ops, max_cases_per_kind=2)
    assert len(result["anomalies"]["G1a"]) == 2
    assert result["counts"]["anomalies"]["G1a"] == 5
    stale = Hist()
    for i in range(5):  # five separate stale reads: five components, five cycles
        stale.txn(0, ("a", i, 1))
        stale.txn(1, ("r", i, []))
    result = check(stale.ops, max_cases_per_kind=2)
    assert len(result["anomalies"]["G-single-realtime"]) == 2
    assert result["counts"]["anomalies"]["G-single-realtime"] == 5


# ---- the corpus ------------------------------------------------------------------------

KNOWN_KINDS = sorted(
    set(IMPLIED_ANOMALIES)
    | {k for ks in IMPLIED_ANOMALIES.values() for k in ks}
    | {"internal", "duplicate-elements"},
    key=len,
    reverse=True,
)


def _load(path: Path) -> list[Op]:
    return [Op.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line]


def _kind_of(name: str) -> str:
    for kind in KNOWN_KINDS:  # longest first: G-single-realtime before G-single
        if name == kind or name.startswith(kind + "-"):
            return kind
    raise AssertionError(f"corpus file {name} does not start with an anomaly kind")


INVALID = sorted((CORPUS / "invalid" / "list-append").glob("*.jsonl"))
VALID = sorted((CORPUS / "valid" / "list-append").glob("*.jsonl"))


def test_corpus_covers_every_required_kind() -> None:
    named = {_kind_of(p.stem) for p in INVALID}
    required = {
        "G0",
        "G1a",
        "G1b",
        "G1c",
        "G-single",
        "G2-item",
        "internal",
        "duplicate-elements",
        "incompatible-order",
    }
    assert required <= named
    assert any(k.endswith("-realtime") for k in named)
    assert any(k.endswith("-process") for k in named)
    assert {_kind_of(p.stem) for p in VALID} == named  # a near miss for each


def test_committed_corpus_is_what_the_generator_writes() -> None:
    generated = list_append_corpus.histories()
    committed = {p.relative_to(CORPUS) for p in INVALID + VALID}
    assert committed == set(generated), "rerun: python -m tests.helpers.list_append_corpus"
    for rel, h in generated.items():
        expected = "".join(op.to_json() + "\n" for op in h.ops)
        assert (CORPUS / rel).read_text() == expected, f"{rel} differs from its generator"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_corpus_is_flagged_with_its_kind(path: Path) -> None:
    result = check(_load(path))
    assert result["valid"] is False
    assert _kind_of(path.stem) in result["anomaly_types"]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_corpus_passes(path: Path) -> None:
    result = check(_load(path))
    assert result["valid"] is True, result["anomalies"]


# ---- the TOB as list-append ------------------------------------------------------------


def _bcast(h: Hist, process: int, value: int, type_: str = "ok") -> None:
    h._add("invoke", process, value, f="broadcast")
    h._add(type_, process, value, f="broadcast", position=0)


def _read(h: Hist, process: int, value: Any, mode: str, type_: str = "ok", **extra: Any) -> int:
    h._add("invoke", process, None, f="read", read_mode=mode, **extra)
    return h._add(type_, process, value, f="read", read_mode=mode, **extra)


def test_broadcast_mapping_shape() -> None:
    h = Hist()
    _bcast(h, 0, 7)
    _read(h, 1, [7], "log")
    h._add("invoke", 2, None, f="read")
    h._add("ok", 2, "garbled", f="read")
    mapped = broadcast_as_list_append(h.ops)
    assert [op.f for op in mapped] == ["txn"] * 6
    assert mapped[1].value == [["append", "log", 7]] and mapped[1].extra["position"] == 0
    assert mapped[3].value == [["r", "log", [7]]] and mapped[3].extra["read_mode"] == "log"
    assert mapped[4].extra["read_mode"] == "local"  # the total-order checker's default
    assert mapped[5].type == "info" and mapped[5].value == [["r", "log", None]]


def test_check_broadcast_valid_and_stale_log_read() -> None:
    h = Hist()
    _bcast(h, 0, 1)
    _bcast(h, 1, 2)
    _read(h, 2, [1, 2], "log")
    assert check_broadcast(h.ops)["valid"] is True
    _read(h, 3, [1], "log")  # linearizable read missing an acked broadcast
    assert check_broadcast(h.ops)["anomaly_types"] == ["G-single-realtime"]


def test_check_broadcast_local_reads_are_exempt_from_recency_not_from_order() -> None:
    h = Hist()
    _bcast(h, 0, 1)
    _bcast(h, 0, 2)
    _read(h, 0, [1], "local")  # stale, even for its own process: allowed for local
    assert check_broadcast(h.ops)["valid"] is True
    assert check_broadcast(h.ops, local_process_order=True)["anomaly_types"] == ["G-single-process"]
    _read(h, 1, [2, 1], "local")
    assert "incompatible-order" in check_broadcast(h.ops)["anomaly_types"]


def test_check_broadcast_final_reads_must_hold_every_ack() -> None:
    h = Hist()
    _bcast(h, 0, 1)
    _bcast(h, 1, 2)
    _read(h, 2, [1, 2], "local", final=True)
    assert check_broadcast(h.ops)["valid"] is True
    _read(h, 3, [1], "local", final=True)  # lost the acked 2
    assert check_broadcast(h.ops)["anomaly_types"] == ["G-single-realtime"]


def test_check_broadcast_a_lagging_final_read_is_held_like_any_local_read() -> None:
    # The runner marks a node that never caught up (caught_up: false): total-order reports
    # it as not caught up, a liveness failure, so the list-append view does not also count
    # its short final read as a realtime anomaly.
    h = Hist()
    _bcast(h, 0, 1)
    _bcast(h, 1, 2)
    _read(h, 2, [1, 2], "local", final=True, caught_up=True)
    _read(h, 3, [1], "local", final=True, caught_up=False)
    assert check_broadcast(h.ops)["valid"] is True


def test_check_broadcast_failed_and_duplicated_deliveries() -> None:
    h = Hist()
    _bcast(h, 0, 1, type_="fail")
    _bcast(h, 1, 2)
    _read(h, 2, [2, 1, 2], "local")
    assert {"G1a", "duplicate-elements"} <= set(check_broadcast(h.ops)["anomaly_types"])


# ---- properties ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ops=st.integers(1, 150),
    n_clients=st.integers(1, 6),
    n_keys=st.integers(1, 4),
    max_writes=st.integers(2, 12),
)
def test_strict_serializable_executions_always_pass(
    seed: int, n_ops: int, n_clients: int, n_keys: int, max_writes: int
) -> None:
    history = generate_history(
        n_ops,
        n_clients,
        n_keys,
        random.Random(seed),
        max_writes_per_key=max_writes,
        fail_rate=0.1,
        info_rate=0.1,
    )
    result = check(history)
    assert result["counts"]["txns"] == n_ops
    if result["counts"]["ok"]:
        assert result["valid"] is True, result["anomalies"]
    else:  # nothing committed: nothing tested
        assert result["anomaly_types"] == ["empty-transaction-graph"]


def _buggy_history(rng: random.Random, n_txns: int) -> list[Op]:
    """A tiny concurrent history from a store that sometimes serves stale or mangled
    reads, loses appends, or acks txns it did not apply."""
    state: dict[str, list[int]] = {}
    snapshots: list[dict[str, list[int]]] = [{}]
    h = Hist()
    pending: list[tuple] = []
    counter = 0
    for i in range(n_txns):
        mops: list[tuple] = []
        for _ in range(rng.randint(1, 3)):
            k = rng.choice("xy")
            if rng.random() < 0.5:
                counter += 1
                mops.append(("a", k, counter))
            else:
                mops.append(("r", k, None))
        pending.append((h.start(i, *mops), mops))
        while pending and (rng.random() < 0.5 or i == n_txns - 1):
            (process, _), mops = pending.pop(rng.randrange(len(pending)))
            kind = rng.choice(["ok"] * 6 + ["fail", "info"])
            applied = kind == "ok" or (kind == "info" and rng.random() < 0.5)
            if rng.random() < 0.1:
                applied = not applied  # the bug: acked but lost, or failed but applied
            view = state if rng.random() < 0.8 else rng.choice(snapshots)  # stale reads
            done = []
            for f, k, v in mops:
                if f == "a":
                    if applied and rng.random() < 0.95:
                        state.setdefault(k, []).append(v)
                    done.append((f, k, v))
                else:
                    read = list(view.get(k, []))
                    if read and rng.random() < 0.05:
                        rng.shuffle(read)
                    done.append((f, k, read))
            snapshots.append({k: list(v) for k, v in state.items()})
            h.end((process, tuple(done)), kind)
    return h.ops


def _serial_explanation_exists(history: list[Op], realtime: bool) -> bool:
    """Brute force: is there an order of the ok txns and some of the info ones that, run
    one at a time from empty lists, gives every ok read (respecting real time if asked)?"""
    txns = []
    invoked: dict[Any, tuple[int, Op]] = {}
    for pos, op in enumerate(history):
        if op.type == "invoke":
            invoked[op.process] = (pos, op)
        else:
            start, inv = invoked.pop(op.process)
            txns.append((start, pos, op.type, op.value if op.type == "ok" else inv.value))
    for start, _inv in invoked.values():
        txns.append((start, len(history), "info", _inv.value))
    oks = [t for t in txns if t[2] == "ok"]
    infos = [t for t in txns if t[2] == "info"]
    for r in range(len(infos) + 1):
        for extra in itertools.combinations(infos, r):
            chosen = oks + list(extra)
            for order in itertools.permutations(chosen):
                if realtime and any(
                    b[2] == "ok" and b[1] < a[0]
                    for i, a in enumerate(order)
                    for b in order[i + 1 :]
                ):
                    continue
                state: dict[Any, list[Any]] = {}
                ok = True
                for _, _, kind, value in order:
                    for f, k, v in value:
                        if f == "append":
                            state.setdefault(k, []).append(v)
                        elif kind == "ok" and list(v or []) != state.get(k, []):
                            ok = False
                            break
                    if not ok:
                        break
                if ok:
                    return True
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_txns=st.integers(1, 5))
def test_every_verdict_of_invalid_is_confirmed_by_brute_force(seed: int, n_txns: int) -> None:
    history = _buggy_history(random.Random(seed), n_txns)
    strict = check(history, consistency_models=["strict-serializable"])
    if strict["valid"] is False:
        assert not _serial_explanation_exists(history, realtime=True), strict["anomalies"]
    plain = check(history, consistency_models=["serializable"])
    if plain["valid"] is False:
        assert not _serial_explanation_exists(history, realtime=False), plain["anomalies"]
