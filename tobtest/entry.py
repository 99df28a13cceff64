"""The `tobtest` console script: `tobtest check ...` goes straight to `tobtest.cli_check`,
every other command to `tobtest.cli`.

    tobtest check history.edn     # imports the checkers and readers only
    tobtest run                   # imports the whole command line

`tobtest check` is often run once a file over a corpus, so its start-up counts: the full
command line imports the runner, nemeses and asyncio (about 0.3 s), which checking never uses.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["check"]:
        from tobtest.cli_check import main as check_main

        check_main(sys.argv[2:])
    else:
        from tobtest.cli import main as cli_main

        cli_main()
