"""Fixtures of the tobtest/ tests: a real OpenSSH server for the remote tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.sshd import Sshd

# The hosts of the remote tests: loopback addresses of their own, so that traffic between
# hosts really goes from one address to another.
SSH_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """An sshd on a free port of each of SSH_HOSTS, ended after the session; skips (saying
    why) where none can be started."""
    reason = Sshd.unavailable()
    if reason is not None:
        pytest.skip(reason)
    try:
        server = Sshd.start(tmp_path_factory.mktemp("sshd"), SSH_HOSTS)
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"sshd could not be started here: {exc}")
    with server:
        yield server
