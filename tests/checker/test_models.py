"""The linearizability models' step functions, taken one transition at a time."""

from __future__ import annotations

import pytest

from tobtest.checker.models import (
    BAD,
    FAILED,
    MODELS,
    UNKNOWN,
    AppendLog,
    model_by_name,
)
from tobtest.histories.op import Op


def test_register_reads_what_was_written_and_starts_nil():
    m = model_by_name("register")
    s = m.init()
    assert s is None
    assert m.step(s, "read", None, None) == (True, None)
    assert m.step(s, "read", None, 3) == (False, None)
    ok, s = m.step(s, "write", 3, 3)
    assert (ok, s) == (True, 3)
    assert m.step(s, "read", None, 3) == (True, 3)
    assert m.step(s, "read", None, None)[0] is False  # nil means "no value" by default


def test_nil_read_unknown_matches_any_state_and_is_a_noop():
    m = model_by_name("register", initial=0, nil_read="unknown")
    assert m.step(5, "read", None, None) == (True, 5)
    assert m.is_noop("read", None, None)
    assert not model_by_name("register").is_noop("read", None, None)


def test_cas_register_cas_needs_its_from_value():
    m = model_by_name("cas-register", initial=0)
    assert m.step(0, "cas", [0, 2], [0, 2]) == (True, 2)
    assert m.step(1, "cas", [0, 2], [0, 2]) == (False, 1)


def test_cas_register_failed_cas_saw_another_value():
    m = model_by_name("cas-register")
    assert m.step(1, "cas", [0, 2], FAILED) == (True, 1)
    assert m.step(0, "cas", [0, 2], FAILED) == (False, 0)
    assert m.is_read_only("cas", [0, 2], FAILED)
    assert m.is_read_only("cas", [3, 3], [3, 3])  # sets the value it expects
    assert not m.is_read_only("cas", [0, 2], [0, 2])


def test_unknown_outputs_take_effect_as_invoked():
    m = model_by_name("cas-register", initial=0)
    assert m.step(0, "write", 4, UNKNOWN) == (True, 4)
    assert m.step(0, "cas", [0, 4], UNKNOWN) == (True, 4)
    assert m.step(1, "cas", [0, 4], UNKNOWN)[0] is False
    assert m.is_noop("read", None, UNKNOWN)
    assert m.is_noop("read", None, FAILED)
    assert m.is_noop("write", 3, FAILED)


def test_register_values_are_frozen_so_states_hash():
    m = model_by_name("register")
    ok, s = m.step(None, "write", [1, {"a": [2]}], None)
    hash(s)
    assert m.step(s, "read", None, [1, {"a": [2]}])[0]


def test_kv_get_put_append_like_porcupine():
    m = model_by_name("kv")
    s = m.init()
    assert s == ""
    assert m.step(s, "get", None, "") == (True, "")
    ok, s = m.step(s, "append", "x 0 0 y", "x 0 0 y")
    ok, s = m.step(s, "append", "x 1 0 y", "x 1 0 y")
    assert s == "x 0 0 yx 1 0 y"
    assert m.step(s, "get", None, "x 0 0 y")[0] is False
    assert m.step(s, "put", "z", "z") == (True, "z")
    assert m.step("a", "cas", ["a", "b"], None) == (True, "b")


def test_kv_append_extends_tuples_and_starts_from_none():
    m = model_by_name("kv", initial=None)
    ok, s = m.step(None, "append", 1, None)
    assert s == 1
    assert m.step((1,), "append", 2, None) == (True, (1, 2))


def test_kv_partitions_by_key_field_and_by_independent_tuples():
    m = model_by_name("kv")
    ops = [
        Op(0, 0, "invoke", 0, "put", "a", extra={"key": "k1"}),
        Op(1, 1, "invoke", 1, "put", ["k2", "b"]),
        Op(2, 2, "ok", 0, "put", "a"),  # no key: takes its invocation's
        Op(3, 3, "ok", 1, "put", ["k2", "b"]),
        Op(4, 4, "info", "nemesis", "start", None),
    ]
    parts = dict(m.partition(ops) or [])
    assert sorted(parts) == ["k1", "k2"]
    assert [op.index for op in parts["k1"]] == [0, 2]
    assert [op.value for op in parts["k2"]] == ["b", "b"]


def test_kv_partition_refuses_an_op_without_a_key():
    with pytest.raises(ValueError, match="no key"):
        model_by_name("kv").partition([Op(0, 0, "invoke", 0, "get", None)])


def test_mutex_acquire_and_release():
    m = model_by_name("mutex")
    assert m.init() is False
    assert m.step(False, "acquire", None, None) == (True, True)
    assert m.step(True, "acquire", None, None)[0] is False
    assert m.step(True, "release", None, None) == (True, False)
    assert m.step(False, "release", None, None)[0] is False
    # Read as "returned false": a failed acquire saw the lock held.
    assert m.step(True, "acquire", None, FAILED) == (True, True)
    assert m.step(False, "acquire", None, FAILED)[0] is False


