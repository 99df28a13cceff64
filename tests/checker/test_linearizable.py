"""The linearizability checker: unit cases, hand-made histories, and properties with an oracle.

Hand-made histories live in tests/histories/{valid,invalid}/linearizable/ and are written by
`PAIRS` below (rewrite them with `.venv/bin/python -m tests.checker.test_linearizable`; a test
fails when the committed files differ). File names say the model they are checked with:

    invalid/linearizable/nonlinearizable-<model>-<detail>.jsonl   anomaly kind, model, detail
    valid/linearizable/<model>-<detail>.jsonl                     a near miss that must pass

`<model>` is a name in `tobtest.checker.models.MODELS` (here `register` or `cas-register`).
All use the checker's default readings (the register starts nil, a nil read saw no value, a
`fail` op did not happen), so that they also hold for tests/checker/test_corpus.py, which runs
every checker with its defaults (cas-register models a plain register's histories too).

Properties: a history recorded from a real sequential execution, with each op's effect at a
point between its invocation and completion, always passes; and for histories of up to 8
ops, a brute-force search over every real-time-respecting order agrees with the checker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.history_builder import HistoryBuilder, load_jsonl
from tobtest.checker.linearizable import check
from tobtest.checker.models import FAILED, MODELS, UNKNOWN, model_by_name
from tobtest.histories.op import Op

ROOT = Path(__file__).resolve().parent.parent / "histories"
CHECKER = "linearizable"
KIND = "nonlinearizable"


def ops_of(*rows: tuple) -> list[Op]:
    """Ops from (process, type, f, value) rows, indexed in order."""
    return [Op(i, i, t, p, f, v) for i, (p, t, f, v) in enumerate(rows)]


# --- unit cases ------------------------------------------------------------------------------


def test_an_empty_history_and_nemesis_ops_are_linearizable():
    assert check([])["valid"] is True
    nemesis = ops_of(("nemesis", "info", "start", None), ("nemesis", "info", "stop", None))
    assert check(nemesis) | {"calls": 0} == check(nemesis)


def test_an_invalid_result_reports_prefix_failed_op_and_anomaly():
    # Knossos's rethink-fail-minimal: the register holds 0; a read of 3 concurrent with a
    # write of 4 cannot be explained.
    ops = ops_of(
        (0, "invoke", "write", 0),
        (0, "ok", "write", 0),
        (1, "invoke", "read", None),
        (2, "invoke", "write", 4),
        (1, "ok", "read", 3),
        (2, "ok", "write", 4),
        (3, "invoke", "read", None),
        (3, "ok", "read", 4),
    )
    r = check(ops, "cas-register")
    assert r["valid"] is False
    assert r["linearized"] == [1, 5]  # write 0, then write 4: the longest prefix found
    assert r["failed_op"]["index"] == 4 and r["failed_op"]["invoke_index"] == 2
    assert r["failed_op"]["value"] == 3 and r["failed_op"]["process"] == 1
    assert r["anomaly_types"] == [KIND]
    (anomaly,) = r["anomalies"][KIND]
    assert anomaly["ops"] == [2, 4]
    assert "read -> 3" in anomaly["explanation"] and "holds 4" in anomaly["explanation"]


def test_fail_means_did_not_happen_or_returned_false():
    ops = ops_of(
        (0, "invoke", "write", 0),
        (0, "ok", "write", 0),
        (1, "invoke", "cas", [0, 1]),
        (1, "fail", "cas", [0, 1]),
    )
    assert check(ops)["valid"] is True
    r = check(ops, fail_means="returned-false")
    assert r["valid"] is False and r["failed_op"]["index"] == 3
    with pytest.raises(ValueError, match="fail_means"):
        check(ops, fail_means="maybe")


def test_a_timed_out_failed_read_has_an_unknown_result_when_failures_returned_false():
    ops = ops_of((0, "invoke", "read", None), (0, "fail", "read", "timed-out"))
    assert check(ops, fail_means="returned-false")["valid"] is True
    ops = ops_of((0, "invoke", "read", None), (0, "fail", "read", 7))
    assert check(ops, fail_means="returned-false")["valid"] is True  # failed read: no value


def test_initial_value_and_nil_reads_follow_the_options():
    ops = ops_of((0, "invoke", "read", None), (0, "ok", "read", None))
    assert check(ops)["valid"] is True
    assert check(ops, initial=0)["valid"] is False
    assert check(ops, initial=0, nil_read="unknown")["valid"] is True


def test_an_info_write_may_happen_late_or_never():
    ops = ops_of(
        (0, "invoke", "write", 1),
        (0, "ok", "write", 1),
        (1, "invoke", "write", 2),
        (1, "info", "write", 2),
        (2, "invoke", "read", None),
        (2, "ok", "read", 1),
        (3, "invoke", "read", None),
        (3, "ok", "read", 2),
    )
    assert check(ops)["valid"] is True
    assert check(ops[:6])["valid"] is True  # never happened
    flipped = ops[:4] + [ops[6], ops[7], ops[4], ops[5]]
    assert check(flipped)["valid"] is False  # happened, then was undone


def test_a_process_that_invokes_again_left_its_previous_call_open_ended():
    ops = ops_of(
        (0, "invoke", "write", 1),
        (0, "invoke", "write", 2),
        (0, "ok", "write", 2),
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
    )
    assert check(ops)["valid"] is True


@pytest.mark.parametrize(
    ("ops", "reason"),
    [
        (ops_of((0, "invoke", "broadcast", 1)), "has no op 'broadcast'"),
        (ops_of((0, "ok", "read", 1)), "completes no invocation"),
        (ops_of((0, "invoke", "cas", 3), (0, "ok", "cas", 3)), "must be [from to]"),
    ],
)
def test_histories_that_do_not_fit_the_model_are_unknown(ops, reason):
    r = check(ops)
    assert r["valid"] == "unknown" and reason in r["error"]


def hard_appends(key: str, appends: int) -> list[Op]:
    """Concurrent appends to one key, then a read no order explains: all orders get tried."""
    rows = [(i, "invoke", "append", f"<{i}>") for i in range(appends)]
    rows += [(i, "ok", "append", f"<{i}>") for i in range(appends)]
    rows += [(99, "invoke", "get", None), (99, "ok", "get", "!")]
    return [Op(i, i, t, p, f, v, extra={"key": key}) for i, (p, t, f, v) in enumerate(rows)]


def test_a_search_over_its_time_limit_is_unknown():
    started = time.perf_counter()
    r = check(hard_appends("k", 12), "kv", time_limit_s=0.2)
    assert r["valid"] == "unknown", r
    assert r["error"] == "timed out after 0.2 s with 1 of 1 keys undecided (such as 'k')"
    assert time.perf_counter() - started < 2.0


def test_kv_keys_are_checked_apart_and_an_easy_invalid_key_is_not_stuck_behind_a_hard_one():
    hard = hard_appends("hard", 12)
    n = len(hard)
    easy = [
        Op(n + i, n + i, t, 100 + p, f, v, extra={"key": "easy"})
        for i, (p, t, f, v) in enumerate(
            [
                (0, "invoke", "put", "a"),
                (0, "ok", "put", "a"),
                (1, "invoke", "get", None),
                (1, "ok", "get", ""),
            ]
        )
    ]
    r = check(hard + easy, "kv", time_limit_s=5.0)
    assert r["valid"] is False and r["key"] == "easy", r
    assert r["partitions"] == 2 and r["partitions_unfinished"] == 1
    assert r["anomalies"][KIND][0]["key"] == "easy"


def test_other_models_check_through_the_same_search():
    mutex = ops_of(
        (0, "invoke", "acquire", None),
        (0, "ok", "acquire", None),
        (1, "invoke", "acquire", None),
        (1, "ok", "acquire", None),
    )
    assert check(mutex, "mutex")["valid"] is False
    log = ops_of(
        (0, "invoke", "broadcast", 1),
        (1, "invoke", "broadcast", 2),
        (0, "ok", "broadcast", 1),
        (1, "ok", "broadcast", 2),
        (2, "invoke", "read", None),
        (2, "ok", "read", [2, 1]),
    )
    assert check(log, model_by_name("append-log"))["valid"] is True
    log[-1] = Op(5, 5, "ok", 2, "read", [2])
    assert check(log, "append-log")["valid"] is False


def test_options_meant_for_other_checkers_are_ignored():
    assert check([], "register", time_limit_s=1.0, read_mode="log")["valid"] is True


def test_many_interchangeable_timed_out_writes_stay_fast():
    rows: list[tuple] = []
    for p in range(40):  # forty writes of 0 or 1 that time out, each may happen or not
        rows += [(p, "invoke", "write", p % 2), (p, "info", "write", p % 2)]
    for v in (0, 1, 0, 1, 0, 1, 7):
        rows += [(99, "invoke", "read", None), (99, "ok", "read", v)]
    started = time.perf_counter()
    r = check(ops_of(*rows))
    assert r["valid"] is False and r["failed_op"]["value"] == 7
    assert time.perf_counter() - started < 2.0


# --- hand-made histories: (invalid name, near-miss name, build(bad)) -------------------------


def stale_read(bad: bool) -> HistoryBuilder:
    """A read invoked after write 2 was acked returns 1; the near miss: they overlap."""
    h = HistoryBuilder()
    h.ok(h.invoke(0, "write", 1))
    w = h.invoke(1, "write", 2)
    if bad:
        h.ok(w)
    r = h.invoke(2, "read")
    if not bad:
        h.ok(w)
    h.ok(r, value=1)
    return h


def read_never_written(bad: bool) -> HistoryBuilder:
    """A read returns 7, which nobody wrote; the near miss: a write of 7 that never returned."""
    h = HistoryBuilder()
    h.ok(h.invoke(0, "write", 1))
    if not bad:
        h.invoke(1, "write", 7)  # its client crashed: no completion
    h.ok(h.invoke(2, "read"), value=7)
    return h


def read_of_failed_write(bad: bool) -> HistoryBuilder:
    """A read returns 7, written by a write that failed; the near miss: it timed out."""
    h = HistoryBuilder()
    h.ok(h.invoke(0, "write", 1))
    w = h.invoke(1, "write", 7)
    h.fail(w) if bad else h.info(w)
    h.ok(h.invoke(2, "read"), value=7)
    return h


def nil_after_write(bad: bool) -> HistoryBuilder:
    """A read sees no value after a write was acked; the near miss: the two overlap."""
    h = HistoryBuilder()
    w = h.invoke(0, "write", 1)
    if bad:
        h.ok(w)
    r = h.invoke(1, "read")
    h.ok(r, value=None)
    if not bad:
        h.ok(w)
    return h


def new_then_old(bad: bool) -> HistoryBuilder:
    """During a write of 2, one read sees 2 and a later one 1; the near miss: reads overlap."""
    h = HistoryBuilder()
    h.ok(h.invoke(0, "write", 1))
    w = h.invoke(1, "write", 2)
    r1 = h.invoke(2, "read")
    if bad:
        h.ok(r1, value=2)
        h.ok(h.invoke(3, "read"), value=1)
    else:
        r2 = h.invoke(3, "read")
        h.ok(r1, value=2)
        h.ok(r2, value=1)
    h.ok(w)
    return h


def info_write_undone(bad: bool) -> HistoryBuilder:
    """A timed-out write of 2 is seen, then 1 again; the near miss: 1 is seen, then 2."""
    h = HistoryBuilder()
    h.ok(h.invoke(0, "write", 1))
    h.info(h.invoke(1, "write", 2))
    for v in (2, 1) if bad else (1, 2):
        h.ok(h.invoke(2, "read"), value=v)
    return h


def lost_update(bad: bool) -> HistoryBuilder:
    """Two concurrent cas from 0 both succeed; the near miss: one of them fails."""
    h = HistoryBuilder()
    h.ok(h.invoke(0, "write", 0))
    a = h.invoke(1, "cas", [0, 1])
    b = h.invoke(2, "cas", [0, 2])
    h.ok(a) if bad else h.fail(a)
    h.ok(b)
    h.ok(h.invoke(3, "read"), value=2)
    return h


def cas_from_never_held(bad: bool) -> HistoryBuilder:
    """A cas from 5 succeeds though 5 was never held (its write failed); near miss: timed out."""
    h = HistoryBuilder()
    h.ok(h.invoke(0, "write", 1))
    w = h.invoke(1, "write", 5)
    h.fail(w) if bad else h.info(w)
    h.ok(h.invoke(2, "cas", [5, 2]))
    h.ok(h.invoke(3, "read"), value=2)
    return h


PAIRS: list[tuple[str, str, Callable[[bool], HistoryBuilder]]] = [
    ("register-stale-read", "register-read-overlapping-write", stale_read),
    ("register-read-never-written", "register-read-of-unfinished-write", read_never_written),
    ("register-read-of-failed-write", "register-read-of-timed-out-write", read_of_failed_write),
    ("register-nil-read-after-write", "register-nil-read-during-first-write", nil_after_write),
    ("register-new-then-old-read", "register-overlapping-reads-during-write", new_then_old),
    ("register-timed-out-write-undone", "register-timed-out-write-late", info_write_undone),
    ("cas-register-lost-update", "cas-register-one-cas-failed", lost_update),
    (
        "cas-register-cas-from-never-held",
        "cas-register-cas-from-timed-out-write",
        cas_from_never_held,
    ),
]


def corpus() -> dict[Path, HistoryBuilder]:
    files = {}
    for invalid, valid, build in PAIRS:
        files[Path("invalid", CHECKER, f"{KIND}-{invalid}.jsonl")] = build(True)
        files[Path("valid", CHECKER, f"{valid}.jsonl")] = build(False)
    return files


def model_of(path: Path) -> str:
    """The model a hand-made history names: the longest model name its detail starts with."""
    detail = path.stem.removeprefix(KIND + "-")
    return max((m for m in MODELS if detail.startswith(m + "-")), key=len)


COMMITTED = sorted(
    p for folder in ("valid", "invalid") for p in (ROOT / folder / CHECKER).glob("*.jsonl")
)


def test_committed_hand_made_histories_are_what_the_generator_writes():
    expected = corpus()
    assert {p.relative_to(ROOT) for p in COMMITTED} == set(expected), (
        "rerun: .venv/bin/python -m tests.checker.test_linearizable"
    )
    for rel, h in expected.items():
        assert (ROOT / rel).read_text() == "".join(op.to_json() + "\n" for op in h.ops), rel


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_hand_made_history_gets_its_verdict_with_its_model(path):
    r = check(load_jsonl(path), model_of(path))
    if path.parent.parent.name == "valid":
        assert r["valid"] is True, r
    else:
        assert r["valid"] is False and r["anomaly_types"] == [KIND], r
        assert path.stem.startswith(KIND + "-")


@pytest.mark.parametrize(("invalid", "near_miss", "build"), PAIRS, ids=[p[0] for p in PAIRS])
def test_each_anomaly_fails_and_its_near_miss_passes_under_both_register_models(
    invalid, near_miss, build
):
    for model in (
        ("register", "cas-register") if invalid.startswith("register-") else ("cas-register",)
    ):
        assert check(build(True).ops, model)["valid"] is False
        assert check(build(False).ops, model)["valid"] is True


# --- properties --------------------------------------------------------------------------------

VALUES = [0, 1, 2]
FS = {"register": ["read", "write"], "cas-register": ["read", "write", "cas"]}


def input_for(draw: Callable[..., Any], f: str) -> Any:
    if f == "write":
        return draw(st.sampled_from(VALUES))
    if f == "cas":
        return [draw(st.sampled_from(VALUES)), draw(st.sampled_from(VALUES))]
    return None


def assemble(spans: list[tuple[int, int, Op, Op | None]]) -> list[Op]:
    """Orders invocations and completions by time and numbers them."""
    events = []
    for start, end, inv, comp in spans:
        events.append((start, 0, inv))
        if comp is not None:
            events.append((end, 1, comp))
    events.sort(key=lambda e: (e[0], e[1]))
    return [
        Op(i, t, op.type, op.process, op.f, op.value, error=op.error)
        for i, (t, _, op) in enumerate(events)
    ]


@st.composite
def executed_histories(draw: Callable[..., Any], model: str, max_ops: int = 24) -> list[Op]:
    """A sequential run of the model; op i takes effect at 10i+5, inside its own window."""
    m = model_by_name(model)
    state = m.init()
    spans = []
    for i in range(draw(st.integers(1, max_ops))):
        f = draw(st.sampled_from(FS[model]))
        value = input_for(draw, f)
        at = 10 * i + 5
        start, end = at - draw(st.integers(1, 30)), at + draw(st.integers(1, 30))
        fate = draw(
            st.sampled_from(["ok", "ok", "ok", "info", "info-lost", "never", "never-lost", "fail"])
        )
        applies = fate in ("ok", "info", "never")
        ok, new_state = m.step(state, f, value, UNKNOWN if f != "read" else state)
        if f == "cas" and not ok and fate == "ok":
            fate, applies = "fail", False  # a cas that did not match reports failure
        output = state if f == "read" else value
        if applies and ok:
            state = new_state
        inv = Op(0, 0, "invoke", i, f, value)
        kind = {"ok": "ok", "fail": "fail"}.get(fate, "info")
        comp = (
            None
            if fate.startswith("never")
            else Op(0, 0, kind, i, f, output if kind == "ok" else value)
        )
        spans.append((start, end, inv, comp))
    return assemble(spans)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["register", "cas-register"]).flatmap(
        lambda m: st.tuples(st.just(m), executed_histories(m))
    )
)
def test_a_history_from_a_real_sequential_execution_is_linearizable(case):
    model, ops = case
    r = check(ops, model)
    assert r["valid"] is True, r


@st.composite
def random_histories(draw: Callable[..., Any], model: str, max_ops: int = 8) -> list[Op]:
    """Any small history: random windows, outcomes and read values; valid or not."""
    spans = []
    for i in range(draw(st.integers(1, max_ops))):
        f = draw(st.sampled_from(FS[model]))
        value = input_for(draw, f)
        start = draw(st.integers(0, 30))
        end = start + draw(st.integers(1, 20))
        fate = draw(st.sampled_from(["ok", "ok", "ok", "info", "never", "fail", "fail-timeout"]))
        inv = Op(0, 0, "invoke", i, f, value)
        if fate == "never":
            comp = None
        elif fate == "ok":
            out = draw(st.sampled_from([None, *VALUES])) if f == "read" else value
            comp = Op(0, 0, "ok", i, f, out)
        elif fate == "fail-timeout":
            comp = Op(0, 0, "fail", i, f, "timed-out" if f == "read" else value, error="timed-out")
        else:
            comp = Op(0, 0, fate, i, f, value)
        spans.append((start, end, inv, comp))
    return assemble(spans)


def oracle(ops: list[Op], model: str, fail_means: str) -> bool:
    """Tries every order of the calls that respects real time; open-ended calls may be left out."""
    m = model_by_name(model)
    calls = []
    invoked: dict[Any, tuple[int, Op]] = {}
    completed: dict[Any, tuple[int, Op]] = {}
    for pos, op in enumerate(ops):
        (invoked if op.type == "invoke" else completed)[op.process] = (pos, op)
    for p, (start, inv) in invoked.items():
        end, comp = completed.get(p, (math.inf, None))
        if comp is None or comp.type == "info":
            calls.append((start, math.inf, inv.f, inv.value, UNKNOWN, False))
        elif comp.type == "ok":
            calls.append((start, end, inv.f, inv.value, comp.value, True))
        elif fail_means == "returned-false":
            out = UNKNOWN if comp.error == "timed-out" else FAILED
            calls.append((start, end, inv.f, inv.value, out, True))

    def extend(placed: frozenset[int], state: Any) -> bool:
        if all(i in placed for i, c in enumerate(calls) if c[5]):
            return True
        for i, (start, _, f, inp, out, _) in enumerate(calls):
            if i in placed:
                continue
            if any(j not in placed and calls[j][1] < start for j in range(len(calls))):
                continue  # a call that returned before this one began must come first
            ok, new_state = m.step(state, f, inp, out)
            if ok and extend(placed | {i}, new_state):
                return True
        return False

    return extend(frozenset(), m.init())


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["register", "cas-register"]).flatmap(
        lambda m: st.tuples(
            st.just(m), random_histories(m), st.sampled_from(["did-not-happen", "returned-false"])
        )
    )
)
def test_the_checker_agrees_with_a_brute_force_oracle(case):
    model, ops, fail_means = case
    r = check(ops, model, fail_means=fail_means)
    assert r["valid"] is oracle(ops, model, fail_means), (r, ops)


if __name__ == "__main__":
    for rel, h in corpus().items():
        (ROOT / rel).parent.mkdir(parents=True, exist_ok=True)
        h.write_jsonl(ROOT / rel)
        print(f"wrote {rel}")


def keyed(rows: list[tuple[int, str, str, Any]]) -> list[Op]:
    return [Op(i, i, t, p, f, v, extra={"key": "k"}) for i, (p, t, f, v) in enumerate(rows)]


def test_kv_pruning_by_pending_reads_waits_for_puts_that_could_come_first():
    # The only order: append a, put x, append b, get -> "xb". In state "a" the pending get
    # cannot be reached by appends alone, but the put is still pending: no pruning there.
    invokes = [(0, "append", "a"), (1, "put", "x"), (2, "append", "b"), (3, "get", None)]
    rows = [(p, "invoke", f, v) for p, f, v in invokes]
    rows += [(p, "ok", f, "xb" if f == "get" else v) for p, f, v in invokes]
    assert check(keyed(rows), "kv")["valid"] is True
    # Without the put, "xb" is out of reach of every order: invalid.
    no_put = [r for r in rows if r[2] != "put"]
    assert check(keyed(no_put), "kv")["valid"] is False


def test_kv_pending_reads_pick_the_order_of_many_concurrent_appends():
    # Twelve concurrent appends, and reads pending alongside them that pin their order:
    # the pruning finds the one order without trying the 12! others.
    n = 12
    order = [f"<{i}>" for i in (7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6)]
    rows = [(i, "invoke", "append", f"<{i}>") for i in range(n)]
    rows += [(100 + j, "invoke", "get", None) for j in range(n)]
    rows += [(i, "ok", "append", f"<{i}>") for i in range(n)]
    rows += [(100 + j, "ok", "get", "".join(order[: j + 1])) for j in range(n)]
    r = check(keyed(rows), "kv", time_limit_s=30.0)
    assert r["valid"] is True and r["configurations"] < 1000, r
    rows[-1] = (100 + n - 1, "ok", "get", "".join(order[:-2] + order[-1:] + order[-2:-1]))
    assert check(keyed(rows), "kv", time_limit_s=30.0)["valid"] is False
