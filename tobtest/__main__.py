"""`python -m tobtest ...` is the same as the `tobtest` command."""

from tobtest.entry import main

main()
