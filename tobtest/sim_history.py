"""A simulated run as a tobtest history: the ops a real run records, in virtual time.

    h = SimHistory(nodes=3)
    h.invoke(0.0, process=0, f="broadcast", node=1, value=0)
    reply = {"type": "broadcast_ok", "msg_id": "m0", "position": 0}
    h.complete(2.5, process=0, outcome=broadcast_outcome(0, reply, attempt=0, attempts=1))
    h.nemesis(3.0, "start-kill", {"nodes": ["n3"]})
    [op.to_dict() for op in h.ops()]
    # [{"index": 0, "time_ns": 0, "type": "invoke", "process": 0, "f": "broadcast",
    #   "value": 0, "node": "n2"}, {"index": 1, "time_ns": 2500000, "type": "ok", ...,
    #   "position": 0}, {"index": 2, ..., "process": "nemesis", "f": "start-kill", ...}]

Pure: it knows the node's reply bodies (`node/PROTOCOL.md`) and the simulator's trace tuples,
not the simulator itself, and its ops have the shape `tobtest run` records for the broadcast
workload (`workloads/broadcast.py`, `tobtest/runner.py`), so the same checkers judge them:
`node` names `n1`..`nN`, reads carry `read_mode`, final reads `final: True`, an acked
broadcast its `position` (and `retried: True` when the second node acked it), times in ns
of virtual time. Outcomes as the broadcast workload's: `broadcast_ok` and `read_ok` are
`ok`; an error reply to a read is `fail`, and to a broadcast `fail` only when it had one
node to try and the code says the node surely did not take it in (else `info`: an earlier
attempt may still land); a request that got no reply is `info`.
Nemesis ops (process `nemesis`, an invoke and an ok at the same instant) come from the
simulator's trace (`nemesis_ops`) or are added directly (`nemesis`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tobtest.histories.op import NEMESIS, Op
from tobtest.workloads.broadcast import DEFINITE_ERRORS

NS_PER_MS = 1_000_000


def node_name(i: int) -> str:
    """The name of simulated node `i` (0-based), as the real runner names its nodes."""
    return f"n{i + 1}"


@dataclass(frozen=True)
class Outcome:
    """A completion: `type` ok | fail | info, its value, error and extra fields."""

    type: str
    value: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def broadcast_outcome(
    value: Any, reply: dict[str, Any] | None, attempt: int, attempts: int
) -> Outcome:
    """A broadcast's completion from the reply to attempt `attempt` (0-based) of `attempts`
    (None: no reply in time). As the broadcast workload's client: an error is `fail` only if
    it was the one attempt and the code says the node surely did not take the value in."""
    if reply is None:
        return Outcome("info", value, error="timeout")
    if reply.get("type") == "broadcast_ok":
        extra: dict[str, Any] = {"position": reply.get("position")}
        if attempt > 0:
            extra["retried"] = True
        return Outcome("ok", value, extra=extra)
    code = str(reply.get("code", "unexpected-reply"))
    error = f"{code}: {reply.get('text', reply)}"
    definite = attempts == 1 and code in DEFINITE_ERRORS | {"connection-refused"}
    return Outcome("fail" if definite else "info", value, error=error)


def read_outcome(reply: dict[str, Any] | None) -> Outcome:
    """A read's completion: ok with the delivered sequence, fail on an error, else info."""
    if reply is None:
        return Outcome("info", None, error="timeout")
    if reply.get("type") == "read_ok":
        value = reply.get("value")
        if isinstance(value, list):
            return Outcome("ok", value)
    return Outcome("fail", None, error=f"{reply.get('code', 'unexpected-reply')}: "
                   f"{reply.get('text', reply)}")  # fmt: skip