def test_append_log_reads_the_whole_log():
    m = AppendLog()
    s = m.init()
    ok, s = m.step(s, "broadcast", 1, None)
    ok, s = m.step(s, "append", [2], None)
    assert s == (1, (2,))
    assert m.step(s, "read", None, [1, [2]]) == (True, s)
    assert m.step(s, "read", None, [1])[0] is False
    assert m.is_noop("append", 3, FAILED)


def test_multi_register_applies_txns_atomically():
    m = model_by_name("multi-register", initial={"x": 0, "y": 0}, nil_read="unknown")
    s = m.init()
    ok, s2 = m.step(s, "txn", [["write", "y", 2]], [["write", "y", 2]])
    assert ok and dict(s2) == {"x": 0, "y": 2}
    assert m.step(s2, "txn", None, [["read", "x", 0], ["read", "y", 2]])[0]
    assert m.step(s2, "txn", None, [["read", "y", 0]])[0] is False
    assert m.step(s2, "txn", None, [["read", "y", None]])[0]  # nil: unknown in Knossos
    # An unknown result: the writes happened, the reads say nothing.
    assert dict(m.step(s, "txn", [["read", "x", None], ["write", "x", 5]], UNKNOWN)[1])["x"] == 5
    assert m.is_read_only("txn", None, [["read", "x", 0]])
    assert m.is_noop("txn", [["read", "x", None]], UNKNOWN)
    assert not m.is_noop("txn", None, [["read", "x", 0]])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_has_a_hashable_initial_state_and_refuses_unknown_fs(name):
    m = model_by_name(name)
    hash(m.init())
    assert m.step(m.init(), "no-such-f", None, None)[0] is False


def test_model_by_name_rejects_unknown_names_and_readings():
    with pytest.raises(ValueError, match="unknown model"):
        model_by_name("queue")
    with pytest.raises(ValueError, match="nil_read"):
        model_by_name("register", nil_read="maybe")


STATES = [None, 0, 1, 2, "", "a", "ab", "b", (), ("a",), True, False]
CALLS = (
    [("read", None, v) for v in (None, 0, 1, "", "a", "ab", (), ["a"], UNKNOWN, FAILED)]
    + [
        (f, v, out)
        for f in ("write", "put", "append")
        for v in (0, 1, "a", "b", ["a"])
        for out in (v, UNKNOWN, FAILED)
    ]
    + [
        ("cas", [a, b], out)
        for a in (0, 1, "a")
        for b in (1, 2, "ab")
        for out in ([a, b], UNKNOWN, FAILED)
    ]
)


@pytest.mark.parametrize("name", ["register", "cas-register", "kv"])
def test_compiled_transitions_answer_as_step_does(name):
    m = model_by_name(name)
    for f, value, out in CALLS:
        if f not in m.fs:
            continue
        apply = m.compile(f, value, out)
        for state in STATES:
            try:
                ok, new_state = m.step(state, f, value, out)
            except TypeError:  # "a" + 1: the checker reports both the same way
                with pytest.raises(TypeError):
                    apply(state)
                continue
            got = apply(state)
            assert (got is not BAD) == ok, (f, value, out, state)
            if ok:
                assert got == new_state and type(got) is type(new_state), (f, value, out, state)


def test_kv_reach_says_which_strings_appends_can_still_grow_into():
    m = model_by_name("kv")
    can_grow_into = m.reach("get", None, "x1yx2y")
    assert can_grow_into is not None
    assert can_grow_into("") and can_grow_into("x1y") and can_grow_into("x1yx2y")
    assert not can_grow_into("x2y") and not can_grow_into("x1yx2yx3y")
    assert can_grow_into(("a",))  # not a string: no opinion
    assert m.reach("get", None, UNKNOWN) is None and m.reach("put", "a", "a") is None
    assert m.grows("append", "x", "x") and not m.grows("put", "x", "x")
    assert not m.grows("append", ["x"], ["x"])  # tuples grow too, but reach only reads strings
    assert model_by_name("cas-register").reach("read", None, 1) is None


def test_kv_sets_says_what_state_a_put_or_cas_leaves():
    m = model_by_name("kv")
    assert m.sets("put", "x", "x") == "x" and m.sets("write", ["a"], UNKNOWN) == ("a",)
    assert m.sets("cas", ["a", "b"], ["a", "b"]) == "b"
    assert m.sets("put", "x", FAILED) is UNKNOWN and m.sets("append", "x", "x") is UNKNOWN
    assert model_by_name("register").sets("write", 1, 1) is UNKNOWN  # no pruning there
