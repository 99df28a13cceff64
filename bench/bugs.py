"""Do tobtest's checks catch the seeded bugs? Runs each bug's fault/workload recipe over
several seeds, with the bug and without it, and counts invalid verdicts.

    .venv/bin/python bench/bugs.py                     # every bug, 5 seeds each
    .venv/bin/python bench/bugs.py --bug no-dedupe --seeds 3
    .venv/bin/python bench/bugs.py --list
    .venv/bin/python bench/bugs.py --generic           # one configuration for every bug

`--generic` knows nothing of any bug: every bug of the catalogues (the classic fixtures,
the subtle ones, `SUBTLE_BUGS` in the protocol cores, and Raft's `BUGS`, which have no
recipe of their own) runs under the same command line
per protocol, the exploring nemesis with the default workload mix (`GENERIC`), and the
correct nodes run each protocol's command once per seed. It reports, per bug, the seeds
caught, the time from the start of the main phase to the first anomaly, and the kinds.

A bug is caught when `tobtest run` reports the buggy nodes invalid in at least 4 of 5 seeds
while the correct nodes pass the same runs (same seed, so the same fault schedule). Each
run is a real cluster, bounded by its time limit (at most 60 s of test time); two runs go
at once on a 2-core machine. Figures go to bench/out/bugs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import run_tobtest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"

# bug -> the `tobtest run` arguments that expose it (protocol, workload, nemesis, ...).
RECIPES: dict[str, list[str]] = {
    # per-slot Paxos (`node/protocols/paxos.py`)
    "deliver-on-arrival": ["--protocol", "paxos", "--nemesis", "partition,link",
                           "--nemesis-interval", "3", "--time-limit", "15", "--rate", "80"],
    # 15 s caught it in 4 of 5 seeds once; 25 s in 10 of 10
    "ack-on-choose": ["--protocol", "paxos", "--nemesis", "partition,link",
                      "--nemesis-interval", "3", "--time-limit", "25", "--rate", "80",
                      "--read-mode", "local,log", "--read-fraction", "0.3"],
    # a retried broadcast chosen twice: a cut-off node's stuck proposal for it wins a fresh
    # slot after the heal if it hears its old slot is taken before it catches up. A race
    # each partition may win or not (20 s at 3 s intervals: 3/5 once, 5/5 once; 40 s: 4/5),
    # so many short partitions give it more chances (4 to 13 values chosen twice a run).
    "no-dedupe": ["--protocol", "paxos", "--nemesis", "partition",
                  "--partition-shapes", "one,majority", "--nemesis-interval", "1.5",
                  "--time-limit", "40", "--rate", "80", "--op-timeout", "1"],
    # the node shell: replies before the log is synced; lost when a kill loses unsynced writes
    # (killing every node at once: a power cut of the whole cluster)
    "no-fsync": ["--protocol", "paxos", "--nemesis", "disk", "--nemesis-targets", "all",
                 "--nemesis-interval", "2", "--time-limit", "20", "--rate", "80"],
}  # fmt: skip
MULTIPAXOS_RECIPES: dict[str, list[str]] = {
    "ack-before-majority": ["--protocol", "multipaxos", "--nemesis", "partition",
                            "--partition-shapes", "primaries", "--nemesis-interval", "3",
                            "--time-limit", "20", "--rate", "80"],
    # the leader stalls with acks on their way, wakes cut off, and counts them as fresh
    "lease-from-ack": ["--protocol", "multipaxos", "--workload", "register",
                       "--read-mode", "lease", "--read-fraction", "0.6", "--nemesis", "stall",
                       "--link-delay-ms", "100", "--nemesis-interval", "2",
                       "--time-limit", "30", "--rate", "150"],
    # an acceptor that promised the new leader restarts on the old one's side, forgets, and
    # accepts the old leader's stale accepts
    "forget-promise": ["--protocol", "multipaxos", "--nemesis", "flip",
                       "--nemesis-interval", "3", "--time-limit", "20", "--rate", "50"],
}  # fmt: skip
# Raft's (`node/protocols/raft.py`): schedule files that build each bug's scenario step by
# step (no-truncate needs none: the generic configuration catches it).
RAFT_RECIPES: dict[str, list[str]] = {
    # a voter killed before the new leader's first append, restarted, asked again in the term
    "vote-not-persisted": ["--protocol", "raft", "--nemesis-schedule",
                           "examples/raft/vote-twice.yaml", "--time-limit", "60"],
    # Figure 8 of the Raft paper, with the leader cut off as soon as its commit index moves
    "commit-old-term": ["--protocol", "raft", "--nemesis-schedule", "examples/raft/figure8.yaml",
                        "--time-limit", "60", "--rate", "300", "--concurrency", "64",
                        "--op-timeout", "10"],
}  # fmt: skip


# The generic configuration: what a user gets from `tobtest run --nemesis all`, the same for
# every bug (only --protocol and --bug differ). Figures go to bench/out/bugs-generic.json.
# Sixteen clients keep proposals concurrent (duels, accepts in flight) while faults stall
# some of them; the workload's own default read mix (local, log, lease where served).
GENERIC: list[str] = ["--nemesis", "all", "--time-limit", "60", "--rate", "200",
                      "--concurrency", "16"]  # fmt: skip


def catalogue() -> dict[str, tuple[str, str]]:
    """bug -> (catalogue, protocol): the classic fixtures (their recipes' protocol) and
    the subtle ones each core lists in SUBTLE_BUGS."""
    import importlib

    bugs: dict[str, tuple[str, str]] = {}
    for bug, recipe in available_recipes().items():
        if bug not in RAFT_RECIPES:
            bugs[bug] = ("classic", recipe[recipe.index("--protocol") + 1])
    for protocol in ("paxos", "multipaxos"):
        module = importlib.import_module(f"tobtest.node.protocols.{protocol}")
        for bug in getattr(module, "SUBTLE_BUGS", ()):
            bugs[bug] = ("subtle", protocol)
    from tobtest.node.protocols import PROTOCOLS

    if "raft" in PROTOCOLS:  # Raft's own catalogue
        raft = importlib.import_module("tobtest.node.protocols.raft")
        for bug in getattr(raft, "BUGS", ()):
            bugs[bug] = ("raft", "raft")
    return bugs


def available_recipes() -> dict[str, list[str]]:
    from tobtest.node.protocols import PROTOCOLS

    recipes = dict(RECIPES)
    if "multipaxos" in PROTOCOLS:
        recipes.update(MULTIPAXOS_RECIPES)
    if "raft" in PROTOCOLS:
        recipes.update(RAFT_RECIPES)
    return recipes


def run_once(bug: str | None, args: list[str], seed: int, store: Path) -> dict[str, object]:
    name = f"{bug or 'correct'}-{seed}"
    result = run_tobtest([*args, *(["--bug", bug] if bug else [])], seed, store, name)
    result["bug"] = bug
    return result


def first_anomaly_s(store: str | None) -> float | None:
    """Seconds from the first client op to the op that completed the earliest anomaly."""
    if store is None:
        return None
    run = Path(store)
    results = json.loads((run / "results.json").read_text())
    times: dict[int, int] = {}
    start_ns: int | None = None
    with (run / "history.jsonl").open() as lines:
        for line in lines:
            try:
                op = json.loads(line)
            except ValueError:
                continue
            times[op["index"]] = op["time_ns"]
            if start_ns is None and op.get("process") != "nemesis":
                start_ns = op["time_ns"]
    ends = [
        max(times[i] for i in anomaly["ops"] if i in times)
        for checker in results.get("checkers", {}).values()
        if isinstance(checker.get("anomalies"), dict)
        for found in checker["anomalies"].values()
        for anomaly in found
        if isinstance(anomaly, dict) and any(i in times for i in anomaly.get("ops") or [])
    ]
    if not ends or start_ns is None:
        return None
    return round((min(ends) - start_ns) / 1e9, 1)


def generic(args: argparse.Namespace) -> int:
    bugs = catalogue()
    chosen = args.bug or list(bugs)
    unknown = [b for b in chosen if b not in bugs]
    if unknown:
        print(f"unknown bug(s) {unknown}; known: {list(bugs)}", file=sys.stderr)
        return 2
    extra = ["--time-limit", str(args.time_limit)] if args.time_limit else []
    extra += args.tobtest_arg or []  # an ablation (e.g. --no-explore-feedback), labelled
    protocols = sorted({bugs[b][1] for b in chosen})
    seeds = range(1, args.seeds + 1)
    jobs = [(bug, bugs[bug][1], seed) for bug in chosen for seed in seeds]
    jobs += [(None, protocol, seed) for protocol in protocols for seed in seeds]
    store = OUT / "bugs-generic-store"
    results: list[dict[str, object]] = []

    def one(bug: str | None, protocol: str, seed: int) -> dict[str, object]:
        argv = [*GENERIC, *extra, "--protocol", protocol, *(["--bug", bug] if bug else [])]
        result = run_tobtest(argv, seed, store / (bug or f"correct-{protocol}"), f"s{seed}")
        result.update(bug=bug, protocol=protocol)
        result["first_anomaly_s"] = first_anomaly_s(result["store"])
        return result

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(one, *job) for job in jobs]
        for (bug, protocol, seed), future in zip(jobs, futures, strict=True):
            result = future.result()
            results.append(result)
            label = bug or f"correct {protocol}"
            kinds = ", ".join(result["anomalies"])  # type: ignore[arg-type]
            print(f"{label:<28} seed {seed}: {result['valid']!s:<8} first anomaly "
                  f"{result['first_anomaly_s']} s  {kinds}  ({result['seconds']} s)",
                  flush=True)  # fmt: skip
    summary = []
    print(f"\n{'bug':<28} {'catalogue':<9} {'protocol':<11} caught  first anomaly (s)  kinds")
    for bug in chosen:
        catalogue_name, protocol = bugs[bug]
        runs = [r for r in results if r["bug"] == bug]
        caught = [r for r in runs if r["valid"] is False]
        firsts = [r["first_anomaly_s"] for r in caught]
        found = sorted({str(k) for r in caught for k in r["anomalies"]})  # type: ignore[attr-defined]
        summary.append({"bug": bug, "catalogue": catalogue_name, "protocol": protocol,
                        "caught": len(caught), "runs": len(runs), "first_anomaly_s": firsts,
                        "kinds": found})  # fmt: skip
        print(f"{bug:<28} {catalogue_name:<9} {protocol:<11} {len(caught)}/{len(runs)}    "
              f"{firsts}  {', '.join(found)}")  # fmt: skip
    for protocol in protocols:
        runs = [r for r in results if r["bug"] is None and r["protocol"] == protocol]
        flagged = sum(1 for r in runs if r["valid"] is not True)
        summary.append({"bug": None, "protocol": protocol, "flagged": flagged, "runs": len(runs)})
        print(f"correct {protocol:<20} flagged {flagged}/{len(runs)}")
    OUT.mkdir(parents=True, exist_ok=True)
    out = {"generic": GENERIC + extra, "summary": summary, "runs": results}
    (OUT / "bugs-generic.json").write_text(json.dumps(out, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bug", action="append", help="only these bugs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--list", action="store_true")
    parser.add_argument(
        "--generic",
        action="store_true",
        help="one configuration (GENERIC) for every bug of both catalogues",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="with --generic: override its time limit (quick looks)",
    )
    parser.add_argument(
        "--tobtest-arg",
        action="append",
        metavar="ARG",
        help="with --generic: one more `tobtest run` argument, for ablations "
        "(--tobtest-arg=--no-explore-feedback); stored with the figures",
    )
    args = parser.parse_args(argv)
    if args.generic:
        return generic(args)
    recipes = available_recipes()
    if args.list:
        for bug, recipe in recipes.items():
            print(f"{bug}: tobtest run {' '.join(recipe)} --bug {bug}")
        return 0
    bugs = args.bug or list(recipes)
    unknown = [b for b in bugs if b not in recipes]
    if unknown:
        parser.error(f"unknown bug(s) {unknown}; known: {list(recipes)}")
    store = OUT / "bugs-store"
    jobs = [(bug, seed, with_bug) for bug in bugs for seed in range(1, args.seeds + 1)
            for with_bug in (True, False)]  # fmt: skip
    results: list[dict[str, object]] = []
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [
            pool.submit(run_once, bug if with_bug else None, recipes[bug], seed, store / bug)
            for bug, seed, with_bug in jobs
        ]
        for (bug, seed, with_bug), future in zip(jobs, futures, strict=True):
            result = future.result()
            result["recipe_bug"] = bug
            results.append(result)
            label = bug if with_bug else f"{bug} (correct)"
            kinds = ", ".join(result["anomalies"])  # type: ignore[arg-type]
            print(f"{label:<32} seed {seed}: {result['valid']!s:<8} {kinds}  "
                  f"{result['seconds']} s", flush=True)  # fmt: skip
    summary = []
    print(f"\n{'bug':<22} {'invalid with bug':>17} {'invalid correct':>16}  caught")
    for bug in bugs:
        buggy = [r for r in results if r["recipe_bug"] == bug and r["bug"] == bug]
        correct = [r for r in results if r["recipe_bug"] == bug and r["bug"] is None]
        caught = sum(1 for r in buggy if r["valid"] is False)
        false_alarms = sum(1 for r in correct if r["valid"] is False)
        ok = caught >= 0.8 * len(buggy) and false_alarms == 0
        summary.append({"bug": bug, "caught": caught, "runs": len(buggy), "pass": ok,
                        "false_alarms": false_alarms, "recipe": recipes[bug]})  # fmt: skip
        print(f"{bug:<22} {caught:>12}/{len(buggy):<4} {false_alarms:>11}/{len(correct):<4}  "
              f"{'yes' if ok else 'NO'}")  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bugs.json").write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    return 0 if all(s["pass"] for s in summary) else 1


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
