"""Workload generators: reproducible from the seed, unique values, the op mix asked for."""

import random
from collections import Counter

import pytest

from tobtest.workloads import WORKLOADS
from tobtest.workloads.broadcast import BroadcastWorkload
from tobtest.workloads.register import RegisterWorkload
from tobtest.workloads.txn import TxnWorkload


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_same_seed_same_ops(name):
    a = WORKLOADS[name](random.Random(3), {})
    b = WORKLOADS[name](random.Random(3), {})
    assert [a.next_op() for _ in range(200)] == [b.next_op() for _ in range(200)]


def test_broadcast_values_are_unique_and_reads_follow_the_fraction():
    workload = BroadcastWorkload(random.Random(1), {"read_fraction": 0.25, "read_modes": ["log"]})
    ops = [workload.next_op() for _ in range(4000)]
    values = [op["value"] for op in ops if op["f"] == "broadcast"]
    assert len(values) == len(set(values))
    reads = [op for op in ops if op["f"] == "read"]
    assert 0.2 < len(reads) / len(ops) < 0.3
    assert {op["read_mode"] for op in reads} == {"log"}
    assert workload.final_op()["final"] is True


def test_txn_appends_are_unique_per_key_and_keys_rotate():
    workload = TxnWorkload(random.Random(2), {"key_count": 2, "max_writes_per_key": 5})
    appended: dict[int, list[int]] = {}
    for _ in range(300):
        op = workload.next_op()
        assert 1 <= len(op["value"]) <= 4
        for f, key, value in op["value"]:
            assert f in ("append", "r")
            if f == "append":
                appended.setdefault(key, []).append(value)
            else:
                assert value is None
    for values in appended.values():
        assert len(values) == len(set(values)) and len(values) <= 5
    assert len(appended) > 10  # retired keys were replaced by fresh ones


def test_register_mix():
    workload = RegisterWorkload(random.Random(4), {"key_count": 2, "read_modes": ["log", "lease"]})
    ops = [workload.next_op() for _ in range(1000)]
    kinds = Counter(op["f"] for op in ops)
    assert set(kinds) == {"read", "write", "cas"}
    assert {op["key"] for op in ops} == {0, 1}
    assert {op["read_mode"] for op in ops if op["f"] == "read"} == {"log", "lease"}
    assert all(len(op["value"]) == 2 for op in ops if op["f"] == "cas")


def test_a_broadcast_reader_reads_without_the_log_and_others_have_no_readers():
    import random

    from tobtest.workloads import WORKLOADS

    workload = WORKLOADS["broadcast"](
        random.Random(4), {"read_fraction": 0.2, "read_modes": ["local", "log", "lease"]}
    )
    modes = {workload.next_read()["read_mode"] for _ in range(200)}  # type: ignore[index]
    assert modes == {"local", "lease"}, "a log read waits for consensus, as a write does"
    only_log = WORKLOADS["broadcast"](
        random.Random(4), {"read_fraction": 0.2, "read_modes": ["log"]}
    )
    assert only_log.next_read() == {"f": "read", "value": None, "read_mode": "log"}
    no_reads = WORKLOADS["broadcast"](random.Random(4), {"read_fraction": 0.0})
    assert no_reads.next_read() is None
    assert WORKLOADS["register"](random.Random(4), {}).next_read() is None
