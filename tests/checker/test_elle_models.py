"""Tests for the anomaly -> ruled-out consistency model tables."""

from __future__ import annotations

import pytest

from tobtest.checker.elle_models import (
    IMPLIED_ANOMALIES,
    PROSCRIBES,
    STRONGER_THAN,
    boundary,
    canonical_model,
    impossible_models,
    ruled_out,
)


@pytest.mark.parametrize(
    ("anomaly", "weakest"),
    [
        ("G0", ["read-uncommitted"]),
        ("G1a", ["read-committed"]),
        ("G1b", ["read-committed"]),
        ("G1c", ["read-committed"]),
        ("G-single", ["consistent-view", "repeatable-read"]),
        ("G2-item", ["repeatable-read"]),
        ("G-nonadjacent", ["repeatable-read", "snapshot-isolation"]),
        ("G0-process", ["strong-session-read-uncommitted"]),
        ("G2-item-process", ["strong-session-serializable"]),
        ("G-single-realtime", ["strong-snapshot-isolation"]),
        ("G2-item-realtime", ["strict-serializable"]),
        ("internal", ["snapshot-isolation"]),
        ("duplicate-elements", ["read-uncommitted"]),
        ("incompatible-order", ["read-committed"]),
        ("lost-update", ["cursor-stability"]),
    ],
)
def test_weakest_models_ruled_out(anomaly: str, weakest: list[str]) -> None:
    not_models, also_not = boundary([anomaly])
    assert not_models == weakest
    assert "strict-serializable" in not_models + also_not
    assert not set(not_models) & set(also_not)


def test_ruled_out_models_are_closed_upwards() -> None:
    for anomaly in list(IMPLIED_ANOMALIES) + ["internal", "duplicate-elements"]:
        impossible = impossible_models([anomaly])
        for model in impossible:
            stronger = [m for m, weaker in STRONGER_THAN.items() if model in weaker]
            assert set(stronger) <= impossible, (anomaly, model)


def test_realtime_anomalies_leave_serializable_standing() -> None:
    assert ruled_out(["G-single-realtime"], ["strict-serializable"])
    assert not ruled_out(["G-single-realtime"], ["serializable"])
    assert not ruled_out(["G2-item"], ["snapshot-isolation"])
    assert ruled_out(["G2-item"], ["serializable"])
    assert not ruled_out(["cycle-search-timeout"], ["strict-serializable"])
    assert boundary([]) == ([], [])


def test_tables_are_consistent() -> None:
    for weaker in STRONGER_THAN.values():
        assert set(weaker) <= set(STRONGER_THAN)
    assert set(PROSCRIBES) <= set(STRONGER_THAN)
    assert canonical_model("strong-serializable") == "strict-serializable"
    with pytest.raises(ValueError):
        canonical_model("eventual")
