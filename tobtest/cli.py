"""The `tobtest` command line.

    tobtest run                                  # a short real test: 3 paxos nodes, partitions
    tobtest run --nemesis partition --time-limit 60 --seed 7
    tobtest check store/latest                   # re-check a stored run

Exit codes follow Jepsen: 0 valid, 1 invalid, 2 unknown, 254 bad arguments (and a port in
use), 255 crash. An interrupted run (Ctrl-C) ends every process it started, keeps the
history it recorded, and exits 130.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from tobtest.checker import CHECKERS
from tobtest.cli_sim import sim
from tobtest.config import TestConfig
from tobtest.maelstrom.kind import MAELSTROM_PROTOCOL
from tobtest.nemesis.partition import DEFAULT_SHAPES, SHAPE_NAMES
from tobtest.nemesis.registry import NEMESES, parse_nemesis_list
from tobtest.nemesis.targets import TARGET_SPECS
from tobtest.node_kind import (
    BUILTIN,
    CAPABILITIES,
    CUSTOM_PROTOCOL,
    PLACEHOLDERS,
    READ_MODES,
    NodeKindError,
    check_config,
)
from tobtest.ports import PortInUse
from tobtest.workloads import WORKLOAD_NAMES, workload_class

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN = 0, 1, 2
EXIT_INTERRUPTED, EXIT_BAD_ARGS, EXIT_CRASH = 130, 254, 255


def exit_code_for(valid: Any) -> int:
    if valid is True:
        return EXIT_VALID
    if valid is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN


class BadArguments(click.UsageError):
    """Raised for arguments click accepts but tobtest cannot use; exits 254."""


def _comma_list(choices: tuple[str, ...], what: str) -> Any:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
        if value is None:
            return None
        items = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [v for v in items if v not in choices]
        if unknown or not items:
            raise click.BadParameter(
                f"unknown {what} {', '.join(unknown) or '(empty)'}; "
                f"choose from {', '.join(choices)}"
            )
        return items

    return convert


def _parse_nemesis(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> list[str] | None:
    if value is None:
        return None
    try:
        return parse_nemesis_list(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log the runner's steps to stderr.")
def cli(verbose: bool) -> None:
    """tobtest: fault-injection testing of Total Order Broadcast on real processes."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


@cli.command()
@click.option("--nodes", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option(
    "--protocol",
    default=None,
    help=f"The built-in node's protocol ({', '.join(BUILTIN.protocols())}); with --node-cmd "
    "any name, passed as {protocol} [default: paxos; with --node-cmd: custom].",
)
@click.option(
    "--workload",
    type=click.Choice(WORKLOAD_NAMES),
    default="broadcast",
    show_default=True,
    help="tobtest's broadcast, txn, register; with --maelstrom Maelstrom's broadcast, lin-kv, "
    "txn-list-append.",
)
@click.option(
    "--nemesis",
    default=None,
    callback=_parse_nemesis,
    help=f"Comma list of faults ({', '.join(NEMESES)}), toggled every interval; 'all' "
    "(the exploring nemesis: every fault kind, one at a time, aimed by what the nodes "
    "report); or 'none' [default: all; with --node-cmd: partition].",
)
@click.option(
    "--nemesis-interval",
    type=click.FloatRange(0.1, 3600),
    default=5.0,
    show_default=True,
    help="Seconds between a fault's start and stop.",
)
@click.option(
    "--partition-shapes",
    default=None,
    callback=_comma_list(SHAPE_NAMES, "partition shape"),
    help=f"Shapes the partition nemesis draws from [default: {','.join(DEFAULT_SHAPES)}].",
)
@click.option(
    "--nemesis-targets",
    default=None,
    callback=_comma_list(TARGET_SPECS, "nemesis target"),
    help="Nodes that kill, pause, clock and disk faults hit "
    f"({', '.join(TARGET_SPECS)}) [default: a mix].",
)
@click.option("--link-delay-ms", type=click.FloatRange(0, 10000), default=0.0,
              help="Background one-way latency on every link, for the whole run.")  # fmt: skip
@click.option("--time-limit", type=click.FloatRange(0.5, 86400), default=20.0, show_default=True,
              help="Seconds of the main phase (workload and faults).")  # fmt: skip
@click.option("--rate", type=click.FloatRange(0.1, 100000), default=50.0, show_default=True,
              help="Ops per second, over all clients.")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(1, 1000), default=None,
              help="Number of clients [default: 2 per node].")  # fmt: skip
