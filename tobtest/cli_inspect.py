"""The commands that look at stored runs: `tobtest show` and `tobtest serve`.

    tobtest show                      # the latest run: verdicts, figures, faults, anomalies
    tobtest show paxos-broadcast-partition/20261126T204354
    tobtest show --list               # every run in the store
    tobtest serve --port 0            # a local web UI over the store (prints its URL)

An unknown run, or a store that does not exist, is a one-line error with exit code 254.
tobtest/cli.py registers both: `cli.add_command(show)` and `cli.add_command(serve)`.
"""

from __future__ import annotations

from pathlib import Path

import click

EXIT_BAD_ARGS = 254


class CannotInspect(click.UsageError):
    """A run or store that is not there, or a port that cannot be had: exits 254."""

    exit_code = EXIT_BAD_ARGS


@click.command()
@click.argument("run", required=False)
@click.option("--store", type=click.Path(file_okay=False), default="store", show_default=True)
@click.option("--list", "list_runs", is_flag=True, help="List the runs in the store instead.")
def show(run: str | None, store: str, list_runs: bool) -> None:
    """Show a stored run (a run folder, <test>/<time>, or a test: its latest run)."""
    from rich.console import Console

    from tobtest.histories.store import find_run
    from tobtest.show import show_list, show_run

    root = Path(store)
    if list_runs:
        if not root.is_dir():
            raise CannotInspect(f"no store at {root}")
        show_list(root, Console())
        return
    try:
        run_dir = find_run(root, run)
    except FileNotFoundError as exc:
        raise CannotInspect(str(exc)) from None
    show_run(run_dir, Console())


@click.command()
@click.option("--store", type=click.Path(file_okay=False), default="store", show_default=True)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
def serve(store: str, port: int) -> None:
    """Serve the store's runs and reports on http://127.0.0.1:PORT/ until Ctrl-C."""
    from tobtest.serve import make_server

    root = Path(store)
    if not root.is_dir():
        raise CannotInspect(f"no store at {root}")
    try:
        server = make_server(root, port)
    except OSError as exc:
        raise CannotInspect(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    bound = server.server_address[1]
    click.echo(f"tobtest: serving {root} at http://127.0.0.1:{bound}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("tobtest: stopped serving")
    finally:
        server.server_close()
