"""Valid histories of any size for benchmarking tobtest's checkers: registers and broadcasts.

    import random
    from gen_histories import register_history, tob_history      # run from bench/
    ops = register_history(10_000, n_clients=10, n_keys=1, rng=random.Random(1))
    ops = tob_history(100_000, n_clients=10, n_reads=100, rng=random.Random(1))

    .venv/bin/python bench/gen_histories.py register 10000 50 8    # summary of one history

Both simulate a correct system executing one op at a time, with clients that overlap: each
step picks a random client and moves its op one stage on (invoke -> take effect -> complete),
so every op takes effect at one instant between its invocation and its completion, and the
history is linearizable by construction. Sizes are history entries (`n_ops`, invocations and
completions together; calls are about half of it).

`register_history`: Jepsen's etcd workload (read, write, cas uniformly, values 0-4, the
register starting at None). One key gives a single `cas-register`; several keys give a `kv`
history (the key in `extra["key"]`). A cas whose `from` is not the value completes `fail`
(it ran and returned false: check with `fail_means="returned-false"`, as the etcd corpus).
About `info_rate` of the ops time out (`info`): half of them never take effect, half do;
either way the process is retired and its client goes on as a new process, as in Jepsen.

`tob_history`: a total-order broadcast on three nodes. A broadcast is sequenced into the one
global order at some point after its invocation and acked once its node has delivered it;
some fail before being sequenced, some end `info` (sequenced later or never). A `local` read
returns its node's delivered prefix; a `log` or `lease` read returns the whole order (its
node catches up first). The run ends with a final read per node. A TOB read returns the whole
log, so a history whose reads are a fixed fraction of its ops holds a number of read elements
quadratic in its size (a 1M-op history with 10 % reads would hold 5e10); to measure how a
checker grows with the number of ops, the number of reads is fixed (`n_reads`), which keeps
the read volume linear (about `n_reads * n_ops / 4` elements).
"""

from __future__ import annotations

import random
import sys
from typing import Any

from tobtest.histories.op import NEMESIS, Op

REGISTER_VALUES = 5  # Jepsen's etcd test: (rand-int 5)
READ_MODES = ("local", "log", "lease")
NODES = ("n1", "n2", "n3")