@click.option("--read-fraction", type=click.FloatRange(0.0, 1.0), default=None,
              help="Fraction of ops that are reads [default: the workload's].")  # fmt: skip
@click.option("--read-mode", default=None, callback=_comma_list(READ_MODES, "read mode"),
              help="Comma list of read modes clients draw from [default: broadcast every mode "
              "the protocol serves, register log].")  # fmt: skip
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Root seed of every seeded choice [default: random, printed].")  # fmt: skip
@click.option("--store", type=click.Path(file_okay=False), default="store", show_default=True)
@click.option("--name", default=None, help="Test name in the store.")
@click.option("--bug", multiple=True, help="Start every node with this seeded bug (a fixture).")
@click.option("--base-port", type=int, default=None,
              help="Use consecutive ports from this one [default: any free ports].")  # fmt: skip
@click.option("--op-timeout", type=click.FloatRange(0.05, 600), default=2.0, show_default=True)
@click.option("--route-to-leader", is_flag=True,
              help="Clients send to the node that claims to lead, not a random one.")  # fmt: skip
@click.option("--explore-feedback/--no-explore-feedback", default=True, show_default=True,
              help="With --nemesis all: prefer moves that reached new states.")  # fmt: skip
@click.option("--nemesis-schedule", type=click.Path(dir_okay=False), default=None,
              help="Run this schedule file's steps instead of the periodic nemeses "
              "(docs/schedules.md).")  # fmt: skip
@click.option("--replay-schedule", default=None, metavar="RUN",
              help="Replay the faults a stored run executed (its schedule.yaml), at the same "
              "offsets, with its options unless given here.")  # fmt: skip
@click.option("--node-cmd", default=None, metavar="TEMPLATE",
              help="Test your own node: the command that starts one node (split like a "
              "shell line, run without a shell), with placeholders "
              f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)} (node/PROTOCOL.md).")  # fmt: skip
@click.option("--node-caps", default=None, callback=_comma_list(tuple(CAPABILITIES), "capability"),
              help="With --node-cmd: what the node can do beyond broadcast, local reads and "
              f"status ({', '.join(CAPABILITIES)}) [default: none].")  # fmt: skip
@click.option("--node-read-modes", default=None,
              callback=_comma_list(READ_MODES, "read mode"),
              help="With --node-cmd: the read modes it serves [default: local].")  # fmt: skip
@click.option("--maelstrom", default=None, metavar="CMD",
              help="Test a node that speaks Maelstrom's protocol on stdin/stdout: the command "
              "that starts one (split like a shell line), run behind a shim per node.")  # fmt: skip
@click.option("--checker", "extra_checkers", multiple=True, type=click.Choice(sorted(CHECKERS)),
              help="Also run this checker on the history (e.g. total-order for a Maelstrom "
              "broadcast node that claims a total order).")  # fmt: skip
@click.option("--suite", "suite_path", type=click.Path(dir_okay=False), default=None,
              help="Run the matrix of a suite YAML file instead of one test.")  # fmt: skip
@click.option("--junit-xml", type=click.Path(dir_okay=False), default=None,
              help="With --suite: write JUnit XML here (one test case per run).")  # fmt: skip
