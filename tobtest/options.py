"""Every `tobtest run` option, declared once: flag, type and range, default, help, the
`TestConfig` field it sets, whether a suite file takes it, and whether it matters for replay.

    @run_options                           # tobtest/cli.py: the click options of `run`
    def run(**params): config = config_from_params(params)
    suite_keys()["op_timeout"]             # suites: ("op_timeout_s", its validating parser)
    reproduce_args(config)                 # ["--nodes", "3", ..., "--seed", "42"]

The click options, the keys a suite file accepts (checked with the same types and ranges)
and the `reproduce with` command line all come from `RUN_OPTIONS`, so adding an option is
one entry, and replay cannot drift from what ran: tests/tobtest/test_options.py sends every
replay option through config, reproduce command, click and back, and compares.

`replay` says when the reproduce command carries an option: "always" (the options that
say what a run is, shown even at their defaults), "changed" (when its value is not
`TestConfig`'s default) or "never" (where a run is stored, its ports, suites).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click

from tobtest.checker import CHECKERS
from tobtest.config import TestConfig
from tobtest.maelstrom.kind import MAELSTROM_PROTOCOL
from tobtest.nemesis.partition import DEFAULT_SHAPES, SHAPE_NAMES
from tobtest.nemesis.registry import NEMESES, parse_nemesis_list
from tobtest.nemesis.schedule_file import load_schedule
from tobtest.nemesis.targets import TARGET_SPECS
from tobtest.node_kind import BUILTIN, CAPABILITIES, CUSTOM_PROTOCOL, PLACEHOLDERS, READ_MODES
from tobtest.workloads import WORKLOAD_NAMES

Replay = Literal["always", "changed", "never"]


class CommaList(click.ParamType):
    """A comma list of known names (`one,bridge`); a suite file may give a YAML list."""

    name = "text"  # what --help shows, as before these were types

    def __init__(self, choices: tuple[str, ...], what: str) -> None:
        self.choices = choices
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            items = value
        else:
            items = [v.strip() for v in str(value).split(",") if v.strip()]
        unknown = [str(v) for v in items if v not in self.choices]
        if unknown or not items:
            self.fail(
                f"unknown {self.what} {', '.join(unknown) or '(empty)'}; "
                f"choose from {', '.join(self.choices)}",
                param,
                ctx,
            )
        return [str(v) for v in items]


class NemesisList(click.ParamType):
    """`partition,kill`, `all` (the exploring nemesis) or `none`; in a suite also a list."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        try:
            return parse_nemesis_list(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ShardParam(click.ParamType):
    """`I/N`: one shard of a suite's cases (tobtest/suite.py says how they are dealt)."""

    name = "I/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from tobtest.suite import Shard, parse_shard

        if isinstance(value, Shard):
            return value
        try:
            return parse_shard(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@dataclass(frozen=True)
class RunOption:
    """One option of `tobtest run`."""

    flag: str
    # A click type (IntRange, Choice, CommaList...); None: a string, or a flag when is_flag.
    type: Any = None
    default: Any = None
    help: str | None = None
    # The TestConfig field it sets; None: it steers the command, not a run (--suite).
    field: str | None = None
    # Whether a suite file takes it, as the flag's name with underscores (or dashes).
    suite: bool = False
    replay: Replay = "never"
    show_default: bool = False
    multiple: bool = False
    is_flag: bool = False
    # The flag that turns a default-on switch off (`--no-explore-feedback`).
    off_flag: str | None = None
    metavar: str | None = None
    # click's parameter name, where it is not the flag's (`--checker` -> extra_checkers).
    param: str | None = None
    # What replay must keep, where it is not the field itself (concurrency: the client count).
    value: Callable[[TestConfig], Any] | None = None
    # Config fields that, when set, stand in for it on replay (a schedule for --nemesis).
    replaced_by: tuple[str, ...] = ()
    # A suite value's parser where the type's is not enough; raises ValueError with a reason.
    suite_parse: Callable[[Any], Any] | None = None

    @property
    def key(self) -> str:
        """Its key in a suite file: the flag with underscores (`op_timeout`)."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def name(self) -> str:
        """click's parameter name."""
        return self.param or self.key


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"expected a command line, got {v!r}")
    return v


def _protocol(v: Any) -> str:
    # Checked against the case's node kind once the case is complete (check_config).
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a protocol name, got {v!r}")
    return v


def _schedule(v: Any) -> str:
    load_schedule(Path(str(v)))  # a ScheduleError is a ValueError naming the file and line
    return str(v)


def _client_count(config: TestConfig) -> int:
    return config.client_count


_SCHEDULES = ("nemesis_schedule", "replay_schedule")

RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("--nodes", click.IntRange(1, 9), 3,
              field="nodes", suite=True, replay="always", show_default=True),
    RunOption("--protocol", None, None,
              f"The built-in node's protocol ({', '.join(BUILTIN.protocols())}); with "
              "--node-cmd any name, passed as {protocol} [default: paxos; with --node-cmd: "
              "custom].",
              field="protocol", suite=True, replay="always", suite_parse=_protocol),
    RunOption("--workload", click.Choice(WORKLOAD_NAMES), "broadcast",
              "tobtest's broadcast, txn, register; with --maelstrom Maelstrom's broadcast, "
              "lin-kv, txn-list-append.",
              field="workload", suite=True, replay="always", show_default=True),
    RunOption("--nemesis", NemesisList(), None,
              f"Comma list of faults ({', '.join(NEMESES)}), toggled every interval; 'all' "
              "(the exploring nemesis: every fault kind, one at a time, aimed by what the "
              "nodes report); or 'none' [default: all; with --node-cmd: partition].",
              field="nemesis", suite=True, replay="always", replaced_by=_SCHEDULES),
    RunOption("--nemesis-schedule", click.Path(dir_okay=False), None,
              "Run this schedule file's steps instead of the periodic nemeses "
              "(docs/schedules.md).",
              field="nemesis_schedule", suite=True, replay="changed",
              replaced_by=("replay_schedule",), suite_parse=_schedule),
    RunOption("--replay-schedule", None, None,
              "Replay the faults a stored run executed (its schedule.yaml), at the same "
              "offsets, with its options unless given here.",
              field="replay_schedule", suite=False, replay="changed", metavar="RUN"),
    RunOption("--nemesis-interval", click.FloatRange(0.1, 3600), 5.0,
              "Seconds between a fault's start and stop.",
              field="nemesis_interval_s", suite=True, replay="always", show_default=True),
    RunOption("--partition-shapes", CommaList(SHAPE_NAMES, "partition shape"), None,
              f"Shapes the partition nemesis draws from [default: {','.join(DEFAULT_SHAPES)}].",
              field="partition_shapes", suite=True, replay="changed"),
    RunOption("--nemesis-targets", CommaList(TARGET_SPECS, "nemesis target"), None,
              "Nodes that kill, pause, clock and disk faults hit "
              f"({', '.join(TARGET_SPECS)}) [default: a mix].",
              field="nemesis_targets", suite=True, replay="changed"),
    RunOption("--link-delay-ms", click.FloatRange(0, 10000), 0.0,
              "Background one-way latency on every link, for the whole run.",
              field="link_delay_ms", suite=True, replay="changed"),
    RunOption("--time-limit", click.FloatRange(0.5, 86400), 20.0,
              "Seconds of the main phase (workload and faults).",
              field="time_limit_s", suite=True, replay="always", show_default=True),
    RunOption("--rate", click.FloatRange(0.1, 100000), 50.0, "Ops per second, over all clients.",
              field="rate", suite=True, replay="always", show_default=True),
    RunOption("--concurrency", click.IntRange(1, 1000), None,
              "Number of clients [default: 2 per node].",
              field="concurrency", suite=True, replay="always", value=_client_count),
    RunOption("--read-fraction", click.FloatRange(0.0, 1.0), None,
              "Fraction of ops that are reads [default: the workload's].",
              field="read_fraction", suite=True, replay="changed"),
    RunOption("--read-mode", CommaList(READ_MODES, "read mode"), None,
              "Comma list of read modes clients draw from [default: broadcast every mode the "
              "protocol serves, register log].",
              field="read_modes", suite=True, replay="changed"),
    RunOption("--seed", click.IntRange(0, 2**63 - 1), None,
              "Root seed of every seeded choice [default: random, printed].",
              field="seed", suite=False, replay="always"),
    RunOption("--store", click.Path(file_okay=False), "store", field="store", show_default=True),
    RunOption("--name", None, None, "Test name in the store.", field="name"),
    RunOption("--bug", None, None, "Start every node with this seeded bug (a fixture).",
              field="bugs", suite=True, replay="changed", multiple=True),
    RunOption("--base-port", click.INT, None,
              "Use consecutive ports from this one [default: any free ports].",
              field="base_port"),
    RunOption("--host", None, None,
              "Run node i on this host, over SSH (repeat: one per node, in order; with fewer "
              "hosts than nodes they take turns). Each host runs its nodes' proxies too.",
              field="hosts", multiple=True, param="hosts"),
    RunOption("--hosts-file", click.Path(dir_okay=False), None,
              "The hosts, one a line ('#' comments), as if each were given with --host."),
    RunOption("--ssh-user", None, None, "User on the hosts [default: ssh's].",
              field="ssh_user"),
    RunOption("--ssh-key", click.Path(dir_okay=False), None,
              "Private key for the hosts [default: ssh's keys and agent].", field="ssh_key"),
    RunOption("--ssh-port", click.IntRange(1, 65535), 22, "SSH port of the hosts.",
              field="ssh_port", show_default=True),
    RunOption("--remote-python", None, None,
              "Python with tobtest installed, on the hosts [default: this one's path].",
              field="remote_python"),
    RunOption("--remote-dir", None, None,
              "Folder on the hosts under which runs work [default: /tmp/tobtest-remote].",
              field="remote_dir"),
    RunOption("--op-timeout", click.FloatRange(0.05, 600), 2.0,
              field="op_timeout_s", suite=True, replay="changed", show_default=True),
    RunOption("--route-to-leader", None, False,
              "Clients send to the node that claims to lead, not a random one.",
              field="route_to_leader", suite=False, replay="changed", is_flag=True),
    RunOption("--explore-feedback", None, True,
              "With --nemesis all: prefer moves that reached new states.",
              field="explore_feedback", suite=False, replay="changed", show_default=True,
              off_flag="--no-explore-feedback"),
    RunOption("--node-cmd", None, None,
              "Test your own node: the command that starts one node (split like a shell "
              "line, run without a shell), with placeholders "
              f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)} (node/PROTOCOL.md).",
              field="node_cmd", suite=True, replay="changed", metavar="TEMPLATE",
              suite_parse=_text),
    RunOption("--node-caps", CommaList(tuple(CAPABILITIES), "capability"), None,
              "With --node-cmd: what the node can do beyond broadcast, local reads and "
              f"status ({', '.join(CAPABILITIES)}) [default: none].",
              field="node_caps", suite=True, replay="changed"),
    RunOption("--node-read-modes", CommaList(READ_MODES, "read mode"), None,
              "With --node-cmd: the read modes it serves [default: local].",
              field="node_read_modes", suite=True, replay="changed"),
    RunOption("--maelstrom", None, None,
              "Test a node that speaks Maelstrom's protocol on stdin/stdout: the command "
              "that starts one (split like a shell line), run behind a shim per node.",
              field="maelstrom", suite=True, replay="changed", metavar="CMD", suite_parse=_text),
    RunOption("--checker", click.Choice(sorted(CHECKERS)), None,
              "Also run this checker on the history (e.g. total-order for a Maelstrom "
              "broadcast node that claims a total order).",
              field="extra_checkers", suite=True, replay="changed", multiple=True,
              param="extra_checkers"),
    RunOption("--suite", click.Path(dir_okay=False), None,
              "Run the matrix of a suite YAML file instead of one test.", param="suite_path"),
    RunOption("--junit-xml", click.Path(dir_okay=False), None,
              "With --suite: write JUnit XML here (one test case per run; with --shard, a "
              "file per shard, its testsuite named for the shard)."),
    RunOption("--jobs", click.IntRange(1, 64), None,
              "With --suite: run this many cases at a time, each in its own process, on its "
              "own ports [default: 1, one after another]. At most the CPU count (more is "
              "capped, with a notice): on a 2-core machine, 2.", param="jobs"),
    RunOption("--shard", ShardParam(), None,
              "With --suite: run only shard I of N (I/N, from 1/N to N/N), as a CI matrix "
              "splits a suite over runners: cases ordered by the SHA-256 of their reproduce "
              "command, then dealt round-robin.", metavar="I/N"),
)  # fmt: skip
OPTIONS_BY_KEY: dict[str, RunOption] = {o.key: o for o in RUN_OPTIONS}


