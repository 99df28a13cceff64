"""Benchmarks of tobtest's checkers: linearizability (the etcd corpus and generated
registers), list-append and total order at growing sizes, against the project's targets.

    .venv/bin/python bench/checkers.py            # the full set: about 80 s on 2 idle cores
    .venv/bin/python bench/checkers.py --quick    # small sizes, a smoke run: a few seconds
    .venv/bin/python bench/checkers.py --profile list-append:1000000   # cProfile one case
    .venv/bin/python bench/checkers.py --edn                # a 17,700-line history.edn read
    .venv/bin/python bench/checkers.py --porcupine DIR      # beside Porcupine: checkers_compare
    .venv/bin/py-spy record -f raw -o la.raw -- .venv/bin/python bench/checkers.py \
        --worker '{"kind": "list-append", "ops": 1000000}'    # one case as a subprocess runs it

It prints one table per checker, PASS/MISS next to each target, and writes everything to
bench/out/checkers.json (or `--out FILE`). Each generated case runs in its own subprocess, so
that its memory peak (`ru_maxrss`) is its own and no size warms or pollutes another; cases
run one after another, never in parallel, as the machine has 2 cores. Times are the best of
up to 3 runs of the check (fewer when one run takes over 2 s); generation and parsing are
timed apart from checking. Sizes (`ops`) are history entries, invocations and completions
together. Histories come from bench/gen_histories.py and checker/list_append_gen.py, all
valid by construction: a verdict of False on one of them is a checker bug.

Case names for `--profile`: `corpus`, `linearizable:<model>:<ops>:<clients>` (model
`cas-register` or `kv`), `list-append:<ops>`, `total-order:<ops>`, `broadcast-elle:<ops>`.
`--worker` takes the same as JSON (`kind`, `ops`, and `model`, `clients`, `budget_s` for
linearizable) and prints the measured row as JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import io
import json
import os
import platform
import pstats
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from gen_histories import read_elements, register_history, tob_history

from tobtest.checker.linearizable import check as check_linearizable
from tobtest.checker.list_append import check as check_list_append
from tobtest.checker.list_append import check_broadcast
from tobtest.checker.list_append_gen import generate_history as list_append_history
from tobtest.checker.total_order import check as check_total_order
from tobtest.histories.formats import read_history
from tobtest.histories.op import Op

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "porcupine-etcd"
OUT = REPO / "bench" / "out" / "checkers.json"
ETCD_READING: dict[str, Any] = {
    "model": "cas-register",
    "fail_means": "returned-false",
    "nil_read": "no-value",
    "initial": None,
}
KV_KEYS = 8  # "kv" cases spread the same register workload over this many keys
TOB_READS = 100  # reads per TOB history, whatever its size (gen_histories says why)
WORKER_TIMEOUT_S = 900  # a case that takes longer is reported as such, not waited for
CORPUS_TARGET_S = 1.0
LIST_APPEND_1M_TARGET_S = 10.0
GROWTH_LIMIT = 15.0  # time(10n) / time(n): 10 is linear; up to 1.5x linear counts as close


@dataclass(frozen=True)
class Plan:
    """Which cases a run measures."""

    lin: list[tuple[str, int, int]]  # (model, ops, clients)
    grow: tuple[int, ...]  # sizes for list-append, total-order and broadcast-elle
    lin_budget_s: float


FULL = Plan(
    lin=[
        (m, n, c)
        for m in ("cas-register", "kv")
        for c in (10, 50)
        for n in (1_000, 10_000, 100_000)
    ],
    grow=(10_000, 100_000, 1_000_000),
    lin_budget_s=10.0,
)
QUICK = Plan(
    lin=[("cas-register", 1_000, 10), ("kv", 1_000, 50)], grow=(1_000, 10_000), lin_budget_s=2.0
)


def _timed(
    check: Callable[[], dict[str, Any]], repeats: int = 3
) -> tuple[float, float, dict[str, Any]]:
    """The best wall time of up to `repeats` runs (stopping once 2 s are spent), that run's
    CPU time (less sensitive to other processes on a shared machine) and the last result."""
    best_s, best_cpu_s, spent_s, result = float("inf"), 0.0, 0.0, {}
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = check()
        elapsed_s = time.perf_counter() - started
        if elapsed_s < best_s:
            best_s, best_cpu_s = elapsed_s, time.process_time() - started_cpu
        spent_s += elapsed_s
        if spent_s > 2.0:
            break
    return best_s, best_cpu_s, result


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _generate(case: dict[str, Any]) -> list[Op]:
    rng = random.Random(case.get("seed", 1))
    kind, n_ops = case["kind"], case["ops"]
    if kind == "linearizable":
        keys = KV_KEYS if case["model"] == "kv" else 1
        return register_history(n_ops, case["clients"], keys, rng)
    if kind == "list-append":
        return list_append_history(n_ops // 2, n_clients=10, n_keys=10, rng=rng)
    return tob_history(n_ops, n_clients=10, n_reads=TOB_READS, rng=rng)


def _checker(case: dict[str, Any], history: list[Op]) -> Callable[[], dict[str, Any]]:
    kind = case["kind"]
    if kind == "linearizable":
        opts = {**ETCD_READING, "model": case["model"], "time_limit_s": case["budget_s"]}
        return lambda: check_linearizable(history, **opts)
    if kind == "list-append":
        return lambda: check_list_append(history)
    if kind == "total-order":
        return lambda: check_total_order(history)
    return lambda: check_broadcast(history)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """One generated case, in this process: generate, then time the check."""
    gc.disable()  # generation only: the check runs with the collector on, as in the CLI
    started = time.perf_counter()
    history = _generate(case)
    gen_s = time.perf_counter() - started
    gc.enable()
    gc.collect()
    rss_gen_mb = _rss_mb()
    repeats = 1 if case["kind"] == "linearizable" and case["ops"] >= 100_000 else 3
    check_s, cpu_s, result = _timed(_checker(case, history), repeats)
    row: dict[str, Any] = {
        **case,
        "history_ops": len(history),
        "gen_s": round(gen_s, 3),
        "check_s": round(check_s, 4),
        "cpu_s": round(cpu_s, 4),
        "us_per_op": round(check_s / len(history) * 1e6, 3),
        "rss_after_gen_mb": round(rss_gen_mb, 1),
        "rss_peak_mb": round(_rss_mb(), 1),
        "valid": result["valid"],
    }
    if case["kind"] == "linearizable":
        row.update(
            calls=result.get("calls"),
            partitions=result.get("partitions"),
            # On a timeout the checker counts no configurations (only finished keys'): say so.
            configurations=result.get("configurations") if result["valid"] != "unknown" else None,
            error=result.get("error"),
        )
    elif case["kind"] in ("total-order", "broadcast-elle"):
        row["read_elements"] = read_elements(history)
    return row


def _corpus_files() -> list[tuple[Path, str]]:
    rows = (CORPUS / "VERDICTS.tsv").read_text().splitlines()[1:]
    return [(CORPUS / name, verdict.strip()) for name, verdict in (r.split("\t") for r in rows)]


def run_corpus(repeats: int = 3) -> dict[str, Any]:
    """Every porcupine-etcd file: parse time and check time (best of `repeats`) per file."""
    files = []
    for path, expected in _corpus_files():
        started = time.perf_counter()
        ops = read_history(path)
        parse_s = time.perf_counter() - started
        check_s, cpu_s, result = _timed(partial(check_linearizable, ops, **ETCD_READING), repeats)
        want = {"linearizable": True, "not-linearizable": False}.get(expected, True)
        files.append(
            {
                "file": path.name,
                "calls": result.get("calls", 0),
                "parse_s": round(parse_s, 5),
                "check_s": round(check_s, 5),
                "cpu_s": round(cpu_s, 5),
                "valid": result["valid"],
                "expected": want,
            }
        )
    worst = max(files, key=lambda f: f["check_s"])
    return {
        "kind": "corpus",
        "files": len(files),
        "calls": sum(f["calls"] for f in files),
        "parse_s": round(sum(f["parse_s"] for f in files), 4),
        "check_s": round(sum(f["check_s"] for f in files), 4),
        "cpu_s": round(sum(f["cpu_s"] for f in files), 4),
        "worst_file": worst["file"],
        "worst_check_s": worst["check_s"],
        "worst_calls": worst["calls"],
        "verdict_mismatches": [f["file"] for f in files if f["valid"] != f["expected"]],
        "per_file": files,
    }


def _in_subprocess(case: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(case)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {**case, "valid": "unknown", "error": f"case took over {WORKER_TIMEOUT_S} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {**case, "valid": "unknown", "error": f"worker failed: {tail[0]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _growth(rows: list[dict[str, Any]]) -> None:
    for prev, row in zip(rows, rows[1:], strict=False):
        if prev.get("check_s") and row.get("check_s"):
            row["growth"] = round(row["check_s"] / prev["check_s"], 2)


def collect(quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    results: dict[str, Any] = {}
    if (CORPUS / "VERDICTS.tsv").exists():
        progress("corpus")
        results["corpus"] = _in_subprocess({"kind": "corpus", "repeats": 1 if quick else 3})
    else:
        results["corpus"] = {"skipped": f"porcupine-etcd corpus not found at {CORPUS}"}
    results["linearizable"] = []
    for model, n_ops, clients in plan.lin:
        progress(f"linearizable {model} {n_ops} ops {clients} clients")
        case = {"kind": "linearizable", "model": model, "ops": n_ops, "clients": clients}
        results["linearizable"].append(_in_subprocess({**case, "budget_s": plan.lin_budget_s}))
    for kind in ("list-append", "total-order", "broadcast-elle"):
        rows = []
        for n_ops in plan.grow:
            progress(f"{kind} {n_ops} ops")
            rows.append(_in_subprocess({"kind": kind, "ops": n_ops}))
        _growth(rows)
        results[kind] = rows
    return results


def targets(results: dict[str, Any], quick: bool = False) -> list[dict[str, Any]]:
    """Each target with the measured figure and PASS / MISS (or SKIP when not measured)."""
    out = []

    def add(name: str, measured: Any, ok: bool | None) -> None:
        verdict = "SKIP" if ok is None else "PASS" if ok else "MISS"
        out.append({"target": name, "measured": measured, "result": verdict})

    corpus = results["corpus"]
    if "check_s" in corpus:
        add(
            f"etcd corpus checks in < {CORPUS_TARGET_S:g} s",
            f"{corpus['check_s']:.3f} s",
            corpus["check_s"] < CORPUS_TARGET_S,
        )
        add(
            "etcd corpus verdicts as expected",
            f"{len(corpus['verdict_mismatches'])} wrong",
            not corpus["verdict_mismatches"],
        )
    else:
        add(f"etcd corpus checks in < {CORPUS_TARGET_S:g} s", "not run", None)
    million = [r for r in results["list-append"] if r["ops"] == 1_000_000]
    if million and "check_s" in million[0]:
        s = million[0]["check_s"]
        add(
            f"1M ops of list-append in < {LIST_APPEND_1M_TARGET_S:g} s",
            f"{s:.2f} s",
            s < LIST_APPEND_1M_TARGET_S,
        )
    else:
        add(f"1M ops of list-append in < {LIST_APPEND_1M_TARGET_S:g} s", "not run (--quick)", None)
    for kind in ("list-append", "total-order", "broadcast-elle"):
        growths = [r["growth"] for r in results[kind] if "growth" in r]
        worst = max(growths, default=None)
        # Below 10k ops a check takes milliseconds: fixed costs and noise, not growth.
        judged = worst is not None and not quick
        add(
            f"{kind} grows close to linearly (x{GROWTH_LIMIT:g} per 10x ops at most)",
            f"x{worst}" + ("" if judged else " (--quick: too small to judge)"),
            worst <= GROWTH_LIMIT if judged and worst is not None else None,
        )
    generated = [
        r
        for k in ("linearizable", "list-append", "total-order", "broadcast-elle")
        for r in results[k]
    ]
    false = [r for r in generated if r.get("valid") is False]
    add("no valid generated history found invalid", f"{len(false)} false", not false)
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 100 else f"{value:.2f}" if value >= 1 else f"{value:.4f}"
    return "-" if value is None else str(value)


def table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [columns] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    left = [c in ("target", "model", "worst_file") for c in columns]  # words, not numbers
    lines = [title] + [
        "  ".join(
            v.ljust(w) if lj else v.rjust(w) for v, w, lj in zip(row, widths, left, strict=True)
        )
        for row in cells
    ]
    return "\n".join(lines)


def _words(text: str) -> list[str]:
    return text.split()


CORPUS_COLUMNS = _words("files calls parse_s check_s cpu_s worst_file worst_calls worst_check_s")
LIN_COLUMNS = _words(
    "model clients ops calls partitions gen_s check_s cpu_s us_per_op valid configurations "
    "rss_peak_mb"
)
GROWTH_COLUMNS = _words(
    "ops history_ops read_elements gen_s check_s cpu_s us_per_op growth rss_after_gen_mb "
    "rss_peak_mb valid"
)
GROWTH_NOTES = {
    "list-append": "list_append_gen, 10 clients, 10 keys; txns = ops / 2",
    "total-order": f"gen_histories.tob_history, 10 clients, {TOB_READS} reads + 3 final",
    "broadcast-elle": "the same TOB histories through list-append's check_broadcast",
}


def render(report: dict[str, Any]) -> str:
    r = report["results"]
    parts = []
    corpus = r["corpus"]
    if "skipped" in corpus:
        parts.append(f"Linearizability, porcupine-etcd corpus: SKIPPED ({corpus['skipped']})")
    else:
        title = "Linearizability, porcupine-etcd corpus (cas-register, etcd reading)"
        parts.append(table(title, [corpus], CORPUS_COLUMNS))
    budget = (QUICK if report["quick"] else FULL).lin_budget_s
    title = f"Linearizability, generated registers (kv: {KV_KEYS} keys; budget {budget:g} s)"
    parts.append(table(title, r["linearizable"], LIN_COLUMNS))
    for kind, note in GROWTH_NOTES.items():
        cols = [c for c in GROWTH_COLUMNS if kind != "list-append" or c != "read_elements"]
        parts.append(table(f"{kind} ({note})", r[kind], cols))
    parts.append(table("Targets", report["targets"], ["target", "measured", "result"]))
    return "\n\n".join(parts)


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        model = names[0] if names else model
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": _commit(),
    }


def _commit() -> str:
    """The checked-out commit, and whether checker/ differs from it (others edit it)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "checker"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (checker/ has uncommitted changes)" if dirty else "")


