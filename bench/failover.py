"""Failover time: from a fault on the leader to the next acked broadcast, read off a history.

    gaps = failover_gaps(history, "kill")   # one dict per kill the schedule applied
    gaps[0]["gap_s"]    # 0.74: the kill's `ok` to the first ok broadcast invoked after it

The faults come from the schedule files in bench/schedules/ (`failover-kill.yaml`: kill the
node that claims to lead, hold 4 s, restart it; `failover-isolate.yaml`: partition it from
every other node, hold 4 s, heal). bench/protocols.py runs them and reports the median.

The definition, precisely: t0 is the time of the fault step's `ok` op in the history (the
process is gone, or the grudge is in force: the nemesis op completes once the fault is
applied). The gap is the earliest completion time of a broadcast that was *invoked at or
after t0* and completed `ok`, minus t0. A broadcast invoked before t0 and acked after it
does not count (it may have been chosen before the fault); `first_any_s`, the first `ok`
of any broadcast after t0, is kept beside it for that reading. `under_fault` says whether
that ack came before the fault was repaired (the restart or heal that follows); a gap with
no ack at all before the end of the run is None.

The repair can disturb too (a node that comes back with a higher term deposes the leader):
`repair_stall_s` is the longest stretch without any broadcast ack in the WINDOW_S after the
repair, `before_stall_s` the same in the WINDOW_S before the fault, for a baseline; None
when the window runs past the last broadcast invoked (the end of the load, not a stall).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from tobtest.histories.op import Op, pair_ops

WINDOW_S = 2.0
SCHEDULES = Path(__file__).resolve().parent / "schedules"
# fault name -> (schedule file, the history f of the fault step, the f of its repair)
FAULTS: dict[str, tuple[Path, str, str]] = {
    "kill": (SCHEDULES / "failover-kill.yaml", "kill", "restart"),
    "isolate": (SCHEDULES / "failover-isolate.yaml", "partition", "heal"),
}


def failover_gaps(history: list[Op], fault: str) -> list[dict[str, Any]]:
    """One record per applied fault step of kind `fault` (a key of FAULTS)."""
    _, fault_f, repair_f = FAULTS[fault]
    nemesis_ok = [op for op in history if op.process == "nemesis" and op.type == "ok"]
    acks = sorted(
        (invoke.time_ns, done.time_ns)
        for invoke, done in pair_ops(history)
        if invoke.f == "broadcast"
        and not invoke.extra.get("final")
        and done is not None
        and done.type == "ok"
    )
    gaps = []
    for i, op in enumerate(nemesis_ok):
        if op.f != fault_f or not (op.value or {}).get("done", True):
            continue
        t0 = op.time_ns
        repair = next((o.time_ns for o in nemesis_ok[i + 1 :] if o.f == repair_f), None)
        new = [done for invoked, done in acks if invoked >= t0]
        first_new = min(new) if new else None
        first_any = min((done for _, done in acks if done >= t0), default=None)
        value = op.value or {}
        done_times = sorted(done for _, done in acks)
        load_end = max((invoked for invoked, _ in acks), default=0)
        window_ns = int(WINDOW_S * 1e9)
        gaps.append({
            "at_s": round(t0 / 1e9, 3),
            "targets": value.get("nodes") or value.get("isolate"),
            "notes": value.get("notes", []),
            "gap_s": None if first_new is None else round((first_new - t0) / 1e9, 3),
            "first_any_s": None if first_any is None else round((first_any - t0) / 1e9, 3),
            "under_fault": first_new is not None and (repair is None or first_new < repair),
            "before_stall_s": longest_stall(done_times, t0 - window_ns, t0),
            "repair_stall_s": None if repair is None or repair + window_ns > load_end
            else longest_stall(done_times, repair, repair + window_ns),
        })  # fmt: skip
    return gaps


def longest_stall(done_ns: list[int], start_ns: int, end_ns: int) -> float:
    """The longest interval in [start, end] holding no time of `done_ns` (sorted), in s."""
    inside = [t for t in done_ns if start_ns <= t <= end_ns]
    edges = [start_ns, *inside, end_ns]
    return round(max(b - a for a, b in zip(edges, edges[1:], strict=False)) / 1e9, 3)


def summarize(gaps: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range of the gaps of several runs; the faults never followed by an ack
    are counted apart (`no_ack`), not folded into the median."""
    values = [g["gap_s"] for g in gaps if g["gap_s"] is not None]
    any_values = [g["first_any_s"] for g in gaps if g["first_any_s"] is not None]
    return {
        "faults": len(gaps),
        "gap_s_median": round(statistics.median(values), 3) if values else None,
        "gap_s_min": min(values, default=None),
        "gap_s_max": max(values, default=None),
        "first_any_s_median": round(statistics.median(any_values), 3) if any_values else None,
        "acked_under_fault": sum(1 for g in gaps if g["under_fault"]),
        "no_ack": len(gaps) - len(values),
        "before_stall_s_median": _median([g.get("before_stall_s") for g in gaps]),
        "repair_stall_s_median": _median([g.get("repair_stall_s") for g in gaps]),
        "repair_stall_s_max": max(
            (g["repair_stall_s"] for g in gaps if g.get("repair_stall_s") is not None), default=None
        ),
        "leader_fallbacks": sum(1 for g in gaps if any("leader" in n for n in g["notes"])),
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None
