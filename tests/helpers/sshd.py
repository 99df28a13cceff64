"""A real OpenSSH server for the remote tests, started and ended by the test itself.

    with Sshd.start(tmp_path, ["127.0.0.2", "127.0.0.3"]) as sshd:
        sshd.port, sshd.key_path, sshd.user      # what `tobtest run --host ...` needs

Debian's `openssh-server` (scripts/test installs it as root). It listens on a free port on
each of the given loopback addresses, with a host key and a user key made for the test
(ssh-keygen into tmp), keys only (PasswordAuthentication no), root allowed by key
(PermitRootLogin prohibit-password), and the test's own authorized_keys. Where sshd or
ssh-keygen is missing, or sshd will not start, `Sshd.unavailable()` says why, to skip.
Every remote process of a test is a descendant of that sshd, so `assert_nothing_left(sshd)`
checks that nothing outlived a run on any host.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

SSHD = "/usr/sbin/sshd"
READY_TIMEOUT_S = 10.0
GONE_TIMEOUT_S = 15.0


def free_port(addresses: list[str]) -> int:
    """A port free on every one of `addresses` (tried a bounded number of times)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = int(probe.getsockname()[1])
        if all(_free(a, port) for a in addresses):
            return port
    raise RuntimeError("no port free on every address")


def _free(address: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


@dataclass
class Sshd:
    port: int
    key_path: Path
    user: str
    addresses: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path

    @staticmethod
    def unavailable() -> str | None:
        """Why no sshd can be started here, or None."""
        if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
            return "no OpenSSH server here (scripts/test installs Debian's openssh-server)"
        return None

    @classmethod
    def start(cls, tmp: Path, addresses: list[str]) -> Sshd:
        tmp.mkdir(parents=True, exist_ok=True)
        host_key, user_key = tmp / "host_ed25519", tmp / "user_ed25519"
        for key in (host_key, user_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
        authorized = tmp / "authorized_keys"
        authorized.write_text((tmp / "user_ed25519.pub").read_text())
        authorized.chmod(0o600)
        port = free_port(addresses)
        config = tmp / "sshd_config"
        lines = [f"ListenAddress {a}:{port}" for a in addresses] + [
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            # The test's files live in tmp, whose modes sshd's checks would refuse.
            "StrictModes no",
            "UsePAM no",
            f"PidFile {tmp / 'sshd.pid'}",
            "LogLevel VERBOSE",
        ]
        config.write_text("\n".join(lines) + "\n")
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
        log_path = tmp / "sshd.log"
        popen = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=log_path.open("wb"),
        )  # fmt: skip
        server = cls(port, user_key, getpass.getuser(), addresses, popen, log_path)
        server._wait_listening()
        return server

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_path.read_text()[-500:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.addresses[-1], self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("sshd did not listen in time")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def remote_processes(sshd: Sshd) -> list[psutil.Process]:
    """What runs under the test's sshd: sessions, agents, nodes and proxies."""
    try:
        return psutil.Process(sshd.popen.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:  # gone, or a zombie, meanwhile
        return []


def assert_nothing_left(sshd: Sshd) -> None:
    deadline = time.monotonic() + GONE_TIMEOUT_S
    left = remote_processes(sshd)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in remote_processes(sshd) if cmdline(p)]
    names = [" ".join(cmdline(p)[:4]) for p in left]
    for proc in left:  # end them so that one failure does not cascade, then fail
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert names == [], f"left running on the hosts: {names}"
