"""Which consistency models an Elle anomaly rules out: three small tables and a closure.

    from tobtest.checker.elle_models import boundary, ruled_out
    boundary({"G-single"})
    # (["consistent-view", "repeatable-read"], ["serializable", "snapshot-isolation", ...])
    ruled_out({"G2-item-realtime"}, ["strict-serializable"])   # True

The tables follow Elle's `elle.consistency-model` (after Adya, Bailis, Cerone et al.),
trimmed to the models a list-append test can say something about:

- `IMPLIED_ANOMALIES`: an anomaly that is a special case of others implies them (a G0 cycle
  of ww edges is also a G1c cycle; a `-process` cycle is also a `-realtime` one, because a
  process runs one op at a time; every rw edge of list-append is an item edge, so G-single
  and G-nonadjacent are also G2-item).
- `STRONGER_THAN`: model -> the weaker models it implies (strict-serializable implies
  serializable, ...). Ruling out a model rules out every model stronger than it.
- `PROSCRIBES`: model -> the anomalies it forbids directly (on top of those of the weaker
  models it implies).

`boundary` returns Elle's `not` (the weakest models ruled out) and `also_not` (every other
ruled-out model, all stronger), both sorted. Anomaly kinds that are not in the tables (for
example `cycle-search-timeout`) rule nothing out.
"""

from __future__ import annotations

from collections.abc import Iterable

# anomaly -> anomalies it implies (is a special case of).
IMPLIED_ANOMALIES: dict[str, tuple[str, ...]] = {
    "G0": ("G1c", "G0-process"),
    "G0-process": ("G1c-process", "G0-realtime"),
    "G0-realtime": ("G1c-realtime",),
    "G1a": ("G1",),
    "G1b": ("G1",),
    "G1c": ("G1", "G1c-process"),
    "G1c-process": ("G1c-realtime", "G1-process"),
    "G1c-realtime": ("G1-realtime",),
    "G1": ("G1-process",),
    "G1-process": ("G1-realtime",),
    "G-single": ("G-nonadjacent", "G-single-process"),
    "G-single-process": ("G-nonadjacent-process", "G-single-realtime"),
    "G-single-realtime": ("G-nonadjacent-realtime",),
    # All list-append rw edges are item anti-dependencies, so these are G2-item too.
    "G-nonadjacent": ("G2-item", "G-nonadjacent-process"),
    "G-nonadjacent-process": ("G2-item-process", "G-nonadjacent-realtime"),
    "G-nonadjacent-realtime": ("G2-item-realtime",),
    "G2-item": ("G2", "G2-item-process"),
    "G2-item-process": ("G2-process", "G2-item-realtime"),
    "G2-item-realtime": ("G2-realtime",),
    "G2": ("G2-process",),
    "G2-process": ("G2-realtime",),
    # Reads that cannot come from one timeline, or that build on (or are) aborted or never
    # written state, are dirty reads: Elle files them under G1a.
    "incompatible-order": ("G1a",),
    "dirty-update": ("G1a",),
    "garbage-read": ("G1a",),
    # Reading a write the txn performs only later is a trivial wr cycle T1 -> T1.
    "future-read": ("G1c",),
    # Two committed txns read the same state of a key and both appended to it.
    "lost-update": ("G2-item",),
}

# model -> weaker models it implies.
STRONGER_THAN: dict[str, tuple[str, ...]] = {
    "strict-serializable": (
        "serializable",
        "strong-snapshot-isolation",
        "strong-session-serializable",
    ),
    "strong-session-serializable": ("serializable", "strong-session-snapshot-isolation"),
    "strong-snapshot-isolation": ("strong-session-snapshot-isolation", "strong-read-committed"),
    "strong-session-snapshot-isolation": (
        "snapshot-isolation",
        "strong-session-read-committed",
    ),
    "serializable": ("repeatable-read", "snapshot-isolation"),
    "snapshot-isolation": ("consistent-view", "monotonic-atomic-view"),
    "consistent-view": ("cursor-stability", "monotonic-view"),
    "repeatable-read": ("cursor-stability", "monotonic-atomic-view"),
    "cursor-stability": ("read-committed",),
    "monotonic-atomic-view": ("read-committed",),
    "monotonic-view": ("read-committed",),
    "read-committed": ("read-uncommitted",),
    "strong-read-committed": ("strong-session-read-committed", "strong-read-uncommitted"),
    "strong-session-read-committed": ("read-committed", "strong-session-read-uncommitted"),
    "strong-read-uncommitted": ("strong-session-read-uncommitted",),
    "strong-session-read-uncommitted": ("read-uncommitted",),
    "read-uncommitted": (),
}