def nemesis_ops(trace: list[tuple[Any, ...]]) -> list[tuple[float, str, Any]]:
    """The faults in a simulator trace as (time_ms, f, value), in Jepsen's names: blocked
    pairs become a grudge `{node: [nodes it drops messages from]}`; a slow sender is
    `start-slow` (its extra `delay_ms`) and `stop-slow`."""
    out: list[tuple[float, str, Any]] = []
    for entry in trace:
        t, kind = entry[0], entry[1]
        if kind == "blocked":
            grudge: dict[str, list[str]] = {}
            for src, dst in entry[2]:
                grudge.setdefault(node_name(dst), []).append(node_name(src))
            f = "start-partition" if grudge else "stop-partition"
            out.append((t, f, {"grudge": {k: sorted(v) for k, v in sorted(grudge.items())}}))
        elif kind == "crash":
            out.append((t, "start-kill", {"nodes": [node_name(entry[2])]}))
        elif kind == "restart":
            out.append((t, "stop-kill", {"nodes": [node_name(entry[2])], "reload": entry[3]}))
        elif kind == "pause":
            out.append((t, "start-pause", {"nodes": [node_name(entry[2])]}))
        elif kind == "resume":
            out.append((t, "stop-pause", {"nodes": [node_name(entry[2])]}))
        elif kind == "slow":
            f, nodes = ("start-slow" if entry[3] else "stop-slow"), [node_name(entry[2])]
            out.append((t, f, {"nodes": nodes, "delay_ms": round(entry[3], 3)}))
    return out


class SimHistory:
    """Collects client ops in the order they happen and nemesis ops by time; `ops()` merges
    them into one indexed history. A process has at most one op open (as in Jepsen)."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self._client: list[tuple[float, dict[str, Any]]] = []
        self._nemesis: list[tuple[float, dict[str, Any]]] = []
        self._open: dict[int, dict[str, Any]] = {}

    def invoke(
        self,
        time_ms: float,
        process: int,
        f: str,
        node: int,
        value: Any = None,
        **extra: Any,
    ) -> None:
        if process in self._open:
            raise ValueError(f"process {process} already has an op open")
        op = {"type": "invoke", "process": process, "f": f, "value": value,
              "node": node_name(node), "extra": extra}  # fmt: skip
        self._open[process] = op
        self._client.append((time_ms, op))

    def complete(
        self, time_ms: float, process: int, outcome: Outcome, node: int | None = None
    ) -> None:
        """Completes `process`'s open op; `node` names the node that answered, if another."""
        inv = self._open.pop(process)
        self._client.append(
            (
                time_ms,
                {
                    "type": outcome.type,
                    "process": process,
                    "f": inv["f"],
                    "value": outcome.value,
                    "node": node_name(node) if node is not None else inv["node"],
                    "error": outcome.error,
                    "extra": {**inv["extra"], **outcome.extra},
                },
            )
        )

    def nemesis(self, time_ms: float, f: str, value: Any) -> None:
        for type_ in ("invoke", "ok"):
            v = None if type_ == "invoke" else value
            self._nemesis.append((time_ms, {"type": type_, "process": NEMESIS, "f": f,
                                            "value": v, "extra": {}}))  # fmt: skip

    @property
    def open_processes(self) -> list[int]:
        return sorted(self._open)

    def ops(self) -> list[Op]:
        """Client ops in the order recorded (virtual time never goes back), nemesis ops
        before client ops of the same instant; indices from 0, times in ns."""
        nem = sorted(self._nemesis, key=lambda e: e[0])  # stable: invoke before ok
        merged: list[tuple[float, dict[str, Any]]] = []
        k = 0
        for t, op in self._client:
            while k < len(nem) and nem[k][0] <= t:
                merged.append(nem[k])
                k += 1
            merged.append((t, op))
        merged += nem[k:]
        return [
            Op(
                index=i,
                time_ns=int(round(t * NS_PER_MS)),
                type=d["type"],
                process=d["process"],
                f=d["f"],
                value=d["value"],
                node=d.get("node"),
                error=d.get("error"),
                extra=dict(d["extra"]),
            )
            for i, (t, d) in enumerate(merged)
        ]
