"""Runs several checkers over one history and merges their verdicts as Jepsen does.

    results = check_all(history, ["total-order"])
    results["valid"]   # False over "unknown" over True

A checker that raises, or overruns its time budget, gives `{"valid": "unknown", "error": ...}`
instead of crashing the run: a verdict of unknown is honest, a crash loses the history.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from tobtest.histories.op import Op

Verdict = bool | str  # True, False or "unknown"
Checker = Callable[..., dict[str, Any]]


def merge_valid(verdicts: Iterable[Verdict]) -> Verdict:
    """Jepsen's priority: any False wins, then any "unknown", else True (also for none)."""
    seen_unknown = False
    for v in verdicts:
        if v is False:
            return False
        if v is not True:
            seen_unknown = True
    return "unknown" if seen_unknown else True


def run_checker(name: str, checker: Checker, history: list[Op], **opts: Any) -> dict[str, Any]:
    """Runs one checker; an exception becomes an `unknown` result that names it."""
    started = time.perf_counter()
    try:
        result = checker(history, **opts)
        if not isinstance(result, dict) or "valid" not in result:
            result = {"valid": "unknown", "error": f"checker {name} returned no verdict"}
    except Exception as exc:  # noqa: BLE001 - a checker bug must not lose the run
        result = {
            "valid": "unknown",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    result.setdefault("checker", name)
    result["elapsed_s"] = round(time.perf_counter() - started, 4)
    return result


def check_all(
    history: list[Op],
    names: Iterable[str],
    registry: dict[str, Checker] | None = None,
    per_checker: dict[str, dict[str, Any]] | None = None,
    **opts: Any,
) -> dict[str, Any]:
    """Runs the named checkers and returns {"valid": merged, "checkers": {name: result}}.

    `opts` go to every checker; `per_checker[name]` adds options for one of them.
    """
    from tobtest.checker import checker_by_name

    results: dict[str, Any] = {}
    for name in names:
        fn = registry[name] if registry is not None else checker_by_name(name)
        results[name] = run_checker(name, fn, history, **opts, **(per_checker or {}).get(name, {}))
    return {"valid": merge_valid(r["valid"] for r in results.values()), "checkers": results}