# model -> anomalies it forbids directly.
PROSCRIBES: dict[str, tuple[str, ...]] = {
    "read-uncommitted": ("G0", "duplicate-elements"),
    "read-committed": ("G1",),
    "cursor-stability": ("lost-update",),
    "consistent-view": ("G-single",),
    "snapshot-isolation": ("internal", "G-nonadjacent"),
    "repeatable-read": ("G2-item",),
    "serializable": ("internal", "G2"),
    "strong-session-read-uncommitted": ("G0-process",),
    "strong-session-read-committed": ("G1-process",),
    "strong-read-uncommitted": ("G0-realtime",),
    "strong-read-committed": ("G1-realtime",),
    "strong-session-snapshot-isolation": ("G-nonadjacent-process",),
    "strong-snapshot-isolation": ("G-nonadjacent-realtime",),
    "strong-session-serializable": ("G2-process",),
    "strict-serializable": ("G2-realtime",),
}

MODEL_ALIASES: dict[str, str] = {
    "strong-serializable": "strict-serializable",
    "conflict-serializable": "serializable",
    "PL-3": "serializable",
    "PL-SI": "snapshot-isolation",
    "PL-2.99": "repeatable-read",
    "PL-2": "read-committed",
    "PL-1": "read-uncommitted",
}


def canonical_model(name: str) -> str:
    """The table name of a model; raises ValueError for a model the tables do not know."""
    model = MODEL_ALIASES.get(name, name)
    if model not in STRONGER_THAN:
        known = ", ".join(sorted(STRONGER_THAN))
        raise ValueError(f"unknown consistency model {name!r} (known: {known})")
    return model


def _closure(start: Iterable[str], edges: dict[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        x = todo.pop()
        if x not in seen:
            seen.add(x)
            todo.extend(edges.get(x, ()))
    return seen


def implied_anomalies(anomalies: Iterable[str]) -> set[str]:
    """The anomalies with everything they imply (a G0 is also a G1c, ...)."""
    return _closure(anomalies, IMPLIED_ANOMALIES)


def _weaker_to_stronger() -> dict[str, tuple[str, ...]]:
    rev: dict[str, list[str]] = {m: [] for m in STRONGER_THAN}
    for strong, weaker in STRONGER_THAN.items():
        for w in weaker:
            rev[w].append(strong)
    return {m: tuple(v) for m, v in rev.items()}


_WEAKER_TO_STRONGER = _weaker_to_stronger()


def impossible_models(anomalies: Iterable[str]) -> set[str]:
    """Every model that cannot hold given these anomalies."""
    implied = implied_anomalies(anomalies)
    direct = {m for m, forbidden in PROSCRIBES.items() if implied.intersection(forbidden)}
    return _closure(direct, _WEAKER_TO_STRONGER)


def boundary(anomalies: Iterable[str]) -> tuple[list[str], list[str]]:
    """(not, also_not): the weakest ruled-out models, and the remaining (stronger) ones."""
    impossible = impossible_models(anomalies)
    weakest = {
        m for m in impossible if not (_closure(STRONGER_THAN[m], STRONGER_THAN) & impossible)
    }
    return sorted(weakest), sorted(impossible - weakest)


def ruled_out(anomalies: Iterable[str], models: Iterable[str]) -> bool:
    """True when some of `models` cannot hold given these anomalies."""
    impossible = impossible_models(anomalies)
    return any(canonical_model(m) in impossible for m in models)
