"""Does today's periodic all-faults run catch the subtle seeded bugs? Runs each bug under
every nemesis at once (the list `--nemesis all` means today), default workload, and counts
invalid verdicts. The subtle catalogue (PROTOCOL.md, "Subtle seeded bugs") is meant to pass
here: a bug this run catches in 2 or more of 3 seeds is too loud for it.

    .venv/bin/python bench/baseline_all.py                           # every subtle bug, 3 seeds
    .venv/bin/python bench/baseline_all.py --bug commit-any-ballot --seeds 5
    .venv/bin/python bench/baseline_all.py --first-seed 4 --seeds 2     # seeds 4 and 5 too
    .venv/bin/python bench/baseline_all.py --correct                 # the correct nodes too
    .venv/bin/python bench/baseline_all.py --list

Each run is
`tobtest run --protocol P --nemesis partition,kill,pause,clock,link,disk,stall,flip
--time-limit 30 --seed S --bug NAME`; lease bugs also run with `--workload register
--read-mode lease` (the variant "lease"). Two runs go at once (a 2-core machine). Results are
merged by (bug, variant, seed) into bench/out/baseline_all.json, so batches accumulate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import run_tobtest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
STORE = Path("/tmp/subtle-store")
# Today's `--nemesis all`, spelled out: `all` is about to mean more.
NEMESES = "partition,kill,pause,clock,link,disk,stall,flip"
TIME_LIMIT_S = 30

# bug -> protocol; lease bugs also get the lease-read variant.
SUBTLE: dict[str, str] = {
    "adopt-first-accepted": "paxos",
    "chosen-from-promises": "paxos",
    "accept-vs-accepted": "paxos",
    "commit-any-ballot": "multipaxos",
    "max-slot-chosen": "multipaxos",
    "lease-before-barrier": "multipaxos",
}
LEASE_BUGS = {"lease-before-barrier"}
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "lease": ["--workload", "register", "--read-mode", "lease"],
}


def args_for(protocol: str, variant: str, bug: str | None) -> list[str]:
    base = ["--protocol", protocol, "--nemesis", NEMESES, "--time-limit", str(TIME_LIMIT_S)]
    return [*base, *VARIANTS[variant], *(["--bug", bug] if bug else [])]


def jobs_for(bugs: list[str], seeds: list[int], correct: bool) -> list[tuple[str, str, int, bool]]:
    """(bug, variant, seed, with_bug) for every run asked for."""
    jobs = []
    for bug in bugs:
        variants = ["default", "lease"] if bug in LEASE_BUGS else ["default"]
        for variant in variants:
            for seed in seeds:
                jobs.append((bug, variant, seed, True))
                if correct:
                    jobs.append((bug, variant, seed, False))
    return jobs


def run_job(bug: str, variant: str, seed: int, with_bug: bool) -> dict[str, Any]:
    protocol = SUBTLE[bug]
    name = f"{bug if with_bug else 'correct-' + protocol}-{variant}-{seed}"
    result = run_tobtest(args_for(protocol, variant, bug if with_bug else None), seed, STORE,
                         name)  # fmt: skip
    result.update(bug=bug, variant=variant, with_bug=with_bug, protocol=protocol)
    return result


def load(path: Path) -> dict[tuple[str, str, int, bool], dict[str, Any]]:
    if not path.exists():
        return {}
    runs = json.loads(path.read_text()).get("runs", [])
    return {(r["bug"], r["variant"], r["seed"], r["with_bug"]): r for r in runs}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in runs:
        row = rows.setdefault((r["bug"], r["variant"]), {
            "bug": r["bug"], "protocol": r["protocol"], "variant": r["variant"],
            "caught": 0, "runs": 0, "correct_flagged": 0, "correct_runs": 0})  # fmt: skip
        if r["with_bug"]:
            row["runs"] += 1
            row["caught"] += r["valid"] is False
        else:
            row["correct_runs"] += 1
            row["correct_flagged"] += r["valid"] is False
    return sorted(rows.values(), key=lambda row: (row["protocol"], row["bug"], row["variant"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bug", action="append", help="only these bugs")
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=1, help="seeds from this one on")
    parser.add_argument("--correct", action="store_true", help="also run the correct nodes")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="only this variant")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for bug, protocol in SUBTLE.items():
            print(f"{bug}: tobtest run {' '.join(args_for(protocol, 'default', bug))} --seed S")
        return 0
    bugs = args.bug or list(SUBTLE)
    unknown = [b for b in bugs if b not in SUBTLE]
    if unknown:
        parser.error(f"unknown bug(s) {unknown}; known: {list(SUBTLE)}")
    jobs = jobs_for(bugs, list(range(args.first_seed, args.first_seed + args.seeds)), args.correct)
    if args.variant:
        jobs = [j for j in jobs if j[1] == args.variant]
    path = OUT / "baseline_all.json"
    done = load(path)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(run_job, *job) for job in jobs]
        for job, future in zip(jobs, futures, strict=True):
            result = future.result()
            done[job] = result
            label = job[0] if job[3] else f"{job[0]} (correct)"
            kinds = ", ".join(result["anomalies"])
            print(f"{label:<34} {job[1]:<8} seed {job[2]}: {result['valid']!s:<8} {kinds}  "
                  f"{result['seconds']} s", flush=True)  # fmt: skip
            OUT.mkdir(parents=True, exist_ok=True)
            runs = list(done.values())
            path.write_text(json.dumps({"summary": summarize(runs), "runs": runs}, indent=1))
    print(f"\n{'bug':<24} {'protocol':<11} {'variant':<8} caught  correct flagged")
    for row in summarize(list(done.values())):
        correct = f"{row['correct_flagged']}/{row['correct_runs']}" if row["correct_runs"] else "-"
        print(f"{row['bug']:<24} {row['protocol']:<11} {row['variant']:<8} "
              f"{row['caught']}/{row['runs']:<5} {correct}")  # fmt: skip
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
