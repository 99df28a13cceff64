"""What a run folder holds, read leniently: the data behind `report.html`, `tobtest show` and
`tobtest serve`.

    run = load_run(Path("store/latest"))
    run.results          # results.json as a dict, or None (then run.notes says why)
    run.pairs            # client ops: invocation, completion (None if never), outcome
    run.intervals        # nemesis faults: when each started and stopped, and what it did
    figures(run)         # ops/s, latency p50/p99 of ok ops, duration, counts by f and type
    exploration(run)     # what the nemesis explored: moves, situations hit, the sentence
    list_runs(Path("store"))   # one RunRow per run folder, newest first

Nothing here raises on a partial run: a run killed mid-way has no results.json and may end
in a torn history line; both become `notes` and the rest is still read. Only the standard
library and yaml: `tobtest show` imports this without pulling in matplotlib or jinja2.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tobtest.histories.op import NEMESIS, Op
from tobtest.histories.suffix_reads import full_reads

HISTORY_PROBLEMS_KEPT = 5  # unreadable history lines quoted in the notes; the rest counted
RUN_STAMP_FORMAT = "%Y%m%dT%H%M%S"


def verdict_word(valid: Any) -> str:
    """VALID, INVALID, UNKNOWN, or NOT CHECKED when there is no verdict at all."""
    if valid is True:
        return "VALID"
    if valid is False:
        return "INVALID"
    return "NOT CHECKED" if valid is None else "UNKNOWN"


def verdict_class(valid: Any) -> str:
    """A CSS class (and rich style key) per verdict: valid, invalid, unknown or unchecked."""
    if valid is True:
        return "valid"
    if valid is False:
        return "invalid"
    return "unchecked" if valid is None else "unknown"


@dataclass(frozen=True)
class OpPair:
    """A client op: its invocation and completion. `outcome` is ok, fail or info, and info
    also for an invocation that never completed (`done` is None)."""

    invoke: Op
    done: Op | None

    @property
    def outcome(self) -> str:
        return self.done.type if self.done is not None else "info"

    @property
    def latency_ns(self) -> int | None:
        return None if self.done is None else self.done.time_ns - self.invoke.time_ns


@dataclass(frozen=True)
class Interval:
    """One fault of a nemesis, from its start op to the op that stopped or healed it.

    `stop` is None when nothing stopped it before the history ended."""

    name: str
    start: Op  # the start op's completion (or invocation if it never completed)
    stop: Op | None
    description: str
    ok: bool  # False: the start op completed info or fail (the fault may not be in place)


@dataclass
class RunData:
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    history: list[Op] = field(default_factory=list)
    results: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # what is missing or unreadable
    pairs: list[OpPair] = field(default_factory=list)
    nemesis_ops: list[Op] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)

    @property
    def t0_ns(self) -> int:
        return self.history[0].time_ns if self.history else 0

    def seconds(self, op: Op) -> float:
        """An op's time in seconds since the history began."""
        return (op.time_ns - self.t0_ns) / 1e9

    @property
    def valid(self) -> Any:
        """The merged verdict, or None when the run has no readable results.json."""
        return None if self.results is None else self.results.get("valid", "unknown")

    @property
    def test_name(self) -> str:
        name = self.config.get("test_name")
        return str(name) if name else self.path.parent.name

    def node_files(self) -> list[tuple[str, Path | None, Path | None]]:
        """(node, log file, status file) for each node that left either in nodes/."""
        nodes_dir = self.path / "nodes"
        names: set[str] = set()
        if nodes_dir.is_dir():
            for p in nodes_dir.iterdir():
                if p.is_file() and p.name.endswith((".log", ".status.json")):
                    names.add(p.name.split(".", 1)[0])
        rows = []
        for name in sorted(names, key=_natural_key):
            log, status = nodes_dir / f"{name}.log", nodes_dir / f"{name}.status.json"
            rows.append(
                (name, log if log.is_file() else None, status if status.is_file() else None)
            )
        return rows


def _natural_key(name: str) -> tuple[str, int]:
    stem = name.rstrip("0123456789")
    digits = name[len(stem) :]
    return (stem, int(digits) if digits else -1)


