"""What every workload shares (`workloads/base.py`): reading a leader's redirect."""

from __future__ import annotations

from tobtest.workloads.base import leader_named


def test_a_refusal_naming_a_leader_is_a_redirect_and_nothing_else_is() -> None:
    assert leader_named({"type": "error", "code": "not-leader", "leader": 1}) == "n2"
    assert leader_named({"type": "error", "code": "no-lease", "leader": 0}) == "n1"
    assert leader_named({"type": "error", "code": "not-leader", "leader": None}) is None
    assert leader_named({"type": "error", "code": "not-leader"}) is None
    assert leader_named({"type": "error", "code": "overloaded", "leader": 1}) is None
    assert leader_named({"type": "error", "code": "no-lease", "leader": True}) is None
    assert leader_named({"type": "error", "code": "no-lease", "leader": -1}) is None
    assert leader_named({"type": "error", "code": "no-lease", "leader": "n2"}) is None
