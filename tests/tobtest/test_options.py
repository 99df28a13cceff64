"""The one option table: `tobtest run`'s options, suite keys and the reproduce command all
come from it, and every option that matters for replay survives config -> `reproduce with`
-> the real `tobtest run` parser -> config."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tobtest.cli import main, run
from tobtest.config import TestConfig
from tobtest.nemesis.schedule_file import load_schedule
from tobtest.options import RUN_OPTIONS, replay_value, suite_keys
from tobtest.suite import SuiteError, load_suite

REPO = Path(__file__).resolve().parents[2]
FLIP = str(REPO / "examples" / "flip.yaml")
# Where a run is stored and on which ports: all a replay may change. Said here, not read from
# the table, so that an option wrongly marked as not mattering for replay fails the round trip.
NOT_REPLAYED = {"store", "name", "base_port", "test_name"}
# Which hosts run the nodes, and how they are reached, is where a run runs too.
NOT_REPLAYED |= {"hosts", "ssh_user", "ssh_key", "ssh_port", "remote_python", "remote_dir"}
REPLAYED = [o for o in RUN_OPTIONS if o.replay != "never"]


def replayed(config: TestConfig) -> dict[str, Any]:
    """Everything of a run that its replay must keep (the client count, not None for it)."""
    return {k: v for k, v in config.to_dict().items() if k not in NOT_REPLAYED}


def cases(tmp_path: Path) -> dict[str, TestConfig]:
    """Runs that between them set every replay option away from its default."""
    stored = TestConfig(protocol="multipaxos", nemesis=["flip"], seed=11, rate=30,
                        bugs=["forget-promise"], nemesis_interval_s=3)  # fmt: skip
    run_dir = tmp_path / "t" / "20260101T000000"
    run_dir.mkdir(parents=True)
    (run_dir / "history.jsonl").write_text("")
    (run_dir / "test.yaml").write_text(yaml.safe_dump(stored.to_dict()))
    (run_dir / "schedule.yaml").write_text("steps:\n- {at_s: 1.0, do: kill, nodes: [n1]}\n")
    return {
        "builtin": TestConfig(
            nodes=5, protocol="multipaxos", nemesis=["partition", "kill"],
            nemesis_interval_s=2.5, partition_shapes=["bridge", "one"],
            nemesis_targets=["minority", "primaries"], link_delay_ms=12.5, time_limit_s=7.25,
            rate=33.333333333, concurrency=4, read_fraction=0.35, read_modes=["local", "lease"],
            seed=2**62 + 7, bugs=["lease-from-ack", "no-fsync"], op_timeout_s=0.75,
            route_to_leader=True, explore_feedback=False,
        ),
        "node-cmd": TestConfig(
            protocol="leader-log", workload="register", nemesis=["kill", "clock"],
            node_cmd="python3 node.py --id {id} {peer_args}", node_caps=["durable", "kv", "clock"],
            node_read_modes=["local", "log"], bugs=["whatever-it-seeds"], seed=5,
        ),
        "maelstrom": TestConfig(
            maelstrom="python3 broadcast.py --fast", workload="broadcast", nemesis=["partition"],
            extra_checkers=["total-order", "broadcast-elle"], seed=3,
        ),
        "schedule": TestConfig(
            protocol="multipaxos", nemesis_schedule=FLIP,
            nemesis=load_schedule(Path(FLIP)).nemeses(), seed=9,
        ),
        "replay": TestConfig(
            **{**stored.__dict__, "replay_schedule": str(run_dir.resolve()), "rate": 20}
        ),
    }  # fmt: skip


def through_the_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> TestConfig:
    """The config `tobtest run ARGV` would run, parsed and checked as the real command does."""
    started: list[TestConfig] = []

    def run_with_console(config: TestConfig) -> int:
        started.append(config)  # instead of running it
        return 0

    monkeypatch.setattr("tobtest.console.run_with_console", run_with_console)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0, capsys.readouterr().err
    (config,) = started
    return config


@pytest.mark.parametrize("case", ["builtin", "node-cmd", "maelstrom", "schedule", "replay"])
def test_every_replay_option_survives_the_reproduce_command(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    config = cases(tmp_path)[case]
    argv = shlex.split(config.reproduce_command())
    assert argv[:2] == ["tobtest", "run"]
    assert replayed(through_the_cli(argv[1:], monkeypatch, capsys)) == replayed(config)


def test_the_cases_move_every_replay_option_off_its_default(tmp_path: Path) -> None:
    default = TestConfig()
    configs = cases(tmp_path).values()
    unexercised = [
        o.flag
        for o in REPLAYED
        if all(replay_value(o, c) == replay_value(o, default) for c in configs)
    ]
    assert unexercised == []


def test_only_where_a_run_runs_is_left_out_of_replay() -> None:
    never = {o.field for o in RUN_OPTIONS if o.replay == "never" and o.field is not None}
    assert never == NOT_REPLAYED - {"test_name"}


def test_the_reproduce_command_carries_the_op_timeout() -> None:
    # It used to be left out, so a replay ran with the default 2 s timeout.
    command = TestConfig(seed=1, op_timeout_s=0.75).reproduce_command()
    assert "--op-timeout 0.75" in command
    assert "--op-timeout" not in TestConfig(seed=1).reproduce_command()


def test_floats_are_written_short_but_exact() -> None:
    argv = shlex.split(TestConfig(seed=1, rate=20.0, time_limit_s=1 / 3).reproduce_command())
    assert argv[argv.index("--rate") + 1] == "20"
    assert float(argv[argv.index("--time-limit") + 1]) == 1 / 3


def test_the_run_command_has_exactly_the_tables_options() -> None:
    assert [p.name for p in run.params] == [o.name for o in RUN_OPTIONS]
    flags = {flag for p in run.params for flag in (*p.opts, *p.secondary_opts)}
    assert flags == {o.flag for o in RUN_OPTIONS} | {"--no-explore-feedback"}


def test_suites_take_the_tables_suite_options_as_keys() -> None:
    assert set(suite_keys()) == {
        "nodes", "protocol", "workload", "nemesis", "nemesis_interval", "nemesis_schedule",
        "partition_shapes", "nemesis_targets", "time_limit", "link_delay_ms", "rate",
        "concurrency", "read_fraction", "read_mode", "bug", "op_timeout", "node_cmd",
        "node_caps", "node_read_modes", "maelstrom", "checker",
    }  # fmt: skip


@pytest.mark.parametrize("case", ["builtin", "node-cmd", "maelstrom", "schedule"])
def test_a_suite_case_with_a_runs_options_is_that_run(case: str, tmp_path: Path) -> None:
    config = cases(tmp_path)[case]
    default = TestConfig()
    defaults = {}
    for option in REPLAYED:
        value = replay_value(option, config)
        if not option.suite or value in (None, replay_value(option, default)):
            continue
        if option.key != "nemesis" or case != "schedule":  # a schedule says its nemeses
            defaults[option.key] = value
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"defaults": defaults, "seeds": [config.seed]}))
    (loaded,) = load_suite(suite).cases
    unset = {o.field for o in REPLAYED if not o.suite}  # flags suites do not take
    assert {k: v for k, v in replayed(loaded).items() if k not in unset} == {
        k: v for k, v in replayed(config).items() if k not in unset
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("defaults: {nodes: 0}", "defaults.nodes: 0 is not in the range 1<=x<=9."),
        ("defaults: {op_timeout: 0}", "defaults.op_timeout: 0.0 is not in the range 0.05<=x<=600."),
        ("defaults: {read_fraction: 2}", "defaults.read_fraction: 2.0 is not in the range"),
        ("defaults: {checker: [sorcery]}", "defaults.checker: unknown value 'sorcery'"),
        ("defaults: {read_mode: [psychic]}", "defaults.read_mode: unknown read mode psychic"),
    ],
)
def test_suite_values_get_the_cli_options_ranges_and_choices(
    tmp_path: Path, text: str, message: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    with pytest.raises(SuiteError) as info:
        load_suite(suite)
    assert message in str(info.value) and "\n" not in str(info.value)
