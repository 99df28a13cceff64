"""`tobtest check`: re-check a stored run, a history file, or many files in one process.

    tobtest check                                   # the latest run in ./store
    tobtest check store/latest                      # a run folder: its workload's checkers
    tobtest check history.edn                       # one file: the checker its ops call for
    tobtest check corpus/porcupine-etcd --model cas-register --fail-means returned-false
    tobtest check a.edn b.jsonl --time-limit 2      # one line a file: path, verdict, time

One file or run prints each checker's result; several files (or a folder of history files)
print one line each and exit with the worst verdict (Jepsen's order: invalid over unknown
over valid). With no `--checker` and no `--model`, a file's checker is inferred from its ops
(`tobtest.checker.infer`) and named on one line. `--time-limit` is every checker's budget
in seconds; `--max-configurations` bounds the linearizability search's memo (its memory):
either reached gives the verdict unknown with the reason. This module imports no runner,
nemesis or asyncio code, so `tobtest check` starts fast (`tobtest.entry` sends it here).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from tobtest.checker import CHECKERS
from tobtest.checker.linearizable import MAX_CONFIGURATIONS
from tobtest.exits import (
    EXIT_BAD_ARGS,
    EXIT_CRASH,
    EXIT_INTERRUPTED,
    EXIT_VALID,
    BadArguments,
    exit_code_for,
)

# What a folder's history files are called: Jepsen's history.edn, tobtest's JSONL, Jepsen and
# Porcupine logs, Porcupine's kv corpus (.txt).
HISTORY_SUFFIXES = (".edn", ".jsonl", ".json", ".log", ".txt")
VERDICT_WORDS = {True: "VALID", False: "INVALID"}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1)
@click.option("--store", type=click.Path(file_okay=False), default="store", show_default=True)
@click.option(
    "--checker",
    "checkers",
    multiple=True,
    type=click.Choice(sorted(CHECKERS)),
    help="Run only these checkers [default: the run's workload's; for a file: the one its "
    "ops call for, or linearizable with --model].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "edn", "jepsen-log"]),
    default="auto",
    show_default=True,
    help="History format: tobtest JSONL, Jepsen history.edn, or Jepsen log lines.",
)
@click.option("--model", default=None, help="Linearizability model (register, cas-register, "
              "kv, mutex, append-log, multi-register).")  # fmt: skip
@click.option("--fail-means", type=click.Choice(["did-not-happen", "returned-false"]),
              default=None, help="How a :fail op reads (Knossos: did-not-happen; Porcupine's "
              "etcd logs: returned-false).")  # fmt: skip
@click.option("--nil-read", type=click.Choice(["no-value", "unknown"]), default=None,
              help="How a read of nil reads (Porcupine: no-value; Knossos: unknown).")  # fmt: skip
@click.option("--initial", default=None, help="Initial model value, as JSON (e.g. 0, null).")
@click.option("--time-limit", "time_limit_s", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Each checker's budget in seconds; past it: unknown "
              "[default: each checker's own, 10 s for linearizable].")  # fmt: skip
@click.option("--max-configurations", type=click.IntRange(min=1), default=None,
              help="Most (linearised calls, state) pairs the linearizability search keeps, "
              "about 150 bytes each; past it: unknown [default: "
              f"{MAX_CONFIGURATIONS:,}].")  # fmt: skip
@click.option("--elle-jar", type=click.Path(dir_okay=False), default=None,
              help="elle-cli jar for --checker elle [default: $TOBTEST_ELLE_JAR].")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(
    paths: tuple[str, ...],
    store: str,
    checkers: tuple[str, ...],
    fmt: str,
    model: str | None,
    fail_means: str | None,
    nil_read: str | None,
    initial: str | None,
    time_limit_s: float | None,
    max_configurations: int | None,
    elle_jar: str | None,
    as_json: bool,
) -> None:
    """Check stored runs or history files (a folder: each history file in it); default: the
    latest run."""
    from tobtest.checker.models import MODELS

    if model is not None and model not in MODELS:
        raise BadArguments(f"--model: unknown model {model!r} (known: {', '.join(sorted(MODELS))})")
    lin: dict[str, Any] = {}
    if model is not None:
        lin["model"] = model
    if fail_means is not None:
        lin["fail_means"] = fail_means
    if nil_read is not None:
        lin["nil_read"] = nil_read
    if initial is not None:
        try:
            lin["initial"] = json.loads(initial)
        except ValueError:
            raise BadArguments(f"--initial must be JSON, got {initial!r}") from None
    if max_configurations is not None:
        lin["max_configurations"] = max_configurations
    settings = _Settings(list(checkers), fmt, lin, elle_jar, time_limit_s)
    targets = _targets(paths, Path(store))
    if len(targets) == 1:
        sys.exit(_check_one(targets[0], settings, as_json))
    sys.exit(_check_many(targets, settings, as_json))


class _Settings:
    def __init__(
        self,
        names: list[str],
        fmt: str,
        lin: dict[str, Any],
        elle_jar: str | None,
        time_limit_s: float | None,
    ) -> None:
        self.names, self.fmt, self.lin = names, fmt, lin
        self.elle_jar, self.time_limit_s = elle_jar, time_limit_s


def _targets(paths: tuple[str, ...], store: Path) -> list[tuple[str, Path]]:
    """("run", folder) or ("file", path) for each path; a folder that is no run gives its
    history files. Anything not found is a bad argument."""
    if not paths:
        try:
            return [("run", find_run(store, None))]
        except FileNotFoundError as exc:
            raise BadArguments(str(exc)) from None
    targets: list[tuple[str, Path]] = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            targets.append(("file", path))
        elif path.is_dir() and not (path / "history.jsonl").exists():
            files = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix in HISTORY_SUFFIXES
            )
            if not files:
                raise BadArguments(
                    f"{given}: a folder with no history files ({', '.join(HISTORY_SUFFIXES)})"
                )
            targets += [("file", p) for p in files]
        else:
            try:
                targets.append(("run", find_run(store, given)))
            except FileNotFoundError as exc:
                raise BadArguments(str(exc)) from None
    return targets


def find_run(store: Path, run: str | None) -> Path:
    # The store module reads YAML: imported only when a run is asked for.
    from tobtest.histories.store import find_run as find

    return find(store, run)


def _check_history(kind: str, path: Path, s: _Settings) -> tuple[dict[str, Any], str | None]:
    """Reads and checks one target: its results, and the line saying what was inferred.

    Raises ValueError or OSError for a history that cannot be read."""
    from tobtest.checker.compose import check_all
    from tobtest.histories.formats import read_history

    history_path = path / "history.jsonl" if kind == "run" else path
    history = read_history(history_path, s.fmt)
    per_checker: dict[str, dict[str, Any]] = {}
    names = list(s.names)
    chose: str | None = None
    if kind == "run":
        from tobtest.histories.store import load_config
        from tobtest.workloads import workload_class

        stored = load_config(path)
        workload = workload_class(
            stored.get("workload", "broadcast"), maelstrom=stored.get("maelstrom") is not None
        )
        if workload is not None:
            names = names or [*workload.checkers, *stored.get("extra_checkers", [])]
            per_checker = {k: dict(v) for k, v in workload.checker_options.items()}
    lin = per_checker.setdefault("linearizable", {})
    if not names and "model" not in s.lin:
        from tobtest.checker.infer import infer_checker

        choice = infer_checker(history)
        names = [choice.checker]
        per_checker.setdefault(choice.checker, {}).update(choice.options)
        chose = f"checker: {choice.describe()}"
    lin.update(s.lin)
    if s.elle_jar is not None:
        per_checker.setdefault("elle", {})["elle_jar"] = s.elle_jar
    if "model" in s.lin:
        per_checker.setdefault("elle", {}).setdefault("model", s.lin["model"])
    names = names or ["linearizable"]
    opts = {} if s.time_limit_s is None else {"time_limit_s": s.time_limit_s}
    results = check_all(history, names, per_checker=per_checker, **opts)
    if chose is not None:
        results["inferred"] = chose
    return results, chose


def _check_one(target: tuple[str, Path], s: _Settings, as_json: bool) -> int:
    kind, path = target
    try:
        results, chose = _check_history(kind, path, s)
    except (ValueError, OSError) as exc:
        raise BadArguments(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
    if as_json:
        if chose is not None:
            click.echo(f"tobtest check: {chose}", err=True)
        click.echo(json.dumps(results, indent=2, default=str))
    else:
        from tobtest.console import print_results

        if chose is not None:
            click.echo(f"  {chose}")
        if kind == "run":
            print_results(results, path)
        else:
            print_results(results, path, label="history")
    return exit_code_for(results["valid"])


def _check_many(targets: list[tuple[str, Path]], s: _Settings, as_json: bool) -> int:
    """One line a target: path, verdict, seconds (reading and checking), and why if not
    valid. A file that cannot be read counts as unknown."""
    from tobtest.checker.compose import merge_valid

    verdicts: list[Any] = []
    rows: list[dict[str, Any]] = []
    for kind, path in targets:
        started = time.perf_counter()
        try:
            results, chose = _check_history(kind, path, s)
            valid, why = results["valid"], _why(results)
        except (ValueError, OSError) as exc:
            results, chose = {}, None
            valid, why = "unknown", "unreadable: " + (str(exc).splitlines() or [repr(exc)])[0]
        elapsed_s = time.perf_counter() - started
        verdicts.append(valid)
        if as_json:
            rows.append({"path": str(path), "valid": valid, "elapsed_s": round(elapsed_s, 4),
                         "results": results})  # fmt: skip
            continue
        word = VERDICT_WORDS.get(valid, "UNKNOWN")
        tail = "  ".join(x for x in (chose, why) if x)
        click.echo(f"{path}\t{word}\t{elapsed_s * 1000:.1f} ms" + (f"\t{tail}" if tail else ""))
    worst = merge_valid(verdicts)
    if as_json:
        click.echo(json.dumps({"valid": worst, "files": rows}, indent=2, default=str))
    else:
        counts = {w: sum(VERDICT_WORDS.get(v, "UNKNOWN") == w for v in verdicts)
                  for w in ("VALID", "INVALID", "UNKNOWN")}  # fmt: skip
        click.echo(
            f"{len(targets)} checked: {counts['VALID']} valid, {counts['INVALID']} invalid, "
            f"{counts['UNKNOWN']} unknown"
        )
    return exit_code_for(worst)


def _why(results: dict[str, Any]) -> str:
    """What a result that is not valid says: its anomalies, or its checkers' errors."""
    parts = []
    for name, result in results.get("checkers", {}).items():
        if result.get("valid") is True:
            continue
        detail = ", ".join(result.get("anomaly_types") or []) or result.get("error") or ""
        parts.append(f"{name}: {detail}" if detail else name)
    return "; ".join(parts)


def main(argv: list[str]) -> None:
    """`tobtest check ARGS` without importing the rest of the command line."""
    try:
        check.main(args=argv, prog_name="tobtest check", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"tobtest: {exc.format_message()} (try 'tobtest check --help')", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("tobtest: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        click.echo(f"tobtest: {exc.format_message()}", err=True)
        sys.exit(EXIT_BAD_ARGS)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every crash gets Jepsen's 255
        click.echo(f"tobtest: crashed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_CRASH)
    sys.exit(EXIT_VALID)
