"""Reads from a position: a node answers only the part of its log a client has not seen.

    digests = PrefixDigests()
    digests.answer([7, 3, 9], from_index=0, digest="")      # {"value": [7, 3, 9], "from": 0, ...}
    d2 = chain_digest(chain_digest(EMPTY_DIGEST, 7), 3)      # the digest of [7, 3]
    digests.answer([7, 3, 9, 4], from_index=2, digest=d2)   # {"value": [9, 4], "from": 2, ...}

A `read` request may carry `from` (K, how many entries the client already holds from this
node) and `digest` (the chain digest of those K entries, see `chain_digest`). The node
answers `value` = its entries K.. with `"from": K` only when its own first K entries have
that digest; otherwise (it holds fewer than K, or different ones) it answers its whole log
with `"from": 0`. Either way it adds `length`, its whole log's length. So a suffix always
extends exactly what the client held (up to a 128-bit hash collision), and the checker can
rebuild the whole log the node had: the client's prefix plus the suffix.

The shell (`server.py`) and the simulator's clients (`tobtest/sim_run.py`) answer through
this, outside the protocol cores, so a seeded bug of a core cannot make a node claim a
prefix it does not have. The digest chain is cached (one digest per delivered entry); each
read first checks that the entries it hashed are still the node's entries (a node's
delivered sequence only grows, but a node that broke that must be answered in full, so that
the checker sees it), and rehashes from the first that changed.

The digest is also defined, for clients, in `tobtest/workloads/read_cursor.py` (the harness
never imports the node package); `tests/node/test_read_from.py` checks that the two agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

EMPTY_DIGEST = ""  # the digest of no entries
DIGEST_HEX_CHARS = 32  # 128 bits


def chain_digest(previous: str, value: Any) -> str:
    """The digest of a log whose last entry is `value` and whose first entries have digest
    `previous`: sha256 over `previous`, a newline and the value's compact JSON (keys
    sorted), as hex, cut to 32 characters."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()[:DIGEST_HEX_CHARS]


class PrefixDigests:
    """One node's chain digests of its delivered sequence, kept as reads show it."""

    def __init__(self) -> None:
        self._hashed: list[Any] = []  # the entries the digests below were made from
        self._digests: list[str] = []  # _digests[i]: the digest of _hashed[: i + 1]

    def _update(self, values: list[Any]) -> None:
        same = min(len(self._hashed), len(values))
        if values[:same] != self._hashed[:same]:
            # Not an extension of what was hashed: rehash from the first changed entry.
            same = next(i for i in range(same) if values[i] != self._hashed[i])
        del self._digests[same:]
        last = self._digests[-1] if self._digests else EMPTY_DIGEST
        for value in values[same:]:
            last = chain_digest(last, value)
            self._digests.append(last)
        self._hashed = values

    def digest(self, values: list[Any], count: int) -> str:
        """The digest of `values[:count]` (values: the node's whole delivered sequence)."""
        self._update(values)
        return self._digests[count - 1] if count > 0 else EMPTY_DIGEST

    def answer(self, values: list[Any], from_index: int, digest: str) -> dict[str, Any]:
        """The reply fields for a read of `values` (the node's whole delivered sequence)
        asked from `from_index` by a client whose prefix has `digest`."""
        if 0 < from_index <= len(values) and self.digest(values, from_index) == digest:
            return {"value": values[from_index:], "from": from_index, "length": len(values)}
        return {"value": values, "from": 0, "length": len(values)}


def parse_from(request: dict[str, Any]) -> tuple[int, str] | None:
    """The (from, digest) of a read request, None when it asks for the whole log. Raises
    ValueError (the node's `bad-request`) for a `from` that is no count or a missing digest."""
    if "from" not in request:
        return None
    from_index, digest = request["from"], request.get("digest", EMPTY_DIGEST)
    if isinstance(from_index, bool) or not isinstance(from_index, int) or from_index < 0:
        raise ValueError("read `from` must be a non-negative integer")
    if not isinstance(digest, str) or (from_index > 0 and not digest):
        raise ValueError("read `from` above 0 needs the `digest` of the entries before it")
    return from_index, digest
