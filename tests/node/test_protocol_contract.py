"""The contract every protocol core keeps, checked for each entry of the protocol registry.

Purity: no module of node/protocols/ (every one, in any subfolder) imports a clock, a socket,
a file or process API, calls `open`, or draws from the global `random` (a core gets its
randomness as a `random.Random` argument). The entry: its declared config fields, read
modes and seeded bugs are the ones its code has. Status: a fresh core and every core after a
simulated run report the declared fields. Restore: a core rebuilt from a node's persisted
records has that node's delivered prefix. Safety: many simulator seeds with loss,
duplication, reordering, partitions, one-way cuts, slow senders, pauses, clock rates within
the drift bound and crashes that reload from the records give no violation. A new protocol
gets all of it from its registry entry; a failing seed replays with `faulty_run(name, seed)`.

Run: .venv/bin/python -m pytest tests/node/test_protocol_contract.py -q
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import random
from pathlib import Path

import pytest

from tobtest.node import protocols as protocols_package
from tobtest.node import server as node_server
from tobtest.node.protocols import PROTOCOLS, ProtocolEntry, protocol_class, protocol_entry
from tobtest.node.protocols.base import (
    READ_MODES,
    ClientBroadcast,
    ClientRead,
    Protocol,
    ProtocolConfig,
    Tick,
)
from tobtest.node.protocols.registry import COMMON_STATUS_FIELDS
from tobtest.node.sim import NetConfig, Simulation

FOLDER = Path(protocols_package.__file__).parent
PACKAGE = protocols_package.__name__
NAMES = sorted(PROTOCOLS)

# ---- purity: an AST scan of every module ------------------------------------------------

# Clocks, sockets, files, processes, threads and other sources of nondeterminism.
FORBIDDEN_MODULES = frozenset(
    {
        "asyncio", "datetime", "multiprocessing", "os", "pathlib", "secrets", "select",
        "selectors", "shutil", "signal", "socket", "subprocess", "tempfile", "threading",
        "time", "uuid",
    }
)  # fmt: skip
FORBIDDEN_CALLS = frozenset({"open", "input"})


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the nodes under `if TYPE_CHECKING:` (imports there never run)."""
    blocks = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.If)
        and "TYPE_CHECKING" in (getattr(n.test, "id", ""), getattr(n.test, "attr", ""))
    ]
    return {id(n) for block in blocks for sub in block.body for n in ast.walk(sub)}


def impurities(source: str) -> list[str]:
    """What in a core module's source breaks purity, one line per finding ([] if pure)."""
    tree = ast.parse(source)
    skip = _type_checking_only(tree)
    found: list[str] = []
    random_names = {  # what `random` is bound to here, for types or not
        alias.asname or "random"
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "random"
    }
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in FORBIDDEN_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
                elif root == "tobtest" and not alias.name.startswith(PACKAGE):
                    found.append(f"line {node.lineno}: import {alias.name} (outside the cores)")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module.split(".")[0]
            if root in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import")
            elif root == "random":
                found.append(f"line {node.lineno}: from random import (take a random.Random)")
            elif root == "tobtest" and not node.module.startswith(PACKAGE):
                found.append(f"line {node.lineno}: from {node.module} import (outside the cores)")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: {func.id}()")
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        # Of the module `random`, only the type `random.Random`, and no new generator.
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") in random_names:
            if node.attr != "Random":
                found.append(f"line {node.lineno}: random.{node.attr} (the global generator)")
            elif id(node) in called:
                found.append(f"line {node.lineno}: random.Random() (a source of its own)")
    return sorted(set(found))


MODULE_FILES = sorted(FOLDER.rglob("*.py"))


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(FOLDER)))
def test_no_module_of_the_cores_uses_a_clock_socket_file_or_global_random(path: Path) -> None:
    assert impurities(path.read_text()) == [], path


def test_the_scan_sees_every_module_and_finds_each_kind_of_impurity() -> None:
    names = {p.stem for p in MODULE_FILES}
    assert {e.core.partition(":")[0] for e in PROTOCOLS.values()} <= names
    assert {"base", "registry", "__init__"} <= names
    bad = """
import time, os.path
import random as rnd
import socket
from pathlib import Path
from random import choice
from tobtest.node.wal import Wal
from tobtest.node.protocols.base import Protocol
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import asyncio
def f(rng: rnd.Random) -> None:
    open("x")
    rnd.random()
    rnd.shuffle([])
    rnd.Random(3)
    rng.random()
    random.choice([1])
if TYPE_CHECKING:
    import random
"""
    found = impurities(bad)
    expected = [
        "import time", "import os.path", "import socket", "from pathlib import",
        "from random import", "from tobtest.node.wal import", "open()", "random.random",
        "random.shuffle", "random.Random()", "random.choice",
    ]  # fmt: skip
    for what in expected:
        assert any(what in line for line in found), (what, found)
    assert len(found) == len(expected), found  # asyncio (types only) and rng.random() pass
    assert impurities("import random\ndef f(rng: random.Random) -> int:\n    return 1\n") == []


# ---- the entry says what its code has ---------------------------------------------------


