"""Records a run's history as JSON Lines, one op per line, flushed as each op happens.

    recorder = Recorder(Path("store/t/x/history.jsonl"))
    op = recorder.record("invoke", process=0, f="broadcast", value=7, node="n1")
    recorder.close()

Each op gets the next index and the time since the recorder started (monotonic ns). The
file is flushed per op (not fsynced: a crash of the runner keeps what the OS has), so a
run that dies still leaves a history that `tobtest check` reads.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import IO, Any

from tobtest.histories.op import Op


class Recorder:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = path.open("a", encoding="utf-8") if path else None
        self._lock = threading.Lock()
        self._t0_ns = time.monotonic_ns()
        self.ops: list[Op] = []

    def elapsed_ns(self) -> int:
        return time.monotonic_ns() - self._t0_ns

    def record(
        self,
        type: str,
        process: int | str,
        f: str,
        value: Any = None,
        node: str | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> Op:
        with self._lock:
            op = Op(
                index=len(self.ops),
                time_ns=self.elapsed_ns(),
                type=type,
                process=process,
                f=f,
                value=value,
                node=node,
                error=error,
                extra=extra,
            )
            self.ops.append(op)
            if self._file is not None:
                self._file.write(op.to_json() + "\n")
                self._file.flush()
            return op

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
