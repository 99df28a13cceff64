"""The launcher a node command runs under: it execs the command in place, or says in one
line why it cannot."""

from __future__ import annotations

import os
import subprocess
import sys


def launch(*command: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "tobtest.launch", "--parent-pid", str(os.getpid()), "--"]
    return subprocess.run(
        [*argv, *command], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )


def test_the_command_runs_in_place_of_the_launcher():
    # `$$` is the shell's own pid: exec kept the pid Popen returned, the one the cluster ends.
    argv = [sys.executable, "-m", "tobtest.launch", "--parent-pid", str(os.getpid()), "--"]
    popen = subprocess.Popen(
        [*argv, "sh", "-c", "echo $$; exit 7"], stdout=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = popen.communicate(timeout=30)
    assert popen.returncode == 7
    assert int(out.strip()) == popen.pid


def test_a_command_that_cannot_run_is_one_line_and_exit_127():
    result = launch("/definitely/not/a/node", "--id", "0")
    assert result.returncode == 127
    assert result.stderr.strip().splitlines() == [
        "cannot run '/definitely/not/a/node': No such file or directory"
    ]


def test_it_runs_nothing_for_a_parent_that_is_gone():
    argv = [sys.executable, "-m", "tobtest.launch", "--parent-pid", "1", "--", "sh", "-c", "exit 5"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
