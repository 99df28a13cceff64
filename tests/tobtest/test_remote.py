"""Runs with nodes on other hosts over SSH, for real: an OpenSSH server of the test's own on
127.0.0.2-4 stands for three hosts (same machine, same tobtest path). Every remote process
is a descendant of that sshd, so "nothing left behind" is "sshd has no child left"."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import subprocess_env, tobtest_argv
from tests.helpers.sshd import Sshd, assert_nothing_left, cmdline, remote_processes
from tests.tobtest.conftest import SSH_HOSTS
from tobtest.config import TestConfig
from tobtest.remote import plan, read_hosts_file
from tobtest.remote_ssh import RemoteError

GONE_TIMEOUT_S = 15.0


def ssh_args(sshd: Sshd, tmp_path: Path, hosts: list[str] = SSH_HOSTS) -> list[str]:
    args = [word for host in hosts for word in ("--host", host)]
    return [*args, "--ssh-user", sshd.user, "--ssh-key", str(sshd.key_path),
            "--ssh-port", str(sshd.port), "--remote-dir", str(tmp_path / "remote")]  # fmt: skip


def run_cli(args: list[str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tobtest_argv(*args), capture_output=True, text=True, timeout=timeout_s,
        env=subprocess_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_hosts_file_takes_one_host_a_line_with_comments(tmp_path: Path):
    path = tmp_path / "hosts"
    path.write_text("# lab\n127.0.0.2\n\n127.0.0.3  # the second\n")
    assert read_hosts_file(path) == ["127.0.0.2", "127.0.0.3"]
    path.write_text("# nobody\n")
    with pytest.raises(RemoteError, match="no host in it"):
        read_hosts_file(path)


def test_the_plan_puts_node_i_on_host_i_and_refuses_more_hosts_than_nodes():
    setup = plan(TestConfig(nodes=3, hosts=["127.0.0.2", "127.0.0.3"]))
    assert [t.host for t in setup.targets] == ["127.0.0.2", "127.0.0.3", "127.0.0.2"]
    assert setup.addresses == ("127.0.0.2", "127.0.0.3", "127.0.0.2")
    with pytest.raises(RemoteError, match="4 hosts for 3 nodes"):
        plan(TestConfig(nodes=3, hosts=["127.0.0.2"] * 4))
    with pytest.raises(RemoteError, match="not --maelstrom"):
        plan(TestConfig(hosts=["127.0.0.2"], maelstrom="python3 raft.py"))
    with pytest.raises(RemoteError, match="needs {host}"):
        plan(TestConfig(hosts=["127.0.0.2"], node_cmd="./node --port {client_port}"))
    with_host = plan(TestConfig(hosts=["127.0.0.2"], node_cmd="./node --listen {host}"))
    assert (
        with_host.node_program == "./node"
        and plan(TestConfig(hosts=["127.0.0.2"])).node_program is None
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--ssh-user", "root"], "--ssh-* and --remote-* go with --host or --hosts-file"),
        (["--host", "127.0.0.2", "--suite", "s.yaml"], "--host and --hosts-file go without"),
        (["--hosts-file", "/no/such/hosts"], "--hosts-file /no/such/hosts: No such file"),
        (["--host", "127.0.0.2", "--nodes", "1", "--ssh-key", "/no/key"], "--ssh-key /no/key"),
    ],
)
def test_remote_options_out_of_place_are_one_line_and_254(args, expected, tmp_path: Path):
    result = run_cli(["run", *args, "--store", str(tmp_path / "store")], timeout_s=60)
    assert result.returncode == 254, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_run_on_three_hosts_faults_them_and_fetches_everything(sshd: Sshd, tmp_path: Path):
    store = tmp_path / "store"
    result = run_cli([
        "run", *ssh_args(sshd, tmp_path), "--store", str(store), "--time-limit", "4",
        "--nemesis", "partition,kill,pause,clock", "--nemesis-interval", "1", "--seed", "7",
    ])  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = store / "latest"
    for name in ("n1", "n2", "n3"):
        assert (run / "nodes" / f"{name}.status.json").is_file()
        assert (run / "nodes" / f"{name}.data" / "wal.log").is_file()
    # Each node listened on its own host's address, its proxies too, and their links
    # carried messages from host to host.
    assert "--host" not in (run / "nodes" / "n2.log").read_text()
    for host in SSH_HOSTS:
        proxy_log = (run / f"proxy-{host}.log").read_text()
        assert f"listening on {host}" in proxy_log
    config = json.loads((run / "proxy-127.0.0.3.json").read_text())
    assert {(link["src"], link["target_host"]) for link in config["links"]} == {
        ("n2", "127.0.0.2"),
        ("n2", "127.0.0.4"),
    }
    results = json.loads((run / "results.json").read_text())
    assert results["network"]["messages"] > 0
    steps = {op["f"] for op in map(json.loads, (run / "history.jsonl").read_text().splitlines())}
    assert {"start-partition", "start-kill", "start-pause", "start-clock"} <= steps
    assert not (tmp_path / "remote").exists() or not any((tmp_path / "remote").iterdir())
    assert 'href="proxy-127.0.0.2.log"' in (run / "report.html").read_text()
    shown = run_cli(["show", "--store", str(store)])
    assert shown.returncode == 0 and "VALID" in shown.stdout, shown.stderr
    assert_nothing_left(sshd)


def start_run(sshd: Sshd, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        tobtest_argv("run", *ssh_args(sshd, tmp_path), "--store", str(tmp_path / "store"),
                     "--time-limit", "60", "--nemesis", "pause", "--nemesis-interval", "1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def wait_nodes_up(sshd: Sshd, runner: subprocess.Popen[str]) -> None:
    """Until all three nodes run under the sshd (bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and runner.poll() is None:
        nodes = [p for p in remote_processes(sshd) if "tobtest.node" in cmdline(p)]
        if len(nodes) == 3:
            time.sleep(1.0)  # into the main phase, with faults under way
            return
        time.sleep(0.1)
    runner.kill()
    raise AssertionError(f"nodes did not start: {runner.communicate(timeout=10)}")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_ctrl_c_ends_every_remote_process(sshd: Sshd, tmp_path: Path):
    runner = start_run(sshd, tmp_path)
    wait_nodes_up(sshd, runner)
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, err
    assert "interrupted" in err
    assert_nothing_left(sshd)
    # What ran is still fetched into the store.
    assert (tmp_path / "store" / "latest" / "nodes" / "n1.log").is_file()


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_sigkilled_runner_leaves_nothing_on_the_hosts(sshd: Sshd, tmp_path: Path):
    runner = start_run(sshd, tmp_path)
    wait_nodes_up(sshd, runner)
    runner.kill()  # no finally, no atexit: only the SSH connections' end tells the hosts
    runner.communicate(timeout=30)
    assert_nothing_left(sshd)


def taken_port(address: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen()
    return sock


# The built-in node, started as a user's node would be: through its command line alone.
NODE_CMD = (
    f"{sys.executable} -m tobtest.node --id {{id}} --n {{n}} --protocol multipaxos "
    "--client-port {client_port} --peer-port {peer_port} --data-dir {data_dir} "
    "--seed {seed} {peer_args} --host {host}"
)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_node_command_runs_on_three_hosts_under_partitions(sshd: Sshd, tmp_path: Path):
    store = tmp_path / "store"
    result = run_cli([
        "run", *ssh_args(sshd, tmp_path), "--store", str(store), "--time-limit", "4",
        "--node-cmd", NODE_CMD, "--node-read-modes", "local,log", "--nemesis", "partition",
        "--nemesis-interval", "1", "--seed", "3",
    ])  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = store / "latest"
    for name in ("n1", "n2", "n3"):
        assert (run / "nodes" / f"{name}.log").is_file()
    # n1's links (on 127.0.0.2) carried its messages to n2 at 127.0.0.3, where n2 listened
    # (the run's clients reached it there too: the run is valid).
    config = json.loads((run / "proxy-127.0.0.2.json").read_text())
    assert ("n2", "127.0.0.3") in {(link["dst"], link["target_host"]) for link in config["links"]}
    steps = {op["f"] for op in map(json.loads, (run / "history.jsonl").read_text().splitlines())}
    assert "start-partition" in steps
    assert json.loads((run / "results.json").read_text())["valid"] is True
    assert_nothing_left(sshd)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_bad_hosts_are_one_line_and_254_before_the_run(sshd: Sshd, tmp_path: Path):
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    closed = taken_port("127.0.0.5")
    no_ssh_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: a host that refuses connections
    busy = taken_port("127.0.0.3")
    busy_port = busy.getsockname()[1]
    base = ssh_args(sshd, tmp_path)
    cases = {
        "cannot connect": ["--host", "127.0.0.5", "--ssh-port", str(no_ssh_port),
                           "--ssh-key", str(sshd.key_path)],
        "key was refused": [*base, "--ssh-key", str(other_key)],
        "cannot run /no/such/python": [*base, "--remote-python", "/no/such/python"],
        # The system's python, without tobtest: the node's command cannot run there.
        "cannot import tobtest": [*base, "--remote-python", "/usr/bin/python3"],
        f"port {busy_port} on 127.0.0.3 is taken": [*base, "--base-port", str(busy_port - 1)],
        # A node command that the hosts do not have (nor this machine: not checked here).
        "cannot run '/no/such/node'": [*base, "--node-cmd", "/no/such/node --host {host}"],
    }  # fmt: skip
    try:
        for expected, args in cases.items():
            result = run_cli(["run", *args, "--store", str(tmp_path / "store"),
                              "--time-limit", "1"])  # fmt: skip
            assert result.returncode == 254, (expected, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and expected in lines[0], (expected, result.stderr)
            assert lines[0].startswith("tobtest: ")
    finally:
        busy.close()
    assert not (tmp_path / "store").exists()  # refused before the run: no run stored
    assert_nothing_left(sshd)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_host_that_drops_mid_run_is_a_crash_of_its_node_and_the_run_goes_on(
    sshd: Sshd, tmp_path: Path
):
    store = tmp_path / "store"
    runner = subprocess.Popen(
        tobtest_argv("run", *ssh_args(sshd, tmp_path), "--store", str(store),
                     "--time-limit", "6", "--nemesis", "none"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    wait_nodes_up(sshd, runner)
    # The sshd session serving 127.0.0.4 ends as if that host went down.
    for proc in remote_processes(sshd):
        with contextlib.suppress(psutil.Error):
            if any(c.laddr and c.laddr.ip == "127.0.0.4" for c in proc.net_connections()):
                proc.kill()
    _, err = runner.communicate(timeout=90)
    assert runner.returncode in (0, 1, 2), err
    history = [json.loads(line) for line in (store / "latest" / "history.jsonl").open()]
    crashes = [op for op in history if op["f"] == "crash"]
    assert [op["node"] for op in crashes] == ["n3"]
    assert "127.0.0.4" in crashes[0]["value"]["reason"]
    assert (store / "latest" / "nodes" / "n1.log").is_file()
    assert_nothing_left(sshd)
