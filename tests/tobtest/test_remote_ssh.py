"""SSH to a host, against the test's own sshd: connecting, the agent's check, and a folder
fetched back and removed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.helpers.sshd import Sshd
from tobtest.remote_ssh import RemoteError, SshTarget, agent_check, connect, fetch_dir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_a_folder_is_fetched_into_the_store_and_removed_from_the_host(sshd: Sshd, tmp_path: Path):
    remote = tmp_path / "remote" / "127.0.0.3"
    (remote / "nodes" / "n2.data").mkdir(parents=True)
    (remote / "nodes" / "n2.log").write_text("n2 up\n")
    target = SshTarget("127.0.0.3", sshd.user, str(sshd.key_path), sshd.port)

    async def go() -> list[str]:
        conn = await connect(target)
        try:
            errors = await agent_check(conn, target, sys.executable, {"address": "127.0.0.3"})
            await fetch_dir(conn, sys.executable, str(remote), tmp_path / "store")
        finally:
            conn.close()
        return errors

    assert asyncio.run(go()) == []
    assert (tmp_path / "store" / "nodes" / "n2.log").read_text() == "n2 up\n"
    assert (tmp_path / "store" / "nodes" / "n2.data").is_dir()
    assert not (tmp_path / "remote").exists()


def test_a_key_that_is_not_a_file_is_refused_before_connecting(tmp_path: Path):
    target = SshTarget("127.0.0.2", "root", str(tmp_path / "nope"), 22)
    with pytest.raises(RemoteError, match="no such file"):
        asyncio.run(connect(target))
