"""Starts a node command that dies with its parent: `python -m tobtest.launch`.

    python -m tobtest.launch --parent-pid 4242 -- ./my-node --port 7100

Asks Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG, which survives
exec), checks the parent is still there, then execs the command in place: the node keeps
this pid, so the cluster ends it by pid like any built-in node, paused or not. A command
that cannot be run is one line on stderr and exit 127, as a shell says it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
EXIT_CANNOT_RUN = 127
EXIT_USAGE = 2


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--parent-pid" or argv[2] != "--":
        print("usage: python -m tobtest.launch --parent-pid PID -- COMMAND ...", file=sys.stderr)
        return EXIT_USAGE
    parent_pid, command = int(argv[1]), argv[3:]
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        # SIGKILL, not SIGTERM: a paused (SIGSTOPped) node cannot handle SIGTERM.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        return 0  # the parent died before prctl took effect: nothing to run for
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"cannot run {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
    return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
