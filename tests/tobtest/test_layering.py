"""The layers hold. The harness asks the node contract (tobtest/node_kind.py), never the node
package: only `tobtest sim`, which runs the protocol cores in-process, imports them. Nemeses
touch what `NemesisContext` hands them (nemesis/base.py), never the runner's types."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = ("tobtest", "nemesis", "workloads", "histories", "checker")
# `tobtest sim` drives the cores themselves (tobtest/sim_run.py, its CLI and history).
MAY_IMPORT_NODE = {"tobtest/sim_run.py", "tobtest/cli_sim.py"}


# What nemesis/ may import from tobtest: itself, the history it records into, and the client
# wire helpers it sends control requests with; not the runner, its config, cluster or CLI.
NEMESIS_MAY_IMPORT = ("tobtest.nemesis", "tobtest.histories", "tobtest.workloads.client")


def tobtest_imports(path: Path) -> list[str]:
    """Every tobtest module `path` imports, at the top, in functions or for type checking."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if n == "tobtest" or n.startswith("tobtest.")]
    return found


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def node_imports(path: Path) -> list[str]:
    return [m for m in tobtest_imports(path) if within(m, ("tobtest.node",))]


def test_the_harness_does_not_import_the_node_package():
    offenders = {}
    for folder in HARNESS:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel not in MAY_IMPORT_NODE and (imports := node_imports(path)):
                offenders[rel] = imports
    assert offenders == {}


def test_the_check_sees_an_import_of_the_node_package(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from tobtest.node.protocols import PROTOCOLS\nimport tobtest.node_kind\n")
    assert node_imports(module) == ["tobtest.node.protocols"]


def test_nemeses_do_not_import_the_runners_types():
    offenders = {}
    for path in sorted((REPO / "nemesis").rglob("*.py")):
        outside = [m for m in tobtest_imports(path) if not within(m, NEMESIS_MAY_IMPORT)]
        if outside:
            offenders[path.relative_to(REPO).as_posix()] = outside
    assert offenders == {}


def test_the_check_sees_a_nemesis_reaching_for_the_runner(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from tobtest.nemesis.grudge import isolate\n"
        "if TYPE_CHECKING:\n    from tobtest.cluster import Cluster\n"
        "def f():\n    import tobtest.config\n"
    )
    found = tobtest_imports(module)
    assert [m for m in found if not within(m, NEMESIS_MAY_IMPORT)] == [
        "tobtest.cluster", "tobtest.config"
    ]  # fmt: skip
