"""Valid list-append histories from a simulated strict-serializable store, for tests and
benchmarks of the list-append checker.

    import random
    from tobtest.checker.list_append_gen import generate_history
    history = generate_history(10_000, n_clients=10, n_keys=8, rng=random.Random(1))

    # benchmark: generate N txns and time the checker
    python -m tobtest.checker.list_append_gen 100000

`n_ops` is the number of transactions; the history holds about twice as many ops (an
invocation and a completion each). Clients run concurrently: each step picks a random
client and moves its txn one stage on (invoke -> apply -> complete). A txn applies
atomically, at one instant between its invocation and its completion, so the history is
strict serializable by construction. Some txns fail (and never apply) or end `info`
(applied or not, at random; that process is then retired, as in Jepsen). As in Jepsen's
workload, a key takes at most `max_writes_per_key` appends and is then replaced by a fresh
one, which keeps reads short. Values are unique per key (one counter for all keys).
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from tobtest.histories.op import Op


def _new_txn(
    rng: random.Random,
    keys: list[int],
    writes: dict[int, int],
    counter: list[int],
    max_txn_len: int,
    max_writes_per_key: int,
    next_key: list[int],
) -> list[list[Any]]:
    txn: list[list[Any]] = []
    for _ in range(rng.randint(1, max_txn_len)):
        slot = rng.randrange(len(keys))
        k = keys[slot]
        if rng.random() < 0.5:
            txn.append(["r", k, None])
            continue
        counter[0] += 1
        txn.append(["append", k, counter[0]])
        writes[k] = writes.get(k, 0) + 1
        if writes[k] >= max_writes_per_key:  # retire the key, as Jepsen's generator does
            keys[slot] = next_key[0]
            next_key[0] += 1
    return txn


def _apply(state: dict[int, list[int]], txn: list[list[Any]]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for f, k, v in txn:
        if f == "append":
            state.setdefault(k, []).append(v)
            out.append([f, k, v])
        else:
            cur = state.get(k)
            out.append([f, k, None if cur is None else list(cur)])
    return out


def generate_history(
    n_ops: int,
    n_clients: int = 5,
    n_keys: int = 5,
    rng: random.Random | None = None,
    *,
    max_txn_len: int = 4,
    max_writes_per_key: int = 32,
    fail_rate: float = 0.02,
    info_rate: float = 0.01,
) -> list[Op]:
    """A strict-serializable list-append history of `n_ops` txns (see module doc)."""
    rng = rng if rng is not None else random.Random(0)
    state: dict[int, list[int]] = {}
    keys = list(range(n_keys))
    next_key, counter = [n_keys], [0]
    writes: dict[int, int] = {}
    history: list[Op] = []
    process = list(range(n_clients))
    stage = [0] * n_clients  # 0 idle, 1 invoked, 2 applied
    pending: list[Any] = [None] * n_clients  # the invoked txn, then its result
    outcome: list[str] = ["ok"] * n_clients
    started = 0
    busy = 0

    def emit(kind: str, c: int, value: Any) -> None:
        history.append(Op(len(history), len(history) * 1000, kind, process[c], "txn", value))

    while started < n_ops or busy:
        c = rng.randrange(n_clients)
        if stage[c] == 0:
            if started >= n_ops:
                continue
            txn = _new_txn(rng, keys, writes, counter, max_txn_len, max_writes_per_key, next_key)
            pending[c] = txn
            r = rng.random()
            outcome[c] = "fail" if r < fail_rate else "info" if r < fail_rate + info_rate else "ok"
            emit("invoke", c, txn)
            stage[c], started, busy = 1, started + 1, busy + 1
        elif stage[c] == 1:
            if outcome[c] == "fail":
                emit("fail", c, pending[c])
                stage[c], busy = 0, busy - 1
            elif outcome[c] == "info" and rng.random() < 0.5:
                emit("info", c, pending[c])  # crashed before applying
                stage[c], busy = 0, busy - 1
                process[c] += n_clients
            else:
                invoked = pending[c]
                pending[c] = (invoked, _apply(state, invoked))
                stage[c] = 2
        else:
            invoked, result = pending[c]
            if outcome[c] == "info":
                emit("info", c, invoked)  # applied, but the client never heard
                process[c] += n_clients
            else:
                emit("ok", c, result)
            stage[c], busy = 0, busy - 1
    return history


def main(argv: list[str]) -> None:
    from tobtest.checker.list_append import check

    n_ops = int(argv[0]) if argv else 10_000
    n_clients = int(argv[1]) if len(argv) > 1 else 10
    t0 = time.perf_counter()
    history = generate_history(n_ops, n_clients=n_clients, n_keys=10, rng=random.Random(1))
    t1 = time.perf_counter()
    result = check(history)
    t2 = time.perf_counter()
    print(
        f"{n_ops} txns, {len(history)} ops, {n_clients} clients: generated in {t1 - t0:.2f} s, "
        f"checked in {t2 - t1:.2f} s: valid={result['valid']} counts={result['counts']}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