def read_history_lenient(path: Path) -> tuple[list[Op], list[str]]:
    """Reads history.jsonl, skipping lines that are not ops; returns (ops, problems)."""
    ops: list[Op] = []
    problems: list[str] = []
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        return ops, [f"{path.name}: {exc.strerror or exc}"]
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                ops.append(Op.from_dict(json.loads(line)))
            except (ValueError, TypeError) as exc:
                problems.append(f"line {number}: {exc}")
    return ops, problems


def load_run(run_dir: Path) -> RunData:
    """Reads everything a run folder holds; what is missing or broken goes to `notes`."""
    run = RunData(path=run_dir)
    config_path = run_dir / "test.yaml"
    try:
        loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        run.config = loaded if isinstance(loaded, dict) else {}
    except FileNotFoundError:
        run.notes.append("test.yaml is missing: the configuration is unknown.")
    except (OSError, yaml.YAMLError) as exc:
        run.notes.append(f"test.yaml could not be read: {exc}")
    history_path = run_dir / "history.jsonl"
    if history_path.exists():
        run.history, problems = read_history_lenient(history_path)
        # Suffix reads as the whole logs they saw, for every page that shows a read.
        run.history = full_reads(run.history)
        if problems:
            shown = "; ".join(problems[:HISTORY_PROBLEMS_KEPT])
            more = len(problems) - HISTORY_PROBLEMS_KEPT
            run.notes.append(
                f"{len(problems)} line(s) of history.jsonl are not ops and were skipped "
                f"(a run killed mid-write tears its last line): {shown}"
                + (f"; and {more} more" if more > 0 else "")
            )
    else:
        run.notes.append("history.jsonl is missing: the run recorded no ops.")
    results_path = run_dir / "results.json"
    try:
        loaded = json.loads(results_path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            run.results = loaded
        else:
            run.notes.append("results.json holds no object: the verdict is unknown.")
    except FileNotFoundError:
        run.notes.append(
            "results.json is missing: the run stopped before its history was checked "
            f"(check it with: tobtest check {run_dir})."
        )
    except (OSError, ValueError) as exc:
        run.notes.append(f"results.json could not be read: {exc}")
    return index_history(run)


def index_history(run: RunData) -> RunData:
    """Fills `pairs`, `nemesis_ops` and `intervals` from `run.history`; returns `run`."""
    open_by_process: dict[Any, int] = {}
    pairs: list[tuple[Op, Op | None]] = []
    for op in run.history:
        if op.process == NEMESIS:
            run.nemesis_ops.append(op)
            continue
        key = op.process if isinstance(op.process, (int, str)) else repr(op.process)
        if op.type == "invoke":
            open_by_process[key] = len(pairs)
            pairs.append((op, None))
        else:
            slot = open_by_process.pop(key, None)
            if slot is not None:
                pairs[slot] = (pairs[slot][0], op)
    run.pairs = [OpPair(inv, done) for inv, done in pairs]
    run.intervals = nemesis_intervals(run.nemesis_ops)
    return run


HEAL_EVERYTHING = ("heal-explore", "heal-all")  # the drivers' final heal: lifts every fault


def nemesis_intervals(nemesis_ops: list[Op]) -> list[Interval]:
    """Pairs each `start-X` with the next `stop-X` or `heal-X` completion of the same X; a
    completed `heal-explore` or `heal-all` (which heals everything) ends every open one."""
    intervals: list[Interval] = []
    started: dict[str, Op] = {}  # fault name -> its start op (completion, else invocation)
    for op in nemesis_ops:
        kind, _, name = op.f.partition("-")
        if kind not in ("start", "stop", "heal") or not name:
            continue
        if kind == "start":
            # A start that never completes may still have acted: its invocation stands in
            # until its completion replaces it.
            current = started.get(name)
            if current is None or (op.type != "invoke" and current.type == "invoke"):
                started[name] = op
        elif op.type != "invoke" and op.f in HEAL_EVERYTHING:
            for open_name in list(started):  # it lifted whatever was still in force
                intervals.append(_interval(open_name, started.pop(open_name), op))
        elif op.type != "invoke" and name in started:
            intervals.append(_interval(name, started.pop(name), op))
    for name, start in started.items():
        intervals.append(_interval(name, start, None))
    intervals.sort(key=lambda i: i.start.time_ns)
    return intervals


def _interval(name: str, start: Op, stop: Op | None) -> Interval:
    return Interval(name, start, stop, describe_nemesis(start), start.type == "ok")


# Keys describe_nemesis says in words (the flip's details it leaves to the op's full value).
DESCRIBED_KEYS = frozenset(
    {"shape", "grudge", "fault", "op", "nodes", "reset", "target", "faults", "toxic"}
    | {"old_leader", "new_leader", "restarted", "elected_after_s", "killed_holding_unchosen"}
    | {"leader", "situations", "in_window", "cut_off_awake_s"}  # the exploring nemesis's
)


def describe_nemesis(op: Op) -> str:
    """A nemesis op in a few words: `partition halves: n1 -x- n2,n3`, `kill n2`, ..."""
    value = op.value
    name = op.f.partition("-")[2] or op.f
    if op.type in ("fail", "info"):
        return f"{op.f} {op.type}: {op.error or 'no effect known'}"
    if not isinstance(value, dict):
        return op.f if value is None else f"{op.f} {_short(value)}"
    parts: list[str] = []
    if "shape" in value:
        parts.append(str(value["shape"]))
    grudge = value.get("grudge")
    nodes_said = _nodes(value.get("nodes")) if "nodes" in value else ""
    if nodes_said and isinstance(grudge, dict):  # an explorer move: whom it cut off, then how
        parts.append(f"{nodes_said}:")
        nodes_said = ""
    if "old_leader" in value:  # the flip: who was deposed, who leads, who came back where
        restarted = value.get("restarted")
        back = ",".join(map(str, restarted)) if isinstance(restarted, list) else ""
        parts.append(
            f"deposed {value['old_leader']}, leader {value.get('new_leader')},"
            f" restarted {back or 'none'}" + (":" if isinstance(grudge, dict) else "")
        )
    if isinstance(grudge, dict):
        parts.append(describe_grudge(grudge) if grudge else "healed")
    if "fault" in value and isinstance(value["fault"], dict):
        parts.append(" ".join(f"{k}={v}" for k, v in value["fault"].items()))
    elif "fault" in value or "op" in value:
        parts.append(_short(value.get("fault", value.get("op"))))
    parts.append(nodes_said)
    parts.append(_explorer_details(value))
    if "reset" in value:
        parts.append("reset " + _short(value["reset"]))
    faults = value.get("faults")
    if isinstance(faults, list):
        # Link toxics: the toxic, then the links it is on (n1->n2, ...).
        if "toxic" in value:
            parts.append(str(value["toxic"]))
        links = [f"{f.get('src')}->{f.get('dst')}" for f in faults if isinstance(f, dict)]
        parts.append(f"on {', '.join(links)}" if links else "cleared")
    rest = {k: v for k, v in value.items() if k not in DESCRIBED_KEYS}
    if rest:
        parts.append(_short(rest))
    situations = value.get("situations")
    if isinstance(situations, list) and situations:
        # Whom it hit first, then when: the explorer lists the moment first.
        labels = sorted(map(str, situations), key=lambda label: label not in TARGET_PHRASES)
        parts.append(f"[{', '.join(labels)}]")
    label = name if op.f.startswith("start-") else op.f
    return f"{label} {' '.join(p for p in parts if p)}".strip()


def _nodes(nodes: Any) -> str:
    """`["n1", "n2"]` as `n1,n2`; clock requests by node (the explorer's clock moves) as
    `n1 skew rate=0.96, n2 ...`."""
    if isinstance(nodes, list):
        return ",".join(map(str, nodes))
    if isinstance(nodes, dict) and all(isinstance(r, dict) for r in nodes.values()):
        return ", ".join(f"{n} {_request(r)}" for n, r in nodes.items())
    return _short(nodes)


def _request(request: dict[str, Any]) -> str:
    """A clock request `{"op": "skew", "rate": 0.96}` as `skew rate=0.96`."""
    rest = " ".join(f"{k}={v}" for k, v in request.items() if k != "op")
    return f"{request.get('op', '')} {rest}".strip()


def _explorer_details(value: dict[str, Any]) -> str:
    """What an exploring nemesis's move says beyond its targets: whether the node it aimed
    at the leader was one, who took over, how long a stalled leader stays cut off."""
    parts: list[str] = []
    leader = value.get("leader")
    if "leader" in value and (leader is False or leader is None):
        parts.append("(no leader seen: a random node)")
    elif isinstance(leader, str):
        parts.append(f"leader {leader}")
    if "new_leader" in value and "old_leader" not in value:
        parts.append(f"new leader {value['new_leader'] or 'none yet'}")
    if value.get("in_window") is True:
        parts.append("(holding accepted-unchosen slots)")
    elif value.get("in_window") is False:
        parts.append("(no node held accepted-unchosen slots: a random one)")
    if isinstance(value.get("cut_off_awake_s"), int | float):
        parts.append(f"cut off {value['cut_off_awake_s']} s after waking")
    return " ".join(parts)


def describe_grudge(grudge: dict[str, Any]) -> str:
    """`{n1: [n2, n3], n2: [n1]}` as `n1<-x-n2,n3 n2<-x-n1` (who drops traffic from whom)."""
    items = []
    for node in sorted(grudge, key=lambda n: _natural_key(str(n))):
        sources = grudge[node]
        names = sources if isinstance(sources, list) else [sources]
        items.append(f"{node}<-x-{','.join(map(str, names))}")
    return " ".join(items)


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list (NaN for an empty one)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Figures:
    duration_s: float
    ok_ops_per_s: float
    latency_ms: dict[str, tuple[float, float, int]]  # f (and "all") -> (p50, p99, ok count)
    counts: dict[tuple[str, str], int]  # (f, type) over completions; "open" for never done
    faults: list[tuple[float, str]]  # (start s, description), one per nemesis fault


def figures(run: RunData) -> Figures:
    """Key numbers of a run, from its history alone."""
    history = run.history
    duration_s = (history[-1].time_ns - history[0].time_ns) / 1e9 if len(history) > 1 else 0.0
    counts: Counter[tuple[str, str]] = Counter()
    latencies: dict[str, list[float]] = {}
    for pair in run.pairs:
        counts[(pair.invoke.f, pair.done.type if pair.done else "open")] += 1
        if pair.done is not None and pair.done.type == "ok" and pair.latency_ns is not None:
            ms = pair.latency_ns / 1e6
            latencies.setdefault(pair.invoke.f, []).append(ms)
            latencies.setdefault("all", []).append(ms)
    latency_ms = {}
    for f, values in latencies.items():
        values.sort()
        latency_ms[f] = (quantile(values, 0.5), quantile(values, 0.99), len(values))
    ok_total = len(latencies.get("all", []))
    faults = [(run.seconds(i.start), i.description) for i in run.intervals]
    return Figures(
        duration_s=duration_s,
        ok_ops_per_s=ok_total / duration_s if duration_s > 0 else 0.0,
        latency_ms=latency_ms,
        counts=dict(counts),
        faults=faults,
    )


# ---- what the nemesis explored ------------------------------------------------------------

# The situation labels of nemesis/explore.py, as the verdict sentence says them: who a fault
# hit, then the moment it struck. A label not listed here is said as it is.
TARGET_PHRASES = {
    "hit the leader": "the leader",
    "hit a lease holder": "a lease holder",
    "hit a node holding accepted-unchosen slots": "nodes holding accepted-unchosen slots",
}
MOMENT_PHRASES = {
    "during an election": "during an election",
    "just after a leader change": "just after a leader change",
    "two nodes claiming to lead": "while two nodes claimed to lead",
    "leader with accepts in flight": "while the leader had accepts in flight",
    "under load": "under load",
}
# Summary counters in the order they are said: (key, singular, plural).
EVENTS = (
    ("leader_changes", "leader change", "leader changes"),
    # Phase 1 rounds started: elections in Multi-Paxos, one per proposal in per-slot Paxos.
    ("elections", "Phase 1 round", "Phase 1 rounds"),
    ("step_downs", "step-down", "step-downs"),
    ("restarts_with_log", "restart from a non-empty log", "restarts from a non-empty log"),
    ("weather_changes", "change of network weather", "changes of network weather"),
    ("disk_changes", "stretch of slow disks", "stretches of slow disks"),
)
SENTENCE_EVENTS = ("leader_changes", "elections", "restarts_with_log")
REACHED = (("states", "distinct abstract states"), ("transitions", "transitions"))


@dataclass(frozen=True)
class Exploration:
    """What a run's nemesis did, from results.json's `exploration` (source "summary") or,
    without one, from the history's nemesis ops (source "history")."""

    source: str
    faults: int  # faults that went in
    kinds: list[tuple[str, int]]  # fault kind -> count
    moves: list[tuple[str, int, int | None]]  # move, times played, novelty it found
    situations: list[tuple[str, int]]  # situation label -> faults that struck in it
    events: list[tuple[str, int, str]]  # (summary key, 3, "leader changes"), EVENTS order
    reached: list[tuple[int, str]]  # (19, "distinct abstract states"), (41, "transitions")
    feedback: bool | None  # the explorer preferred novel moves (None: not said)
    sentence: str = ""  # "Verdict VALID after 7 faults: 2 aimed at the leader, ..."


def _counts(value: Any) -> list[tuple[str, int]]:
    """A {name: count} dict as (name, count) pairs, most first; junk is skipped."""
    if not isinstance(value, dict):
        return []
    pairs = [(str(k), v) for k, v in value.items() if isinstance(v, int) and v > 0]
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def exploration(run: RunData) -> Exploration | None:
    """The nemesis's exploration of `run`, or None when it injected nothing to speak of."""
    summary = (run.results or {}).get("exploration")
    started = [i for i in run.intervals if i.ok]
    if isinstance(summary, dict):
        found = _from_summary(summary, len(started))
    elif started:
        found = _from_history(started)
    else:
        return None
    return replace(found, sentence=_sentence(run, found))


def _from_summary(summary: dict[str, Any], started: int) -> Exploration:
    novelty = summary.get("novelty")
    scores: dict[str, Any] = novelty if isinstance(novelty, dict) else {}
    moves = [(m, n, scores.get(m)) for m, n in _counts(summary.get("moves"))]
    events = [
        (key, summary[key], one if summary[key] == 1 else many)
        for key, one, many in EVENTS
        if isinstance(summary.get(key), int)
    ]
    reached = [(summary[k], label) for k, label in REACHED if isinstance(summary.get(k), int)]
    feedback = summary.get("feedback")
    return Exploration(
        source="summary",
        faults=started or sum(n for _, n, _ in moves),
        kinds=_counts(summary.get("kinds")),
        moves=moves,
        situations=_counts(summary.get("situations")),
        events=events,
        reached=reached,
        feedback=feedback if isinstance(feedback, bool) else None,
    )


def _from_history(started: list[Interval]) -> Exploration:
    """Explorer ops carry `situations` and are named by move; a periodic nemesis's faults
    are named by their kind."""
    labels: Counter[str] = Counter()
    explorer = False
    for interval in started:
        value = interval.start.value
        if isinstance(value, dict) and isinstance(value.get("situations"), list):
            explorer = True
            labels.update(str(label) for label in value["situations"])
    names = _counts(Counter(i.name for i in started))
    return Exploration(
        source="history",
        faults=len(started),
        kinds=[] if explorer else names,
        moves=[(m, n, None) for m, n in names] if explorer else [],
        situations=_counts(labels),
        events=[],
        reached=[],
        feedback=None,
    )


def _sentence(run: RunData, found: Exploration) -> str:
    """`Verdict VALID after 7 faults: 2 aimed at the leader, 2 at a lease holder; 7 under
    load; 3 leader changes, 5 Phase 1 rounds, 1 restart from a non-empty log.`"""
    targets: list[str] = []
    moments: list[str] = []
    counts = dict(found.situations)
    for label, phrase in TARGET_PHRASES.items():
        if label in counts:
            targets.append(f"{counts[label]} {'at' if targets else 'aimed at'} {phrase}")
    for label, count in found.situations:
        if label not in TARGET_PHRASES and label not in MOMENT_PHRASES:
            moments.append(f"{count} {label}")
    moments[:0] = [f"{counts[k]} {p}" for k, p in MOMENT_PHRASES.items() if k in counts]
    groups = [
        "" if found.moves else ", ".join(f"{count} {kind}" for kind, count in found.kinds),
        ", ".join(targets),
        ", ".join(moments),
        ", ".join(f"{n} {label}" for key, n, label in found.events if key in SENTENCE_EVENTS),
    ]
    said = "; ".join(g for g in groups if g)
    head = f"Verdict {verdict_word(run.valid)} after {_plural(found.faults, 'fault', 'faults')}"
    return f"{head}: {said}." if said else f"{head}."


def faults_around(run: RunData, indexes: list[int]) -> str:
    """The faults in force while the ops `indexes` ran, in words (where a run broke), or
    the last one lifted before them."""
    by_index = {op.index: op for op in run.history}
    times = [by_index[i].time_ns for i in indexes if i in by_index]
    if not times:
        return ""
    lo, hi = min(times), max(times)
    during = [
        i
        for i in run.intervals
        if i.start.time_ns <= hi and (i.stop is None or i.stop.time_ns >= lo)
    ]
    if during:
        more = f"; and {len(during) - 3} more" if len(during) > 3 else ""
        return "during " + "; ".join(i.description for i in during[:3]) + more
    lifted = [i for i in run.intervals if i.stop is not None and i.stop.time_ns < lo]
    if not lifted:
        return "before any fault"
    last = max(lifted, key=lambda i: i.stop.time_ns if i.stop else 0)
    assert last.stop is not None
    return f"no fault in force: {(lo - last.stop.time_ns) / 1e9:.1f} s after {last.description}"


@dataclass(frozen=True)
class RunRow:
    """One line of a store listing."""

    path: Path  # the run folder
    relative: str  # <test>/<run>, as a URL path inside the store
    test: str
    started: str  # "2026-11-26 20:43:54", from the folder name
    protocol: str
    nemesis: str
    workload: str
    valid: Any  # True, False, "unknown", or None when not checked


def list_runs(store: Path) -> list[RunRow]:
    """Every run folder in `store` (`<test>/<stamp>/` with a history or a test.yaml), newest
    first. The `latest` links are not runs of their own and are skipped."""
    rows: list[RunRow] = []
    if not store.is_dir():
        return rows
    for test_dir in sorted(store.iterdir()):
        if test_dir.is_symlink() or not test_dir.is_dir() or test_dir.name.startswith("."):
            continue
        for run_dir in test_dir.iterdir():
            if run_dir.is_symlink() or not run_dir.is_dir():
                continue
            if (run_dir / "history.jsonl").exists() or (run_dir / "test.yaml").exists():
                rows.append(_row(store, test_dir.name, run_dir))
    rows.sort(key=lambda r: (r.started, r.relative), reverse=True)
    return rows


def _row(store: Path, test: str, run_dir: Path) -> RunRow:
    config: dict[str, Any] = {}
    try:
        loaded = yaml.safe_load((run_dir / "test.yaml").read_text(encoding="utf-8"))
        config = loaded if isinstance(loaded, dict) else {}
    except (OSError, yaml.YAMLError):
        pass
    valid: Any = None
    try:
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
        valid = results.get("valid", "unknown") if isinstance(results, dict) else "unknown"
    except FileNotFoundError:
        valid = None
    except (OSError, ValueError):
        valid = "unknown"
    stamp = run_dir.name.split("-", 1)[0]
    try:
        started = datetime.strptime(stamp, RUN_STAMP_FORMAT).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        started = run_dir.name
    nemesis = config.get("nemesis", "")
    return RunRow(
        path=run_dir,
        relative=f"{test}/{run_dir.name}",
        test=test,
        started=started,
        protocol=str(config.get("protocol", "?")),
        nemesis=",".join(map(str, nemesis)) if isinstance(nemesis, list) else str(nemesis),
        workload=str(config.get("workload", "?")),
        valid=valid,
    )