def _module_path(module: str) -> Path | None:
    rel = module.removeprefix(PACKAGE).lstrip(".").replace(".", "/")
    for path in (FOLDER / f"{rel}.py", FOLDER / rel / "__init__.py"):
        if rel and path.is_file():
            return path
    return None


def core_modules(entry: ProtocolEntry) -> dict[str, ast.Module]:
    """The core's module and every module of node/protocols it imports, transitively."""
    todo, trees = [entry.module], {}
    while todo:
        module = todo.pop()
        path = _module_path(module)
        if module in trees or path is None:
            continue
        trees[module] = tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]  # submodules
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
    return trees


def config_fields_read(trees: dict[str, ast.Module]) -> set[str]:
    """`X` of every `config.X` and `self.config.X` in the modules."""
    read = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                owner = node.value
                if (isinstance(owner, ast.Name) and owner.id == "config") or (
                    isinstance(owner, ast.Attribute) and owner.attr == "config"
                ):
                    read.add(node.attr)
    return read


def bugs_tested(trees: dict[str, ast.Module]) -> set[str]:
    """Every "name" in `"name" in bugs` / `"name" not in self.config.bugs` of the modules."""
    names = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Compare)
                and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str)
                and isinstance(node.ops[0], ast.In | ast.NotIn)
                and getattr(node.comparators[0], "id", getattr(node.comparators[0], "attr", ""))
                == "bugs"
            ):
                names.add(node.left.value)
    return names


@pytest.mark.parametrize("name", NAMES)
def test_the_entry_names_its_core(name: str) -> None:
    entry = PROTOCOLS[name]
    assert entry.name == name and protocol_entry(name) is entry
    cls = protocol_class(name)
    assert issubclass(cls, Protocol) and cls.name == name
    assert entry.description and "\n" not in entry.description and len(entry.description) < 100


def test_an_unknown_protocol_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: multipaxos, paxos, raft"):
        protocol_class("zab")


@pytest.mark.parametrize("name", NAMES)
def test_the_config_fields_are_those_its_modules_read(name: str) -> None:
    entry = PROTOCOLS[name]
    fields = {f.name for f in dataclasses.fields(ProtocolConfig)}
    assert set(entry.config_fields) <= fields - {"bugs"}
    assert len(set(entry.config_fields)) == len(entry.config_fields)
    assert config_fields_read(core_modules(entry)) - {"bugs"} == set(entry.config_fields)
    assert entry.config_defaults() == {f: getattr(ProtocolConfig(), f) for f in entry.config_fields}
    foreign = sorted(fields - set(entry.config_fields) - {"bugs", "tick_ms"})
    for field in foreign:
        with pytest.raises(ValueError, match=f"does not read {field}"):
            entry.make_config(**{field: 1.0})
    assert entry.make_config(tick_ms=7.0).tick_ms == 7.0  # the shell's, every protocol's


@pytest.mark.parametrize("name", NAMES)
def test_the_read_modes_are_those_its_core_does_not_refuse(name: str) -> None:
    entry = PROTOCOLS[name]
    served = []
    for mode in READ_MODES:
        core = entry.load()(node_id=0, n=3, rng=random.Random(1), config=entry.make_config())
        effects = core.step(ClientRead(request_id=1, mode=mode), now_ms=0.0)
        if "unsupported-read-mode" not in [r.body.get("code") for r in effects.reply]:
            served.append(mode)
    assert sorted(entry.read_modes) == sorted(served)  # each once, in the entry's order


@pytest.mark.parametrize("name", NAMES)
def test_each_seeded_bug_is_unique_tested_by_its_code_and_builds_a_core(name: str) -> None:
    entry = PROTOCOLS[name]
    assert len(set(entry.all_bugs)) == len(entry.all_bugs), "a bug name twice"
    assert all(b and b == b.lower() and " " not in b for b in entry.all_bugs)
    module = importlib.import_module(entry.module)
    assert tuple(getattr(module, "BUGS", ())) == entry.bugs
    assert tuple(getattr(module, "SUBTLE_BUGS", ())) == entry.subtle_bugs
    assert bugs_tested(core_modules(entry)) == set(entry.all_bugs)
    for bug in entry.all_bugs:
        config = entry.make_config(bugs=[bug])
        core = entry.load()(node_id=0, n=3, rng=random.Random(1), config=config)
        core.step(ClientBroadcast(request_id=1, msg_id="m1", value=1), 0.0)
        core.step(Tick(), 1.0)
    with pytest.raises(ValueError, match="no seeded bug"):
        entry.make_config(bugs=["not-a-bug"])


def test_bug_names_do_not_collide_with_the_node_shells() -> None:
    shell = Path(node_server.__file__).read_text()
    for entry in PROTOCOLS.values():
        for bug in entry.all_bugs:
            assert f'"{bug}" in config.bugs' not in shell, bug


# ---- status and restore -----------------------------------------------------------------

