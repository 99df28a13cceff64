"""Fault schedules as data: a YAML file of timed steps, role-bound targets and waits.

    schedule = load_schedule(Path("examples/flip.yaml"), nodes=3)   # or ScheduleError
    schedule.steps[0]      # Fault(kind="partition", args={"isolate": "leader"}, bind="old", ...)

A schedule is a list of steps (or `{name, description, loop, steps}`); each step is one of

    - do: partition              # a fault: `do` is a STEP_KINDS kind of nemesis/faults.py
      isolate: leader            # node arguments are targets (below), resolved at run time
      as: old                    # binds what the step resolved, used later as $old
    - sleep_s: 1                 # or [lo, hi]: drawn from the run's seeded rng
    - wait: leader-change        # leader-change | leader | answers | accepted-unchosen | progress
      from: $old                 # (leader-change) the leader to be replaced [default: the
      timeout_s: 4               #  leader when the wait starts]; every wait is bounded
      on_timeout: skip           # continue [default] or skip the rest of the iteration
    - remember: {pick: half, except: [$old, $new]}
      as: victims                # resolves a target and binds it, doing nothing else
    - repeat: 3                  # or {times: 3, every_s: 10}
      steps: [...]

Targets: a node name (`n1`), a role (`leader`, `followers`, `all`, and the random `one`,
`minority`, `majority`), a binding (`$old`), a list of targets (their union) or
`{pick: COUNT, from: TARGET, except: TARGET}` (COUNT: an integer, `one`, `minority`, `half`,
`majority` or `all`). The top-level steps repeat until the time limit unless `loop: false`.
Every error is one line naming the file and line: `flip.yaml:7: unknown target 'leeder'`.
docs/schedules.md has the whole format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tobtest.nemesis.faults import DISK_DELAY_MAX_MS, STEP_KINDS
from tobtest.nemesis.linkfaults import FaultSpecError, parse_fault

ROLES: tuple[str, ...] = ("leader", "followers", "all", "one", "minority", "majority")
PICK_COUNTS: tuple[str, ...] = ("one", "minority", "half", "majority", "all")
WAITS: tuple[str, ...] = ("leader-change", "leader", "answers", "accepted-unchosen", "progress")
ON_TIMEOUT: tuple[str, ...] = ("continue", "skip")
CLOCK_OPS: dict[str, tuple[str, ...]] = {
    "bump": ("delta_ms",),
    "strobe": ("delta_ms", "period_ms", "duration_ms"),
    "skew": ("rate",),
}
PARTITION_FORMS: tuple[str, ...] = ("grudge", "isolate", "sides", "from")
SLEEP_S_MAX = 3600.0
REPEAT_MAX = 100_000
POLL_S_DEFAULT = 0.05
# The flip's window (a victim holding an accepted, unchosen slot) is milliseconds wide.
POLL_S_WINDOW = 0.002
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NODE = re.compile(r"n([1-9][0-9]*)")
# Which periodic nemesis each fault kind belongs to (the run config's `nemesis` list).
NEMESIS_OF = {
    "partition": "partition", "heal": "partition", "kill": "kill", "restart": "kill",
    "pause": "pause", "resume": "pause", "clock": "clock", "clock-reset": "clock",
    "link": "link", "link-clear": "link",
}  # fmt: skip

Target = Any  # a validated target as written: str | list | dict (see the module docstring)


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message is one line: `FILE:LINE: what`."""


@dataclass(frozen=True)
class Fault:
    kind: str  # a STEP_KINDS kind
    args: dict[str, Any]  # the step's arguments as written (targets unresolved)
    line: int
    bind: str | None = None


@dataclass(frozen=True)
class Sleep:
    seconds: float | tuple[float, float]
    line: int


@dataclass(frozen=True)
class Wait:
    condition: str  # one of WAITS
    timeout_s: float
    line: int
    nodes: Target = None  # answers, accepted-unchosen, progress
    replaced: Target = None  # leader-change: `from`
    on_timeout: str = "continue"
    poll_s: float = POLL_S_DEFAULT
    bind: str | None = None


@dataclass(frozen=True)
class Remember:
    target: Target
    bind: str
    line: int


