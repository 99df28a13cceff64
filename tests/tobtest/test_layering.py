"""The harness asks the node contract (tobtest/node_kind.py), never the node package: only
`tobtest sim`, which runs the protocol cores in-process, imports them."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = ("tobtest", "nemesis", "workloads", "histories", "checker")
# `tobtest sim` drives the cores themselves (tobtest/sim_run.py, its CLI and history).
MAY_IMPORT_NODE = {"tobtest/sim_run.py", "tobtest/cli_sim.py"}


def node_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if n == "tobtest.node" or n.startswith("tobtest.node.")]
    return found


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
