"""Soak: the correct nodes under every nemesis alone and all together, all three protocols,
several seeds each. Every run must be valid; a single anomaly is a bug in tobtest's node.

    .venv/bin/python bench/soak.py                  # 3 protocols x 9 nemesis sets x 3 seeds
    .venv/bin/python bench/soak.py --seeds 1 --time-limit 10
    .venv/bin/python bench/soak.py --nemesis all --seeds 7   # the exploring nemesis alone
    .venv/bin/python bench/soak.py --protocol raft --every-workload --seeds 1 --parallel 1

Each run is a real cluster (3 nodes), bounded by its time limit; two runs go at once
(`--parallel`). The periodic nemeses run the broadcast workload with log and local reads
(`--every-workload`: every workload, as `all` does); `all` (the exploring nemesis) runs
every workload with its default reads: broadcast in every mode the protocol serves, txn, and
register (with lease reads where the protocol has them). After each run, any process whose
command line names the run's store folder is one left behind: it is listed, and counted.
Prints a table of runs, ops and verdicts, and writes bench/out/soak.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import run_tobtest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
NEMESES = ["partition", "kill", "pause", "clock", "link", "disk", "stall", "flip", "all"]
PROTOCOLS = ["paxos", "multipaxos", "raft"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds from this one on")
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--nemesis", action="append", help="only these nemesis sets")
    parser.add_argument(
        "--protocol", action="append", choices=PROTOCOLS, help="only these protocols"
    )
    parser.add_argument("--every-workload", action="store_true",
                        help="every workload under every nemesis set, not only `all`")  # fmt: skip
    args = parser.parse_args(argv)
    store = OUT / "soak-store"
    jobs = []
    for protocol in args.protocol or PROTOCOLS:
        for nemesis in args.nemesis or NEMESES:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                every = nemesis == "all" or args.every_workload
                workloads = ["broadcast", "txn", "register"] if every else ["broadcast"]
                for workload in workloads:
                    run_args = ["--protocol", protocol, "--nemesis", nemesis,
                                "--workload", workload, "--nemesis-interval", "3",
                                "--time-limit", f"{args.time_limit:g}", "--rate", "60"]  # fmt: skip
                    if workload == "broadcast" and nemesis != "all":
                        run_args += ["--read-mode", "local,log", "--read-fraction", "0.2"]
                    if workload == "register" and protocol in ("multipaxos", "raft"):
                        run_args += ["--read-mode", "log,lease"]
                    name = f"{protocol}-{workload}-{nemesis}-{seed}"
                    jobs.append((name, run_args, seed))
    results = []
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(run_and_look, a, seed, store, name) for name, a, seed in jobs]
        for future in futures:
            r = future.result()
            results.append(r)
            ops = r["ops"]
            print(f"{r['name']:<40} {r['valid']!s:<8} ok {ops.get('ok', 0):>5} "
                  f"fail {ops.get('fail', 0):>4} info {ops.get('info', 0):>4} "
                  f"faults {r['faults_applied']!s:>3} left {len(r['left']):>2} "
                  f"{', '.join(r['anomalies'])}", flush=True)  # fmt: skip
    invalid = [r for r in results if r["valid"] is not True]
    total_ops = sum(sum(r["ops"].values()) for r in results)
    left = [pid for r in results for pid in r["left"]]
    print(f"\n{len(results)} runs, {total_ops} ops, {len(results) - len(invalid)} valid, "
          f"{len(invalid)} not valid, {len(left)} processes left")  # fmt: skip
    for r in invalid:
        print(f"  NOT VALID: {r['name']} {r['valid']} {r['anomalies']} {r['store']}")
    for r in results:
        if r["left"]:
            print(f"  LEFT: {r['name']} {r['left']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps({"runs": results, "total_ops": total_ops,
                                               "processes_left": len(left)}, indent=1))  # fmt: skip
    return 0 if not invalid else 1


def run_and_look(args: list[str], seed: int, store: Path, name: str) -> dict[str, Any]:
    """One run, then the processes still alive whose command line names its folder."""
    result = run_tobtest(args, seed, store, name)
    result["left"] = processes_naming(str(store / name))
    return result


def processes_naming(text: str) -> list[dict[str, Any]]:
    """Live processes whose command line holds `text` (Linux: /proc/<pid>/cmdline)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if text in argv:
            found.append({"pid": int(entry.name), "argv": argv.strip()[:200]})
    return found


if __name__ == "__main__":
    sys.exit(main())
