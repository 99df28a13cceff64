"""What does skipping Phase 1 buy? Per-slot Paxos, Multi-Paxos and Raft, measured in one run.

    .venv/bin/python bench/protocols.py              # 3 and 5 nodes, concurrency 1 and 16
    .venv/bin/python bench/protocols.py --quick      # 3 nodes only, shorter runs, one seed
    .venv/bin/python bench/protocols.py --part failover --route leader   # failover alone
    .venv/bin/python bench/protocols.py --rescan bench/out/protocols-leader.json

The same seeded broadcast workload (broadcasts only, closed loop: each client sends its next
broadcast when the last is acked), no faults, on real processes, against every mode: median
and p99 broadcast latency, acked broadcasts/s, peer messages per delivered broadcast, Phase
1 rounds (Raft: elections started) per run and per delivered broadcast, round trips per
delivered broadcast by phase (`round_trips`), and the multipaxos/paxos and raft/multipaxos
ratios. Then the same under `--nemesis partition`: the fraction of broadcasts acked.

Then failover (bench/failover.py says how it is timed): 3 nodes, 16 clients, under each
schedule of bench/schedules/ (kill the node that claims to lead, or isolate it; hold 4 s;
repair; repeat), several seeds, the median gap from the fault to the next acked broadcast.
Per-slot Paxos has no leader: there the schedule's `leader` is a random node.

Every run is bounded by its time limit (about 15 min in all, 4 min with `--quick`). Prints
the tables and writes bench/out/protocols-<route>[-<part>][-quick].json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tobtest.config import TestConfig
from tobtest.histories.op import pair_ops
from tobtest.nemesis.schedule_file import load_schedule
from tobtest.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from failover import FAULTS, failover_gaps, summarize  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
PROTOCOLS = ("paxos", "multipaxos", "raft")


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(protocol: str, nodes: int, concurrency: int, nemesis: list[str], seed: int,
            time_limit_s: float, store: Path, route_to_leader: bool,
            fault: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One run; with `fault` (a key of failover.FAULTS), under that fault's schedule file
    instead of `nemesis`, and the row holds each fault's failover gap."""
    schedule = None if fault is None else FAULTS[fault][0]
    if schedule is not None:
        nemesis = load_schedule(schedule, nodes).nemeses()
    label = f"failover-{fault}" if fault else "+".join(nemesis) or "none"
    config = TestConfig(
        nodes=nodes,
        protocol=protocol,
        nemesis=nemesis,
        nemesis_interval_s=3.0,
        time_limit_s=time_limit_s,
        rate=100_000.0,  # closed loop: the pacer never holds a client back
        concurrency=concurrency,
        read_fraction=0.0,
        seed=seed,
        store=str(store),
        name=f"{protocol}-n{nodes}-c{concurrency}-{label}",
        route_to_leader=route_to_leader,
        nemesis_schedule=None if schedule is None else str(schedule),
    )
    result = asyncio.run(Runner(config).run())
    history = [op for op in json_lines(result.run_path / "history.jsonl")]
    latencies_ms, acked, invoked = [], 0, 0
    for invoke, done in pair_ops(history):
        if invoke.f != "broadcast" or invoke.extra.get("final"):
            continue
        invoked += 1
        if done is not None and done.type == "ok":
            acked += 1
            latencies_ms.append((done.time_ns - invoke.time_ns) / 1e6)
    statuses = [
        json.loads(p.read_text()) for p in sorted((result.run_path / "nodes").glob("*.status.json"))
    ]
    messages = sum(sum((s.get("messages_sent") or {}).values()) for s in statuses)
    by_type: dict[str, int] = {}
    for status in statuses:
        for kind, count in (status.get("messages_sent") or {}).items():
            by_type[kind] = by_type.get(kind, 0) + count
    phase1 = sum(s.get("phase1_rounds", 0) or 0 for s in statuses)
    delivered = max((s.get("delivered", 0) or 0) for s in statuses) if statuses else 0
    return {
        "protocol": protocol,
        "nodes": nodes,
        "concurrency": concurrency,
        "seed": seed,
        "nemesis": [label] if fault else nemesis,
        "valid": result.valid,
        "invoked": invoked,
        "acked": acked,
        "acked_fraction": acked / invoked if invoked else float("nan"),
        "latency_ms_p50": round(statistics.median(latencies_ms), 3) if latencies_ms else None,
        "latency_ms_p99": round(quantile(latencies_ms, 0.99), 3) if latencies_ms else None,
        "throughput_per_s": round(acked / time_limit_s, 1),
        "messages_per_delivered": round(messages / delivered, 2) if delivered else None,
        "phase1_per_delivered": round(phase1 / delivered, 4) if delivered else None,
        "phase1_rounds": phase1,
        "messages_by_type": by_type,
        "round_trips_per_delivered": round_trips(by_type, nodes, delivered),
        "delivered": delivered,
        "failover": failover_gaps(history, fault) if fault else None,
        "store": str(result.run_path),
    }