@dataclass(frozen=True)
class Repeat:
    times: int
    steps: list[Step]
    line: int
    every_s: float | None = None


Step = Fault | Sleep | Wait | Remember | Repeat


@dataclass
class Schedule:
    steps: list[Step]
    source: str = "<schedule>"
    name: str | None = None
    description: str | None = None
    loop: bool = True  # the top-level steps repeat until the time limit

    def kinds(self) -> list[str]:
        out: list[str] = []
        _walk_kinds(self.steps, out)
        return out

    def nemeses(self) -> list[str]:
        """The periodic nemeses whose faults it uses, in order (for the run config)."""
        return list(dict.fromkeys(NEMESIS_OF[k] for k in self.kinds() if k in NEMESIS_OF))


def _walk_kinds(steps: list[Step], out: list[str]) -> None:
    for step in steps:
        if isinstance(step, Fault):
            out.append(step.kind)
        elif isinstance(step, Repeat):
            _walk_kinds(step.steps, out)


# ---- YAML with line numbers -------------------------------------------------------------


class LineDict(dict[Any, Any]):
    """A mapping that knows its line and each value's line (1-based)."""

    line: int = 0
    lines: dict[Any, int]


class LineList(list[Any]):
    line: int = 0
    lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line, out.lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise _Bad(line, "a key must be a plain word")
        if key in out:
            raise _Bad(line, f"duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = value_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.lines = node.start_mark.line + 1, [c.start_mark.line + 1 for c in node.value]
    return out


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class _Bad(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def load_yaml_with_lines(text: str, source: str) -> Any:
    """Parses YAML into plain values whose mappings and lists carry their line numbers."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except _Bad as exc:
        raise ScheduleError(f"{source}:{exc.line}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ScheduleError(f"{source}{line}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ScheduleError(f"{source}: invalid YAML: {exc}") from None


def _line_of(container: Any, key: Any, default: int) -> int:
    lines = getattr(container, "lines", None)
    if isinstance(lines, dict):
        return lines.get(key, default)
    if isinstance(lines, list) and isinstance(key, int) and key < len(lines):
        return lines[key]
    return default


# ---- validation -------------------------------------------------------------------------


@dataclass
class _Parser:
    source: str
    nodes: int | None  # the cluster size, when known: node names are checked against it
    bound: set[str] = field(default_factory=set)

    def fail(self, line: int, message: str) -> ScheduleError:
        return ScheduleError(f"{self.source}:{line}: {message}")

    # -- targets

    def target(self, raw: Any, line: int) -> Target:
        if isinstance(raw, str):
            return self._target_word(raw, line)
        if isinstance(raw, list):
            if not raw:
                raise self.fail(line, "an empty list of targets")
            return [self.target(item, _line_of(raw, k, line)) for k, item in enumerate(raw)]
        if isinstance(raw, dict):
            unknown = sorted(set(map(str, raw)) - {"pick", "from", "except"})
            if unknown or not raw:
                raise self.fail(
                    line,
                    f"unknown target key {(unknown or ['(none)'])[0]!r} "
                    "(known: pick, from, except)",
                )
            out: dict[str, Any] = {}
            if "pick" in raw:
                out["pick"] = self._count(raw["pick"], _line_of(raw, "pick", line))
            for key in ("from", "except"):
                if key in raw:
                    out[key] = self.target(raw[key], _line_of(raw, key, line))
            return out
        kind = "nothing" if raw is None else type(raw).__name__
        raise self.fail(line, f"a target is a node, role, $name, list or {{pick: ...}}; got {kind}")

    def _target_word(self, word: str, line: int) -> str:
        if word in ROLES:
            return word
        if word.startswith("$"):
            if word[1:] not in self.bound:
                bound = ", ".join(f"${b}" for b in sorted(self.bound)) or "none"
                raise self.fail(line, f"{word} is not bound by an earlier `as:` (bound: {bound})")
            return word
        match = _NODE.fullmatch(word)
        if match and (self.nodes is None or int(match.group(1)) <= self.nodes):
            return word
        nodes = f"n1..n{self.nodes}" if self.nodes else "n1, n2, ..."
        raise self.fail(
            line,
            f"unknown target {word!r} (known: {', '.join(ROLES)}, {nodes}, $name, {{pick: ...}})",
        )

    def _count(self, raw: Any, line: int) -> int | str:
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            return raw
        if raw in PICK_COUNTS:
            return str(raw)
        raise self.fail(
            line,
            f"pick: expected a count (an integer >= 0 or one of "
            f"{', '.join(PICK_COUNTS)}), got {raw!r}",
        )

    # -- scalars

    def number(self, raw: Any, line: int, what: str, lo: float = 0.0, hi: float = 1e9) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not lo <= raw <= hi:
            raise self.fail(line, f"{what}: expected a number in [{lo:g}, {hi:g}], got {raw!r}")
        return float(raw)

    def name(self, raw: Any, line: int) -> str:
        if not isinstance(raw, str) or not _NAME.fullmatch(raw) or raw in ROLES:
            raise self.fail(
                line, f"as: expected a name (letters, digits, _ or -; not a role), got {raw!r}"
            )
        return raw

    # -- steps

    def steps(self, raw: Any, line: int) -> list[Step]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(line, "steps: expected a non-empty list of steps")
        return [self.step(item, _line_of(raw, k, line)) for k, item in enumerate(raw)]

    def step(self, raw: Any, line: int) -> Step:
        if not isinstance(raw, dict):
            raise self.fail(
                line,
                f"a step is a mapping (do, sleep_s, wait, remember or "
                f"repeat), got {type(raw).__name__}",
            )
        line = getattr(raw, "line", line)
        heads = [k for k in ("do", "sleep_s", "wait", "remember", "repeat") if k in raw]
        if len(heads) != 1:
            what = "more than one of" if heads else "none of"
            raise self.fail(
                line,
                f"a step has exactly one of do, sleep_s, wait, remember, "
                f"repeat ({what}: {', '.join(heads) or 'them'})",
            )
        head = heads[0]
        if head == "do":
            return self.fault(raw, line)
        if head == "sleep_s":
            return self.sleep(raw, line)
        if head == "wait":
            return self.wait(raw, line)
        if head == "remember":
            return self.remember(raw, line)
        return self.repeat(raw, line)

    def _args(self, raw: dict[str, Any], line: int, allowed: set[str], what: str) -> None:
        for key in raw:
            if key not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise self.fail(
                    _line_of(raw, key, line), f"{what}: unknown argument {key!r} (takes: {known})"
                )

    def _required(self, raw: dict[str, Any], key: str, line: int, what: str) -> Any:
        if key not in raw or raw[key] is None:
            raise self.fail(line, f"{what}: missing argument {key!r}")
        return raw[key]

    def _bind(self, raw: dict[str, Any], line: int) -> str | None:
        if "as" not in raw:
            return None
        name = self.name(raw["as"], _line_of(raw, "as", line))
        self.bound.add(name)
        return name

    def fault(self, raw: dict[str, Any], line: int) -> Fault:
        kind = raw["do"]
        if kind not in STEP_KINDS:
            raise self.fail(
                _line_of(raw, "do", line), f"unknown do {kind!r} (known: {', '.join(STEP_KINDS)})"
            )
        what = f"do: {kind}"
        args: dict[str, Any] = {}
        at = lambda key: _line_of(raw, key, line)  # noqa: E731 - a short local helper
        if kind == "partition":
            forms = [f for f in PARTITION_FORMS if f in raw]
            if len(forms) != 1:
                raise self.fail(
                    line,
                    f"{what}: give one of grudge, isolate, sides, or from "
                    f"and to ({'got ' + ', '.join(forms) if forms else 'none'})",
                )
            form = forms[0]
            allowed = {"do", form, "to"} if form == "from" else {"do", form}
            self._args(raw, line, allowed | ({"as"} if form == "isolate" else set()), what)
            if form == "grudge":
                grudge = raw["grudge"]
                if not isinstance(grudge, dict) or not grudge:
                    raise self.fail(
                        at("grudge"),
                        f"{what}: grudge: expected a mapping "
                        "{{node: nodes whose messages it drops}}",
                    )
                args["grudge"] = {
                    self.target(str(k), _line_of(grudge, k, at("grudge"))): self.target(
                        v, _line_of(grudge, k, at("grudge"))
                    )
                    for k, v in grudge.items()
                }
            elif form == "sides":
                sides = raw["sides"]
                if not isinstance(sides, list) or not sides:
                    raise self.fail(at("sides"), f"{what}: sides: expected a list of targets")
                args["sides"] = [
                    self.target(s, _line_of(sides, k, at("sides"))) for k, s in enumerate(sides)
                ]
            elif form == "from":
                args["from"] = self.target(raw["from"], at("from"))
                args["to"] = self.target(self._required(raw, "to", line, what), at("to"))
            else:
                args["isolate"] = self.target(raw["isolate"], at("isolate"))
        elif kind in ("heal", "link-clear"):
            self._args(raw, line, {"do"}, what)
        elif kind == "throttle":
            self._args(raw, line, {"do", "nodes", "as", "stopped_ms", "period_ms"}, what)
            args["nodes"] = self.target(self._required(raw, "nodes", line, what), at("nodes"))
            for key in ("stopped_ms", "period_ms"):
                value = self._required(raw, key, line, what)
                args[key] = self.number(value, at(key), f"{what}: {key}", 0.001, 1e6)
        elif kind in (
            "kill", "restart", "pause", "resume", "clock-reset", "unthrottle", "disk-reset",
        ):  # fmt: skip
            self._args(raw, line, {"do", "nodes", "as"}, what)
            if kind not in ("clock-reset", "unthrottle", "disk-reset") or "nodes" in raw:
                args["nodes"] = self.target(self._required(raw, "nodes", line, what), at("nodes"))
        elif kind == "disk":
            self._args(raw, line, {"do", "nodes", "as", "fsync_delay_ms", "jitter_ms"}, what)
            args["nodes"] = self.target(self._required(raw, "nodes", line, what), at("nodes"))
            args["fsync_delay_ms"] = self.number(
                self._required(raw, "fsync_delay_ms", line, what),
                at("fsync_delay_ms"), f"{what}: fsync_delay_ms", 0.0, DISK_DELAY_MAX_MS,
            )  # fmt: skip
            args["jitter_ms"] = self.number(
                raw.get("jitter_ms", 0.0), at("jitter_ms"), f"{what}: jitter_ms", 0.0,
                DISK_DELAY_MAX_MS,
            )  # fmt: skip
        elif kind == "clock":
            op = self._required(raw, "op", line, what)
            if op not in CLOCK_OPS:
                raise self.fail(
                    at("op"), f"{what}: op: unknown clock op {op!r} (known: {', '.join(CLOCK_OPS)})"
                )
            self._args(raw, line, {"do", "nodes", "op", "as", *CLOCK_OPS[op]}, what)
            args["nodes"] = self.target(self._required(raw, "nodes", line, what), at("nodes"))
            args["op"] = op
            for key in CLOCK_OPS[op]:
                value = self._required(raw, key, line, what)
                lo = -1e7 if key == "delta_ms" else 0.0
                args[key] = self.number(value, at(key), f"{what}: {key}", lo, 1e7)
        elif kind == "link":
            self._args(raw, line, {"do", "faults"}, what)
            args["faults"] = self.link_faults(
                self._required(raw, "faults", line, what), at("faults"), what
            )
        else:  # a kind with no node arguments: its values go to Faults.apply_step as written
            self._args(raw, line, {"do", *STEP_KINDS[kind]}, what)
            args.update({k: _plain(v) for k, v in raw.items() if k != "do"})
            if kind == "weather" and "links" in raw:
                self.weather_links(raw["links"], _line_of(raw, "links", line), what)
        bind = self._bind(raw, line)
        return Fault(kind, args, line, bind)

    def link_faults(self, raw: Any, line: int, what: str) -> list[dict[str, Any]]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(line, f"{what}: faults: expected a list of link faults")
        out = []
        for k, spec in enumerate(raw):
            spec_line = _line_of(raw, k, line)
            if not isinstance(spec, dict):
                raise self.fail(
                    spec_line,
                    f"{what}: a link fault is a mapping (src, dst, "
                    "delay_ms, jitter_ms, loss, duplicate, reorder, ...)",
                )
            toxic = {k2: v for k2, v in spec.items() if k2 not in ("src", "dst")}
            try:
                parse_fault(toxic)
            except FaultSpecError as exc:
                raise self.fail(spec_line, f"{what}: {exc}") from None
            ends = {
                e: self.target(spec.get(e, "all"), _line_of(spec, e, spec_line))
                for e in ("src", "dst")
            }
            out.append({**ends, **toxic})
        return out

    def weather_links(self, raw: Any, line: int, what: str) -> None:
        """A weather step's own links: concrete specs (src and dst are node names)."""
        if not isinstance(raw, list):
            raise self.fail(line, f"{what}: links: expected a list of link specs")
        for k, spec in enumerate(raw):
            try:
                parse_fault(spec)
            except FaultSpecError as exc:
                raise self.fail(_line_of(raw, k, line), f"{what}: links: {exc}") from None

    def sleep(self, raw: dict[str, Any], line: int) -> Sleep:
        self._args(raw, line, {"sleep_s"}, "sleep_s")
        value = raw["sleep_s"]
        if isinstance(value, list):
            if len(value) != 2:
                raise self.fail(line, "sleep_s: expected a number or [lo, hi]")
            lo, hi = (self.number(v, line, "sleep_s", 0.0, SLEEP_S_MAX) for v in value)
            if lo > hi:
                raise self.fail(line, f"sleep_s: [lo, hi] with lo > hi ({lo:g} > {hi:g})")
            return Sleep((lo, hi), line)
        return Sleep(self.number(value, line, "sleep_s", 0.0, SLEEP_S_MAX), line)

    def wait(self, raw: dict[str, Any], line: int) -> Wait:
        condition = raw["wait"]
        if condition not in WAITS:
            raise self.fail(line, f"unknown wait {condition!r} (known: {', '.join(WAITS)})")
        what = f"wait: {condition}"
        targeted = condition in ("answers", "accepted-unchosen", "progress")
        allowed = {"wait", "timeout_s", "on_timeout", "poll_s"}
        allowed |= {"nodes"} if targeted else {"as"}
        allowed |= {"from"} if condition == "leader-change" else set()
        self._args(raw, line, allowed, what)
        at = lambda key: _line_of(raw, key, line)  # noqa: E731
        timeout_s = self.number(
            self._required(raw, "timeout_s", line, what),
            at("timeout_s"),
            f"{what}: timeout_s",
            0.001,
            SLEEP_S_MAX,
        )
        on_timeout = raw.get("on_timeout", "continue")
        if on_timeout not in ON_TIMEOUT:
            raise self.fail(
                at("on_timeout"),
                f"{what}: on_timeout: expected one of {', '.join(ON_TIMEOUT)}, got {on_timeout!r}",
            )
        windows = ("accepted-unchosen", "progress")
        default_poll = POLL_S_WINDOW if condition in windows else POLL_S_DEFAULT
        poll_s = self.number(
            raw.get("poll_s", default_poll), at("poll_s"), f"{what}: poll_s", 0.001, 60.0
        )
        nodes = (
            self.target(self._required(raw, "nodes", line, what), at("nodes")) if targeted else None
        )
        replaced = self.target(raw["from"], at("from")) if "from" in raw else None
        bind = self._bind(raw, line)
        return Wait(condition, timeout_s, line, nodes, replaced, on_timeout, poll_s, bind)

    def remember(self, raw: dict[str, Any], line: int) -> Remember:
        self._args(raw, line, {"remember", "as"}, "remember")
        target = self.target(raw["remember"], _line_of(raw, "remember", line))
        bind = self._bind(raw, line)
        if bind is None:
            raise self.fail(line, "remember: missing argument 'as' (the name to bind)")
        return Remember(target, bind, line)

    def repeat(self, raw: dict[str, Any], line: int) -> Repeat:
        self._args(raw, line, {"repeat", "steps"}, "repeat")
        spec = raw["repeat"]
        at = _line_of(raw, "repeat", line)
        every_s: float | None = None
        if isinstance(spec, dict):
            self._args(spec, at, {"times", "every_s"}, "repeat")
            times_raw = self._required(spec, "times", at, "repeat")
            if "every_s" in spec:
                every_s = self.number(spec["every_s"], at, "repeat: every_s", 0.0, SLEEP_S_MAX)
        else:
            times_raw = spec
        if (
            isinstance(times_raw, bool)
            or not isinstance(times_raw, int)
            or not 1 <= times_raw <= REPEAT_MAX
        ):
            raise self.fail(
                at,
                f"repeat: expected a count in [1, {REPEAT_MAX}] or "
                f"{{times: N, every_s: X}}, got {times_raw!r}",
            )
        steps = self.steps(
            self._required(raw, "steps", line, "repeat"), _line_of(raw, "steps", line)
        )
        return Repeat(times_raw, steps, line, every_s)


def _sleeps(steps: list[Step]) -> bool:
    for step in steps:
        if (
            isinstance(step, Sleep)
            and (step.seconds if isinstance(step.seconds, float) else step.seconds[0]) > 0
        ):
            return True
        if isinstance(step, Repeat) and (step.every_s or _sleeps(step.steps)):
            return True
    return False


def parse_schedule(text: str, source: str = "<schedule>", nodes: int | None = None) -> Schedule:
    """Validates a schedule's text; `nodes` (the cluster size) bounds the node names."""
    data = load_yaml_with_lines(text, source)
    parser = _Parser(source, nodes)
    if data is None:
        raise ScheduleError(f"{source}:1: an empty schedule (expected a list of steps)")
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict):
        raise ScheduleError(f"{source}:1: a schedule is a list of steps or a mapping with 'steps'")
    top_line = getattr(data, "line", 1)
    top = {"name", "description", "loop", "steps"}
    for key in data:
        if key not in top:
            raise parser.fail(
                _line_of(data, key, top_line),
                f"unknown key {key!r} (known: {', '.join(sorted(top))})",
            )
    loop = data.get("loop", True)
    if not isinstance(loop, bool):
        raise parser.fail(
            _line_of(data, "loop", top_line), f"loop: expected true or false, got {loop!r}"
        )
    if "steps" not in data:
        raise parser.fail(top_line, "missing key 'steps'")
    steps = parser.steps(data["steps"], _line_of(data, "steps", top_line))
    schedule = Schedule(steps, source, _opt_str(data, "name"), _opt_str(data, "description"), loop)
    if loop and not _sleeps(steps):
        raise parser.fail(
            top_line,
            "a schedule that repeats until the time limit needs a "
            "sleep_s > 0 (or repeat every_s) somewhere; or set loop: false",
        )
    return schedule


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def load_schedule(path: Path, nodes: int | None = None) -> Schedule:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_schedule(text, str(path), nodes)


def load_executed(path: Path) -> list[dict[str, Any]]:
    """A run's `schedule.yaml`: the concrete steps it executed, `{at_s, do, ...}` each."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read: {exc.strerror or exc}") from None
    data = load_yaml_with_lines(text, str(path))
    steps = data.get("steps") if isinstance(data, dict) else data
    if not isinstance(steps, list):
        raise ScheduleError(f"{path}:1: expected {{steps: [...]}}, the steps a run executed")
    out = []
    for k, step in enumerate(steps):
        line = _line_of(steps, k, 1)
        if not isinstance(step, dict) or step.get("do") not in STEP_KINDS:
            raise ScheduleError(f"{path}:{line}: a step needs do: one of {', '.join(STEP_KINDS)}")
        at_s = step.get("at_s")
        if isinstance(at_s, bool) or not isinstance(at_s, (int, float)) or at_s < 0:
            raise ScheduleError(f"{path}:{line}: at_s: expected a number >= 0, got {at_s!r}")
        out.append(_plain(step))
    return out


def _plain(value: Any) -> Any:
    """LineDict/LineList back to dict/list (what the primitives and yaml.safe_dump take)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
