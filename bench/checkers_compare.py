"""tobtest's checker beside Porcupine on the Porcupine corpora, `tobtest check` over a whole
folder against Porcupine's program once per file, and the EDN reader on a 17,700-line
history. Run through bench/checkers.py:

    .venv/bin/python bench/checkers.py --porcupine DIR   # DIR: the porcupine harness, built
    .venv/bin/python bench/checkers.py --edn             # the EDN timing alone

DIR is a copy of ../shared/tools/porcupine-harness with `porcheck` built as its README says
and `../corpus` beside it as in shared/ (its driver finds the corpora there). The harness
runs both checkers per file, interleaved, five times, and reports medians; this script
runs it with GOMAXPROCS=1 and 2 and sums it up per suite over the files that take Porcupine
1 ms or more: the median of tobtest/Porcupine check time, the worst file, the ratio of the
sums, and whether every verdict matched. No corpus file has 17,700 lines (the largest has
4,048), so the EDN timing reads a Jepsen-shaped list-append history.edn generated here
(checker/list_append_gen, 8,850 txns, one op map a line, as Jepsen writes them).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tobtest.checker.list_append_gen import generate_history
from tobtest.histories import edn
from tobtest.histories.formats import read_history

REPO = Path(__file__).resolve().parents[1]
SUITES = ("porcupine-etcd", "porcupine-kv")
EDN_LINES = 17_700
EDN_TARGET_S = 0.1


def compare(harness: Path, reps: int = 5) -> dict[str, Any]:
    """The harness over both suites at GOMAXPROCS 1 and 2, summed up."""
    out: dict[str, Any] = {}
    for procs in (1, 2):
        for suite in SUITES:
            dump = Path(tempfile.mkstemp(suffix=".json")[1])
            cmd = [sys.executable, str(harness / "driver.py"), suite, "--reps", str(reps),
                   "--gomaxprocs", str(procs), "--out", str(dump),
                   "--tobtest", str(Path(sys.executable).with_name("tobtest"))]  # fmt: skip
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=3600)
            rows = json.loads(dump.read_text())["rows"]
            dump.unlink()
            out[f"{suite} GOMAXPROCS={procs}"] = summary(rows)
    out["folder"] = folder_against_per_file(harness, reps)
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    timed = [r for r in rows if r["por_check_ms"] is not None and r["por_check_ms"] >= 1.0]
    ratios = [r["tob_inproc_ms"] / r["por_check_ms"] for r in timed]
    worst = max(timed, key=lambda r: r["tob_inproc_ms"] / r["por_check_ms"], default=None)
    return {
        "files": len(rows),
        "verdicts_identical": all(r["tobtest"] == r["porcupine"] for r in rows),
        "files_1ms_or_more": len(timed),
        "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
        "worst_file": worst and worst["file"],
        "worst_ratio": worst and round(worst["tob_inproc_ms"] / worst["por_check_ms"], 3),
        "ratio_of_sums": round(
            sum(r["tob_inproc_ms"] for r in timed) / sum(r["por_check_ms"] for r in timed), 3
        )
        if timed
        else None,
        "over_porcupine": [r["file"] for r in timed if r["tob_inproc_ms"] > r["por_check_ms"]],
    }


def folder_against_per_file(harness: Path, reps: int) -> dict[str, Any]:
    """Wall time: `tobtest check` on the etcd folder, once, against porcheck run once per
    file (on the JSONL the harness converted), alternately, median of `reps`."""
    corpus = harness.parents[1] / "corpus" / "porcupine-etcd"
    work = Path(tempfile.gettempdir()) / "porcupine-harness-work"
    converted = sorted(work.glob("etcd_*.jsonl"))
    reading = ["--model", "cas-register", "--fail-means", "returned-false", "--format",
               "jepsen-log"]  # fmt: skip
    tobtest = [str(Path(sys.executable).with_name("tobtest")), "check", str(corpus), *reading]
    porcheck = [str(harness / "porcheck"), "-model", "cas-register", "-fail-means",
                "returned-false", "-nil-read", "no-value"]  # fmt: skip
    env = dict(os.environ, GOMAXPROCS="1")
    ours, theirs = [], []
    for _ in range(reps):
        started = time.perf_counter()
        subprocess.run(tobtest, stdout=subprocess.DEVNULL, timeout=600)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        for path in converted:
            subprocess.run([*porcheck, str(path)], stdout=subprocess.DEVNULL, env=env, timeout=60)
        theirs.append(time.perf_counter() - started)
    return {
        "files": len(converted),
        "tobtest_check_folder_s": round(statistics.median(ours), 3),
        "porcheck_per_file_s": round(statistics.median(theirs), 3),
        "command": " ".join(tobtest[1:]),
    }


def edn_history(path: Path, lines: int = EDN_LINES) -> Path:
    """A Jepsen list-append history.edn of `lines` op maps, one a line."""
    ops = generate_history(lines // 2, n_clients=10, n_keys=8, rng=random.Random(1))[:lines]

    def form(v: Any) -> str:
        if v is None:
            return "nil"
        if isinstance(v, str):
            return ":" + v
        if isinstance(v, (list, tuple)):
            return "[" + " ".join(form(x) for x in v) + "]"
        return json.dumps(v)

    path.write_text(
        "".join(
            f"{{:index {op.index}, :time {op.time_ns}, :type :{op.type}, :process "
            f"{form(op.process)}, :f :{op.f}, :value {form(op.value)}}}\n"
            for op in ops
        )
    )
    return path


def edn_timing(repeats: int = 5) -> dict[str, Any]:
    """Best of `repeats`: the EDN reader alone (wall and CPU), and read_history (the reader
    and building the Ops)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = edn_history(Path(tmp) / "history.edn")
        text = path.read_text()
        reader_s, reader_cpu_s, history_s = [], [], []
        for _ in range(repeats):
            started, cpu = time.perf_counter(), time.process_time()
            list(edn.iter_elements(text))
            reader_s.append(time.perf_counter() - started)
            reader_cpu_s.append(time.process_time() - cpu)
            started = time.perf_counter()
            read_history(path, "edn")
            history_s.append(time.perf_counter() - started)
        return {
            "lines": text.count("\n"),
            "bytes": len(text),
            "edn_reader_s": round(min(reader_s), 4),
            "edn_reader_cpu_s": round(min(reader_cpu_s), 4),  # steadier on a shared machine
            "read_history_s": round(min(history_s), 4),
            "target_s": EDN_TARGET_S,
            "met": min(reader_s) < EDN_TARGET_S,
        }


def render(result: dict[str, Any]) -> str:
    lines = []
    for name, row in result.items():
        lines.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return "\n".join(lines)
