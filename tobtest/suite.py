"""Fault-injection suites: a YAML matrix of runs, a verdict table, and JUnit XML for CI.

    tobtest run --suite examples/ci-suite.yaml --junit-xml results.xml

A suite file:

    name: ci-smoke
    defaults:                 # `tobtest run` options, by name (dashes or underscores; the
                              # suite keys of tobtest/options.py)
      time_limit: 10
      nodes: 3
    matrix:                   # every combination is one case
      protocol: [paxos, multipaxos, raft]
      nemesis: [partition, "kill,pause"]
      workload: [broadcast, txn]
    seeds: [1, 2]             # or test_count: 2 (seeds 1..N)

A case may test a Maelstrom node (`maelstrom: "python3 raft.py"`, with Maelstrom's
workloads, and `checker: [total-order]` for checkers beside the workload's own).

A case may run a schedule file instead of the periodic nemeses (`nemesis-schedule:
examples/flip.yaml`, a path from where tobtest runs; docs/schedules.md).

Every case runs as `tobtest run` would, each in its own run folder of the store: one after
another, or `--jobs N` at a time (tobtest/fanout.py). A bad file raises `SuiteError` with
one line that says where (file, key, or line and column).

Sharding (`--shard I/N`, for CI matrices): the cases are ordered by the SHA-256 of what
makes each one (its reproduce command: test, seed and every option that matters for
replay), then dealt round-robin, so shard I takes positions I-1, I-1+N, I-1+2N, ... of
that order. The same file and N give disjoint shards whose union is every case, sizes that
differ by one at most, and a case's shard does not depend on where it stands in the file.

    shard_cases(suite.cases, Shard(1, 3))   # [(index in the file, config), ...]
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import click
import yaml

from tobtest.config import TestConfig
from tobtest.maelstrom.kind import MAELSTROM_PROTOCOL
from tobtest.nemesis.schedule_file import ScheduleError, load_schedule
from tobtest.node_kind import BUILTIN, CUSTOM_PROTOCOL, NodeKindError, check_config
from tobtest.options import suite_keys, suite_scalar


class SuiteError(Exception):
    """A suite file that cannot be used; the message is one line naming the place."""


# Suite key -> (the TestConfig field it sets, its parser): the `tobtest run` options that
# suites take, from the one option table (tobtest/options.py). Parsers raise ValueError.
OPTIONS: dict[str, tuple[str, Any]] = suite_keys()
_BUILTIN_PROTOCOL = click.Choice(BUILTIN.protocols())
TOP_KEYS = {"name", "defaults", "matrix", "seeds", "test_count"}


@dataclass
class Suite:
    name: str
    cases: list[TestConfig] = field(default_factory=list)


def _apply(
    config: TestConfig, where: str, key: str, value: Any, options: dict[str, tuple[str, Any]]
) -> None:
    name = key.replace("-", "_")
    if name not in options:
        raise SuiteError(f"{where}.{key}: unknown option (known: {', '.join(sorted(options))})")
    attr, parse = options[name]
    try:
        setattr(config, attr, parse(value))
    except ValueError as exc:
        raise SuiteError(f"{where}.{key}: {exc}") from None


def load_suite(path: Path, store: str = "store") -> Suite:
    """Reads and validates a suite file and expands its matrix into run configs."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        place = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise SuiteError(f"{place}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite is a mapping with 'matrix' (and 'defaults', 'seeds')")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise SuiteError(
            f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(TOP_KEYS))})"
        )
    defaults = data.get("defaults") or {}
    matrix = data.get("matrix") or {}
    if not isinstance(defaults, dict) or not isinstance(matrix, dict):
        raise SuiteError(f"{path}: 'defaults' and 'matrix' must be mappings")
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{path}: matrix.{key}: expected a non-empty list of values")
    seeds = _seeds(path, data)
    name = str(data.get("name") or path.stem)
    suite = Suite(name)
    keys = list(matrix)
    options = dict(OPTIONS)
    if not {"node_cmd", "node-cmd", "maelstrom"} & {*defaults, *keys}:
        # Built-in nodes only: a protocol is one of theirs, said at the key that names it.
        options["protocol"] = ("protocol", partial(suite_scalar, _BUILTIN_PROTOCOL))
    for combo in itertools.product(*(matrix[k] for k in keys)):
        for seed in seeds:
            config = TestConfig(store=store, seed=seed)
            for key, value in defaults.items():
                _apply(config, f"{path}: defaults", str(key), value, options)
            for key, value in zip(keys, combo, strict=True):
                _apply(config, f"{path}: matrix", str(key), value, options)
            if config.nemesis_schedule is not None:
                _use_schedule(config, path)
            given = {str(k).replace("-", "_") for k in [*defaults, *keys]}
            _check_node_kind(config, path, given)
            suite.cases.append(config)
    return suite


