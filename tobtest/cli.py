"""The `tobtest` command line.

    tobtest run                                  # a short real test: 3 paxos nodes, partitions
    tobtest run --nemesis partition --time-limit 60 --seed 7
    tobtest check store/latest                   # re-check a stored run

Exit codes follow Jepsen: 0 valid, 1 invalid, 2 unknown, 254 bad arguments (and a port in
use), 255 crash. An interrupted run (Ctrl-C) ends every process it started, keeps the
history it recorded, and exits 130.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from tobtest.cli_check import check
from tobtest.cli_sim import sim
from tobtest.exits import (  # noqa: F401 - exit codes and BadArguments, for those that import them from here
    EXIT_BAD_ARGS,
    EXIT_CRASH,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_UNKNOWN,
    EXIT_VALID,
    BadArguments,
    exit_code_for,
)
from tobtest.node_kind import NodeKindError, check_config
from tobtest.options import config_from_params, run_options
from tobtest.ports import PortInUse


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log the runner's steps to stderr.")
def cli(verbose: bool) -> None:
    """tobtest: fault-injection testing of Total Order Broadcast on real processes."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


@cli.command()
@run_options
def run(**params: Any) -> None:
    """Run one test against real node processes and check its history."""
    suite_path, junit_xml = params["suite_path"], params["junit_xml"]
    if suite_path is not None and (params["hosts"] or params["hosts_file"]):
        raise BadArguments("--host and --hosts-file go without --suite (a suite runs here)")
    if suite_path is not None:
        from tobtest.console import run_suite_with_console
        from tobtest.suite import SuiteError

        try:
            code = run_suite_with_console(
                Path(suite_path),
                params["store"],
                Path(junit_xml) if junit_xml else None,
                jobs=params["jobs"] or 1,
                shard=params["shard"],
            )
        except SuiteError as exc:
            raise BadArguments(str(exc)) from None
        sys.exit(code)
    for flag in ("junit_xml", "jobs", "shard"):
        if params[flag] is not None:
            raise BadArguments(f"--{flag.replace('_', '-')} goes with --suite")
    node_cmd = params["node_cmd"]
    given_for_node_cmd = (params["node_caps"], params["node_read_modes"])
    if node_cmd is None and given_for_node_cmd != (None, None):
        raise BadArguments("--node-caps and --node-read-modes go with --node-cmd")
    if params["maelstrom"] is not None and node_cmd is not None:
        raise BadArguments("--maelstrom and --node-cmd are two kinds of node; give one")
    config = config_from_params(params)
    nemesis_schedule, replay_schedule = params["nemesis_schedule"], params["replay_schedule"]
    if nemesis_schedule is not None or replay_schedule is not None:
        from tobtest.cli_schedule import with_schedule

        config = with_schedule(config, nemesis_schedule, replay_schedule)
    hosts_file = params["hosts_file"]
    if hosts_file is not None:  # before the node checks: a --node-cmd runs on the hosts then
        from tobtest.remote import read_hosts_file
        from tobtest.remote_ssh import RemoteError

        try:
            config.hosts = [*config.hosts, *read_hosts_file(Path(hosts_file))]
        except RemoteError as exc:
            raise BadArguments(str(exc)) from None
    try:
        check_config(config)
    except NodeKindError as exc:
        raise BadArguments(str(exc)) from None
    remote = _remote_setup(config)
    from tobtest.cluster import ClusterError
    from tobtest.console import run_with_console

    try:
        code = run_with_console(config, remote) if remote else run_with_console(config)
    except ClusterError as exc:
        if config.node_cmd is None and config.maelstrom is None:
            raise
        # A node command that exits at once or never answers: the user's to fix (254).
        option = "--node-cmd" if config.node_cmd is not None else "--maelstrom"
        raise click.ClickException(f"{option}: {exc}") from None
    sys.exit(code)


def _remote_setup(config: Any) -> Any:
    """With --host or --hosts-file: every host checked over SSH (tobtest.remote.preflight);
    a host that cannot take its share is a bad argument (254) before anything runs."""
    if not config.hosts:
        given = [config.ssh_user, config.ssh_key, config.remote_python, config.remote_dir]
        if any(v is not None for v in given) or config.ssh_port != 22:
            raise BadArguments("--ssh-* and --remote-* go with --host or --hosts-file")
        return None
    from tobtest.remote import preflight
    from tobtest.remote_ssh import RemoteError

    try:
        return asyncio.run(preflight(config))
    except RemoteError as exc:
        raise BadArguments(str(exc)) from None


def _register_inspect_commands() -> None:
    from tobtest.cli_inspect import serve, show

    cli.add_command(show)
    cli.add_command(serve)


_register_inspect_commands()
cli.add_command(sim)
cli.add_command(check)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps every way out to Jepsen's exit codes."""
    try:
        cli.main(args=argv, prog_name="tobtest", standalone_mode=False)
    except click.UsageError as exc:
        if exc.ctx is not None and exc.ctx.command is cli and not (argv or sys.argv[1:]):
            click.echo(cli.get_help(exc.ctx))  # plain `tobtest`: the help, not an error
            sys.exit(EXIT_VALID)
        sub = exc.ctx.command.name if exc.ctx is not None and exc.ctx.command is not cli else ""
        hint = f" (try 'tobtest {sub + ' ' if sub else ''}--help')" if exc.ctx else ""
        click.echo(f"tobtest: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except PortInUse as exc:
        click.echo(f"tobtest: {exc}", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("tobtest: interrupted; every process it started has been ended", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        click.echo(f"tobtest: {exc.format_message()}", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every crash gets Jepsen's 255
        logging.getLogger("tobtest").debug("crash", exc_info=True)
        click.echo(f"tobtest: crashed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_CRASH)


def _json_default(value: Any) -> Any:
    return str(value)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


if __name__ == "__main__":
    main()
