"""`tobtest sim`: the built-in protocol cores over many seeds in the in-process simulator.

    tobtest sim --protocol paxos --seeds 50 --bug deliver-on-arrival
    tobtest sim --protocol multipaxos --seeds 50 --bug lease-from-ack --jobs 2

Each seed is a run in virtual time (`tobtest/sim_run.py`): random clients and faults, then
healed, settled and read at every node; it is judged by the simulator's own checks and by
the broadcast workload's checkers over the run as a tobtest history. One line per seed
that is not valid, with its anomaly kinds and the command that replays it, then a summary.
Exit codes as `tobtest run`: 0 all valid, 1 any invalid, 2 unknown, 254 bad arguments.
The cores are imported only when the command runs (see `sim_run`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tobtest.node.protocols import PROTOCOLS

if TYPE_CHECKING:
    from tobtest.sim_run import SeedResult, SimSpec

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_BAD_ARGS = 0, 1, 2, 254
NETS = ("clean", "lossy", "harsh")
FAULT_KINDS = ("partition", "cut", "slow", "weather", "stall", "flip", "crash", "pause", "clock")
TIMINGS = ("fast", "node")  # sim_run.TIMINGS, named here so the CLI imports no node code
READ_MODES = ("local", "log", "lease")


class SimBadArguments(click.UsageError):
    """Arguments `tobtest sim` cannot use: exits 254."""

    exit_code = EXIT_BAD_ARGS


def _comma(choices: tuple[str, ...], what: str) -> Any:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        items = tuple(v.strip() for v in value.split(",") if v.strip())
        unknown = [v for v in items if v not in choices]
        if unknown or not items:
            raise SimBadArguments(f"unknown {what} {', '.join(unknown) or '(empty)'}; "
                                  f"choose from {', '.join(choices)}")  # fmt: skip
        return items

    return convert


@click.command()
@click.option("--protocol", default="paxos", show_default=True,
              help=f"Core to simulate: {', '.join(sorted(PROTOCOLS))}.")  # fmt: skip
@click.option("--seeds", type=click.IntRange(1, 10_000_000), default=20, show_default=True,
              help="How many seeds to run, from --seed-start.")  # fmt: skip
@click.option("--seed-start", type=click.IntRange(0, 2**63 - 1), default=1, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Run this one seed (a replay).")  # fmt: skip
@click.option("--bug", multiple=True, help="Seeded bug of the core (a fixture); repeatable.")
@click.option("--nodes", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option("--time-ms", type=click.FloatRange(10, 3_600_000), default=10_000.0,
              show_default=True, help="Virtual ms of clients and faults.")  # fmt: skip
@click.option(
    "--ops",
    type=click.IntRange(1, 100_000_000),
    default=None,
    help="Stop the clients after this many ops (before --time-ms if sooner).",
)
@click.option(
    "--whole-reads",
    is_flag=True,
    default=False,
    help="Reads ask for whole logs (as nodes without read-from): the old histories.",
)
@click.option("--settle-ms", type=click.FloatRange(0, 3_600_000), default=3_000.0,
              show_default=True, help="Virtual ms healed, every node up, before the final "
              "reads.")  # fmt: skip
@click.option("--rate", type=click.FloatRange(0.1, 100_000), default=300.0, show_default=True,
              help="Ops per virtual second, over all clients.")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(1, 1000), default=None,
              help="Clients [default: 4 per node].")  # fmt: skip
@click.option("--read-fraction", type=click.FloatRange(0.0, 1.0), default=0.5,
              show_default=True)  # fmt: skip
@click.option("--read-mode", default=None, callback=_comma(READ_MODES, "read mode"),
              help="Comma list of read modes [default: all the protocol serves].")  # fmt: skip
@click.option("--faults", default=",".join(FAULT_KINDS), show_default=True,
              callback=_comma(FAULT_KINDS + ("none",), "fault"),
              help="Comma list of faults, or none.")  # fmt: skip
@click.option("--net", type=click.Choice(NETS), default="lossy", show_default=True,
              help="Per-message loss, duplication and delay spikes.")  # fmt: skip
@click.option("--timing", type=click.Choice(TIMINGS), default="fast", show_default=True,
              help="The cores' timers and the faults' lengths: fast (Multi-Paxos's election, "
              "lease and heartbeat at a third of the node's) or node.")  # fmt: skip
@click.option("--op-timeout-ms", type=click.FloatRange(1, 600_000), default=1_000.0,
              show_default=True)  # fmt: skip
@click.option("--tick-ms", type=click.FloatRange(0.1, 1000), default=5.0, show_default=True,
              help="The cores' timer tick (the real node's: 5 ms); a node is ticked only "
              "where its core has a timer due.")  # fmt: skip
@click.option("--every-tick", is_flag=True, default=False,
              help="Tick every node every tick, not only when its core has a timer due "
              "(slower; the same run unless a core's next_timer_ms is wrong).")  # fmt: skip
@click.option("--max-events", type=click.IntRange(1000, 10**9), default=2_000_000,
              show_default=True, help="Events per seed before it is cut short.")  # fmt: skip
@click.option("--wall-limit-s", type=click.FloatRange(0.1, 86_400), default=60.0,
              show_default=True, help="Real seconds per seed before it is cut short.")  # fmt: skip
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Processes to run seeds in [default: one per CPU this process may use, "
              "at most one per seed].")  # fmt: skip
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Write each failing seed's history.jsonl and results.json here, for "
              "tobtest check and show.")  # fmt: skip
def sim(
    protocol: str,
    seeds: int,
    seed_start: int,
    seed: int | None,
    bug: tuple[str, ...],
    nodes: int,
    time_ms: float,
    ops: int | None,
    whole_reads: bool,
    settle_ms: float,
    rate: float,
    concurrency: int | None,
    read_fraction: float,
    read_mode: tuple[str, ...] | None,
    faults: tuple[str, ...],
    net: str,
    timing: str,
    op_timeout_ms: float,
    tick_ms: float,
    every_tick: bool,
    max_events: int,
    wall_limit_s: float,
    jobs: int | None,
    store: str | None,
) -> None:
    """Run the protocol cores over many seeds in the in-process simulator."""
    if protocol not in PROTOCOLS:
        raise SimBadArguments(f"unknown protocol {protocol!r}; choose from "
                              f"{', '.join(sorted(PROTOCOLS))}")  # fmt: skip
    from tobtest import sim_run

    known = sim_run.bug_names(protocol)
    for name in bug:
        if name not in known:
            why = ("a node-shell bug, which the simulator cannot show (run it with tobtest "
                   "run)" if name == "no-fsync" else "not a seeded bug of this core")  # fmt: skip
            raise SimBadArguments(f"--bug {name} is {why}; {protocol} has: {', '.join(known)}")
    if "lease" not in sim_run.READ_MODES.get(protocol, ()) and read_mode and "lease" in read_mode:
        raise SimBadArguments(f"{protocol} does not serve lease reads")
    base = sim_run.SimSpec(
        protocol=protocol, seed=0, nodes=nodes, bugs=tuple(dict.fromkeys(bug)),
        time_ms=time_ms, settle_ms=settle_ms, rate=rate, concurrency=concurrency,
        read_fraction=read_fraction, read_modes=read_mode, op_timeout_ms=op_timeout_ms,
        net=net, faults=() if "none" in faults else faults, tick_ms=tick_ms, timing=timing,
        max_events=max_events, every_tick=every_tick,
        wall_limit_s=wall_limit_s, ops=ops, read_from=not whole_reads,
    )  # fmt: skip
    seed_list = [seed] if seed is not None else list(range(seed_start, seed_start + seeds))
    if jobs is None:
        jobs = max(1, min(_cpus(), 64, len(seed_list)))
    click.echo(f"tobtest sim: {protocol}, {len(seed_list)} seed(s) from {seed_list[0]}"
               + (f", bug {', '.join(base.bugs)}" if base.bugs else ""))  # fmt: skip
    started = time.perf_counter()
    verdicts: list[bool | str] = []
    failing = sim_ms = 0.0
    for result in _results(base, seed_list, jobs):
        verdicts.append(result.valid)
        sim_ms += result.sim_ms
        if result.valid is not True:
            failing += 1
            click.echo(failure_line(result, store))
    wall_s = max(time.perf_counter() - started, 1e-9)
    n = len(seed_list)
    click.echo(f"seeds: {n} run, {int(failing)} failing; {n / wall_s:.1f} seeds/s, "
               f"{sim_ms / 1000.0 / wall_s:.0f} simulated s per real s "
               f"({wall_s:.1f} s real, jobs {jobs})")  # fmt: skip
    from tobtest.checker.compose import merge_valid

    valid = merge_valid(verdicts)
    code = EXIT_VALID if valid is True else EXIT_INVALID if valid is False else EXIT_UNKNOWN
    sys.exit(code)


def _cpus() -> int:
    """CPUs this process may run on (all of them where that cannot be asked)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _results(base: SimSpec, seeds: list[int], jobs: int) -> Iterator[SeedResult]:
    from dataclasses import replace

    from tobtest.sim_run import run_seed

    specs = [replace(base, seed=s) for s in seeds]
    if jobs == 1 or len(specs) == 1:
        yield from map(run_seed, specs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(run_seed, specs, chunksize=max(1, min(16, len(specs) // (4 * jobs))))


def replay_command(spec: SimSpec) -> str:
    """The command that reruns exactly this seed (every option that shapes the run)."""
    parts = ["tobtest sim", f"--protocol {spec.protocol}", f"--seed {spec.seed}"]
    parts += [f"--bug {b}" for b in spec.bugs]
    parts += [f"--nodes {spec.nodes}", f"--time-ms {spec.time_ms:g}"]
    if spec.ops is not None:
        parts.append(f"--ops {spec.ops}")
    parts += [f"--settle-ms {spec.settle_ms:g}", f"--rate {spec.rate:g}"]
    parts += [f"--concurrency {spec.clients}", f"--read-fraction {spec.read_fraction:g}"]
    if spec.read_modes:
        parts.append(f"--read-mode {','.join(spec.read_modes)}")
    parts += [f"--faults {','.join(spec.faults) or 'none'}", f"--net {spec.net}",
              f"--timing {spec.timing}", f"--op-timeout-ms {spec.op_timeout_ms:g}"]  # fmt: skip
    if spec.tick_ms != 5.0:
        parts.append(f"--tick-ms {spec.tick_ms:g}")
    if spec.every_tick:
        parts.append("--every-tick")
    if not spec.read_from:
        parts.append("--whole-reads")
    if spec.max_events != 2_000_000:
        parts.append(f"--max-events {spec.max_events}")
    return " ".join(parts)


def failure_line(result: SeedResult, store: str | None) -> str:
    verdict = "INVALID" if result.valid is False else "UNKNOWN"
    why = ", ".join(result.kinds) or (result.cut_short or "no verdict")
    line = f"seed {result.spec.seed}  {verdict}  {why}\n  replay: {replay_command(result.spec)}"
    if store is not None:
        line += f"\n  store: {write_run(Path(store), result)}"
    return line


def write_run(root: Path, result: SeedResult) -> Path:
    """A run folder `tobtest check` and `show` read: test.yaml, history.jsonl, results.json."""
    from dataclasses import asdict

    from tobtest.histories.store import RunStore

    spec = result.spec
    config = {**asdict(spec), "workload": "broadcast", "simulated": True,
              "bugs": list(spec.bugs), "faults": list(spec.faults),
              "read_modes": list(spec.read_modes) if spec.read_modes else None}  # fmt: skip
    name = f"sim-{spec.protocol}-seed{spec.seed}"
    run = RunStore.create(root, name, config)
    with run.history_path.open("w", encoding="utf-8") as out:
        out.writelines(op.to_json() + "\n" for op in result.history)
    run.write_results({**result.results, "seed": spec.seed, "reproduce": replay_command(spec),
                       "ops": result.counts, "faults_applied": sum(
                           1 for op in result.history
                           if op.process == "nemesis" and op.type == "ok")})  # fmt: skip
    return run.path
