"""`tobtest run --nemesis-schedule FILE` and `--replay-schedule RUN`: the run config they make.

    tobtest run --protocol multipaxos --nemesis-schedule examples/flip.yaml --seed 3
    tobtest run --replay-schedule multipaxos-broadcast-flip/20261127T101500

A schedule file is validated before anything starts (a bad one is a one-line error naming
the file and line, exit 254). A replay takes the run's options from its test.yaml, except
those given on the command line, and replays its schedule.yaml (the steps it executed) at
their offsets. tobtest/cli.py calls `with_schedule` from `run`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from tobtest.config import TestConfig
from tobtest.histories.store import find_run, load_config
from tobtest.nemesis.schedule_file import ScheduleError, load_executed, load_schedule
from tobtest.options import RUN_OPTIONS

# `tobtest run` parameter -> the TestConfig field it sets (the schedule options themselves
# are what `with_schedule` decides on).
CONFIG_FIELD_OF = {
    o.name: o.field
    for o in RUN_OPTIONS
    if o.field is not None and o.field not in ("nemesis_schedule", "replay_schedule")
}


def _bad(message: str) -> click.UsageError:
    from tobtest.exits import BadArguments

    return BadArguments(message)


def _given(ctx: click.Context) -> list[str]:
    """The `run` parameters given on the command line (not defaults)."""
    source = click.core.ParameterSource.COMMANDLINE
    return [p for p in CONFIG_FIELD_OF if ctx.get_parameter_source(p) == source]


def with_schedule(
    config: TestConfig, nemesis_schedule: str | None, replay_schedule: str | None
) -> TestConfig:
    """The config for a schedule-file run or a replay; raises BadArguments (exit 254)."""
    ctx = click.get_current_context()
    given = _given(ctx)
    if nemesis_schedule is not None and replay_schedule is not None:
        raise _bad("give either --nemesis-schedule or --replay-schedule, not both")
    if "nemesis" in given:
        flag = "--nemesis-schedule" if nemesis_schedule is not None else "--replay-schedule"
        raise _bad(f"{flag} replaces --nemesis; give one of them")
    if nemesis_schedule is not None:
        try:
            schedule = load_schedule(Path(nemesis_schedule), config.nodes)
        except ScheduleError as exc:
            raise _bad(str(exc)) from None
        config.nemesis_schedule = nemesis_schedule
        config.nemesis = schedule.nemeses()
        return config
    assert replay_schedule is not None
    try:
        run_dir = find_run(Path(config.store), replay_schedule)
    except FileNotFoundError as exc:
        raise _bad(str(exc)) from None
    if not (run_dir / "schedule.yaml").exists():
        raise _bad(f"{run_dir} has no schedule.yaml (a run from before runs stored the steps "
                   "they executed): nothing to replay")  # fmt: skip
    try:
        load_executed(run_dir / "schedule.yaml")
        stored = load_config(run_dir)
    except (ScheduleError, OSError) as exc:
        raise _bad(str(exc).splitlines()[0]) from None
    fields = {f.name for f in dataclasses.fields(TestConfig)}
    replay = TestConfig(**{k: v for k, v in stored.items() if k in fields})
    for param in given:
        name = CONFIG_FIELD_OF[param]
        setattr(replay, name, getattr(config, name))
    replay.nemesis_schedule = None
    replay.replay_schedule = str(run_dir)
    return replay
