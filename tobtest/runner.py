"""The runner: config -> cluster -> main phase (workload + nemesis) -> heal -> final reads -> check.

    result = asyncio.run(Runner(TestConfig(time_limit_s=10)).run())
    result.valid, result.run_path

Phases, as in Jepsen: start the proxy and the nodes; for `time_limit_s` let the clients
invoke ops at `rate` while the nemesis injects faults; stop the clients (in-flight ops are
awaited, bounded by their timeout); heal every fault; wait (bounded) until every node has
caught up with the others (`tobtest.quiesce`); read every node once more (`final` reads,
each saying whether its node had caught up); save every node's status; end every process;
check the history. Whatever happens, the cluster is stopped and
the history written so far stays on disk.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tobtest.checker.compose import check_all
from tobtest.cluster import Cluster, ClusterSpec
from tobtest.config import TestConfig
from tobtest.histories.recorder import Recorder
from tobtest.histories.store import RunStore
from tobtest.nemesis.base import NemesisContext
from tobtest.nemesis.explore import ExploringNemesis
from tobtest.nemesis.proxy_client import ProxyControl
from tobtest.nemesis.registry import EXPLORE, build_nemeses, disk_fault_for
from tobtest.nemesis.schedule import NemesisDriver, NemesisScheduler
from tobtest.node_kind import check_config
from tobtest.ports import PortPlan
from tobtest.quiesce import Quiescence
from tobtest.workloads import Workload, workload_class
from tobtest.workloads.base import Outcome
from tobtest.workloads.client import ClientError, NodeClient

if TYPE_CHECKING:
    from tobtest.remote_cluster import RemoteCluster

log = logging.getLogger("tobtest.runner")
PROGRESS_INTERVAL_S = 0.5
LEADER_POLL_S = 0.25
# With lease reads, clients learn of a new leader faster: a new leader's first round trips
# are where its lease reads are most at risk.
LEASE_LEADER_POLL_S = 0.05
LEASE_READS_TO_LEADER = 0.75  # the share of lease reads sent to the node said to lead
# A lease read refused with `not-leader` or `no-lease` naming a leader is asked again there
# after a short pause, a few times, as clients of a leader-based store follow redirects:
# such reads meet a new leader in its first moments, where lease arithmetic and its
# barriers are most at risk.
LEASE_REDIRECTS_MAX = 8
# A node that has just begun to claim the lead is in its first round trips, where a new
# leader's lease, barrier and catch-up meet its first reads: for a moment after the poll
# first sees it claim, most lease reads that follow the leader go to it (clients of a
# leader-based store switch to the newest leader they hear of), the rest as before.
NEW_LEADER_FOCUS_S = 0.5
NEW_LEADER_SHARE = 0.75

LEASE_REDIRECT_PAUSE_S = (0.001, 0.01)
# A share of the clients only read (where the workload has reads): while writes hang at a
# leader change, closed-loop clients all end up waiting on them, and nothing would probe the
# cluster just when its read paths are most at risk (a new leader's first round trips, a
# deposed one that still answers); readers keep reading through it, as read-heavy clients do.
READER_SHARE = 0.25
QUIESCE_POLL_S = 0.2
CRASH_POLL_S = 0.2
# Status fields that measure a node's progress; without them there is nothing to wait on.
PROGRESS_FIELDS = frozenset({"chosen_index", "delivered"})
# Following the leader asks every node's status; a paused or starved node must not hold the
# answer up (on loopback a live node answers in a millisecond or two).
LEADER_STATUS_TIMEOUT_S = 0.1


@dataclass
class Progress:
    phase: str = "setup"
    elapsed_s: float = 0.0
    time_limit_s: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)  # "ok" | "fail" | "info"
    fault: str = "none"
    faults_applied: int = 0


@dataclass
class RunResult:
    config: TestConfig
    run_path: Path
    results: dict[str, Any]

    @property
    def valid(self) -> bool | str:
        valid: bool | str = self.results.get("valid", "unknown")
        return valid


class Runner:
    quiescence: Quiescence | None = None  # how the nodes stood after the heal (_quiesce)

    def __init__(
        self,
        config: TestConfig,
        on_progress: Callable[[Progress], None] | None = None,
        remote: Any = None,
    ) -> None:
        self.config = config
        self.on_progress = on_progress
        self.progress = Progress(time_limit_s=config.time_limit_s)
        # A fault or read the node kind cannot serve is refused before anything is made.
        self.node_kind = check_config(config)
        # Nodes on other hosts (a tobtest.remote.RemoteSetup, checked there), or here.
        self.remote = remote
        # Ports first: a port in use is a bad argument, reported before anything is made.
        self.ports = remote.ports if remote else PortPlan.allocate(config.nodes, config.base_port)
        self.store = RunStore.create(Path(config.store), config.test_name, config.to_dict())
        self.recorder = Recorder(self.store.history_path)
        workload = workload_class(config.workload, maelstrom=config.maelstrom is not None)
        assert workload is not None, f"unknown workload {config.workload}"  # check_config ran
        options = config.workload_options()
        # Reads ask only for what their client lacks (each read op names its worker).
        self._read_from = "read-from" in self.node_kind.capabilities
        if self._read_from:
            options["read_from"] = True
        self.workload: Workload = workload(random.Random(f"{config.seed}:workload"), options)
        self._node_rng = random.Random(f"{config.seed}:nodes")
        # Choices that depend on what nodes answer (redirects, which of several claimants a
        # lease read goes to) draw from their own rng, so the node stream stays seeded.
        self._redirect_rng = random.Random(f"{config.seed}:redirects")
        self._next_process = config.client_count
        self._leader_hint: str | None = None
        self._leader_claims: list[str] = []
        self._new_leader: tuple[str, float] | None = None  # (node, focus until, monotonic)
        self._last_claims: list[str] = []  # the last non-empty answer of the poll
        self._lease_reads = "lease" in getattr(self.workload, "read_modes", ())
        self.cluster: Cluster | RemoteCluster | None = None
        self._t0 = time.monotonic()
        self.network: dict[str, Any] | None = None  # node-to-node messages, from the proxy

    # ---- the whole run --------------------------------------------------------------------

    async def run(self) -> RunResult:
        cfg = self.config
        log.info("run %s seed=%d store=%s", cfg.test_name, cfg.seed, self.store.path)
        reporter = asyncio.create_task(self._report_progress())
        try:
            spec = ClusterSpec(
                n=cfg.nodes,
                protocol=cfg.protocol,
                seed=cfg.seed,
                bugs=tuple(cfg.bugs),
                base_port=cfg.base_port,
                kind=self.node_kind,
                disk_fault=disk_fault_for(cfg.nemesis),
            )
            if self.remote is not None:
                from tobtest.remote_cluster import RemoteCluster  # asyncssh only where it is used

                self.cluster = RemoteCluster(spec, self.store.path, self.remote)
            else:
                self.cluster = Cluster(spec, self.store.path, self.ports)
            await self.cluster.start()
            proxy = self.cluster.proxy_control()
            crashes = asyncio.create_task(self._watch_crashes())
            try:
                await self._main_phase(proxy)
                await self._final_phase()
                self.network = await self._network_counts(proxy)
            finally:
                crashes.cancel()
                self._record_crashes()
                await proxy.close()
        finally:
            if self.cluster is not None:
                await self.cluster.finish()
            self.recorder.close()
            self._write_schedule()
            reporter.cancel()
        self.progress.phase = "check"
        self._emit()
        results = self.check()
        self.write_report()
        return RunResult(cfg, self.store.path, results)

    def _write_schedule(self) -> None:
        """Stores the fault steps executed, as `tobtest run --replay-schedule` reads them."""
        faults = getattr(self, "faults", None)
        if faults is not None:
            self.store.write_yaml("schedule.yaml", {"steps": faults.executed})

    def write_report(self) -> None:
        # A report that cannot be drawn must not cost the verdict: log it and go on.
        try:
            from tobtest.checker.report import write_report

            write_report(self.store.path)
        except Exception:
            log.exception("could not write report.html for %s", self.store.path)

    def check(self) -> dict[str, Any]:
        names = list(dict.fromkeys([*self.workload.checkers, *self.config.extra_checkers]))
        results = check_all(self.recorder.ops, names, per_checker=self.workload.checker_options)
        results["seed"] = self.config.seed
        results["reproduce"] = self.config.reproduce_command()
        results["ops"] = dict(self.progress.counts)
        results["faults_applied"] = self.progress.faults_applied
        summary = getattr(getattr(self, "scheduler", None), "summary", None)
        if callable(summary):
            results["exploration"] = summary()
        if self.quiescence is not None:
            results["quiesce"] = self.quiescence.report()
        if self.network is not None:
            results["network"] = self.network
        caps = self.node_kind.capabilities
        if "restart" in caps and "durable" not in caps:
            results["node_note"] = (
                "these nodes keep their state in memory: a killed node restarts empty "
                "(its kind declares restart, not durable)"
            )
        self.store.write_results(results)
        return results

    # ---- phases ---------------------------------------------------------------------------

    async def _main_phase(self, proxy: ProxyControl) -> None:
        cfg = self.config
        assert self.cluster is not None
        base_faults = (
            [{"src": "*", "dst": "*", "delay_ms": cfg.link_delay_ms}] if cfg.link_delay_ms else []
        )
        if base_faults:
            await proxy.link_faults(base_faults)
        ctx = NemesisContext(
            node_names=self.cluster.names,
            proxy=proxy,
            primaries=self._primaries,
            cluster=self.cluster,
            base_link_faults=base_faults,
        )
        self.scheduler = self._nemesis_driver(ctx)
        self.progress.phase = "main"
        self._t0 = time.monotonic()
        self.faults = ctx.faults
        self.faults.start_clock()
        deadline = self._t0 + cfg.time_limit_s
        self._pacer_next = self._t0
        workers = [asyncio.create_task(self._worker(w, deadline)) for w in range(cfg.client_count)]
        nemesis_task = asyncio.create_task(self.scheduler.run(until=deadline))
        follow = cfg.route_to_leader or self._lease_reads
        leader_task = asyncio.create_task(self._follow_leader()) if follow else None
        try:
            await asyncio.gather(*workers, nemesis_task)
        finally:
            for task in [*workers, nemesis_task, *([leader_task] if leader_task else [])]:
                task.cancel()
        self.progress.phase = "heal"
        await self.scheduler.heal_all()
        self.progress.faults_applied = self.scheduler.faults_applied
        self.progress.fault = self.scheduler.describe()

    def _nemesis_driver(self, ctx: NemesisContext) -> NemesisDriver:
        """What injects this run's faults: the nemeses named, toggled on their schedule."""
        cfg = self.config
        if cfg.nemesis_schedule is not None or cfg.replay_schedule is not None:
            from tobtest.nemesis.schedule_run import schedule_driver

            return schedule_driver(
                cfg.nemesis_schedule, cfg.replay_schedule, ctx, self.recorder, cfg.seed,
                self.store.path,
            )  # fmt: skip
        if cfg.nemesis == [EXPLORE]:
            lease_reads = "lease" in getattr(self.workload, "read_modes", ())
            options = {
                "lease_reads": lease_reads,
                "feedback": cfg.explore_feedback,
                "disk_latency": "disk-latency" in self.node_kind.capabilities,
            }
            return ExploringNemesis(ctx, self.recorder, cfg.seed, options)
        nemesis_opts: dict[str, dict[str, Any]] = {"partition": {"shapes": cfg.partition_shapes}}
        if cfg.nemesis_targets:
            for name in ("kill", "pause", "clock", "disk"):
                nemesis_opts[name] = {"targets": cfg.nemesis_targets}
        return NemesisScheduler(
            build_nemeses(cfg.nemesis, cfg.seed, nemesis_opts),
            ctx,
            self.recorder,
            cfg.nemesis_interval_s,
        )

    async def _final_phase(self) -> None:
        assert self.cluster is not None
        self.progress.phase = "quiesce"
        if PROGRESS_FIELDS & self.node_kind.status_fields(self.config.protocol):
            quiescence = await self._quiesce()
        else:
            # Nothing in the nodes' status says how far they got: give them the workload's
            # settling time (gossip reaching every node) and read.
            await asyncio.sleep(getattr(self.workload, "settle_s", 0.0))
            quiescence = self.quiescence = Quiescence(self.config.quiet_period_s)
            quiescence.observe(await self._statuses(), 0.0)
        self.progress.phase = "final reads"
        final_op = self.workload.final_op()
        if final_op is not None:
            # Each final read says whether its node had caught up (and if not, how far behind
            # it was): a lagging node is then a liveness failure, not a pile of lost broadcasts.
            await asyncio.gather(
                *(
                    self._final_read(name, {**final_op, **quiescence.final_read_extra(name)})
                    for name in self.cluster.names
                )
            )
        await self._save_statuses()

    # ---- clients --------------------------------------------------------------------------

    async def _next_slot(self, deadline: float) -> bool:
        """Waits for this worker's turn at the total `rate`; False once the phase is over."""
        now = time.monotonic()
        slot = max(self._pacer_next, now)
        self._pacer_next = slot + 1.0 / self.config.rate
        if slot >= deadline:
            return False
        await asyncio.sleep(slot - now)
        return True

    async def _worker(self, worker: int, deadline: float) -> None:
        assert self.cluster is not None
        process = worker
        clients: dict[str, NodeClient] = {}
        try:
            reader = worker < int(self.config.client_count * READER_SHARE)
            while await self._next_slot(deadline):
                op = (self.workload.next_read() if reader else None) or self.workload.next_op()
                if self._read_from and op.get("f") == "read":
                    op = {**op, "client": worker}  # the worker's read cursors, per node
                node = self._node_rng.choice(self.cluster.names)
                if self._lease_reads and op.get("read_mode") == "lease":
                    # A lease read is the leader's to serve: most go where the cluster's
                    # status says the leader is (polled: right after a change, to the old
                    # one), the rest anywhere, as a client without a hint would send it.
                    hinted = self._node_rng.random() < LEASE_READS_TO_LEADER
                    if hinted and self._leader_claims:
                        node = self._redirect_rng.choice(self._leader_claims)
                        new = self._new_leader
                        if new is not None and time.monotonic() < new[1]:
                            focus = self._redirect_rng.random() < NEW_LEADER_SHARE
                            node = new[0] if focus else node
                if self.config.route_to_leader and self._leader_hint is not None:
                    # Drawn anyway, so the rng stream is the same whichever way ops go.
                    node = self._leader_hint
                client = self._client(clients, node)
                fallback = None
                if self.workload.retries and len(self.cluster.names) > 1:
                    other = self._node_rng.choice([n for n in self.cluster.names if n != node])
                    fallback = (other, self._client(clients, other))
                outcome = await self._invoke(process, node, client, op, fallback)
                if self._lease_reads and op.get("read_mode") == "lease":
                    outcome = await self._follow_redirects(process, clients, op, outcome, deadline)
                if outcome.type == "info":
                    # Jepsen: a process with an indeterminate op never issues another;
                    # the worker carries on as a fresh process with fresh connections.
                    process = self._fresh_process()
                    for c in clients.values():
                        await c.close()
                    clients.clear()
        finally:
            for c in clients.values():
                await c.close()

    async def _follow_redirects(
        self,
        process: int,
        clients: dict[str, NodeClient],
        op: dict[str, Any],
        outcome: Outcome,
        deadline: float,
    ) -> Outcome:
        """Asks a refused lease read again at the leader its refusal named (see
        LEASE_REDIRECTS_MAX), each time as an op of its own."""
        assert self.cluster is not None
        for _ in range(LEASE_REDIRECTS_MAX):
            leader = outcome.extra.get("leader")
            if outcome.type != "fail" or leader not in self.cluster.names:
                break
            await asyncio.sleep(self._redirect_rng.uniform(*LEASE_REDIRECT_PAUSE_S))
            if time.monotonic() >= deadline:
                break
            outcome = await self._invoke(process, leader, self._client(clients, leader), op)
        return outcome

    def _client(self, clients: dict[str, NodeClient], node: str) -> NodeClient:
        assert self.cluster is not None
        client = clients.get(node)
        if client is None:
            client = clients[node] = NodeClient(*self.cluster.client_address(node))
        return client

    async def _invoke(
        self,
        process: int,
        node: str,
        client: NodeClient,
        op: dict[str, Any],
        fallback: tuple[str, NodeClient] | None = None,
    ) -> Outcome:
        # msg_id is the workload's own handle; the history keeps the op's meaning.
        extra = {k: v for k, v in op.items() if k not in ("f", "value", "msg_id")}
        self.recorder.record("invoke", process, op["f"], op.get("value"), node=node, **extra)
        outcome = await self.workload.invoke(client, op, self.config.op_timeout_s, fallback)
        self.recorder.record(
            outcome.type,
            process,
            op["f"],
            outcome.value,
            # The node that answered: a retried broadcast is acked by the other node.
            node=outcome.node or node,
            error=outcome.error,
            **{**extra, **outcome.extra},
        )
        self.progress.counts[outcome.type] += 1
        return outcome

    async def _final_read(self, node: str, op: dict[str, Any]) -> None:
        assert self.cluster is not None
        process = self._fresh_process()
        client = NodeClient(*self.cluster.client_address(node))
        try:
            # A final read may land on a node that is still catching up; retry a few times
            # within the budget rather than record a failed read at once.
            deadline = time.monotonic() + self.config.final_read_timeout_s
            while True:
                outcome_type = (await self._invoke(process, node, client, op)).type
                if outcome_type == "ok" or time.monotonic() >= deadline:
                    return
                if outcome_type == "info":
                    return
                await asyncio.sleep(0.2)
        finally:
            await client.close()

    async def _follow_leader(self) -> None:
        """With `route_to_leader` or lease reads, keeps `_leader_hint` on the node that claims
        to lead (polled through `status`), as clients that follow the leader would; None when
        none or several claim. `_leader_claims` keeps every claimant: while a deposed leader
        still claims, a lease read goes to either, the old one or the one just elected, most
        to the one just elected for a moment (NEW_LEADER_FOCUS_S)."""
        while True:
            leaders = await self._primaries(LEADER_STATUS_TIMEOUT_S)
            fresh = [n for n in leaders if n not in self._last_claims]
            if fresh and self._last_claims:  # not the run's first leader
                self._new_leader = (fresh[-1], time.monotonic() + NEW_LEADER_FOCUS_S)
            self._last_claims = leaders or self._last_claims
            self._leader_hint = leaders[0] if len(leaders) == 1 else None
            self._leader_claims = leaders
            await asyncio.sleep(LEASE_LEADER_POLL_S if self._lease_reads else LEADER_POLL_S)

    def _fresh_process(self) -> int:
        process = self._next_process
        self._next_process += 1
        return process

    # ---- node crashes and messages ---------------------------------------------------------

    async def _watch_crashes(self) -> None:
        while True:
            self._record_crashes()
            await asyncio.sleep(CRASH_POLL_S)

    def _record_crashes(self) -> None:
        """A node that exited on its own is a recorded crash (`info`, process nemesis, f
        `crash`), with its exit code and its log's last line; the run goes on without it."""
        if self.cluster is None:
            return
        for name, code, reason in self.cluster.reap_crashed():
            log.warning("node %s crashed (exit %s): %s", name, code, reason)
            value = {"node": name, "exit": code, "reason": reason}
            self.recorder.record("info", "nemesis", "crash", value, node=name)

    async def _network_counts(self, proxy: ProxyControl) -> dict[str, Any] | None:
        """Node-to-node messages the proxy carried (what nodes sent, dropped ones included)
        and per client op: Maelstrom's figure of merit, messages per op."""
        try:
            status = await proxy.status()
        except Exception:  # a figure, not a verdict: never worth failing the run for
            log.warning("could not read the proxy's counts", exc_info=True)
            return None
        sent = 0
        for link in status.get("links", []):
            dropped = sum(v for k, v in link.items() if k.startswith("dropped_"))
            sent += link.get("forwarded", 0) - link.get("duplicated", 0) + dropped
        ops = sum(self.progress.counts.values())
        per_op = round(sent / ops, 3) if ops else None
        return {"messages": sent, "client_ops": ops, "messages_per_op": per_op}

    # ---- node status ----------------------------------------------------------------------

    async def _statuses(self, timeout_s: float = 1.0) -> dict[str, dict[str, Any] | None]:
        assert self.cluster is not None
        cluster = self.cluster

        async def one(name: str) -> dict[str, Any] | None:
            try:
                return await cluster.status(name, timeout_s=timeout_s)
            except ClientError:
                return None

        replies = await asyncio.gather(*(one(name) for name in cluster.names))
        return dict(zip(cluster.names, replies, strict=True))

    async def _primaries(self, timeout_s: float = 0.5) -> list[str]:
        """Nodes that claim to lead; if none answers so (a paused or partitioned leader
        cannot), the node most of the answering nodes name as their leader."""
        assert self.cluster is not None
        statuses = await self._statuses(timeout_s=timeout_s)
        claimed = [n for n, s in statuses.items() if s is not None and s.get("role") == "leader"]
        if claimed:
            return claimed
        named = Counter(
            s.get("leader")
            for s in statuses.values()
            if s is not None and s.get("leader") is not None
        )
        if not named:
            return []
        leader_id, _ = named.most_common(1)[0]
        names = self.cluster.names
        return (
            [names[leader_id]] if isinstance(leader_id, int) and 0 <= leader_id < len(names) else []
        )

    async def _quiesce(self) -> Quiescence:
        """Waits (at most `quiesce_timeout_s`) until every node has caught up with the others
        and that has held for the quiet period (see `tobtest.quiesce`)."""
        cfg = self.config
        quiescence = self.quiescence = Quiescence(cfg.quiet_period_s)
        start = time.monotonic()
        while not quiescence.observe(await self._statuses(), time.monotonic() - start):
            if time.monotonic() - start >= cfg.quiesce_timeout_s:
                report = quiescence.report()
                log.warning(
                    "nodes not settled after %.1f s (%s); not caught up: %s; reading anyway",
                    cfg.quiesce_timeout_s,
                    report["reason"],
                    ", ".join(report["not_caught_up"]) or "none",
                )
                break
            await asyncio.sleep(QUIESCE_POLL_S)
        return quiescence

    async def _save_statuses(self) -> None:
        for name, status in (await self._statuses()).items():
            self.store.write_json(f"nodes/{name}.status.json", status or {"error": "no reply"})

    # ---- progress -------------------------------------------------------------------------

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)

    async def _report_progress(self) -> None:
        while True:
            if self.progress.phase == "main":
                self.progress.elapsed_s = time.monotonic() - self._t0
                scheduler = getattr(self, "scheduler", None)
                if scheduler is not None:
                    self.progress.fault = scheduler.describe()
                    self.progress.faults_applied = scheduler.faults_applied
            self._emit()
            await asyncio.sleep(PROGRESS_INTERVAL_S)
