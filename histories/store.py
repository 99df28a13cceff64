"""The run store: one folder per run, `store/<test>/<YYYYmmddTHHMMSS>/`.

    run = RunStore.create(Path("store"), "paxos-partition", config)
    run.path / "history.jsonl"      # written by the recorder
    run.write_results({...})
    find_run(Path("store"), None)   # the latest run

A run folder holds `test.yaml` (the whole config, seed included), `history.jsonl`,
`results.json`, `nodes/<n>.log` and `nodes/<n>.status.json`; the links `store/latest` and
`store/<test>/latest` point at the newest run.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class RunStore:
    root: Path
    test_name: str
    path: Path

    @classmethod
    def create(cls, root: Path, test_name: str, config: dict[str, Any]) -> RunStore:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        test_dir = root / test_name
        test_dir.mkdir(parents=True, exist_ok=True)
        path = test_dir / stamp
        suffix = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                suffix += 1
                path = test_dir / f"{stamp}-{suffix}"
        (path / "nodes").mkdir()
        run = cls(root=root, test_name=test_name, path=path)
        (path / "test.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        run._link(test_dir / "latest", path.name)
        run._link(root / "latest", os.path.join(test_name, path.name))
        return run

    @staticmethod
    def _link(link: Path, target: str) -> None:
        # Replace atomically so a concurrent reader never sees a missing link.
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)

    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    def node_log_path(self, name: str) -> Path:
        return self.path / "nodes" / f"{name}.log"

    def write_json(self, relative: str, data: Any) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
        os.replace(tmp, target)

    def write_yaml(self, relative: str, data: Any) -> None:
        target = self.path / relative
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(tmp, target)

    def write_results(self, results: dict[str, Any]) -> None:
        self.write_json("results.json", results)


def find_run(root: Path, run: str | None) -> Path:
    """Resolves a run: a run folder, a test folder (its latest run) or None (the newest)."""
    if run is None:
        candidate = root / "latest"
        if not candidate.exists():
            raise FileNotFoundError(f"no runs in store {root} (no {candidate})")
        return candidate.resolve()
    path = Path(run)
    if not path.exists():
        path = root / run
    if (path / "history.jsonl").exists():
        return path.resolve()
    if (path / "latest" / "history.jsonl").exists():
        return (path / "latest").resolve()
    raise FileNotFoundError(f"no run at {run} (expected a folder with history.jsonl)")


def load_config(run_path: Path) -> dict[str, Any]:
    data = yaml.safe_load((run_path / "test.yaml").read_text())
    return data if isinstance(data, dict) else {}