# Peer messages of a proposer's exchange with the acceptors, by phase: a Phase 1 round trip
# (prepare/promise; Raft's request_vote/vote) and a Phase 2 one (accept/accepted; Raft's
# append/append_reply), each a message to and from every peer. Decisions, commit notices,
# heartbeats and forwards to the leader are left out.
PHASE_MESSAGES = {
    "phase1": ("prepare", "promise", "request_vote", "vote"),
    "phase2": ("accept", "accepted", "append", "append_reply"),
}


def round_trips(by_type: dict[str, int], nodes: int, delivered: int) -> dict[str, float | None]:
    """Round trips per delivered broadcast, by phase: the phase's messages over 2 (n - 1)."""
    per = 2 * (nodes - 1) * delivered
    return {
        phase: round(sum(by_type.get(k, 0) for k in kinds) / per, 3) if per else None
        for phase, kinds in PHASE_MESSAGES.items()
    }


def json_lines(path: Path) -> list[Any]:
    from tobtest.histories.formats import read_history

    return read_history(path)


def ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return None
    return round(a / b, 3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--route",
        choices=["random", "leader"],
        default="random",
        help="clients send to random nodes, or follow the leader",
    )
    parser.add_argument(
        "--part",
        choices=["all", "steady", "failover"],
        default="all",
        help="the runs without faults (and under partition), the failover runs, or both",
    )
    parser.add_argument("--rescan", metavar="JSON", type=Path,
                        help="no new runs: re-read the failover runs of an earlier output "
                             "from their stored histories, and rewrite it")  # fmt: skip
    return parser.parse_args(argv)


def rescan(path: Path) -> int:
    """The failover figures of an earlier output again, from its runs' histories."""
    out = json.loads(path.read_text())
    rows = out.get("failover_rows") or []
    for row in rows:
        row["failover"] = failover_gaps(json_lines(Path(row["store"]) / "history.jsonl"),
                                        row["fault"])  # fmt: skip
    out["failover"] = print_failover(rows)
    path.write_text(json.dumps(out, indent=1))
    return 0