def _check_node_kind(config: TestConfig, path: Path, given: set[str]) -> None:
    """A case its node kind cannot serve is refused with the file named (like the CLI)."""
    if config.node_cmd is not None and config.maelstrom is not None:
        raise SuiteError(f"{path}: maelstrom and node-cmd are two kinds of node; give one")
    foreign = config.node_cmd is not None or config.maelstrom is not None
    if foreign and "protocol" not in given:
        config.protocol = CUSTOM_PROTOCOL if config.node_cmd is not None else MAELSTROM_PROTOCOL
    if foreign and "nemesis" not in given and "nemesis_schedule" not in given:
        config.nemesis = ["partition"]  # the CLI's default for a node of your own
    if config.node_cmd is None and {"node_caps", "node_read_modes"} & given:
        raise SuiteError(f"{path}: node-caps and node-read-modes go with node-cmd")
    try:
        check_config(config)
    except NodeKindError as exc:
        raise SuiteError(f"{path}: {case_name(config)}: {exc}") from None


def _use_schedule(config: TestConfig, path: Path) -> None:
    """A case with a schedule file runs it; `nemesis` lists the faults it uses."""
    assert config.nemesis_schedule is not None
    try:
        config.nemesis = load_schedule(Path(config.nemesis_schedule), config.nodes).nemeses()
    except ScheduleError as exc:
        raise SuiteError(f"{path}: nemesis-schedule: {exc}") from None


def _seeds(path: Path, data: dict[str, Any]) -> list[int]:
    if "seeds" in data and "test_count" in data:
        raise SuiteError(f"{path}: give either 'seeds' or 'test_count', not both")
    if "seeds" in data:
        seeds = data["seeds"]
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        ):
            raise SuiteError(f"{path}: seeds: expected a list of non-negative integers")
        return list(seeds)
    count = data.get("test_count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SuiteError(f"{path}: test_count: expected a positive integer, got {count!r}")
    return list(range(1, count + 1))


@dataclass(frozen=True)
class Shard:
    """Shard `index` (from 1) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


SHARD_SYNTAX = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> Shard:
    """`I/N` with 1 <= I <= N; raises ValueError with a one-line reason."""
    match = SHARD_SYNTAX.match(text)
    if match is None:
        raise ValueError(f"expected I/N (such as 1/3), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"{text!r}: I/N needs 1 <= I <= N (shards count from 1)")
    return Shard(index, count)


def case_key(config: TestConfig) -> str:
    """What makes a case itself, wherever it stands in its file: its sharding key."""
    return config.reproduce_command()


def shard_cases(cases: list[TestConfig], shard: Shard | None) -> list[tuple[int, TestConfig]]:
    """The cases of `shard` (every case for None), each with its index in `cases`, in file
    order; the rule is in the module docstring."""
    indexed = list(enumerate(cases))
    if shard is None:
        return indexed
    # Equal keys (two identical cases) fall back to file order: they are interchangeable.
    dealt = sorted(
        indexed, key=lambda item: (hashlib.sha256(case_key(item[1]).encode()).hexdigest(), item[0])
    )
    mine = dealt[shard.index - 1 :: shard.count]
    return sorted(mine, key=lambda item: item[0])


def case_name(config: TestConfig) -> str:
    return f"{config.test_name} seed={config.seed}"


@dataclass
class CaseResult:
    config: TestConfig
    valid: Any
    run_path: str
    duration_s: float
    summary: str
    error: str | None = None


def summarize(results: dict[str, Any]) -> str:
    """One line per checker with its verdict and anomaly kinds: the failure text in JUnit."""
    lines = []
    for name, result in results.get("checkers", {}).items():
        kinds = ", ".join(result.get("anomaly_types") or [])
        error = result.get("error")
        lines.append(
            f"{name}: {result.get('valid')}"
            + (f" anomalies: {kinds}" if kinds else "")
            + (f" error: {error}" if error else "")
        )
    return "\n".join(lines)


def junit_xml(suite_name: str, cases: list[CaseResult], shard: Shard | None = None) -> str:
    """JUnit XML: one testcase per run; invalid is a failure, unknown and crashes errors.
    A shard's testsuite is named for it (`ci-smoke shard 2/3`), so that merged files keep
    each shard apart; its testcases keep the suite's classname."""
    failures = sum(1 for c in cases if c.valid is False)
    errors = sum(1 for c in cases if c.valid is not False and c.valid is not True)
    root = ET.Element(
        "testsuite",
        name=suite_name if shard is None else f"{suite_name} shard {shard}",
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        time=f"{sum(c.duration_s for c in cases):.3f}",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    for case in cases:
        element = ET.SubElement(
            root,
            "testcase",
            classname=f"tobtest.{suite_name}",
            name=case_name(case.config),
            time=f"{case.duration_s:.3f}",
        )
        details = f"{case.summary}\nstore: {case.run_path}\nreproduce with: "
        details += case.config.reproduce_command()
        if case.valid is False:
            failure = ET.SubElement(
                element, "failure", message="history is invalid", type="invalid"
            )
            failure.text = details
        elif case.valid is not True:
            message = case.error or "verdict unknown"
            error = ET.SubElement(element, "error", message=message, type="unknown")
            error.text = details
        ET.SubElement(element, "system-out").text = details
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
