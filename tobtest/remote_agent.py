"""The remote end of a run on other hosts: what tobtest runs there over SSH, stdlib only.

    python -m tobtest.remote_agent check '{"address": "10.0.0.2", "ports": [7001], ...}'
    python -m tobtest.remote_agent serve      # then one JSON spec line on stdin (below)
    python -m tobtest.remote_agent pack DIR [--remove]   # DIR as a tar.gz on stdout

`check` answers one JSON line: `{"errors": [...]}`, each a reason this host cannot take its
share of the run (a port taken, an address that is not this host's, a module that cannot be
imported, a program that cannot be run, a folder that cannot be made).

`serve` runs one process (a node, or this host's part of the proxy layer) and is its
parent. Its first stdin line is the spec: `{"argv": [...], "log": PATH, "dirs": [...],
"files": {PATH: TEXT}, "stdout_events": false}`; the word `@AGENT_PID@` in argv (and the
text `"@AGENT_PID@"` in files) becomes this agent's pid, so the child dies with the agent
(its --parent-pid). Then it takes commands, one JSON line each:
    {"do": "signal", "sig": "STOP"}   signal the child (STOP waits until it is stopped)
    {"do": "kill"}                    SIGKILL its process group, reap it
    {"do": "start"}                   start it again (same argv, log appended)
    {"do": "stop"}                    SIGTERM, a grace period, SIGKILL; then exit
and writes events, one JSON line each: `started` (pid, gen), `exited` (gen, code, reason:
the last line of its log) when the child ends on its own, `stdout` (a line the child printed,
with stdout_events), `done` after each command but stop (its effect is in place),
`stopped`. At EOF on stdin (the SSH channel closed: the runner ended or was SIGKILLed, or
the connection dropped) it SIGKILLs the child's process group and exits: nothing outlives
the session.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from typing import IO, Any

AGENT_PID = "@AGENT_PID@"
POLL_S = 0.05
STOP_GRACE_S = 2.0
STOPPED_WAIT_S = 1.0
COMMAND_BYTES_MAX = 1 << 20


# ---- check ----------------------------------------------------------------------------------


def check(request: dict[str, Any]) -> list[str]:
    """Reasons this host cannot run its share (empty: it can)."""
    errors: list[str] = []
    for module in request.get("modules", []):
        if importlib.util.find_spec(module) is None:
            errors.append(f"{sys.executable} cannot import {module}")
    for program in request.get("programs", []):
        found = os.access(program, os.X_OK) if "/" in program else shutil.which(program)
        if not found:
            errors.append(f"cannot run {program!r}: no such executable file")
    for folder in request.get("dirs", []):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            errors.append(f"cannot make {folder}: {exc.strerror or exc}")
    address = request.get("address", "127.0.0.1")
    for port in request.get("ports", []):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, int(port)))
            except OSError as exc:
                errors.append(f"port {port} on {address} is taken ({exc.strerror or exc})")
                if "assign" in str(exc.strerror or ""):
                    errors[-1] = f"{address} is not an address of this host"
                    break
    return errors


# ---- serve ----------------------------------------------------------------------------------


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def last_line(path: str) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 4096))
        lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()
    return "(no output)"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


class Agent:
    def __init__(self, spec: dict[str, Any]) -> None:
        me = str(os.getpid())
        self.argv = [str(w).replace(AGENT_PID, me) for w in spec["argv"]]
        self.log_path = str(spec["log"])
        self.stdout_events = bool(spec.get("stdout_events", False))
        for folder in [*spec.get("dirs", []), os.path.dirname(self.log_path)]:
            if folder:
                os.makedirs(folder, exist_ok=True)
        for path, text in spec.get("files", {}).items():
            with open(path, "w", encoding="utf-8") as f:
                f.write(str(text).replace(f'"{AGENT_PID}"', me))
        self.child: subprocess.Popen[bytes] | None = None
        self.gen = 0
        self.ended_on_purpose = False

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.child = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.stdout_events else log,
                stderr=log,
                # Its own process group: kill ends whatever it started too.
                start_new_session=True,
            )
        self.gen += 1
        self.ended_on_purpose = False
        emit({"event": "started", "pid": self.child.pid, "gen": self.gen})

    def signal(self, name: str) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(self.child.pid, getattr(signal, f"SIG{name}"))
        if name == "STOP":
            # So that a pause recorded as done is in place before the next command.
            deadline = time.monotonic() + STOPPED_WAIT_S
            while _state(self.child.pid) not in ("T", "t", "?") and time.monotonic() < deadline:
                time.sleep(0.002)

    def kill(self) -> None:
        if self.child is None:
            return
        self.ended_on_purpose = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.child.wait(timeout=5)

    def stop(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.ended_on_purpose = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child.pid, signal.SIGCONT)
                os.killpg(self.child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.child.wait(timeout=STOP_GRACE_S)
        self.kill()

    def handle(self, command: dict[str, Any]) -> bool:
        """Runs one command; False when the agent is to exit."""
        do = command.get("do")
        if do == "signal":
            self.signal(str(command.get("sig", "")))
        elif do == "kill":
            self.kill()
        elif do == "start":
            if self.child is None or self.child.poll() is not None:
                self.start()
        elif do == "stop":
            self.stop()
            emit({"event": "stopped", "gen": self.gen})
            return False
        # Its effect is in place (stopped, dead, started): the runner may record it as done.
        emit({"event": "done", "do": do, "gen": self.gen})
        return True

    def loop(self, stdin: IO[bytes]) -> None:
        buffered = b""
        while True:
            child = self.child
            watched: list[Any] = [stdin]
            if self.stdout_events and child is not None and child.stdout is not None:
                watched.append(child.stdout)
            ready, _, _ = select.select(watched, [], [], POLL_S)
            if child is not None and child.stdout is not None and child.stdout in ready:
                line = child.stdout.readline()
                if line:
                    emit({"event": "stdout", "line": line.decode("utf-8", "replace").strip()})
                else:
                    child.stdout.close()
                    child.stdout = None
            if child is not None and child.poll() is not None and not self.ended_on_purpose:
                self.ended_on_purpose = True  # reported once
                reason = last_line(self.log_path)
                emit({"event": "exited", "gen": self.gen, "code": child.returncode,
                      "reason": reason})  # fmt: skip
            if stdin in ready:
                chunk = os.read(stdin.fileno(), 65536)
                if not chunk:
                    return  # EOF: the session is gone
                buffered += chunk
                if len(buffered) > COMMAND_BYTES_MAX:
                    return
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    with contextlib.suppress(ValueError):
                        if not self.handle(json.loads(line)):
                            return


def serve(stdin: IO[bytes]) -> int:
    first = b""
    while not first.endswith(b"\n"):
        chunk = os.read(stdin.fileno(), 1)
        if not chunk:
            return 0
        first += chunk
    agent = Agent(json.loads(first))
    try:
        agent.start()
    except OSError as exc:
        emit({"event": "exited", "gen": 0, "code": 127,
              "reason": f"cannot run {agent.argv[0]!r}: {exc.strerror or exc}"})  # fmt: skip
        return 0
    try:
        agent.loop(stdin)
    finally:
        agent.kill()
    return 0


# ---- pack -----------------------------------------------------------------------------------


def pack(folder: str, remove: bool) -> int:
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|gz") as tar:
        tar.add(folder, arcname=".")
    sys.stdout.flush()
    if remove:
        shutil.rmtree(folder, ignore_errors=True)
        # The run's folder, once its last host's share is gone (hosts may share a disk).
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(os.path.abspath(folder)))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"] and len(argv) == 2:
        emit({"errors": check(json.loads(argv[1]))})
        return 0
    if argv[:1] == ["serve"]:
        # A SIGHUP or SIGPIPE from a dropped session must not skip the kill in serve().
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        return serve(sys.stdin.buffer)
    if argv[:1] == ["pack"] and len(argv) in (2, 3):
        return pack(argv[1], argv[2:] == ["--remove"])
    print("usage: python -m tobtest.remote_agent check JSON | serve | pack DIR [--remove]",
          file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
