"""tobtest/maelstrom/kind.py: the Maelstrom node kind, and what the contract allows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tobtest.config import TestConfig
from tobtest.maelstrom.kind import LIBFAKETIME_ENV, MaelstromKind
from tobtest.node_kind import NodeKindError, NodeLaunch, check_config, node_kind_for


def maelstrom_config(**changes: object) -> TestConfig:
    config = TestConfig(maelstrom="python3 node.py --flag", workload="lin-kv", nemesis=[],
                        protocol="maelstrom")  # fmt: skip
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_a_shim_launches_the_node_with_its_ports_peers_and_setup():
    kind = node_kind_for(maelstrom_config(workload="broadcast"))
    assert isinstance(kind, MaelstromKind) and len(kind.setup) == 1  # the topology
    launch = NodeLaunch(
        node_id=1, n=3, protocol="maelstrom", client_port=7001, peer_port=7002,
        peers={0: ("127.0.0.1", 7010), 2: ("127.0.0.1", 7012)}, data_dir=Path("/tmp/d"),
        seed=1, parent_pid=42, service_port=7020,
    )  # fmt: skip
    argv = kind.argv(launch)
    assert argv[1:3] == ["-m", "tobtest.maelstrom.shim"]
    assert argv[-4:] == ["--", "python3", "node.py", "--flag"]
    joined = " ".join(argv)
    assert "--peer 0=127.0.0.1:7010 --peer 2=127.0.0.1:7012" in joined
    assert "--service-port 7020" in joined and "--parent-pid 42" in joined
    assert '"type": "topology"' in joined
    assert "--faketime" not in argv  # preloaded only into runs that move clocks


@pytest.fixture
def no_libfaketime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LIBFAKETIME_ENV, "")


def test_a_maelstrom_node_may_be_killed_but_its_kills_lose_state(no_libfaketime):
    kind = check_config(maelstrom_config(nemesis=["partition", "kill", "pause", "link"]))
    assert kind.capabilities == {"restart"}  # never durable


def test_with_libfaketime_its_clock_can_be_moved(monkeypatch, tmp_path):
    lib = tmp_path / "libfaketime.so.1"
    lib.write_bytes(b"")
    monkeypatch.setenv(LIBFAKETIME_ENV, str(lib))
    kind = check_config(maelstrom_config(nemesis=["clock"]))
    assert kind.capabilities == {"restart", "clock"}
    launch = NodeLaunch(
        node_id=0, n=1, protocol="maelstrom", client_port=1, peer_port=2, peers={},
        data_dir=tmp_path, seed=1, parent_pid=1, service_port=3,
    )  # fmt: skip
    argv = kind.argv(launch)
    assert argv[argv.index("--faketime") + 1] == str(lib)
    assert argv[argv.index("--clock-file") + 1] == str(tmp_path / "faketime.txt")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"nemesis": ["clock"]},
            "nemesis clock needs node capability clock, which the "
            "--maelstrom node (python3 node.py) lacks",
        ),
        ({"nemesis": ["disk"]}, "nemesis disk needs node capability disk, durable"),
        ({"nemesis": ["explore"]}, "nemesis all (the exploring nemesis) needs"),
        ({"workload": "register"}, "workload register is not a Maelstrom workload"),
        ({"read_modes": ["log"]}, "serves no read modes"),
        ({"maelstrom": "/no/such/node"}, "--maelstrom: cannot run '/no/such/node'"),
        ({"maelstrom": "  "}, "--maelstrom: empty command"),
    ],
)
def test_what_a_maelstrom_node_cannot_serve_is_refused(changes, message, no_libfaketime):
    with pytest.raises(NodeKindError, match=re.escape(message)):
        check_config(maelstrom_config(**changes))


def test_the_reproduce_command_carries_the_maelstrom_command_and_extra_checkers():
    import shlex

    from tobtest.cli import cli

    config = maelstrom_config(workload="broadcast", extra_checkers=["total-order"], seed=3)
    argv = shlex.split(config.reproduce_command())
    sub = cli.get_command(cli.make_context("tobtest", argv[1:]), "run")
    assert sub is not None
    params = sub.make_context("run", argv[2:]).params
    assert params["maelstrom"] == "python3 node.py --flag"
    assert params["extra_checkers"] == ("total-order",) and params["workload"] == "broadcast"


def test_a_maelstrom_workload_without_a_maelstrom_node_is_refused():
    with pytest.raises(NodeKindError, match="workload lin-kv is for Maelstrom nodes"):
        check_config(TestConfig(workload="lin-kv"))