def steady_runs(args: argparse.Namespace, node_counts: tuple[int, ...], time_limit_s: float,
                store: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """No faults, every node count and concurrency; then 3 nodes under `partition`."""
    leader = args.route == "leader"
    rows = []
    for nodes in node_counts:
        for concurrency in (1, 16):
            for protocol in PROTOCOLS:
                rows.append(measure(protocol, nodes, concurrency, [], args.seed, time_limit_s,
                                    store, leader))  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    partition_rows = []
    for protocol in PROTOCOLS:
        partition_rows.append(measure(protocol, 3, 16, ["partition"], args.seed,
                                      max(time_limit_s, 15.0), store, leader))  # fmt: skip
        print(json.dumps(partition_rows[-1]), flush=True)
    return rows, partition_rows


def failover_runs(args: argparse.Namespace, seeds: list[int], time_limit_s: float,
                  store: Path) -> list[dict[str, Any]]:  # fmt: skip
    """Each fault of failover.FAULTS, each protocol, each seed: 3 nodes, 16 clients."""
    rows = []
    for fault in FAULTS:
        for protocol in PROTOCOLS:
            for seed in seeds:
                row = measure(protocol, 3, 16, [], seed, time_limit_s, store,
                              args.route == "leader", fault=fault)  # fmt: skip
                row["fault"] = fault
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def comparison(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Row a over row b, figure by figure."""
    keys = ("latency_ms_p50", "latency_ms_p99", "throughput_per_s", "messages_per_delivered",
            "phase1_per_delivered")  # fmt: skip
    return {key: ratio(a[key], b[key]) for key in keys}


Rows = list[dict[str, Any]]


def print_steady(rows: Rows, partition_rows: Rows,
                 node_counts: tuple[int, ...]) -> tuple[Rows, dict[str, bool]]:  # fmt: skip
    header = (f"{'nodes':>5} {'conc':>4} {'protocol':<10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'acked/s':>8} {'msgs/bcast':>10} {'ph1/bcast':>9} {'ph1 rounds':>10} "
              f"{'rtt ph1+ph2':>11} {'valid':>6}")  # fmt: skip
    print("\n" + header)
    comparisons = []
    for nodes in node_counts:
        for concurrency in (1, 16):
            pair = {r["protocol"]: r for r in rows
                    if r["nodes"] == nodes and r["concurrency"] == concurrency}  # fmt: skip
            for protocol in PROTOCOLS:
                r = pair[protocol]
                rtt = r["round_trips_per_delivered"]
                rtt_text = f"{rtt['phase1']}+{rtt['phase2']}"
                print(f"{nodes:>5} {concurrency:>4} {protocol:<10} {r['latency_ms_p50']!s:>8} "
                      f"{r['latency_ms_p99']!s:>8} {r['throughput_per_s']!s:>8} "
                      f"{r['messages_per_delivered']!s:>10} {r['phase1_per_delivered']!s:>9} "
                      f"{r['phase1_rounds']!s:>10} "
                      f"{rtt_text:>11} "
                      f"{r['valid']!s:>6}")  # fmt: skip
            for label, a, b in (("mp/paxos", "multipaxos", "paxos"),
                                ("raft/mp", "raft", "multipaxos")):  # fmt: skip
                c = {"nodes": nodes, "concurrency": concurrency, "pair": label,
                     **comparison(pair[a], pair[b])}  # fmt: skip
                comparisons.append(c)
                print(f"{'':>5} {'':>4} {label:<10} {c['latency_ms_p50']!s:>8} "
                      f"{c['latency_ms_p99']!s:>8} {c['throughput_per_s']!s:>8} "
                      f"{c['messages_per_delivered']!s:>10} "
                      f"{c['phase1_per_delivered']!s:>9}")  # fmt: skip
    print("\nunder --nemesis partition (3 nodes, concurrency 16):")
    for r in partition_rows:
        print(f"  {r['protocol']:<10} acked {r['acked']}/{r['invoked']} "
              f"({r['acked_fraction']:.1%}), p99 {r['latency_ms_p99']} ms, "
              f"valid {r['valid']}")  # fmt: skip
    mp = [c for c in comparisons if c["nodes"] == 3 and c["pair"] == "mp/paxos"]
    c1 = next(c for c in mp if c["concurrency"] == 1)
    c16 = next(c for c in mp if c["concurrency"] == 16)
    checks = {
        "c1 latency ratio <= 0.6": (c1["latency_ms_p50"] or 9) <= 0.6,
        "c1 messages ratio <= 0.5": (c1["messages_per_delivered"] or 9) <= 0.5,
        "c16 throughput ratio >= 2": (c16["throughput_per_s"] or 0) >= 2.0,
    }
    for name, ok in checks.items():
        print(f"  target {name}: {'PASS' if ok else 'MISS'}")
    return comparisons, checks


def print_failover(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per fault and protocol: the median gap over every fault of every seed."""
    print("\nfailover (3 nodes, concurrency 16): the fault's ok to the first ack invoked after it")
    print(
        "(any: the first ack of any broadcast; stall: the longest time without an ack in the "
        "2 s before the fault and after its repair, medians)"
    )
    print(f"{'fault':<8} {'protocol':<10} {'faults':>6} {'median s':>8} {'min s':>6} "
          f"{'max s':>6} {'any s':>6} {'no ack':>6} {'stall before':>12} {'after repair':>12} "
          f"{'acked':>7} {'valid':>9}")  # fmt: skip
    summary = {}
    for fault in FAULTS:
        for protocol in PROTOCOLS:
            runs = [r for r in rows if r["fault"] == fault and r["protocol"] == protocol]
            s = summarize([g for r in runs for g in r["failover"]])
            invoked = sum(r["invoked"] for r in runs)
            s["acked_fraction"] = (
                round(sum(r["acked"] for r in runs) / invoked, 4) if invoked else None
            )
            s["valid"] = [r["valid"] for r in runs]
            s["seeds"] = [r["seed"] for r in runs]
            summary[f"{fault}/{protocol}"] = s
            valid = sum(1 for v in s["valid"] if v is True)
            print(f"{fault:<8} {protocol:<10} {s['faults']:>6} {s['gap_s_median']!s:>8} "
                  f"{s['gap_s_min']!s:>6} {s['gap_s_max']!s:>6} {s['first_any_s_median']!s:>6} "
                  f"{s['no_ack']:>6} {s['before_stall_s_median']!s:>12} "
                  f"{s['repair_stall_s_median']!s:>12} {s['acked_fraction']!s:>7} "
                  f"{f'{valid}/{len(runs)}':>9}")  # fmt: skip
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rescan is not None:
        return rescan(args.rescan)
    from tobtest.node.protocols import PROTOCOLS as KNOWN

    missing = [p for p in PROTOCOLS if p not in KNOWN]
    if missing:
        print(f"protocols not available: {missing}", file=sys.stderr)
        return 2
    time_limit_s = args.time_limit or (5.0 if args.quick else 10.0)
    node_counts = (3,) if args.quick else (3, 5)
    # A failover run holds 2 (quick) or 3 faults, about 8.5 s apart, the first at 4 s (per-slot
    # Paxos, where `wait: leader` times out first, 1 or 3: its faults are 1 s later).
    failover_s, seeds = (
        (14.0, [args.seed]) if args.quick else (25.0, [args.seed + i for i in range(3)])
    )
    store = OUT / "protocols-store"
    started = time.monotonic()
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "seed": args.seed,
                           "time_limit_s": time_limit_s, "route": args.route,
                           "quick": args.quick}  # fmt: skip
    if args.part in ("all", "steady"):
        rows, partition_rows = steady_runs(args, node_counts, time_limit_s, store)
        comparisons, checks = print_steady(rows, partition_rows, node_counts)
        out.update(rows=rows, ratios=comparisons, partition=partition_rows, targets=checks)
    if args.part in ("all", "failover"):
        rows = failover_runs(args, seeds, failover_s, store)
        out.update(failover_s=failover_s, failover_rows=rows, failover=print_failover(rows))
    out["elapsed_s"] = round(time.monotonic() - started, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.part == "all" else f"-{args.part}"
    (OUT / f"protocols-{args.route}{suffix}{'-quick' if args.quick else ''}.json").write_text(
        json.dumps(out, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
