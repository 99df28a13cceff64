"""Link faults (Toxiproxy-like toxics) as data, and the per-message dice that apply them.

A fault spec names one ordered link, or many with "*", and what happens to its messages:

    >>> import random
    >>> spec = parse_fault({"src": "n1", "dst": "*", "delay_ms": 50, "loss": 0.1})
    >>> spec.matches("n1", "n3"), spec.matches("n2", "n3")
    (True, False)
    >>> decide(spec, random.Random(7)).delay_ms
    50.0

Semantics, per message (`decide`):
- `toxicity` (default 1.0) is the probability that the spec applies to this message at all;
  a message it does not apply to passes untouched.
- If it applies: dropped with probability `loss`; otherwise delayed by `delay_ms` plus a
  uniform jitter in [-jitter_ms, +jitter_ms] (never below 0), sent twice with probability
  `duplicate`, and held back behind the next message with probability `reorder` (released
  after `reorder_hold_ms` if no next message comes).
- Every message draws exactly five numbers from the link's `random.Random`, whatever the
  outcome, so the same seed and the same message sequence give the same decisions.

Order: without jitter and without reorder a link stays FIFO (the proxy never lets a message
overtake an earlier one, even if the delay changes or toxicity spares one message). Jitter
and reorder are the only sources of reordering. Several specs may match one link: the last
one in the request wins (so `[{"src": "*", "dst": "*", ...}, {"src": "n1", ...}]` reads as
"everywhere, except n1's links").
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

ANY = "*"
DELAY_MS_MAX = 60_000.0
_PROBABILITIES = ("loss", "duplicate", "reorder", "toxicity")
_DURATIONS_MS = ("delay_ms", "jitter_ms", "reorder_hold_ms")


class FaultSpecError(ValueError):
    """A link-fault spec that cannot be used; the text says which field and why."""


@dataclass(frozen=True)
class LinkFaultSpec:
    """What happens to the messages of the links that match (src, dst); "*" matches all."""

    src: str = ANY
    dst: str = ANY
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    toxicity: float = 1.0
    reorder_hold_ms: float = 50.0

    def matches(self, src: str, dst: str) -> bool:
        return self.src in (ANY, src) and self.dst in (ANY, dst)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What to do with one message."""

    drop: bool = False
    copies: int = 1
    delay_ms: float = 0.0
    reorder: bool = False


PASS = Decision()


def parse_fault(raw: object, node_names: set[str] | None = None) -> LinkFaultSpec:
    """Validates one spec from a control request. Unknown keys are errors (typos show)."""
    if not isinstance(raw, dict):
        raise FaultSpecError(f"a fault must be an object, got {type(raw).__name__}")
    unknown = set(raw) - set(LinkFaultSpec.__dataclass_fields__)
    if unknown:
        raise FaultSpecError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = {}
    for end in ("src", "dst"):
        name = raw.get(end, ANY)
        if not isinstance(name, str):
            raise FaultSpecError(f"{end} must be a node name or '*'")
        if node_names is not None and name != ANY and name not in node_names:
            raise FaultSpecError(f"{end} {name!r} is not a node of this proxy")
        fields[end] = name
    for key in _PROBABILITIES + _DURATIONS_MS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FaultSpecError(f"{key} must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise FaultSpecError(f"{key} must be finite")
        if key in _PROBABILITIES and not 0.0 <= value <= 1.0:
            raise FaultSpecError(f"{key} is a probability in [0, 1], got {value}")
        if key in _DURATIONS_MS and not 0.0 <= value <= DELAY_MS_MAX:
            raise FaultSpecError(f"{key} must be in [0, {DELAY_MS_MAX:.0f}] ms, got {value}")
        fields[key] = value
    return LinkFaultSpec(**fields)


def parse_faults(raw: object, node_names: set[str] | None = None) -> list[LinkFaultSpec]:
    """Validates the `faults` list of a `link-faults` request."""
    if not isinstance(raw, list):
        raise FaultSpecError("faults must be a list")
    return [parse_fault(item, node_names) for item in raw]


def spec_for(specs: list[LinkFaultSpec], src: str, dst: str) -> LinkFaultSpec | None:
    """The spec that governs link src -> dst: the last one that matches, or None."""
    for spec in reversed(specs):
        if spec.matches(src, dst):
            return spec
    return None


def decide(spec: LinkFaultSpec, rng: random.Random) -> Decision:
    """Rolls the dice for one message. Always draws five numbers, in a fixed order."""
    toxic_roll, loss_roll, duplicate_roll, reorder_roll, jitter_roll = (
        rng.random() for _ in range(5)
    )
    if toxic_roll >= spec.toxicity:
        return PASS
    if loss_roll < spec.loss:
        return Decision(drop=True)
    jitter_ms = (2.0 * jitter_roll - 1.0) * spec.jitter_ms
    return Decision(
        drop=False,
        copies=2 if duplicate_roll < spec.duplicate else 1,
        delay_ms=max(0.0, spec.delay_ms + jitter_ms),
        reorder=reorder_roll < spec.reorder,
    )