def run(
    nodes: int,
    protocol: str | None,
    workload: str,
    nemesis: list[str] | None,
    nemesis_interval: float,
    partition_shapes: list[str] | None,
    nemesis_targets: list[str] | None,
    link_delay_ms: float,
    time_limit: float,
    rate: float,
    concurrency: int | None,
    read_fraction: float | None,
    read_mode: list[str] | None,
    seed: int | None,
    store: str,
    name: str | None,
    bug: tuple[str, ...],
    base_port: int | None,
    op_timeout: float,
    route_to_leader: bool,
    explore_feedback: bool,
    nemesis_schedule: str | None,
    replay_schedule: str | None,
    node_cmd: str | None,
    node_caps: list[str] | None,
    node_read_modes: list[str] | None,
    maelstrom: str | None,
    extra_checkers: tuple[str, ...],
    suite_path: str | None,
    junit_xml: str | None,
) -> None:
    """Run one test against real node processes and check its history."""
    if suite_path is not None:
        from tobtest.console import run_suite_with_console
        from tobtest.suite import SuiteError

        try:
            code = run_suite_with_console(
                Path(suite_path), store, Path(junit_xml) if junit_xml else None
            )
        except SuiteError as exc:
            raise BadArguments(str(exc)) from None
        sys.exit(code)
    if junit_xml is not None:
        raise BadArguments("--junit-xml goes with --suite")
    if node_cmd is None and (node_caps is not None or node_read_modes is not None):
        raise BadArguments("--node-caps and --node-read-modes go with --node-cmd")
    if maelstrom is not None and node_cmd is not None:
        raise BadArguments("--maelstrom and --node-cmd are two kinds of node; give one")
    foreign = node_cmd is not None or maelstrom is not None
    if nemesis is None:
        # The exploring nemesis needs every capability; a node of your own starts with the
        # fault that needs none.
        nemesis = ["partition"] if foreign else ["explore"]
    if protocol is None:
        protocol = "paxos"
        if node_cmd is not None:
            protocol = CUSTOM_PROTOCOL
        elif maelstrom is not None:
            protocol = MAELSTROM_PROTOCOL
    config = TestConfig(
        nodes=nodes,
        protocol=protocol,
        maelstrom=maelstrom,
        extra_checkers=list(extra_checkers),
        workload=workload,
        nemesis=nemesis,
        node_cmd=node_cmd,
        node_caps=list(node_caps or []),
        node_read_modes=node_read_modes,
        nemesis_interval_s=nemesis_interval,
        time_limit_s=time_limit,
        link_delay_ms=link_delay_ms,
        rate=rate,
        concurrency=concurrency,
        read_fraction=read_fraction,
        store=store,
        name=name,
        bugs=list(bug),
        base_port=base_port,
        op_timeout_s=op_timeout,
        route_to_leader=route_to_leader,
        explore_feedback=explore_feedback,
    )
    if partition_shapes is not None:
        config.partition_shapes = partition_shapes
    config.nemesis_targets = nemesis_targets
    if read_mode is not None:
        config.read_modes = read_mode
    if seed is not None:
        config.seed = seed
    if nemesis_schedule is not None or replay_schedule is not None:
        from tobtest.cli_schedule import with_schedule

        config = with_schedule(config, nemesis_schedule, replay_schedule)
    try:
        check_config(config)
    except NodeKindError as exc:
        raise BadArguments(str(exc)) from None
    from tobtest.cluster import ClusterError
    from tobtest.console import run_with_console

    try:
        code = run_with_console(config)
    except ClusterError as exc:
        if config.node_cmd is None and config.maelstrom is None:
            raise
        # A node command that exits at once or never answers: the user's to fix (254).
        option = "--node-cmd" if config.node_cmd is not None else "--maelstrom"
        raise click.ClickException(f"{option}: {exc}") from None
    sys.exit(code)


@cli.command()
@click.argument("path", required=False)
@click.option("--store", type=click.Path(file_okay=False), default="store", show_default=True)
@click.option(
    "--checker",
    "checkers",
    multiple=True,
    type=click.Choice(sorted(CHECKERS)),
    help="Run only these checkers [default: the run's workload's; for a file: total-order, "
    "or linearizable with --model].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "edn", "jepsen-log"]),
    default="auto",
    show_default=True,
    help="History format: tobtest JSONL, Jepsen history.edn, or Jepsen log lines.",
)
@click.option("--model", default=None, help="Linearizability model (register, cas-register, "
              "kv, mutex, append-log, multi-register).")  # fmt: skip
@click.option("--fail-means", type=click.Choice(["did-not-happen", "returned-false"]),
              default=None, help="How a :fail op reads (Knossos: did-not-happen; Porcupine's "
              "etcd logs: returned-false).")  # fmt: skip
