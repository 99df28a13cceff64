"""Runs a schedule file (nemesis/schedule_file.py), or replays a run's executed steps, as the
run's `NemesisDriver`.

    driver = ScheduleDriver(load_schedule(path, 3), ctx, recorder, seed=7)
    await driver.run(until=deadline)   # the steps, again and again until `until`
    await driver.heal_all()            # ctx.faults.heal_everything(), as a history op

    replay = ReplayDriver(load_executed(run / "schedule.yaml"), ctx, recorder)

Targets are resolved when their step runs, from the status replies of the running nodes
(`role`, `ballot`, `leader`): `leader` is the node that claims to lead (of several, the one
with the highest ballot); when none does, the node most others name as leader, else a
random node, and the op says which. Random choices come from `<seed>:schedule:targets`,
sleeps from `<seed>:schedule:sleep`, so a seed gives the same sleeps whatever the nodes do.
Every step (sleeps too) is a history op of process "nemesis": `invoke` (the step as
written, with its line) then `ok` (what was done to whom, the targets resolved) or `info`
(it failed). Each fault step's entry in `ctx.faults.executed` gets a `source` (line,
targets as written, how they resolved). Sleeps and waits stop at `until`; a fault step
started before it runs to its end (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tobtest.histories.op import NEMESIS
from tobtest.histories.recorder import Recorder
from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.grudge import complete_grudge, isolate, node_sort_key, normalize, one_way
from tobtest.nemesis.schedule_file import (
    Fault,
    Remember,
    Repeat,
    Schedule,
    Sleep,
    Step,
    Target,
    Wait,
    load_executed,
    load_schedule,
)

log = logging.getLogger("tobtest.nemesis.schedule")
NEMESIS_OP_TIMEOUT_S = 10.0
HEAL_TIMEOUT_S = 30.0
NODE_KINDS = (
    "kill", "restart", "pause", "resume", "clock", "clock-reset", "throttle", "unthrottle",
    "disk", "disk-reset",
)  # fmt: skip
STATUS_TIMEOUT_S = 0.5

Statuses = Callable[[Sequence[str]], Awaitable[dict[str, dict[str, Any] | None]]]


class _TimeUp(Exception):
    """The main phase is over: the schedule stops where it is."""


class _Skip(Exception):
    """A wait timed out with `on_timeout: skip`: the rest of this iteration is skipped."""


def cluster_statuses(ctx: NemesisContext) -> Statuses:
    """Status replies of the named nodes that run (a paused or down one is None, unasked)."""

    async def one(name: str) -> dict[str, Any] | None:
        try:
            reply = await ctx.cluster.status(name, timeout_s=STATUS_TIMEOUT_S)
        except Exception:  # a node that does not answer is just not answering
            return None
        return reply if isinstance(reply, dict) else None

    async def statuses(names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        running = set(ctx.faults.running())
        asked = [n for n in names if n in running]
        replies = await asyncio.gather(*(one(n) for n in asked))
        got = dict(zip(asked, replies, strict=True))
        return {n: got.get(n) for n in names}

    return statuses


def _ballot(status: dict[str, Any]) -> tuple[Any, ...]:
    ballot = status.get("ballot")
    return tuple(ballot) if isinstance(ballot, (list, tuple)) else ()


def claimants(statuses: dict[str, dict[str, Any] | None], names: Sequence[str]) -> list[str]:
    """Nodes that claim to lead, highest ballot first (ties in name order)."""
    claimed = [n for n in names if (statuses.get(n) or {}).get("role") == "leader"]
    return sorted(
        claimed,
        key=lambda n: (
            tuple(-x if isinstance(x, int) else 0 for x in _ballot(statuses[n] or {})),
            node_sort_key(n),
        ),
    )


class Resolver:
    """Turns targets into node names, from the nodes' status and the bindings so far."""

    def __init__(self, names: Sequence[str], rng: random.Random, statuses: Statuses) -> None:
        self.names = list(names)
        self.rng = rng
        self.statuses = statuses
        self.bindings: dict[str, list[str]] = {}
        self._seen: dict[str, dict[str, Any] | None] | None = None
        self._leader: str | None = None

    def new_step(self) -> None:
        """Statuses are asked once per step, so `leader` and `followers` agree in a step."""
        self._seen, self._leader = None, None

    async def status_now(self) -> dict[str, dict[str, Any] | None]:
        if self._seen is None:
            self._seen = await self.statuses(self.names)
        return self._seen

    async def leader(self, notes: list[str]) -> str:
        if self._leader is not None:
            return self._leader
        seen = await self.status_now()
        claimed = claimants(seen, self.names)
        fallback = self.rng.choice(self.names)  # drawn either way: the same rng stream
        if claimed:
            pick = claimed[0]
            if len(claimed) > 1:
                notes.append(
                    f"leader: {', '.join(claimed)} claim to lead; {pick} has the highest ballot"
                )
        else:
            named = Counter(
                self.names[s["leader"]]
                for s in seen.values()
                if s is not None
                and isinstance(s.get("leader"), int)
                and 0 <= s["leader"] < len(self.names)
            )
            if named:
                pick, votes = named.most_common(1)[0]
                notes.append(
                    f"leader: nobody claims to lead; {pick} is named leader by {votes} node(s)"
                )
            else:
                answering = [n for n in self.names if seen.get(n) is not None]
                pick = fallback if not answering or fallback in answering else answering[0]
                notes.append(f"leader: nobody claims or is named leader; {pick} at random")
        self._leader = pick
        return pick

    def _count(self, count: int | str, pool: int) -> int:
        n = len(self.names)
        wanted = {
            "one": 1,
            "minority": max(1, (n - 1) // 2),
            "half": n // 2,
            "majority": n // 2 + 1,
            "all": pool,
        }.get(str(count))
        return min(pool, wanted if wanted is not None else int(count))

    def _pick(self, pool: list[str], count: int | str) -> list[str]:
        return sorted(self.rng.sample(pool, self._count(count, len(pool))), key=node_sort_key)

    async def resolve(self, target: Target, notes: list[str]) -> list[str]:
        """The nodes `target` names, in natural order (see schedule_file for the forms)."""
        return sorted(set(await self._resolve(target, notes)), key=node_sort_key)

    async def _resolve(self, target: Target, notes: list[str]) -> list[str]:
        if isinstance(target, list):
            out: list[str] = []
            for item in target:
                out += await self._resolve(item, notes)
            return out
        if isinstance(target, dict):
            pool = await self.resolve(target.get("from", "all"), notes)
            if "except" in target:
                dropped = set(await self.resolve(target["except"], notes))
                pool = [n for n in pool if n not in dropped]
            return self._pick(pool, target["pick"]) if "pick" in target else pool
        word = str(target)
        if word.startswith("$"):
            return list(self.bindings.get(word[1:], []))
        if word == "all":
            return list(self.names)
        if word in ("one", "minority", "majority"):
            return self._pick(list(self.names), word)
        if word == "leader":
            return [await self.leader(notes)]
        if word == "followers":
            lead = await self.leader(notes)
            return [n for n in self.names if n != lead]
        return [word] if word in self.names else []


def describe_faults(ctx: NemesisContext) -> str:
    """The faults in force now, in a few words, from what the primitives installed."""
    faults = ctx.faults
    parts = []
    if faults.grudge:
        cut = " ".join(f"{n}<-x-{','.join(s)}" for n, s in faults.grudge.items())
        parts.append(f"partition {cut}")
    if faults.down():
        parts.append(f"down {','.join(faults.down())}")
    if faults.paused():
        parts.append(f"paused {','.join(faults.paused())}")
    if faults.clocks:
        parts.append(f"clock {','.join(faults.clocks)}")
    if faults.link_faults:
        parts.append(f"link x{len(faults.link_faults)}")
    return "; ".join(parts) or "none"


class _Recording:
    """What both drivers share: history ops, describe, heal_all."""

    def __init__(self, ctx: NemesisContext, recorder: Recorder, clock: Callable[[], float]):
        self.ctx = ctx
        self.recorder = recorder
        self.clock = clock
        self.faults_applied = 0
        self.until = float("inf")

    def describe(self) -> str:
        return describe_faults(self.ctx)

    async def _sleep(self, seconds: float) -> None:
        """Sleeps, but not past the end of the main phase (then _TimeUp)."""
        left = self.until - self.clock()
        await asyncio.sleep(max(0.0, min(seconds, left)))
        if seconds >= left:
            raise _TimeUp

    async def _apply(self, f: str, invoked: Any, action: Awaitable[Any]) -> tuple[bool, Any]:
        self.recorder.record("invoke", NEMESIS, f, invoked)
        try:
            value = await asyncio.wait_for(action, NEMESIS_OP_TIMEOUT_S)
        except Exception as exc:  # a failed fault is recorded, and the run goes on
            log.warning("schedule step %s failed: %s", f, exc)
            self.recorder.record("info", NEMESIS, f, invoked, error=f"{type(exc).__name__}: {exc}")
            return False, None
        return True, value

    async def heal_all(self) -> None:
        self.recorder.record("invoke", NEMESIS, "heal-all", None)
        try:
            value = await asyncio.wait_for(self.ctx.faults.heal_everything(), HEAL_TIMEOUT_S)
        except Exception as exc:
            log.warning("heal-all failed: %s", exc)
            self.recorder.record("info", NEMESIS, "heal-all", None, error=f"{exc!r}")
            return
        self.recorder.record("ok", NEMESIS, "heal-all", value)


class ScheduleDriver(_Recording):
    def __init__(
        self,
        schedule: Schedule,
        ctx: NemesisContext,
        recorder: Recorder,
        seed: int,
        clock: Callable[[], float] = time.monotonic,
        statuses: Statuses | None = None,
    ) -> None:
        super().__init__(ctx, recorder, clock)
        self.schedule = schedule
        self.sleep_rng = random.Random(f"{seed}:schedule:sleep")
        self.resolver = Resolver(
            ctx.node_names,
            random.Random(f"{seed}:schedule:targets"),
            statuses or cluster_statuses(ctx),
        )
        self.iterations = 0

    async def run(self, until: float) -> None:
        """Runs the steps (again and again, unless `loop: false`) until `until`."""
        self.until = until
        try:
            while True:
                with contextlib.suppress(_Skip):
                    await self._steps(self.schedule.steps)
                self.iterations += 1
                if not self.schedule.loop:
                    return
        except _TimeUp:
            return

    async def _steps(self, steps: list[Step]) -> None:
        for step in steps:
            if self.clock() >= self.until:
                raise _TimeUp
            self.resolver.new_step()
            if isinstance(step, Sleep):
                await self._sleep_step(step)
            elif isinstance(step, Wait):
                await self._wait(step)
            elif isinstance(step, Remember):
                await self._remember(step)
            elif isinstance(step, Repeat):
                await self._repeat(step)
            else:
                await self._fault(step)

    async def _repeat(self, step: Repeat) -> None:
        for _ in range(step.times):
            started = self.clock()
            with contextlib.suppress(_Skip):
                await self._steps(step.steps)
            if step.every_s is not None:
                await self._sleep(started + step.every_s - self.clock())

    async def _sleep_step(self, step: Sleep) -> None:
        seconds = step.seconds
        if isinstance(seconds, tuple):
            seconds = round(self.sleep_rng.uniform(*seconds), 3)
        self.recorder.record("invoke", NEMESIS, "sleep", {"line": step.line, "sleep_s": seconds})
        try:
            await self._sleep(seconds)
        finally:
            self.recorder.record("ok", NEMESIS, "sleep", {"line": step.line, "sleep_s": seconds})

    async def _remember(self, step: Remember) -> None:
        notes: list[str] = []
        invoked = {"line": step.line, "remember": step.target, "as": step.bind}
        self.recorder.record("invoke", NEMESIS, "remember", invoked)
        nodes = await self.resolver.resolve(step.target, notes)
        self.resolver.bindings[step.bind] = nodes
        value = {**invoked, "nodes": nodes, **({"notes": notes} if notes else {})}
        self.recorder.record("ok", NEMESIS, "remember", value)

    # ---- waits ----------------------------------------------------------------------------

    async def _wait(self, step: Wait) -> None:
        notes: list[str] = []
        f = f"wait-{step.condition}"
        invoked: dict[str, Any] = {"line": step.line, "timeout_s": step.timeout_s}
        self.recorder.record("invoke", NEMESIS, f, invoked)
        started = self.clock()
        deadline = min(started + step.timeout_s, self.until)
        replaced: list[str] = []
        watched: list[str] = []
        if step.condition == "leader-change":
            replaced = await self.resolver.resolve(step.replaced or "leader", notes)
        elif step.nodes is not None:
            watched = await self.resolver.resolve(step.nodes, notes)
        found: str | None = None
        met = False
        baseline: dict[str, int] = {}  # progress: each node's chosen index when the wait began
        while True:
            met, found = await self._condition(
                step.condition, replaced, watched, deadline, baseline
            )
            if met or self.clock() >= deadline:
                break
            await asyncio.sleep(max(0.0, min(step.poll_s, deadline - self.clock())))
        value: dict[str, Any] = {
            **invoked,
            "met": met,
            "waited_s": round(self.clock() - started, 3),
        }
        if step.condition == "leader-change":
            value["from"] = replaced
        if watched or step.nodes is not None:
            value["nodes"] = watched
        if found is not None:
            value["leader"] = found
        if step.bind is not None:
            self.resolver.bindings[step.bind] = [found] if found is not None else []
            value["as"] = step.bind
        if notes:
            value["notes"] = notes
        time_up = not met and self.clock() >= self.until
        if time_up:
            value["cut_by"] = "time limit"
        elif not met:
            value["on_timeout"] = step.on_timeout
        self.recorder.record("ok", NEMESIS, f, value)
        if time_up:
            raise _TimeUp
        if not met and step.on_timeout == "skip":
            raise _Skip

    async def _condition(
        self,
        condition: str,
        replaced: list[str],
        watched: list[str],
        deadline: float,
        baseline: dict[str, int] | None = None,
    ) -> tuple[bool, str | None]:
        names = self.ctx.node_names if condition in ("leader", "leader-change") else watched
        if not names:
            return True, None
        left = max(0.001, deadline - self.clock())
        try:
            seen = await asyncio.wait_for(self.resolver.statuses(names), left + STATUS_TIMEOUT_S)
        except TimeoutError:
            return False, None
        if condition in ("leader", "leader-change"):
            claimed = [n for n in claimants(seen, names) if n not in replaced]
            return (True, claimed[0]) if claimed else (False, None)
        if condition == "answers":
            return all(seen.get(n) is not None for n in names), None
        if condition == "progress":
            return _progressed(seen, names, baseline if baseline is not None else {}), None
        counts = [(seen.get(n) or {}).get("accepted_unchosen", 0) for n in names]
        return all(isinstance(c, int) and c > 0 for c in counts), None

    # ---- faults ---------------------------------------------------------------------------

    async def _fault(self, step: Fault) -> None:
        notes: list[str] = []
        resolved: dict[str, Any] = {}
        call, bound = await self._prepare(step, notes, resolved)
        invoked = {"line": step.line, **step.args}
        before = len(self.ctx.faults.executed)
        ok, result = await self._apply(step.kind, invoked, call)
        if step.bind is not None:
            self.resolver.bindings[step.bind] = bound
        if not ok:
            return
        source: dict[str, Any] = {"line": step.line}
        if step.args:
            source["targets"] = step.args
        if notes:
            source["notes"] = notes
        for entry in self.ctx.faults.executed[before:]:
            entry["source"] = copy.deepcopy(source)  # no shared objects: no YAML anchors
        value = {"line": step.line, **resolved, **_result(step.kind, result)}
        if step.bind is not None:
            value["as"] = step.bind
        if notes:
            value["notes"] = notes
        self.recorder.record("ok", NEMESIS, step.kind, value)
        self.faults_applied += 1

    async def _prepare(
        self, step: Fault, notes: list[str], resolved: dict[str, Any]
    ) -> tuple[Awaitable[Any], list[str]]:
        """The primitive call for a fault step, its targets resolved into `resolved`."""
        faults, args, names = self.ctx.faults, step.args, self.ctx.node_names
        resolve = self.resolver.resolve
        kind = step.kind
        if kind == "partition":
            if "isolate" in args:
                nodes = resolved["isolate"] = await resolve(args["isolate"], notes)
                return faults.partition(isolate(names, nodes)), nodes
            if "sides" in args:
                sides: list[list[str]] = []
                placed: set[str] = set()
                for side in args["sides"]:
                    nodes = [n for n in await resolve(side, notes) if n not in placed]
                    placed |= set(nodes)
                    sides.append(nodes)
                rest = [n for n in names if n not in placed]
                resolved["sides"] = [s for s in [*sides, rest] if s]
                return faults.partition(complete_grudge(resolved["sides"])), []
            if "from" in args:
                src = resolved["from"] = await resolve(args["from"], notes)
                dst = resolved["to"] = await resolve(args["to"], notes)
                return faults.partition(one_way(src, dst)), []
            grudge: dict[str, set[str]] = {}
            for key, value in args["grudge"].items():
                dropped = set(await resolve(value, notes))
                for node in await resolve(key, notes):
                    grudge.setdefault(node, set()).update(dropped)
            return faults.partition(normalize(grudge)), []
        if kind == "heal":
            return faults.heal(), []
        if kind == "link-clear":
            return faults.link_clear(), []
        if kind == "link":
            toxics = []
            for spec in args["faults"]:
                srcs, dsts = await resolve(spec["src"], notes), await resolve(spec["dst"], notes)
                toxic = {k: v for k, v in spec.items() if k not in ("src", "dst")}
                toxics += [{"src": s, "dst": d, **toxic} for s in srcs for d in dsts if s != d]
            return faults.link(toxics), []
        if kind not in NODE_KINDS:  # no targets to resolve (see schedule_file)
            return faults.apply_step({"do": kind, **args}), []
        if kind == "clock-reset" and "nodes" not in args:
            return faults.clock_reset(), list(names)
        if kind == "unthrottle" and "nodes" not in args:
            return faults.unthrottle(), list(names)
        if kind == "disk-reset" and "nodes" not in args:
            return faults.disk_reset(), list(names)
        nodes = resolved["nodes"] = await resolve(args["nodes"], notes)
        if kind == "clock":
            params = {k: v for k, v in args.items() if k not in ("nodes",)}
            return faults.clock({n: dict(params) for n in nodes}), nodes
        if kind == "clock-reset":
            return faults.clock_reset(nodes), nodes
        if kind == "disk":
            params = {k: args[k] for k in ("fsync_delay_ms", "jitter_ms")}
            return faults.disk({n: dict(params) for n in nodes}), nodes
        if kind == "disk-reset":
            return faults.disk_reset(nodes), nodes
        if kind == "throttle":
            return faults.throttle(nodes, args["stopped_ms"], args["period_ms"]), nodes
        if kind == "unthrottle":
            return faults.unthrottle(nodes), nodes
        primitive = {
            "kill": faults.kill,
            "restart": faults.restart,
            "pause": faults.pause,
            "resume": faults.resume,
        }[kind]
        return primitive(nodes), nodes


def _result(kind: str, result: Any) -> dict[str, Any]:
    """A primitive's return value under the key the report reads."""
    if kind == "partition":
        return {"grudge": result}
    if kind == "heal":
        return {"grudge": {}}
    if kind == "link":
        return {"faults": result}
    if kind == "link-clear":
        return {"faults": []}
    return {"done": result}


class ReplayDriver(_Recording):
    """Replays concrete executed steps (a run's schedule.yaml) at their offsets `at_s`."""

    def __init__(
        self,
        steps: list[dict[str, Any]],
        ctx: NemesisContext,
        recorder: Recorder,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ctx, recorder, clock)
        self.steps = sorted(steps, key=lambda s: float(s["at_s"]))
        self.skipped = 0

    async def run(self, until: float) -> None:
        self.until = until
        for k, step in enumerate(self.steps):
            try:
                await self._sleep(float(step["at_s"]) - self.ctx.faults.offset_s())
            except _TimeUp:
                self.skipped = len(self.steps) - k
                log.info("replay: %d step(s) after the time limit not replayed", self.skipped)
                return
            concrete = {k2: v for k2, v in step.items() if k2 not in ("at_s", "source")}
            invoked = {**concrete, "replayed_at_s": step["at_s"]}
            ok, _ = await self._apply(step["do"], invoked, self.ctx.faults.apply_step(concrete))
            if ok:
                self.recorder.record("ok", NEMESIS, step["do"], invoked)
                self.faults_applied += 1


def schedule_driver(
    nemesis_schedule: str | None,
    replay_schedule: str | None,
    ctx: NemesisContext,
    recorder: Recorder,
    seed: int,
    run_path: Path | None = None,
) -> ScheduleDriver | ReplayDriver:
    """The driver a run config asks for; a schedule file is copied into the run folder."""
    if replay_schedule is not None:
        return ReplayDriver(load_executed(Path(replay_schedule) / "schedule.yaml"), ctx, recorder)
    assert nemesis_schedule is not None
    path = Path(nemesis_schedule)
    schedule = load_schedule(path, len(ctx.node_names))
    if run_path is not None:
        (run_path / "nemesis-schedule.yaml").write_text(path.read_text())
    return ScheduleDriver(schedule, ctx, recorder, seed)


def _progressed(
    seen: Mapping[str, dict[str, Any] | None], names: list[str], baseline: dict[str, int]
) -> bool:
    """`wait: progress`: every node of `names` reports a chosen index (else a delivered
    count) above the one it reported first in this wait; the first answers set the mark."""
    moved = True
    for name in names:
        status = seen.get(name) or {}
        mark = status.get("chosen_index", status.get("delivered"))
        if not isinstance(mark, int):
            moved = False
        elif name not in baseline:
            baseline[name] = mark
            moved = False
        elif mark <= baseline[name]:
            moved = False
    return moved
