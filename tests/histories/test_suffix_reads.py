"""Whole logs rebuilt from suffix reads: the same logs, shared storage, and a read that
cannot be rebuilt is said so."""

from __future__ import annotations

from tobtest.histories.op import Op
from tobtest.histories.suffix_reads import LogView, full_reads, suffix_form


def op(index: int, type_: str, process, f: str, value=None, node="n1", **extra) -> Op:
    return Op(index, index * 1000, type_, process, f, value, node, None, extra)


def read(index: int, process, node: str, value, offset: int = 0) -> list[Op]:
    extra = {"offset": offset} if offset else {}
    return [
        op(index, "invoke", process, "read", None, node, read_mode="local"),
        op(index + 1, "ok", process, "read", value, node, read_mode="local", **extra),
    ]


def values(history: list[Op]) -> list:
    return [list(o.value) for o in history if o.f == "read" and o.type == "ok"]


def test_a_history_without_offsets_is_returned_as_it_is():
    history = read(0, 0, "n1", [1, 2]) + read(2, 0, "n1", [1, 2, 3])
    assert full_reads(history) is history


def test_each_suffix_extends_the_same_process_previous_read_at_the_same_node():
    history = (
        read(0, 0, "n1", [1, 2])
        + read(2, 0, "n2", [1])
        + read(4, 0, "n1", [3], offset=2)
        + read(6, 0, "n2", [2, 3, 4], offset=1)
        + read(8, 1, "n1", [1, 2, 3, 4])
        + read(10, 1, "n1", [5], offset=4)
    )
    rebuilt = full_reads(history)
    assert values(rebuilt) == [[1, 2], [1], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4, 5]]
    assert all("offset" not in o.extra for o in rebuilt)
    # Logs that agree share one list: memory grows with the log, not with the reads.
    views = [o.value for o in rebuilt if isinstance(o.value, LogView)]
    assert len({id(v.base) for v in views}) == 1
    assert full_reads(rebuilt) is not None and values(full_reads(rebuilt)) == values(rebuilt)


def test_a_log_that_leaves_the_common_one_gets_its_own_and_never_changes_an_op():
    whole = [1, 2]
    history = (
        read(0, 0, "n1", whole)
        + read(2, 1, "n2", [1, 2])
        + read(4, 0, "n1", [3], offset=2)
        + read(6, 1, "n2", [4], offset=2)  # diverges from what n1 said at position 2
        + read(8, 1, "n2", [5], offset=3)
    )
    assert values(full_reads(history)) == [[1, 2], [1, 2], [1, 2, 3], [1, 2, 4], [1, 2, 4, 5]]
    assert whole == [1, 2]
    materialized = full_reads(history, materialize=True)
    assert all(type(o.value) is list for o in materialized if o.type == "ok")
    assert values(materialized) == values(full_reads(history))


def test_an_offset_that_is_not_what_the_process_held_is_unrebuildable():
    history = (
        read(0, 0, "n1", [1, 2]) + read(2, 0, "n1", [4], offset=3) + read(4, 0, "n1", [5], offset=3)
    )
    rebuilt = [o.value for o in full_reads(history) if o.type == "ok"]
    assert rebuilt[0] == [1, 2]
    assert isinstance(rebuilt[1], str) and "offset 3" in rebuilt[1] and "2 entries" in rebuilt[1]
    assert isinstance(rebuilt[2], str) and "no read" in rebuilt[2]


def test_suffix_form_round_trips():
    history = (
        read(0, 0, "n1", [1, 2])
        + read(2, 0, "n1", [1, 2, 3])
        + read(4, 0, "n1", [2, 1, 3, 4])  # not an extension: stays whole
        + read(6, 0, "n1", [2, 1, 3, 4, 5])
    )
    suffixes = suffix_form(history)
    oks = [o for o in suffixes if o.type == "ok"]
    assert [(o.value, o.extra.get("offset")) for o in oks] == [
        ([1, 2], None), ([3], 2), ([2, 1, 3, 4], None), ([5], 4)
    ]  # fmt: skip
    assert values(full_reads(suffixes)) == values(history)


def test_a_log_view_acts_as_the_list_it_shows():
    base = [1, 2, 3, 4]
    view = LogView(base, 3)
    assert len(view) == 3 and list(view) == [1, 2, 3] and view[-1] == 3 and view[1:] == [2, 3]
    assert view == [1, 2, 3] and view == [1, 2, 3] and view != [1, 2, 3, 4]
    assert view == LogView(base, 3) and view != LogView(base, 4)
    assert repr(view) == "[1, 2, 3]" and set(view) == {1, 2, 3}
