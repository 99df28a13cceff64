"""What each client holds of each node's log, so that its reads ask only for the rest.

    cursors = ReadCursors()
    cursors.request_fields(("w3", 7101))   # {"from": 0, "digest": ""}
    cursors.take(("w3", 7101), {"value": [7, 3], "from": 0, "length": 2})
    # ([7, 3], 0): the value and offset to record
    cursors.request_fields(("w3", 7101))   # {"from": 2, "digest": "<of [7, 3]>"}

A cursor is kept per (client, node): what this client (a runner worker, whichever process
it is now) last read from that node, as a count and the chain digest of those entries
(`node/PROTOCOL.md`, *Reads from a position*). Per client, not per process: a worker that
goes on as a fresh process after an indeterminate op keeps what it read (the node checks
the digest, so what it held is still what it held), and its next read stays a suffix.
Relative to the same node, because a node's log only grows: its next read extends the
last one, where another node's log may lag and get a whole-log answer. The history keys
reads the same way (`client` on each read), so the checker rebuilds each whole log from
the same previous read (`tobtest/histories/suffix_reads.py` argues why that hides
nothing). A reply without `from` (a node that ignores it) is a whole log.

The digest is the node's (`node/read_from.py`), written again here because the harness
never imports the node package; `tests/node/test_read_from.py` checks that they agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

EMPTY_DIGEST = ""
DIGEST_HEX_CHARS = 32


def chain_digest(previous: str, value: Any) -> str:
    """The digest of a log ending in `value` whose first entries have digest `previous`."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()[:DIGEST_HEX_CHARS]


def log_digest(values: list[Any], previous: str = EMPTY_DIGEST) -> str:
    """The digest of `values` appended to a log whose digest is `previous`."""
    for value in values:
        previous = chain_digest(previous, value)
    return previous


class ReadCursors:
    """Per key (a client and a node): how many entries the client holds from the node, and
    their digest. Bounded by clients x nodes."""

    def __init__(self) -> None:
        self._held: dict[Any, tuple[int, str]] = {}

    def request_fields(self, key: Any) -> dict[str, Any]:
        count, digest = self._held.get(key, (0, EMPTY_DIGEST))
        return {"from": count, "digest": digest}

    def take(self, key: Any, reply: dict[str, Any]) -> tuple[list[Any], int] | None:
        """Moves the cursor by a `read_ok` reply; returns (value, offset) to record, or None
        when the reply is not a usable read (no list, or a `from` that is neither the count
        held nor 0: the cursor is then dropped, so the next read asks for everything)."""
        value = reply.get("value")
        offset = reply.get("from", 0)
        held, digest = self._held.get(key, (0, EMPTY_DIGEST))
        if not isinstance(value, list) or isinstance(offset, bool) or offset not in (0, held):
            self._held.pop(key, None)
            return None
        if offset == 0:
            digest = EMPTY_DIGEST
        self._held[key] = (offset + len(value), log_digest(value, digest))
        return value, offset
