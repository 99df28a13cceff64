"""How big `history.jsonl` gets per op, and how long it takes to check, as runs grow.

    .venv/bin/python bench/history_size.py --ops 10000,100000          # simulated runs
    .venv/bin/python bench/history_size.py --ops 10000 --whole-reads   # as before read-from
    .venv/bin/python bench/history_size.py --run store/paxos-broadcast-explore/latest

Simulated: `tobtest sim`'s machinery (`sim_run.simulate_history`, the same clients, cores
and node-side answers as `tobtest sim --ops N`), one seed per size, written to
`bench/out/history_size/<ops>/history.jsonl`, then read back and checked by total-order
and broadcast-elle (`check_all`, as `tobtest check --checker ...`). `ops` are client ops
(an invocation and its completion: two history entries); `bytes_per_op` is the file's size
over them. A stored run (`--run`, a folder `tobtest run` wrote): the same figures from its
history.jsonl, plus the whole folder's size. Results also go to
`bench/out/history_size.json`.

With reads from a position a read records what is new to its process at that node, so the
bytes per op stay flat as the run grows: each (process, node) pair's reads add up to one
copy of the log. Whole-log reads (`--whole-reads`) grow with the log, so their bytes per
op grow with the run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tobtest.checker.compose import check_all
from tobtest.histories.formats import read_history, write_jsonl
from tobtest.histories.op import NEMESIS

OUT = Path(__file__).resolve().parent / "out"
CHECKERS = ("total-order", "broadcast-elle")


def measure_history(path: Path, checkers: tuple[str, ...]) -> dict[str, Any]:
    """Size, op counts and check times of one history.jsonl."""
    size = path.stat().st_size
    started = time.perf_counter()
    history = read_history(path)
    read_s = time.perf_counter() - started
    client = [op for op in history if op.process != NEMESIS]
    ops = sum(1 for op in client if op.type == "invoke")
    reads = [op for op in client if op.f == "read" and op.type == "ok"]
    started = time.perf_counter()
    results = check_all(history, checkers)
    check_s = time.perf_counter() - started
    return {
        "bytes": size,
        "entries": len(history),
        "ops": ops,
        "bytes_per_op": round(size / max(ops, 1), 1),
        "reads_ok": len(reads),
        "suffix_reads": sum(1 for op in reads if op.extra.get("offset")),
        "read_s": round(read_s, 2),
        "check_s": round(check_s, 2),
        "checker_s": {k: r.get("elapsed_s") for k, r in results["checkers"].items()},
        "valid": results["valid"],
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def simulated(ops: int, args: argparse.Namespace) -> dict[str, Any]:
    from tobtest.sim_run import SimSpec, simulate_history

    spec = SimSpec(
        protocol=args.protocol, seed=args.seed, ops=ops, time_ms=3_600_000.0,
        rate=args.rate, concurrency=args.concurrency, read_fraction=args.read_fraction,
        faults=tuple(f for f in args.faults.split(",") if f), net=args.net,
        read_from=not args.whole_reads, max_events=10**9, wall_limit_s=86_400.0,
    )  # fmt: skip
    started = time.perf_counter()
    history, cut_short = simulate_history(spec)
    sim_s = time.perf_counter() - started
    folder = OUT / "history_size" / f"{ops}{'-whole' if args.whole_reads else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "history.jsonl"
    write_jsonl(history, path)
    del history
    row = {"source": f"sim {ops}", "sim_s": round(sim_s, 1), "cut_short": cut_short}
    return {**row, **measure_history(path, CHECKERS if not args.total_order_only else CHECKERS[:1])}


def stored(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    run_dir = run_dir.resolve()
    du = subprocess.run(["du", "-sb", str(run_dir)], capture_output=True, text=True, check=True)
    row = {"source": str(run_dir), "store_bytes": int(du.stdout.split()[0])}
    checkers = CHECKERS if not args.total_order_only else CHECKERS[:1]
    return {**row, **measure_history(run_dir / "history.jsonl", checkers)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="", help="comma list of simulated run sizes")
    parser.add_argument("--run", action="append", default=[], help="a stored run folder")
    parser.add_argument("--protocol", default="multipaxos")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--read-fraction", type=float, default=0.1)
    parser.add_argument("--faults", default="partition,crash,pause")
    parser.add_argument("--net", default="lossy")
    parser.add_argument("--whole-reads", action="store_true")
    parser.add_argument(
        "--total-order-only", action="store_true", help="check with total-order alone"
    )
    args = parser.parse_args(argv)
    rows = [simulated(int(n), args) for n in args.ops.split(",") if n]
    rows += [stored(Path(r), args) for r in args.run]
    for row in rows:
        print(json.dumps(row), flush=True)
    OUT.mkdir(exist_ok=True)
    results = OUT / "history_size.json"
    previous = json.loads(results.read_text()) if results.exists() else []
    results.write_text(json.dumps(previous + rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
