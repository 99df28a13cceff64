"""`python -m tobtest ...` is the same as the `tobtest` command."""

from tobtest.cli import main

main()