LOSSY = NetConfig(drop=0.05, duplicate=0.05, delay_ms=(1.0, 10.0), spike=0.02, spike_ms=200.0)
NETWORK_FAULTS = ("partition", "cut", "slow")
PROCESS_FAULTS = ("crash", "pause", "clock")  # clock: rates in [0.9, 1.1], the drift bound
FAULT_MS = (30.0, 300.0)
END_MS = 2000.0
# Timers at a third of the node's where a core has them (leaders change more often), as in
# `tobtest sim --timing fast`; a core without them ignores none of its own.
FAST = {"heartbeat_ms": 20.0, "election_timeout_ms": 150.0, "lease_ms": 100.0}


def faulty_run(
    name: str, seed: int, n: int = 3, count: int = 150, bugs: tuple[str, ...] = ()
) -> Simulation:
    """Random clients (every read mode the core serves; an unanswered broadcast is retried
    at another node) at random nodes under both fault streams for END_MS, then healed,
    everyone up, and settled."""
    entry = PROTOCOLS[name]
    fast = {k: v for k, v in FAST.items() if k in entry.config_fields}
    config = entry.make_config(bugs=bugs, **fast)
    sim = Simulation(entry.load(), n=n, seed=seed, config=config, net=LOSSY)
    sim.random_clients(
        count, 0.0, END_MS, read_fraction=0.3, read_modes=entry.read_modes, retry_after_ms=300.0
    )
    sim.random_faults(50.0, END_MS, kinds=NETWORK_FAULTS, duration_ms=FAULT_MS)
    sim.random_faults(50.0, END_MS, kinds=PROCESS_FAULTS, duration_ms=FAULT_MS, reload_fraction=1.0)
    sim.run(END_MS)
    sim.settle(quiet_ms=2000.0)
    return sim


@pytest.mark.parametrize("name", NAMES)
def test_status_reports_the_declared_fields_fresh_and_after_a_run(name: str) -> None:
    entry = PROTOCOLS[name]
    assert entry.status_fields >= COMMON_STATUS_FIELDS
    core = entry.load()(node_id=1, n=3, rng=random.Random(1), config=entry.make_config())
    status = core.status(0.0)
    assert entry.status_fields <= set(status), entry.status_fields - set(status)
    assert (status["protocol"], status["node"], status["delivered"]) == (name, 1, 0)
    sim = faulty_run(name, seed=1)
    for i, status in enumerate(sim.status()):
        assert entry.status_fields <= set(status), (i, entry.status_fields - set(status))
        assert (status["protocol"], status["node"]) == (name, i)
        assert status["delivered"] == len(sim.deliveries[i]) > 0


@pytest.mark.parametrize("name", NAMES)
def test_a_core_restored_from_a_nodes_records_has_its_delivered_prefix(name: str) -> None:
    entry = PROTOCOLS[name]
    for seed in range(3):
        sim = faulty_run(name, seed)
        assert sim.violations() == [], f"seed {seed}"
        for i, node in enumerate(sim.nodes):
            live = node.core.status(sim.now_ms)
            core = entry.load()(node_id=i, n=sim.n, rng=random.Random(seed), config=sim.config)
            core.restore(list(sim.persisted[i]))
            restored = core.status(sim.now_ms)
            assert restored["delivered"] == live["delivered"] == len(sim.deliveries[i])
            assert restored["chosen_index"] == live["chosen_index"], (seed, i)
            fx = core.step(ClientRead(request_id=1, mode="local"), sim.now_ms)
            assert fx.deliver == []  # the restored prefix is not delivered a second time
            read = [r.body for r in fx.reply]
            assert read == [
                {"type": "read_ok", "mode": "local", "value": [d.value for d in sim.deliveries[i]]}
            ], (seed, i)
    fresh = entry.load()(node_id=0, n=3, rng=random.Random(1), config=entry.make_config())
    fresh.restore([])
    assert fresh.status(0.0)["delivered"] == 0


# ---- safety over many seeds -------------------------------------------------------------

SEEDS = range(60)


@pytest.mark.parametrize("name", NAMES)
def test_many_seeds_with_every_fault_kind_are_safe(name: str) -> None:
    failures, acked = [], 0
    for seed in SEEDS:
        sim = faulty_run(name, seed, n=5 if seed % 4 == 0 else 3)
        problems = sim.violations() + (["truncated"] if sim.truncated else [])
        if problems:
            failures.append(f"seed {seed}: {problems[:3]}")
        acked += sum(
            1 for r in sim.requests.values() if r.reply and r.reply.get("type") == "broadcast_ok"
        )
    assert failures == [], f"{name}: replay with faulty_run({name!r}, seed)\n" + "\n".join(failures)
    assert acked >= 20 * len(SEEDS)  # the runs made progress: not vacuously safe


@pytest.mark.parametrize("name", NAMES)
def test_the_same_runs_catch_one_of_its_loud_bugs(name: str) -> None:
    """The recipe is not too gentle to fail: some loud bug shows within a few seeds."""
    bugs = PROTOCOLS[name].bugs
    caught = [b for b in bugs if any(faulty_run(name, s, bugs=(b,)).violations() for s in range(4))]
    assert caught or not bugs, f"{name}: none of {bugs} caught in seeds 0..3"


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_replays_the_same_run(name: str) -> None:
    assert faulty_run(name, 7).trace == faulty_run(name, 7).trace
