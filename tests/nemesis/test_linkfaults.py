"""Link-fault specs: validation, matching, and the per-message dice."""

from __future__ import annotations

import random

import pytest

from tobtest.nemesis.linkfaults import (
    FaultSpecError,
    LinkFaultSpec,
    decide,
    parse_fault,
    parse_faults,
    spec_for,
)

NODES = {"n1", "n2", "n3"}


def test_parse_fills_defaults_and_round_trips() -> None:
    spec = parse_fault({"src": "n1", "dst": "n2", "delay_ms": 50, "loss": 0.25}, NODES)
    assert spec == LinkFaultSpec(src="n1", dst="n2", delay_ms=50.0, loss=0.25)
    assert parse_fault(spec.to_dict(), NODES) == spec
    assert parse_fault({}) == LinkFaultSpec(src="*", dst="*")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("loss", "must be an object"),
        ({"los": 0.1}, "unknown fault field(s): los"),
        ({"loss": 1.5}, "probability"),
        ({"toxicity": -0.1}, "probability"),
        ({"delay_ms": -1}, "delay_ms must be in"),
        ({"jitter_ms": 10**9}, "jitter_ms must be in"),
        ({"loss": "0.1"}, "loss must be a number"),
        ({"loss": True}, "loss must be a number"),
        ({"delay_ms": float("nan")}, "finite"),
        ({"src": "n9"}, "'n9' is not a node"),
        ({"dst": 3}, "dst must be a node name"),
    ],
)
def test_parse_rejects_bad_specs_with_a_clear_text(raw: object, fragment: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_fault(raw, NODES)
    assert fragment in str(info.value)


def test_parse_faults_needs_a_list() -> None:
    with pytest.raises(FaultSpecError):
        parse_faults({"src": "n1"}, NODES)
    assert parse_faults([], NODES) == []


def test_the_last_matching_spec_wins() -> None:
    specs = parse_faults(
        [{"delay_ms": 10}, {"src": "n1", "delay_ms": 20}, {"src": "n1", "dst": "n3", "loss": 1}]
    )
    assert spec_for(specs, "n2", "n3") == specs[0]
    assert spec_for(specs, "n1", "n2") == specs[1]
    assert spec_for(specs, "n1", "n3") == specs[2]
    assert spec_for(specs[1:], "n2", "n1") is None


def rates(spec: LinkFaultSpec, seed: int, count: int = 4000) -> dict[str, float]:
    rng = random.Random(seed)
    decisions = [decide(spec, rng) for _ in range(count)]
    return {
        "drop": sum(d.drop for d in decisions) / count,
        "dup": sum(d.copies == 2 for d in decisions) / count,
        "reorder": sum(d.reorder for d in decisions) / count,
        "delayed": sum(d.delay_ms > 0 for d in decisions) / count,
    }


def test_probabilities_come_out_near_their_rates() -> None:
    spec = LinkFaultSpec(loss=0.2, duplicate=0.1, reorder=0.3, delay_ms=5)
    r = rates(spec, seed=3)
    assert abs(r["drop"] - 0.2) < 0.03
    # Duplicate, reorder and delay apply to the messages that were not lost.
    assert abs(r["dup"] - 0.8 * 0.1) < 0.03
    assert abs(r["reorder"] - 0.8 * 0.3) < 0.03
    assert abs(r["delayed"] - 0.8) < 0.03


def test_toxicity_spares_the_other_messages() -> None:
    r = rates(LinkFaultSpec(loss=1.0, toxicity=0.25), seed=4)
    assert abs(r["drop"] - 0.25) < 0.03
    assert rates(LinkFaultSpec(loss=1.0, toxicity=0.0), seed=4)["drop"] == 0


def test_jitter_spreads_delays_within_bounds_and_never_below_zero() -> None:
    rng = random.Random(5)
    delays = [decide(LinkFaultSpec(delay_ms=10, jitter_ms=30), rng).delay_ms for _ in range(2000)]
    assert min(delays) == 0.0 and max(delays) <= 40.0
    assert len({round(d, 3) for d in delays}) > 100
    fixed = [decide(LinkFaultSpec(delay_ms=10), rng).delay_ms for _ in range(100)]
    assert set(fixed) == {10.0}


def test_same_seed_same_decisions_and_fixed_draws_per_message() -> None:
    spec = LinkFaultSpec(loss=0.3, duplicate=0.2, reorder=0.2, jitter_ms=5)
    first = [decide(spec, random.Random(9)) for _ in range(1)]
    rng_a, rng_b = random.Random(9), random.Random(9)
    seq_a = [decide(spec, rng_a) for _ in range(500)]
    seq_b = [decide(spec, rng_b) for _ in range(500)]
    assert seq_a == seq_b and seq_a[0] == first[0]
    # Five draws per message whatever the outcome: the stream stays aligned across specs.
    rng_c, rng_d = random.Random(9), random.Random(9)
    for _ in range(50):
        decide(LinkFaultSpec(loss=1.0), rng_c)
        decide(LinkFaultSpec(), rng_d)
    assert rng_c.random() == rng_d.random()
