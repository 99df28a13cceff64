"""TestConfig: defaults, names, and the command that reproduces a run."""

import shlex

from tobtest.cli import cli
from tobtest.config import TestConfig


def test_defaults_are_the_short_default_test():
    config = TestConfig()
    assert (config.nodes, config.protocol, config.nemesis) == (3, "paxos", ["explore"])
    assert config.client_count == 6
    assert 15 <= config.time_limit_s <= 30


def test_reproduce_command_parses_back_to_the_same_schedule():
    config = TestConfig(
        nodes=5, nemesis=["partition"], seed=99, rate=20, bugs=["no-dedupe"], route_to_leader=True
    )
    config.partition_shapes = ["one", "bridge"]
    argv = shlex.split(config.reproduce_command())
    assert argv[:2] == ["tobtest", "run"]
    ctx = cli.make_context("tobtest", list(argv[1:]))
    sub = cli.get_command(ctx, "run")
    assert sub is not None
    params = sub.make_context("run", list(argv[2:])).params
    assert params["seed"] == 99 and params["nodes"] == 5 and params["rate"] == 20
    assert params["partition_shapes"] == ["one", "bridge"]
    assert params["bug"] == ("no-dedupe",)
    assert params["concurrency"] == 10
    assert params["route_to_leader"] is True
    assert params["nemesis"] == ["partition"]
    explore = shlex.split(TestConfig(seed=1, explore_feedback=False).reproduce_command())
    params = sub.make_context("run", explore[2:]).params
    assert params["nemesis"] == ["explore"] and params["explore_feedback"] is False


def test_test_name_joins_nemeses():
    assert TestConfig(nemesis=[]).test_name == "paxos-broadcast-none"
    assert TestConfig(name="mine").test_name == "mine"


def test_a_broadcast_run_reads_in_every_mode_its_protocol_serves_unless_told():
    assert TestConfig(protocol="paxos").workload_options() == {
        "read_modes": ["local", "log"], "read_fraction": 0.2
    }  # fmt: skip
    assert TestConfig(protocol="multipaxos").workload_options()["read_modes"] == [
        "local", "log", "lease"
    ]  # fmt: skip
    chosen = TestConfig(protocol="multipaxos", read_modes=["local"], read_fraction=0.5)
    assert chosen.workload_options() == {"read_modes": ["local"], "read_fraction": 0.5}
    register = TestConfig(workload="register").workload_options()
    assert register == {"read_modes": None}  # the register workload's own default (log)