def profile(name: str, out_dir: Path) -> str:
    """cProfile of one case's check (generation excluded); the top functions as text."""
    kind, *fields = name.split(":")
    if kind == "corpus":
        histories = [read_history(p) for p, _ in _corpus_files()]

        def run() -> Any:
            return [check_linearizable(h, **ETCD_READING) for h in histories]

    else:
        case: dict[str, Any] = {"kind": kind, "ops": int(fields[-1])}
        if kind == "linearizable":
            model, n_ops, clients = fields
            case.update(model=model, ops=int(n_ops), clients=int(clients))
            case["budget_s"] = FULL.lin_budget_s
        run = _checker(case, _generate(case))
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.runcall(run)
    elapsed_s = time.perf_counter() - started
    text = io.StringIO()
    text.write(f"profile of {name}: {elapsed_s:.2f} s under cProfile\n")
    for key in ("tottime", "cumulative"):
        text.write(f"\n--- top 20 by {key} ---\n")
        pstats.Stats(prof, stream=text).strip_dirs().sort_stats(key).print_stats(20)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"profile-{name.replace(':', '-')}.txt"
    path.write_text(text.getvalue())
    return f"{text.getvalue()}\nwritten to {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON")
    parser.add_argument("--profile", metavar="CASE", help="cProfile one case (see doc)")
    parser.add_argument("--worker", metavar="JSON", help="run one case here; JSON in and out")
    parser.add_argument("--porcupine", metavar="DIR", type=Path,
                        help="beside Porcupine, with the built harness in DIR "
                        "(bench/checkers_compare.py)")  # fmt: skip
    parser.add_argument("--edn", action="store_true", help="the 17,700-line EDN timing alone")
    args = parser.parse_args(argv)
    if args.porcupine or args.edn:
        import checkers_compare

        result = {"edn": checkers_compare.edn_timing()}
        if args.porcupine:
            result.update(checkers_compare.compare(args.porcupine.resolve()))
        print(checkers_compare.render(result))
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        print(f"{stamp}, commit {_commit()}, load {[round(x, 2) for x in os.getloadavg()]}")
        return 0
    if args.worker:
        case = json.loads(args.worker)
        row = run_corpus(case["repeats"]) if case["kind"] == "corpus" else run_case(case)
        print(json.dumps(row))
        return 0
    if args.profile:
        print(profile(args.profile, args.out.parent))
        return 0
    started = time.perf_counter()
    command = " ".join([".venv/bin/python", "bench/checkers.py", *(argv or sys.argv[1:])])
    report: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick,
        "machine": machine(),
    }
    report["results"] = collect(args.quick, lambda what: print(f"  running {what}", flush=True))
    report["targets"] = targets(report["results"], args.quick)
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print()
    print(render(report))
    print(
        f"\n{report['date']}, {report['machine']['cores']} cores, {report['machine']['cpu']}, "
        f"load {report['machine']['load_avg_at_start']}, commit {report['machine']['commit']}; "
        f"total {report['total_s']} s; "
        f"JSON in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
