"""A tiny builder for writing histories readably in tests and corpus generators.

    h = HistoryBuilder()
    p = h.invoke(0, "broadcast", 1, node="n1")     # returns a handle for the completion
    h.ok(p, position=0)                            # value, node, extras copied from invoke
    h.broadcast(1, 2, node="n2", position=1)       # invoke + ok in one go
    h.read(2, "n1", [1, 2], read_mode="log", final=True)
    h.nemesis("start-partition", {"n1": ["n2"]})
    h.write_jsonl(path)                            # one Op.to_dict per line
    ops = load_jsonl(path)

Each op advances the clock by `step_ns` (default 1 ms), so history order is time order;
`h.sleep(ns)` leaves a gap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tobtest.histories.op import NEMESIS, Op

_SAME = object()


class HistoryBuilder:
    """Appends ops with consecutive indices and increasing times."""

    def __init__(self, start_ns: int = 0, step_ns: int = 1_000_000) -> None:
        self.ops: list[Op] = []
        self.time_ns = start_ns
        self.step_ns = step_ns

    def sleep(self, ns: int) -> None:
        self.time_ns += ns

    def _add(self, **fields: Any) -> Op:
        op = Op(index=len(self.ops), time_ns=self.time_ns, **fields)
        self.ops.append(op)
        self.time_ns += self.step_ns
        return op

    def invoke(
        self, process: int, f: str, value: Any = None, node: str | None = None, **extra: Any
    ) -> int:
        """Adds an invocation; returns its index, the handle for `ok`/`fail`/`info`."""
        self._add(type="invoke", process=process, f=f, value=value, node=node, extra=extra)
        return len(self.ops) - 1

    def _complete(self, kind: str, handle: int, value: Any, error: str | None, extra: dict) -> Op:
        inv = self.ops[handle]
        return self._add(
            type=kind,
            process=inv.process,
            f=inv.f,
            value=inv.value if value is _SAME else value,
            node=inv.node,
            error=error,
            extra={**inv.extra, **extra},
        )

    def ok(self, handle: int, value: Any = _SAME, **extra: Any) -> Op:
        return self._complete("ok", handle, value, None, extra)

    def fail(self, handle: int, error: str = "refused", **extra: Any) -> Op:
        return self._complete("fail", handle, _SAME, error, extra)

    def info(self, handle: int, error: str = "timeout", **extra: Any) -> Op:
        return self._complete("info", handle, _SAME, error, extra)

    def broadcast(self, process: int, value: Any, node: str, position: int | None = None) -> Op:
        """A broadcast invoked and acked at once (position given when known)."""
        p = self.invoke(process, "broadcast", value, node=node)
        return self.ok(p) if position is None else self.ok(p, position=position)

    def read(
        self,
        process: int,
        node: str,
        value: list[Any],
        read_mode: str = "local",
        final: bool = False,
    ) -> Op:
        """A read invoked and completed ok at once."""
        extra: dict[str, Any] = {"read_mode": read_mode, **({"final": True} if final else {})}
        p = self.invoke(process, "read", None, node=node, **extra)
        return self.ok(p, value)

    def final_reads(self, process: int, values_by_node: dict[str, list[Any]]) -> None:
        """The end-of-run reads, one per node, taken one after another."""
        for i, (node, value) in enumerate(values_by_node.items()):
            self.read(process + i, node, value, final=True)

    def nemesis(self, f: str, value: Any = None) -> None:
        """A nemesis invoke + info pair, as the runner records faults."""
        self._add(type="invoke", process=NEMESIS, f=f, value=value)
        self._add(type="info", process=NEMESIS, f=f, value=value)

    def write_jsonl(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(op.to_json() + "\n" for op in self.ops))


def load_jsonl(path: Path) -> list[Op]:
    """Reads a history written one op dict per line (blank lines skipped)."""
    lines = path.read_text().splitlines()
    return [Op.from_dict(json.loads(line)) for line in lines if line.strip()]


def write_corpus(histories: dict[Path, HistoryBuilder], root: Path) -> list[Path]:
    """Writes each builder's history at `root / relative path`; returns the paths written."""
    paths = []
    for rel, h in histories.items():
        h.write_jsonl(root / rel)
        paths.append(root / rel)
    return paths
