"""What both protocol cores share: log entries, their validation, and catch-up batches.

    valid_entry({"k": "msg", "id": "m7", "v": 7})      # True
    decisions, more = chosen_batch(chosen, lo=10, max_chosen=900)
    for slot, entry in parse_decisions(body): ...

An entry is `{"k": "msg", "id": MSG_ID, "v": VALUE}` (a broadcast), `{"k": "read", "id":
READ_ID}` (a `log` read marker) or `{"k": "noop"}` (a filled hole). Peers are not trusted to
send well-formed entries: everything read off the wire goes through `valid_entry`.
"""

from __future__ import annotations

from typing import Any, TypeGuard

Entry = dict[str, Any]
NOOP: Entry = {"k": "noop"}
SYNC_BATCH = 256  # decisions per catch-up message
SYNC_SCAN = 4 * SYNC_BATCH  # slots examined to build one catch-up message


def nat(x: Any) -> TypeGuard[int]:
    """A non-negative int that is not a bool (JSON has no other integers)."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def as_nat(x: Any) -> int | None:
    """`x` if it is a non-negative int, else None (so callers can test `is None`)."""
    return x if nat(x) else None


def valid_entry(x: Any) -> TypeGuard[Entry]:
    if not isinstance(x, dict):
        return False
    kind = x.get("k")
    if kind == "msg":
        return isinstance(x.get("id"), str) and "v" in x
    if kind == "read":
        return isinstance(x.get("id"), str)
    return kind == "noop"


def chosen_batch(
    chosen: dict[int, Entry], lo: int, max_chosen: int
) -> tuple[list[list[Any]], bool]:
    """Chosen slots from `lo` on, at most SYNC_BATCH of them (scanning at most SYNC_SCAN
    slots, so a sparse log costs bounded work), and whether more remain after them."""
    decisions: list[list[Any]] = []
    slot, end = lo, min(max_chosen + 1, lo + SYNC_SCAN)
    while slot < end and len(decisions) < SYNC_BATCH:
        if slot in chosen:
            decisions.append([slot, chosen[slot]])
        slot += 1
    return decisions, slot <= max_chosen


def parse_decisions(body: dict[str, Any]) -> list[tuple[int, Entry]]:
    """The well-formed (slot, entry) pairs of a `decisions` message, at most SYNC_BATCH."""
    decisions = body.get("decisions")
    if not isinstance(decisions, list):
        return []
    out = []
    for item in decisions[:SYNC_BATCH]:
        if isinstance(item, list) and len(item) == 2 and nat(item[0]) and valid_entry(item[1]):
            out.append((item[0], item[1]))
    return out
