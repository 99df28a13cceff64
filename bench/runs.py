"""Runs `tobtest run` as a user would and reads back its verdict; shared by the benches.

result = run_tobtest(["--nemesis", "kill"], seed=3, store=Path("bench/out/x"), name="k-3")
result["valid"], result["anomalies"], result["ops"]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RUN_TIMEOUT_S = 600


def run_tobtest(args: list[str], seed: int, store: Path, name: str) -> dict[str, Any]:
    """One real run (its own cluster), bounded; the verdict as the exit code gives it."""
    argv = [sys.executable, "-m", "tobtest", "run", *args, "--seed", str(seed),
            "--store", str(store), "--name", name]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    verdict: Any = {0: True, 1: False, 2: "unknown"}.get(proc.returncode, f"exit {proc.returncode}")
    results_path = store / name / "latest" / "results.json"
    results: dict[str, Any] = {}
    if results_path.exists():
        results = json.loads(results_path.read_text())
    if proc.returncode in (0, 1) and results.get("valid") != verdict:
        # Python exits 1 on any uncaught error too: only the checked results say invalid.
        verdict = f"exit {proc.returncode} without a matching results.json"
    anomalies = sorted(
        {
            kind
            for checker in results.get("checkers", {}).values()
            for kind in checker.get("anomaly_types") or []
        }
    )
    return {
        "name": name,
        "seed": seed,
        "args": args,
        "valid": verdict,
        "anomalies": anomalies,
        "ops": results.get("ops", {}),
        "faults_applied": results.get("faults_applied"),
        "seconds": round(time.monotonic() - started, 1),
        "store": str(results_path.parent) if results_path.exists() else None,
        "error": proc.stderr.strip().splitlines()[-1] if proc.returncode > 2 else None,
    }