# ---- click ---------------------------------------------------------------------------------


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates the `run` command with every option, in the table's order (so --help's)."""
    for option in reversed(RUN_OPTIONS):
        flags = f"{option.flag}/{option.off_flag}" if option.off_flag else option.flag
        kwargs: dict[str, Any] = {"default": option.default}
        if option.type is not None:
            kwargs["type"] = option.type
        for name in ("help", "metavar"):
            if getattr(option, name) is not None:
                kwargs[name] = getattr(option, name)
        for name in ("show_default", "multiple", "is_flag"):
            if getattr(option, name):
                kwargs[name] = True
        command = click.option(flags, option.name, **kwargs)(command)
    return command


def config_from_params(params: dict[str, Any]) -> TestConfig:
    """The run config that `run`'s parsed parameters describe; None keeps TestConfig's
    default, except the protocol and nemesis, whose defaults depend on the node kind."""
    values: dict[str, Any] = {}
    for option in RUN_OPTIONS:
        value = params.get(option.name)
        if option.field is None or value is None:
            continue
        values[option.field] = list(value) if isinstance(value, tuple) else value
    foreign = values.get("node_cmd") is not None or values.get("maelstrom") is not None
    # The exploring nemesis needs every capability; a node of your own starts with the fault
    # that needs none.
    values.setdefault("nemesis", ["partition"] if foreign else ["explore"])
    if values.get("node_cmd") is not None:
        values.setdefault("protocol", CUSTOM_PROTOCOL)
    elif values.get("maelstrom") is not None:
        values.setdefault("protocol", MAELSTROM_PROTOCOL)
    return TestConfig(**values)


# ---- suites --------------------------------------------------------------------------------


def _whole(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, got {v!r}")
    return v


def _number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def suite_scalar(kind: Any, v: Any) -> Any:
    """A suite value checked by the option's click type (its range or choices too)."""
    if isinstance(kind, click.types.IntParamType):
        v = _whole(v)
    elif isinstance(kind, click.types.FloatParamType):
        v = _number(v)
    elif isinstance(kind, click.Choice) and v not in kind.choices:
        raise ValueError(f"unknown value {v!r} (known: {', '.join(map(str, kind.choices))})")
    elif kind is None:
        return str(v)
    try:
        return kind.convert(v, None, None)
    except click.BadParameter as exc:
        raise ValueError(exc.message) from None


