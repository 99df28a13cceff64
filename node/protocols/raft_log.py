"""The Raft log: terms per index, the log matching check, and merging a leader's entries.

Indexes are Raft's, 1-based: entry `i` is the i-th of the log, index 0 is the empty prefix
(its term is 0). On the wire and in persisted records an entry is `[term, entry]`, where
`entry` is one of the log entries every core shares (`entries.valid_entry`).

    log = RaftLog()
    log.append(2, {"k": "noop"})                 # {"t": "log", "from": 1, "entries": [...]}
    log.matches(prev_index=1, prev_term=2)       # True
    record = log.merge(1, [(3, {"k": "noop"})])  # appended at 2; None if nothing changed

`merge` is the follower's half of AppendEntries once the `prev_index`/`prev_term` check
passed: entries already there with the same term are kept, the first one whose term
differs and everything after it are cut off, the rest is appended. So a stale or repeated
AppendEntries never shortens the log. Each change is one `log` record, "from index `from`
on, the log is exactly these entries", which `replay` applies on restart.
"""

from __future__ import annotations

from typing import Any

from tobtest.node.protocols.entries import Entry, as_nat, nat, valid_entry

LogEntry = tuple[int, Entry]  # (term, entry)


def parse_entries(x: Any, limit: int) -> list[LogEntry] | None:
    """Wire entries `[[term, entry], ...]` (at most `limit`, terms >= 1), else None."""
    if not isinstance(x, list) or len(x) > limit:
        return None
    out: list[LogEntry] = []
    for item in x:
        ok = isinstance(item, list) and len(item) == 2 and nat(item[0]) and item[0] >= 1
        if not ok or not valid_entry(item[1]):
            return None
        out.append((item[0], item[1]))
    return out


class RaftLog:
    """The entries of one node's log, in memory (the shell's write-ahead log holds them)."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []

    @property
    def last_index(self) -> int:
        return len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1][0] if self.entries else 0

    def term_at(self, index: int) -> int:
        """The term of entry `index` (0 for index 0); `index` must be <= last_index."""
        return self.entries[index - 1][0] if index > 0 else 0

    def entry_at(self, index: int) -> Entry:
        return self.entries[index - 1][1]

    def matches(self, prev_index: int, prev_term: int) -> bool:
        """The log matching check: the entry at `prev_index` exists and has `prev_term`."""
        return prev_index <= self.last_index and self.term_at(prev_index) == prev_term

    def wire(self, start: int, limit: int) -> list[list[Any]]:
        """At most `limit` entries from index `start` on, as `[term, entry]` lists."""
        return [[t, e] for t, e in self.entries[start - 1 : start - 1 + limit]]

    def conflict_hint(self, prev_index: int, floor: int) -> int:
        """Where a leader should retry after our log failed its check at `prev_index`: past
        our end if we are shorter, else the first index of our term at `prev_index` (never
        below `floor`): the leader then skips the whole conflicting term in one round trip."""
        if prev_index > self.last_index:
            return self.last_index + 1
        term, index = self.term_at(prev_index), prev_index
        while index - 1 >= max(floor, 1) and self.term_at(index - 1) == term:
            index -= 1
        return max(index, 1)

    def append(self, term: int, entry: Entry) -> dict[str, Any]:
        """The leader appends one entry of its term; returns the record to persist."""
        self.entries.append((term, entry))
        return {"t": "log", "from": self.last_index, "entries": [[term, entry]]}

    def merge(
        self, prev_index: int, entries: list[LogEntry], truncate: bool = True
    ) -> dict[str, Any] | None:
        """Places a leader's `entries` after `prev_index` (already checked to match). Returns
        the record to persist, or None when the log did not change. With `truncate` False
        (the deliberate fixture bug `no-truncate`) it appends only what lies past its end and
        keeps conflicting entries in place."""
        k, last = 0, self.last_index
        while k < len(entries) and prev_index + 1 + k <= last:
            if self.term_at(prev_index + 1 + k) != entries[k][0]:
                if truncate:
                    del self.entries[prev_index + k :]  # the conflict and all after it
                break
            k += 1
        if not truncate:
            k = max(k, min(len(entries), last - prev_index))
        new = entries[k:]
        if not new:
            return None
        start = self.last_index + 1
        self.entries.extend(new)
        return {"t": "log", "from": start, "entries": [[t, e] for t, e in new]}

    def replay(self, record: dict[str, Any], limit: int) -> bool:
        """Applies one persisted `log` record; False (ignored) if it is malformed."""
        start, entries = as_nat(record.get("from")), parse_entries(record.get("entries"), limit)
        if start is None or not 1 <= start <= self.last_index + 1 or entries is None:
            return False
        del self.entries[start - 1 :]
        self.entries.extend(entries)
        return True