@click.option("--nil-read", type=click.Choice(["no-value", "unknown"]), default=None,
              help="How a read of nil reads (Porcupine: no-value; Knossos: unknown).")  # fmt: skip
@click.option("--initial", default=None, help="Initial model value, as JSON (e.g. 0, null).")
@click.option("--elle-jar", type=click.Path(dir_okay=False), default=None,
              help="elle-cli jar for --checker elle [default: $TOBTEST_ELLE_JAR].")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(
    path: str | None,
    store: str,
    checkers: tuple[str, ...],
    fmt: str,
    model: str | None,
    fail_means: str | None,
    nil_read: str | None,
    initial: str | None,
    elle_jar: str | None,
    as_json: bool,
) -> None:
    """Check a stored run (a run folder) or a history file; default: the latest run."""
    from tobtest.checker.compose import check_all
    from tobtest.histories.formats import read_history
    from tobtest.histories.store import find_run, load_config

    target = Path(path) if path else None
    run_dir: Path | None = None
    if target is not None and target.is_file():
        history_path = target
    else:
        try:
            run_dir = find_run(Path(store), path)
        except FileNotFoundError as exc:
            raise BadArguments(str(exc)) from None
        history_path = run_dir / "history.jsonl"
    try:
        history = read_history(history_path, fmt)
    except (ValueError, OSError) as exc:
        raise BadArguments(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
    per_checker: dict[str, dict[str, Any]] = {}
    names = list(checkers)
    if run_dir is not None:
        stored = load_config(run_dir)
        workload = workload_class(
            stored.get("workload", "broadcast"), maelstrom=stored.get("maelstrom") is not None
        )
        if workload is not None:
            names = names or [*workload.checkers, *stored.get("extra_checkers", [])]
            per_checker = {k: dict(v) for k, v in workload.checker_options.items()}
    lin = per_checker.setdefault("linearizable", {})
    if model is not None:
        lin["model"] = model
    if fail_means is not None:
        lin["fail_means"] = fail_means
    if nil_read is not None:
        lin["nil_read"] = nil_read
    if initial is not None:
        try:
            lin["initial"] = json.loads(initial)
        except ValueError:
            raise BadArguments(f"--initial must be JSON, got {initial!r}") from None
    if elle_jar is not None:
        per_checker.setdefault("elle", {})["elle_jar"] = elle_jar
    if model is not None:
        per_checker.setdefault("elle", {}).setdefault("model", model)
    if not names:
        names = ["linearizable"] if model is not None else ["total-order"]
    results = check_all(history, names, per_checker=per_checker)
    if as_json:
        click.echo(dump_json(results))
    else:
        from tobtest.console import print_results

        if run_dir is not None:
            print_results(results, run_dir)
        else:
            print_results(results, history_path, label="history")
    sys.exit(exit_code_for(results["valid"]))


def _register_inspect_commands() -> None:
    from tobtest.cli_inspect import serve, show

    cli.add_command(show)
    cli.add_command(serve)


_register_inspect_commands()
cli.add_command(sim)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps every way out to Jepsen's exit codes."""
    try:
        cli.main(args=argv, prog_name="tobtest", standalone_mode=False)
    except click.UsageError as exc:
        if exc.ctx is not None and exc.ctx.command is cli and not (argv or sys.argv[1:]):
            click.echo(cli.get_help(exc.ctx))  # plain `tobtest`: the help, not an error
            sys.exit(EXIT_VALID)
        sub = exc.ctx.command.name if exc.ctx is not None and exc.ctx.command is not cli else ""
        hint = f" (try 'tobtest {sub + ' ' if sub else ''}--help')" if exc.ctx else ""
        click.echo(f"tobtest: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except PortInUse as exc:
        click.echo(f"tobtest: {exc}", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("tobtest: interrupted; every process it started has been ended", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        click.echo(f"tobtest: {exc.format_message()}", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every crash gets Jepsen's 255
        logging.getLogger("tobtest").debug("crash", exc_info=True)
        click.echo(f"tobtest: crashed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_CRASH)


def _json_default(value: Any) -> Any:
    return str(value)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


if __name__ == "__main__":
    main()