def suite_value(option: RunOption, value: Any) -> Any:
    """A suite file's value for `option`, validated; raises ValueError with a reason."""
    if option.suite_parse is not None:
        return option.suite_parse(value)
    if option.multiple:
        items = value if isinstance(value, list) else str(value).split(",")
        return [suite_scalar(option.type, i.strip() if isinstance(i, str) else i) for i in items]
    return suite_scalar(option.type, value)


def suite_keys() -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """Suite key -> (the TestConfig field it sets, its parser)."""
    keys: dict[str, tuple[str, Callable[[Any], Any]]] = {}
    for option in RUN_OPTIONS:
        if option.suite and option.field is not None:
            keys[option.key] = (option.field, functools.partial(suite_value, option))
    return keys


# ---- replay --------------------------------------------------------------------------------


def _config_default(field_name: str) -> Any:
    field = next(f for f in dataclasses.fields(TestConfig) if f.name == field_name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _word(value: Any) -> str:
    if isinstance(value, float):
        short = f"{value:g}"  # 20.0 reads as 20, but never at the cost of precision
        return short if float(short) == value else repr(value)
    return str(value)


def _args(option: RunOption, value: Any) -> list[str]:
    if option.off_flag is not None:
        return [option.flag if value else option.off_flag]
    if option.is_flag:
        return [option.flag] if value else []
    if option.multiple:
        return [word for item in value for word in (option.flag, _word(item))]
    if isinstance(value, list):
        return [option.flag, ",".join(map(str, value)) or "none"]
    return [option.flag, _word(value)]


def replay_value(option: RunOption, config: TestConfig) -> Any:
    """What replaying `config` must keep of `option`."""
    assert option.field is not None
    return option.value(config) if option.value else getattr(config, option.field)


def reproduce_args(config: TestConfig) -> list[str]:
    """The `tobtest run` arguments that replay `config`'s seeded choices."""
    args: list[str] = []
    for option in RUN_OPTIONS:
        if option.replay == "never" or option.field is None:
            continue
        if any(getattr(config, name) is not None for name in option.replaced_by):
            continue
        value = replay_value(option, config)
        if value is None:
            continue
        if option.replay == "changed" and value == _config_default(option.field):
            continue
        args += _args(option, value)
    return args