class _Recorder:
    """Appends ops with consecutive indices; time is the index in microseconds."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(self, kind: str, process: Any, f: str, value: Any, **fields: Any) -> None:
        i = len(self.ops)
        self.ops.append(Op(i, i * 1000, kind, process, f, value, **fields))


def _register_op(rng: random.Random) -> tuple[str, Any]:
    f = rng.choice(("read", "write", "cas"))
    if f == "read":
        return f, None
    if f == "write":
        return f, rng.randrange(REGISTER_VALUES)
    return f, [rng.randrange(REGISTER_VALUES), rng.randrange(REGISTER_VALUES)]


def _apply_register(values: dict[int, Any], key: int, f: str, arg: Any) -> tuple[str, Any]:
    """Runs one op on the register; returns its completion type and value."""
    if f == "read":
        return "ok", values.get(key)
    if f == "write":
        values[key] = arg
        return "ok", arg
    if values.get(key) != arg[0]:
        return "fail", arg
    values[key] = arg[1]
    return "ok", arg


def register_history(
    n_ops: int,
    n_clients: int = 10,
    n_keys: int = 1,
    rng: random.Random | None = None,
    *,
    info_rate: float = 0.01,
) -> list[Op]:
    """A linearizable cas-register (n_keys == 1) or kv history of about `n_ops` entries."""
    rng = rng if rng is not None else random.Random(0)
    rec = _Recorder()
    values: dict[int, Any] = {}
    process = list(range(n_clients))
    stage = [0] * n_clients  # 0 idle, 1 invoked, 2 took effect
    op_of: list[Any] = [None] * n_clients  # (key, f, arg, timed_out), then its result
    invoked = 0
    busy = 0
    target_calls = n_ops // 2

    def fields(key: int) -> dict[str, Any]:
        return {"extra": {"key": key}} if n_keys > 1 else {}

    while invoked < target_calls or busy:
        c = rng.randrange(n_clients)
        if stage[c] == 0:
            if invoked >= target_calls:
                continue
            key = rng.randrange(n_keys)
            f, arg = _register_op(rng)
            op_of[c] = (key, f, arg, rng.random() < info_rate)
            rec.add("invoke", process[c], f, arg, **fields(key))
            stage[c], invoked, busy = 1, invoked + 1, busy + 1
            continue
        key, f, arg, timed_out = op_of[c][:4]
        if stage[c] == 1 and timed_out and rng.random() < 0.5:
            stage[c] = 3  # timed out before it took effect: it never will
        elif stage[c] == 1:
            op_of[c] = (key, f, arg, timed_out, *_apply_register(values, key, f, arg))
            stage[c] = 2
            continue
        if timed_out:
            rec.add("info", process[c], f, arg, error="timed-out", **fields(key))
            process[c] += n_clients
        else:
            kind, value = op_of[c][4:]
            rec.add(kind, process[c], f, value, **fields(key))
        stage[c], busy = 0, busy - 1
    return rec.ops


class _Tob:
    """The simulated broadcast: one global order, each node's delivered prefix of it."""

    def __init__(self, rng: random.Random, n_clients: int) -> None:
        self.rng = rng
        self.rec = _Recorder()
        self.order: list[int] = []
        self.delivered = dict.fromkeys(NODES, 0)
        self.late: list[int] = []  # info broadcasts not sequenced: half land at the end
        self.n_clients = n_clients
        self.process = list(range(n_clients))
        # Per client: None (idle) or [f, node, value or mode, stage, position, outcome].
        self.open: list[list[Any] | None] = [None] * n_clients
        self.next_value = 0

    def deliver(self) -> None:
        node = self.rng.choice(NODES)
        self.delivered[node] = min(len(self.order), self.delivered[node] + self.rng.randint(0, 4))

    def invoke(self, c: int, read: bool, fail_rate: float, info_rate: float) -> None:
        node = self.rng.choice(NODES)
        if read:
            mode = self.rng.choice(READ_MODES)
            self.rec.add(
                "invoke", self.process[c], "read", None, node=node, extra={"read_mode": mode}
            )
            self.open[c] = ["read", node, mode, 1, -1, "ok"]
            return
        value, self.next_value = self.next_value, self.next_value + 1
        roll = self.rng.random()
        outcome = "fail" if roll < fail_rate else "info" if roll < fail_rate + info_rate else "ok"
        self.rec.add("invoke", self.process[c], "broadcast", value, node=node)
        self.open[c] = ["broadcast", node, value, 1, -1, outcome]

    def advance(self, c: int) -> None:
        """Moves client c's open op one stage on (it completes at most once)."""
        op = self.open[c]
        assert op is not None
        f, node, x, stage, position, outcome = op
        if f == "read":
            if x != "local":  # a log read goes through the log: the node catches up first
                self.delivered[node] = len(self.order)
            extra = {"read_mode": x}
            self.rec.add(
                "ok",
                self.process[c],
                "read",
                self.order[: self.delivered[node]],
                node=node,
                extra=extra,
            )
            self.open[c] = None
        elif stage == 1 and outcome == "fail":
            self.rec.add("fail", self.process[c], "broadcast", x, node=node, error="refused")
            self.open[c] = None
        elif stage == 1 and outcome == "info" and self.rng.random() < 0.5:
            self.late.append(x)  # timed out before it was sequenced: it may be, later
            self._info(c, op)
        elif stage == 1:
            op[3], op[4] = 2, len(self.order)  # sequenced now
            self.order.append(x)
        elif outcome == "info":
            self._info(c, op)
        elif self.delivered[node] > position:
            extra = {"position": position}
            self.rec.add("ok", self.process[c], "broadcast", x, node=node, extra=extra)
            self.open[c] = None

    def _info(self, c: int, op: list[Any]) -> None:
        self.rec.add("info", self.process[c], "broadcast", op[2], node=op[1], error="timeout")
        self.open[c] = None
        self.process[c] += self.n_clients

    def finish(self) -> None:
        for value in self.late:
            if self.rng.random() < 0.5:
                self.order.append(value)
        for node in NODES:
            self.delivered[node] = len(self.order)
        first = self.process[-1] + 1
        for i, node in enumerate(NODES):
            extra = {"read_mode": "local", "final": True}
            self.rec.add("invoke", first + i, "read", None, node=node, extra=extra)
            self.rec.add("ok", first + i, "read", list(self.order), node=node, extra=extra)


def tob_history(
    n_ops: int,
    n_clients: int = 10,
    n_reads: int = 100,
    rng: random.Random | None = None,
    *,
    fail_rate: float = 0.02,
    info_rate: float = 0.01,
    nemesis_every: int = 5000,
) -> list[Op]:
    """A valid TOB history of about `n_ops` entries with about `n_reads` reads (module doc)."""
    rng = rng if rng is not None else random.Random(0)
    sim = _Tob(rng, n_clients)
    target_calls = max(1, n_ops // 2 - len(NODES))
    read_chance = min(1.0, n_reads / target_calls)
    invoked = 0
    steps = 0
    while invoked < target_calls or any(op is not None for op in sim.open):
        steps += 1
        sim.deliver()
        if nemesis_every and steps % nemesis_every == 0:
            f = rng.choice(("start-partition", "stop-partition"))
            sim.rec.add("invoke", NEMESIS, f, None)
            sim.rec.add("info", NEMESIS, f, None)
        c = rng.randrange(n_clients)
        if sim.open[c] is not None:
            sim.advance(c)
        elif invoked < target_calls:
            sim.invoke(c, rng.random() < read_chance, fail_rate, info_rate)
            invoked += 1
    sim.finish()
    return sim.rec.ops


def read_elements(history: list[Op]) -> int:
    """The total length of the ok reads' values: what a TOB checker reads besides the ops."""
    return sum(len(op.value) for op in history if op.f == "read" and op.type == "ok")


def main(argv: list[str]) -> None:
    kind, n_ops = argv[0], int(argv[1])
    n_clients = int(argv[2]) if len(argv) > 2 else 10
    rng = random.Random(1)
    if kind == "register":
        n_keys = int(argv[3]) if len(argv) > 3 else 1
        ops = register_history(n_ops, n_clients, n_keys, rng)
    else:
        ops = tob_history(n_ops, n_clients, rng=rng)
    types = {t: sum(1 for op in ops if op.type == t) for t in ("invoke", "ok", "fail", "info")}
    print(f"{kind}: {len(ops)} ops {types}, read elements {read_elements(ops)}")


if __name__ == "__main__":
    main(sys.argv[1:])
