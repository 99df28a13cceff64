"""What does skipping Phase 1 buy? Per-slot Paxos against Multi-Paxos, measured in one run.

    .venv/bin/python bench/protocols.py              # 3 and 5 nodes, concurrency 1 and 16
    .venv/bin/python bench/protocols.py --quick      # 3 nodes only, shorter runs

The same seeded broadcast workload (broadcasts only, closed loop: each client sends its next
broadcast when the last is acked), no faults, on real processes, against every mode (Raft
beside the two Paxos modes): median and p99 broadcast latency, acked broadcasts/s, peer
messages per delivered broadcast and Phase 1 rounds (Raft: elections) per delivered
broadcast, and the multipaxos/paxos ratio of each. Then the same under `--nemesis
partition`: the fraction of broadcasts acked per mode. Prints one
table and writes bench/out/protocols.json.
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
from tobtest.runner import Runner

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
PROTOCOLS = ("paxos", "multipaxos", "raft")


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(protocol: str, nodes: int, concurrency: int, nemesis: list[str], seed: int,
            time_limit_s: float, store: Path, route_to_leader: bool) -> dict[str, Any]:  # fmt: skip
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
        name=f"{protocol}-n{nodes}-c{concurrency}-{'+'.join(nemesis) or 'none'}",
        route_to_leader=route_to_leader,
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
    phase1 = sum(s.get("phase1_rounds", 0) or 0 for s in statuses)
    delivered = max((s.get("delivered", 0) or 0) for s in statuses) if statuses else 0
    return {
        "protocol": protocol,
        "nodes": nodes,
        "concurrency": concurrency,
        "nemesis": nemesis,
        "valid": result.valid,
        "invoked": invoked,
        "acked": acked,
        "acked_fraction": acked / invoked if invoked else float("nan"),
        "latency_ms_p50": round(statistics.median(latencies_ms), 3) if latencies_ms else None,
        "latency_ms_p99": round(quantile(latencies_ms, 0.99), 3) if latencies_ms else None,
        "throughput_per_s": round(acked / time_limit_s, 1),
        "messages_per_delivered": round(messages / delivered, 2) if delivered else None,
        "phase1_per_delivered": round(phase1 / delivered, 4) if delivered else None,
        "delivered": delivered,
        "store": str(result.run_path),
    }


def json_lines(path: Path) -> list[Any]:
    from tobtest.histories.formats import read_history

    return read_history(path)


def ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return None
    return round(a / b, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--route", choices=["random", "leader"], default="random",
                        help="clients send to random nodes, or follow the leader")  # fmt: skip
    args = parser.parse_args(argv)
    from tobtest.node.protocols import PROTOCOLS as KNOWN

    missing = [p for p in PROTOCOLS if p not in KNOWN]
    if missing:
        print(f"protocols not available: {missing}", file=sys.stderr)
        return 2
    time_limit_s = args.time_limit or (5.0 if args.quick else 10.0)
    node_counts = (3,) if args.quick else (3, 5)
    store = OUT / "protocols-store"
    leader = args.route == "leader"
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for nodes in node_counts:
        for concurrency in (1, 16):
            for protocol in PROTOCOLS:
                rows.append(
                    measure(
                        protocol, nodes, concurrency, [], args.seed, time_limit_s, store, leader
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
    partition_rows = [
        measure(protocol, 3, 16, ["partition"], args.seed, max(time_limit_s, 15.0), store, leader)
        for protocol in PROTOCOLS
    ]
    for row in partition_rows:
        print(json.dumps(row), flush=True)

    header = (f"{'nodes':>5} {'conc':>4} {'protocol':<10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'acked/s':>8} {'msgs/bcast':>10} {'ph1/bcast':>9} {'valid':>6}")  # fmt: skip
    print("\n" + header)
    comparisons = []
    for nodes in node_counts:
        for concurrency in (1, 16):
            pair = {r["protocol"]: r for r in rows
                    if r["nodes"] == nodes and r["concurrency"] == concurrency}  # fmt: skip
            for protocol in PROTOCOLS:
                r = pair[protocol]
                print(f"{nodes:>5} {concurrency:>4} {protocol:<10} {r['latency_ms_p50']!s:>8} "
                      f"{r['latency_ms_p99']!s:>8} {r['throughput_per_s']!s:>8} "
                      f"{r['messages_per_delivered']!s:>10} {r['phase1_per_delivered']!s:>9} "
                      f"{r['valid']!s:>6}")  # fmt: skip
            m, p = pair["multipaxos"], pair["paxos"]
            comparison = {
                "nodes": nodes,
                "concurrency": concurrency,
                "latency_p50_ratio": ratio(m["latency_ms_p50"], p["latency_ms_p50"]),
                "latency_p99_ratio": ratio(m["latency_ms_p99"], p["latency_ms_p99"]),
                "throughput_ratio": ratio(m["throughput_per_s"], p["throughput_per_s"]),
                "messages_ratio": ratio(m["messages_per_delivered"], p["messages_per_delivered"]),
                "phase1_ratio": ratio(m["phase1_per_delivered"], p["phase1_per_delivered"]),
            }
            comparisons.append(comparison)
            c = comparison
            print(f"{'':>5} {'':>4} {'mp/paxos':<10} {c['latency_p50_ratio']!s:>8} "
                  f"{c['latency_p99_ratio']!s:>8} {c['throughput_ratio']!s:>8} "
                  f"{c['messages_ratio']!s:>10} {c['phase1_ratio']!s:>9}")  # fmt: skip
    print("\nunder --nemesis partition (3 nodes, concurrency 16):")
    for r in partition_rows:
        print(f"  {r['protocol']:<10} acked {r['acked']}/{r['invoked']} "
              f"({r['acked_fraction']:.1%}), valid {r['valid']}")  # fmt: skip
    targets = [c for c in comparisons if c["nodes"] == 3]
    c1 = next(c for c in targets if c["concurrency"] == 1)
    c16 = next(c for c in targets if c["concurrency"] == 16)
    checks = {
        "c1 latency ratio <= 0.6": (c1["latency_p50_ratio"] or 9) <= 0.6,
        "c1 messages ratio <= 0.5": (c1["messages_ratio"] or 9) <= 0.5,
        "c16 throughput ratio >= 2": (c16["throughput_ratio"] or 0) >= 2.0,
    }
    for name, ok in checks.items():
        print(f"  target {name}: {'PASS' if ok else 'MISS'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"protocols-{args.route}.json").write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "seed": args.seed, "time_limit_s": time_limit_s,
        "route": args.route,
        "rows": rows, "ratios": comparisons, "partition": partition_rows, "targets": checks,
        "elapsed_s": round(time.monotonic() - started, 1),
    }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
