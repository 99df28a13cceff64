"""Which checker a history's ops call for, when `tobtest check FILE` is given none."""

from __future__ import annotations

import pytest

from tobtest.checker.infer import infer_checker
from tobtest.histories.op import Op


def ops(*rows: tuple[str, object], key: str | None = None) -> list[Op]:
    extra = {"key": key} if key is not None else {}
    out = []
    for i, (f, value) in enumerate(rows):
        out.append(Op(2 * i, 2 * i, "invoke", i, f, value, extra=dict(extra)))
        out.append(Op(2 * i + 1, 2 * i + 1, "ok", i, f, value, extra=dict(extra)))
    return out


@pytest.mark.parametrize(
    ("history", "checker", "options"),
    [
        (ops(("txn", [["append", 1, 2], ["r", 1, [2]]])), "list-append", {}),
        (ops(("txn", [["read", "x", None], ["write", "y", 1]])), "linearizable",
         {"model": "multi-register"}),
        (ops(("txn", [["w", "x", 1], ["r", "x", 1]])), "elle", {"model": "rw-register"}),
        (ops(("write", 1), ("read", 1)), "linearizable", {"model": "register"}),
        (ops(("write", 1), ("cas", [1, 2])), "linearizable", {"model": "cas-register"}),
        (ops(("put", "a"), ("get", "a")), "linearizable", {"model": "kv"}),
        (ops(("write", 1), ("read", 1), key="k"), "linearizable", {"model": "kv"}),
        (ops(("acquire", None), ("release", None)), "linearizable", {"model": "mutex"}),
        (ops(("broadcast", 1), ("read", [1])), "total-order", {}),
        (ops(("frobnicate", 1)), "total-order", {}),
    ],
)  # fmt: skip
def test_the_ops_name_the_checker_and_model(history, checker, options):
    choice = infer_checker(history)
    assert (choice.checker, choice.options) == (checker, options)
    assert choice.describe().startswith(checker) and "inferred from the ops" in choice.describe()


def test_nemesis_ops_do_not_count():
    history = [*ops(("write", 1)), Op(9, 9, "info", "nemesis", "partition", None)]
    assert infer_checker(history).options == {"model": "register"}
