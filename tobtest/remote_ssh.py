"""SSH to the hosts of a run (asyncssh): connect, ask the remote agent, run and fetch.

    target = SshTarget("10.0.0.2", user="root", key_path="~/.ssh/id_ed25519", port=22)
    conn = await connect(target)                    # RemoteError: one line saying why not
    errors = await agent_check(conn, target, "/usr/bin/python3", {"ports": [7001]})
    proc = await AgentProcess.open(conn, "/usr/bin/python3", spec)   # tobtest.remote_agent
    await fetch_dir(conn, "/usr/bin/python3", "/tmp/run", Path("store/run"))

asyncssh runs on the runner's own asyncio loop, as the clients and nemeses do, so there
is no thread and no `ssh` subprocess per command. Host keys are not checked
(known_hosts=None): tobtest is for test labs, and the host is named on the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shlex
import tarfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # asyncssh still imports DSA support, which `cryptography` warns about on import.
    warnings.simplefilter("ignore")
    import asyncssh

CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 30.0
FETCH_TIMEOUT_S = 120.0
AGENT = "tobtest.remote_agent"
# A shell's exit when the command is missing (127) or not executable (126).
EXIT_NOT_FOUND = (126, 127)


class RemoteError(Exception):
    """A host that cannot take part in the run; the message is one line for the user."""


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    key_path: str | None = None
    port: int = 22

    def __str__(self) -> str:
        return self.host


async def connect(target: SshTarget, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """An open connection to `target`; RemoteError (one line) when there is none."""
    options: dict[str, Any] = {"known_hosts": None, "port": target.port}
    if target.user:
        options["username"] = target.user
    if target.key_path:
        path = Path(target.key_path).expanduser()
        if not path.is_file():
            raise RemoteError(f"--ssh-key {target.key_path}: no such file")
        options["client_keys"] = [str(path)]
        options["agent_path"] = None  # only the key given: a refused key says so
    where = f"host {target.host} (ssh port {target.port})"
    try:
        return await asyncio.wait_for(asyncssh.connect(target.host, **options), timeout_s)
    except TimeoutError:
        raise RemoteError(f"{where}: no answer within {timeout_s:g} s") from None
    except asyncssh.PermissionDenied:
        user = target.user or "the current user"
        raise RemoteError(f"{where}: the key was refused for {user}") from None
    except asyncssh.KeyImportError as exc:
        raise RemoteError(f"--ssh-key {target.key_path}: not a key ({exc})") from None
    except (OSError, asyncssh.Error) as exc:
        errno = getattr(exc, "errno", None)
        reason = os.strerror(errno).lower() if errno else getattr(exc, "reason", None) or exc
        raise RemoteError(f"{where}: cannot connect: {reason}") from None


def agent_command(python: str, *args: str) -> str:
    # exec: the agent is the session's process, so the channel's end is its stdin's EOF.
    return "exec " + shlex.join([python, "-m", AGENT, *args])


async def agent_check(
    conn: Any, target: SshTarget, python: str, request: dict[str, Any]
) -> list[str]:
    """What the host's agent says against its share (see `tobtest.remote_agent.check`)."""
    command = agent_command(python, "check", json.dumps(request))
    try:
        result = await asyncio.wait_for(conn.run(command, check=False), COMMAND_TIMEOUT_S)
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise RemoteError(f"host {target}: the check did not finish: {exc!r}") from None
    if result.exit_status in EXIT_NOT_FOUND:
        raise RemoteError(f"host {target}: cannot run {python} (name another with --remote-python)")
    out = str(result.stdout or "").strip().splitlines()
    if result.exit_status != 0 or not out:
        err = str(result.stderr or "").strip().splitlines()
        last = err[-1] if err else f"exit {result.exit_status}"
        if "No module named" in last:
            return [f"{python} cannot import tobtest (install it there, or name --remote-python)"]
        return [f"{python} -m {AGENT} failed: {last}"]
    errors: list[str] = json.loads(out[-1]).get("errors", [])
    return errors


class AgentProcess:
    """One `remote_agent serve` session: its commands in, its events out to `on_event`."""

    def __init__(self, process: Any, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.process = process
        self.on_event = on_event
        self.closed = False
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        conn: Any,
        python: str,
        spec: dict[str, Any],
        on_event: Callable[[dict[str, Any]], None],
    ) -> AgentProcess:
        process = await asyncio.wait_for(
            conn.create_process(agent_command(python, "serve")), COMMAND_TIMEOUT_S
        )
        agent = cls(process, on_event)
        agent.send(spec)
        return agent

    def send(self, message: dict[str, Any]) -> None:
        """Queues one command (asyncssh buffers it; commands arrive in order)."""
        if self.closed:
            return
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
        except (OSError, asyncssh.Error):
            self.closed = True

    async def _read(self) -> None:
        try:
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    break
                with contextlib.suppress(ValueError):
                    self.on_event(json.loads(line))
        except (OSError, asyncssh.Error):
            pass
        finally:
            self.closed = True
            self.on_event({"event": "closed"})

    async def wait_closed(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout_s)

    def close(self) -> None:
        """Ends the session: the agent sees EOF and kills what it runs."""
        self.closed = True
        with contextlib.suppress(Exception):
            self.process.stdin.write_eof()
        with contextlib.suppress(Exception):
            self.process.close()
        self._reader.cancel()


async def fetch_dir(conn: Any, python: str, remote_dir: str, local_dir: Path) -> None:
    """Copies `remote_dir` (whole) into `local_dir` and removes it on the host."""
    command = agent_command(python, "pack", remote_dir, "--remove")
    result = await asyncio.wait_for(conn.run(command, check=False, encoding=None), FETCH_TIMEOUT_S)
    if result.exit_status != 0:
        err = bytes(result.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise RemoteError(f"cannot fetch {remote_dir}: {err[-1] if err else 'no reason'}")
    local_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(bytes(result.stdout)), mode="r:gz") as tar:
        tar.extractall(local_dir, filter="data")
