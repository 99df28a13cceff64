"""Checkers: pure functions from a history to a result dict; they never import node code.

Every checker is `check(history: list[Op], **opts) -> dict` with at least
`{"valid": True | False | "unknown"}`; invalid results name their anomalies and the indices
of the ops involved. `CHECKERS` maps names (the CLI's choices) to lazy loaders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CheckFn = Callable[..., dict[str, Any]]


def _total_order() -> CheckFn:
    from tobtest.checker.total_order import check

    return check


def _linearizable() -> CheckFn:
    from tobtest.checker.linearizable import check

    return check


def _list_append() -> CheckFn:
    from tobtest.checker.list_append import check

    return check


def _broadcast_elle() -> CheckFn:
    from tobtest.checker.list_append import check_broadcast

    return check_broadcast


def _set_full() -> CheckFn:
    from tobtest.checker.set_full import check

    return check


def _elle() -> CheckFn:
    from tobtest.checker.elle import check

    return check


CHECKERS: dict[str, Callable[[], CheckFn]] = {
    "total-order": _total_order,
    "linearizable": _linearizable,
    "list-append": _list_append,
    # The broadcast history mapped onto list-append (one key): Elle's inference over a TOB.
    "broadcast-elle": _broadcast_elle,
    # A broadcast checked as a grow-only set, per node (Maelstrom's broadcast; set-full).
    "set-full": _set_full,
    # Jepsen's Elle itself (elle-cli), when its jar is configured; unknown otherwise.
    "elle": _elle,
}


def checker_by_name(name: str) -> CheckFn:
    try:
        return CHECKERS[name]()
    except KeyError:
        raise KeyError(f"unknown checker {name!r} (known: {', '.join(sorted(CHECKERS))})") from None
