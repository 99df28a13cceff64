"""The node contract: the built-in kind agrees with the node package, templates fill in, and
runs a node kind cannot serve are refused."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tobtest.config import TestConfig
from tobtest.node import server as node_server
from tobtest.node.protocols import PROTOCOLS
from tobtest.node.protocols import base as core_base
from tobtest.node.server import node_name as server_node_name
from tobtest.node_kind import (
    BUILTIN,
    PLACEHOLDERS,
    READ_MODES,
    CommandKind,
    NodeKindError,
    NodeLaunch,
    check_config,
    node_kind_for,
    node_name,
)

EXAMPLE_NODE = Path(__file__).resolve().parents[2] / "examples" / "nodes" / "leader_log.py"


def launch(**changes: object) -> NodeLaunch:
    fields: dict[str, object] = {
        "node_id": 1, "n": 3, "protocol": "paxos", "client_port": 7101, "peer_port": 7201,
        "peers": {0: ("127.0.0.1", 7310), 2: ("127.0.0.1", 7312)},
        "data_dir": Path("/tmp/run/nodes/n2.data"), "seed": 42, "parent_pid": 99,
    }  # fmt: skip
    fields.update(changes)
    return NodeLaunch(**fields)  # type: ignore[arg-type]


# ---- the built-in kind is what the node package says ------------------------------------------


def test_builtin_protocols_and_bugs_are_the_node_packages():
    assert BUILTIN.protocols() == tuple(PROTOCOLS)
    for protocol, entry in PROTOCOLS.items():
        assert BUILTIN.bugs(protocol) == (*entry.all_bugs, *BUILTIN.SHELL_BUGS), protocol
    server = Path(node_server.__file__).read_text()
    assert all(f'"{bug}" in config.bugs' in server for bug in BUILTIN.SHELL_BUGS)


def test_builtin_read_modes_are_the_registrys():
    # The registry's read modes are those its cores do not refuse (test_protocol_contract).
    assert set(READ_MODES) == set(core_base.READ_MODES)
    for protocol, entry in PROTOCOLS.items():
        assert set(BUILTIN.read_modes(protocol)) == set(entry.read_modes), protocol


def test_builtin_status_fields_are_declared_by_the_registry():
    # The registry's status fields are those its cores report (test_protocol_contract).
    for protocol, entry in PROTOCOLS.items():
        assert BUILTIN.status_fields(protocol) <= entry.status_fields, protocol


def test_node_names_are_the_nodes_own():
    assert [node_name(i) for i in range(5)] == [server_node_name(i) for i in range(5)]


def test_builtin_argv_is_the_node_command_line():
    argv = BUILTIN.argv(launch(bugs=("no-dedupe",), disk_fault="lose-unsynced"))
    assert argv == [
        sys.executable, "-m", "tobtest.node", "--id", "1", "--n", "3", "--protocol", "paxos",
        "--client-port", "7101", "--peer-port", "7201", "--seed", "42", "--parent-pid", "99",
        "--data-dir", "/tmp/run/nodes/n2.data", "--peer", "0=127.0.0.1:7310",
        "--peer", "2=127.0.0.1:7312", "--bug", "no-dedupe", "--disk-fault", "lose-unsynced",
    ]  # fmt: skip


# ---- a command template -----------------------------------------------------------------------


def test_a_template_fills_in_every_placeholder():
    template = " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    kind = CommandKind("mynode " + template)
    filled = kind.fill(launch(bugs=("b1", "b2")))
    assert filled == [
        "mynode", "1", "n2", "3", "paxos", "127.0.0.1", "7101", "7201",
        "0=127.0.0.1:7310,2=127.0.0.1:7312",
        "--peer", "0=127.0.0.1:7310", "--peer", "2=127.0.0.1:7312",
        "/tmp/run/nodes/n2.data", "42", "b1,b2", "--bug", "b1", "--bug", "b2", "none",
    ]  # fmt: skip


def test_a_template_runs_under_the_launcher_and_keeps_quoted_words():
    kind = CommandKind("'my node' --port={client_port} --name 'node {name}' {bug_args}")
    argv = kind.argv(launch())
    assert argv[:5] == [sys.executable, "-m", "tobtest.launch", "--parent-pid", "99"]
    assert argv[5:] == ["--", "my node", "--port=7101", "--name", "node n2"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("mynode --port {port}", "unknown placeholder {port}"),
        ("mynode --x={peer_args}", "{peer_args} must be a word of its own"),
        ("mynode {id", "bad template word"),
        ("", "empty command"),
        ("'unclosed", "cannot split"),
        ("{name}-node", "the program (first word) takes no placeholder"),
    ],
)
def test_bad_templates_are_one_line_errors(template, message):
    with pytest.raises(NodeKindError, match=re.escape(message)) as e:
        CommandKind(template)
    assert "\n" not in str(e.value)


def test_unknown_capabilities_and_read_modes_are_refused():
    with pytest.raises(NodeKindError, match="unknown capability teleport"):
        CommandKind("mynode", frozenset({"teleport"}))
    with pytest.raises(NodeKindError, match="unknown read mode psychic"):
        CommandKind("mynode", modes=("psychic",))


# ---- what a run may ask of its node kind ------------------------------------------------------


def command_config(**changes: object) -> TestConfig:
    config = TestConfig(
        node_cmd=f"{sys.executable} {EXAMPLE_NODE} --id {{id}}",
        protocol="custom",
        nemesis=["partition"],
        node_read_modes=["local", "log"],
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_the_config_names_its_node_kind():
    assert node_kind_for(TestConfig()) is BUILTIN
    kind = node_kind_for(command_config(node_caps=["durable"]))
    assert isinstance(kind, CommandKind)
    assert kind.capabilities == {"durable", "restart"} and kind.read_modes("custom") == (
        "local",
        "log",
    )
    assert command_config().workload_options()["read_modes"] == ["local", "log"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nemesis": ["explore"]}, "nemesis all (the exploring nemesis) needs node capability"),
        ({"nemesis": ["partition", "kill"]}, "nemesis kill needs node capability restart"),
        ({"nemesis": ["clock"], "node_caps": ["durable"]}, "nemesis clock needs node capa"),
        ({"nemesis": ["disk"], "node_caps": ["durable"]}, "disk needs node capability disk,"),
        ({"workload": "register"}, "workload register needs node capability kv"),
        ({"read_modes": ["lease"]}, "read mode lease is not served by the --node-cmd node"),
        ({"node_cmd": "/no/such/node --id {id}"}, "cannot run '/no/such/node'"),
        ({"node_cmd": "no-such-node-program-here"}, "cannot run 'no-such-node-program-here'"),
    ],
)
def test_a_run_the_node_kind_cannot_serve_is_refused(changes, message):
    with pytest.raises(NodeKindError, match=re.escape(message)):
        check_config(command_config(**changes))


def test_a_run_within_the_node_kinds_capabilities_passes():
    config = command_config(nemesis=["kill", "pause", "partition", "link"], node_caps=["durable"])
    assert isinstance(check_config(config), CommandKind)
    assert check_config(TestConfig()) is BUILTIN  # the default run: every capability


def test_a_bug_the_protocol_lacks_is_refused_naming_the_ones_it_has():
    with pytest.raises(NodeKindError) as info:
        check_config(TestConfig(protocol="paxos", nemesis=["partition"], bugs=["forget-promise"]))
    message = str(info.value)
    assert message.startswith("unknown bug forget-promise: the built-in node has under paxos: ")
    assert message.endswith(", ".join(BUILTIN.bugs("paxos"))) and "\n" not in message
    # The shell's bug goes with every protocol; a --node-cmd node's bugs are its own business.
    check_config(
        TestConfig(protocol="raft", nemesis=["partition"], bugs=["no-fsync", "no-truncate"])
    )
    check_config(command_config(bugs=["whatever-it-seeds"]))


def test_the_builtin_node_refuses_what_its_protocol_does_not_serve():
    with pytest.raises(NodeKindError, match="read mode lease is not served by the built-in node"):
        check_config(TestConfig(protocol="paxos", read_modes=["lease"]))
    with pytest.raises(NodeKindError, match="does not offer protocol 'raftish'"):
        check_config(TestConfig(protocol="raftish"))
    check_config(TestConfig(protocol="multipaxos", read_modes=["lease"], nemesis=["clock"]))


def test_the_reproduce_command_carries_the_node_command():
    import shlex

    from tobtest.cli import cli

    config = command_config(node_caps=["durable"], nemesis=["kill"], seed=5)
    argv = shlex.split(config.reproduce_command())
    sub = cli.get_command(cli.make_context("tobtest", argv[1:]), "run")
    assert sub is not None
    params = sub.make_context("run", argv[2:]).params
    assert params["node_cmd"] == config.node_cmd
    assert params["node_caps"] == ["durable"]
    assert params["node_read_modes"] == ["local", "log"]
    assert params["protocol"] == "custom" and params["nemesis"] == ["kill"]
