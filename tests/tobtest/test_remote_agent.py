"""The remote agent, run here without SSH: its checks, and the process it serves ending
with its stdin (the SSH session)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from tests.conftest import wait_gone
from tobtest.remote_agent import AGENT_PID, check

pytestmark = pytest.mark.integration


def test_check_names_a_taken_port_a_missing_module_and_a_foreign_address(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        errors = check({"address": "127.0.0.1", "ports": [port], "modules": ["no_such_mod"]})
    assert errors == [
        f"{sys.executable} cannot import no_such_mod",
        f"port {port} on 127.0.0.1 is taken (Address already in use)",
    ]
    # 192.0.2.1 (TEST-NET-1) is bound, never reached: no traffic leaves the machine.
    assert check({"address": "192.0.2.1", "ports": [40000, 40001]}) == [
        "192.0.2.1 is not an address of this host"
    ]
    assert check({"modules": ["tobtest.node"], "dirs": [str(tmp_path / "a" / "b")]}) == []
    assert (tmp_path / "a" / "b").is_dir()


def events(stdout: IO[str]) -> Any:
    while line := stdout.readline():
        yield json.loads(line)


def serve(spec: dict[str, Any]) -> subprocess.Popen[str]:
    agent = subprocess.Popen(
        [sys.executable, "-m", "tobtest.remote_agent", "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert agent.stdin is not None
    agent.stdin.write(json.dumps(spec) + "\n")
    agent.stdin.flush()
    return agent


def send(agent: subprocess.Popen[str], command: dict[str, Any]) -> None:
    assert agent.stdin is not None
    agent.stdin.write(json.dumps(command) + "\n")
    agent.stdin.flush()


SLEEPER = "import sys, time; print('up', sys.argv[1], flush=True); time.sleep(120)"


def wait_lines(path: Path, count: int) -> list[str]:
    """The log's lines once it has `count` (bounded: 10 s)."""
    for _ in range(1000):
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.01)
    return lines


def test_the_child_dies_when_the_session_ends(tmp_path: Path):
    log = tmp_path / "n1.log"
    agent = serve({"argv": [sys.executable, "-c", SLEEPER, AGENT_PID], "log": str(log)})
    assert agent.stdout is not None
    started = next(events(agent.stdout))
    assert started["event"] == "started"
    child = psutil.Process(started["pid"])
    assert child.ppid() == agent.pid
    # Its --parent-pid word became the agent's pid.
    assert wait_lines(log, 1) == [f"up {agent.pid}"]
    send(agent, {"do": "signal", "sig": "STOP"})
    send(agent, {"do": "kill"})
    assert [next(events(agent.stdout))["do"] for _ in range(2)] == ["signal", "kill"]
    assert not psutil.pid_exists(child.pid)  # killed and reaped when `done` came
    assert wait_gone([child.pid]) == []
    send(agent, {"do": "start"})
    again = next(events(agent.stdout))
    assert (again["event"], again["gen"]) == ("started", 2)
    assert next(events(agent.stdout)) == {"event": "done", "do": "start", "gen": 2}
    assert wait_lines(log, 2) == [f"up {agent.pid}", f"up {agent.pid}"]
    assert agent.stdin is not None
    agent.stdin.close()  # what sshd does when the connection drops
    assert agent.wait(timeout=10) == 0
    assert wait_gone([again["pid"]]) == []


def test_a_child_that_ends_on_its_own_is_reported_with_its_last_log_line(tmp_path: Path):
    log = tmp_path / "n1.log"
    code = "import sys; print('bad disk', file=sys.stderr); sys.exit(3)"
    agent = serve({"argv": [sys.executable, "-c", code], "log": str(log)})
    assert agent.stdout is not None
    seen = events(agent.stdout)
    assert next(seen)["event"] == "started"
    assert next(seen) == {"event": "exited", "gen": 1, "code": 3, "reason": "bad disk"}
    send(agent, {"do": "stop"})
    assert next(seen)["event"] == "stopped"
    assert agent.wait(timeout=10) == 0


def test_pack_writes_a_folder_as_tar_and_removes_it(tmp_path: Path):
    folder = tmp_path / "run" / "host"
    (folder / "nodes").mkdir(parents=True)
    (folder / "nodes" / "n1.log").write_text("hello\n")
    packed = subprocess.run(
        [sys.executable, "-m", "tobtest.remote_agent", "pack", str(folder), "--remove"],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(packed.stdout), mode="r:gz") as tar:
        assert "./nodes/n1.log" in tar.getnames()
    assert not (tmp_path / "run").exists()
