"""Exit codes of the `tobtest` command (Jepsen's), and the error for arguments it cannot use.

    from tobtest.exits import exit_code_for
    sys.exit(exit_code_for(results["valid"]))   # 0 valid, 1 invalid, 2 unknown

Kept apart from `tobtest.cli` so that `tobtest check` can start without importing the
runner, the nemeses and asyncio.
"""

from __future__ import annotations

from typing import Any

import click

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN = 0, 1, 2
EXIT_INTERRUPTED, EXIT_BAD_ARGS, EXIT_CRASH = 130, 254, 255


def exit_code_for(valid: Any) -> int:
    if valid is True:
        return EXIT_VALID
    if valid is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN


class BadArguments(click.UsageError):
    """Raised for arguments click accepts but tobtest cannot use; exits 254."""
