"""The Elle adapter: runs Jepsen's Elle (through elle-cli) on a history, when its jar is here.

    result = check(history, model="list-append", elle_jar="/opt/elle-cli-standalone.jar")
    # or TOBTEST_ELLE_JAR=/opt/elle-cli-standalone.jar tobtest check --checker elle RUN

tobtest's own checkers are the default and stand on their own; this adapter is a second
opinion from the reference implementation. It writes the history in the JSON form elle-cli
reads (an array of ops with `index`, `time`, `type`, `process`, `f` and `value`, micro-ops
as `["append", k, v]` / `["r", k, null]`), runs `java -jar JAR --model M --output json
FILE`, and maps the outcome: exit 0 valid, 1 invalid, 255 an error of Elle's; its JSON
analysis (`valid?`, `anomaly-types`, `anomalies`) is kept under `elle`. Without a jar (or
without java) the result is `unknown` and says why: Elle's jar is not bundled with tobtest.

Broadcast histories are mapped onto list-append first (one key, append = broadcast, read =
the delivered sequence; see `list_append.broadcast_as_list_append`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tobtest.histories.op import NEMESIS, Op
from tobtest.histories.suffix_reads import full_reads

ENV_JAR = "TOBTEST_ELLE_JAR"
MODELS = ("list-append", "rw-register", "cas-register", "mutex")


def elle_ops(history: list[Op], model: str) -> list[dict[str, Any]]:
    """The client ops of `history` in elle-cli's JSON form (nemesis ops left out)."""
    if model == "list-append" and any(op.f == "broadcast" for op in history):
        from tobtest.checker.list_append import broadcast_as_list_append

        history = broadcast_as_list_append(history)
    ops = []
    for op in history:
        if op.process == NEMESIS:
            continue
        ops.append(
            {
                "index": op.index,
                "time": op.time_ns,
                "type": op.type,
                "process": op.process,
                "f": op.f,
                "value": op.value,
            }
        )
    return ops


def write_elle_json(history: list[Op], path: Path, model: str = "list-append") -> Path:
    # Suffix reads (`offset`) as the whole lists Elle expects.
    history = full_reads(history, materialize=True)
    path.write_text(json.dumps(elle_ops(history, model)))
    return path


def interpret(returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    """Maps elle-cli's exit code and output to a checker result."""
    analysis: dict[str, Any] | None = None
    start = stdout.find("{")
    if start >= 0:
        try:
            parsed = json.loads(stdout[start:])
            analysis = parsed if isinstance(parsed, dict) else None
        except ValueError:
            analysis = None
    elle_valid = analysis.get("valid?") if analysis else None
    if returncode == 0 and elle_valid in (True, None):
        valid: bool | str = True
    elif returncode == 1 or elle_valid is False:
        valid = False
    else:
        valid = "unknown"
    result: dict[str, Any] = {"valid": valid, "elle_exit_code": returncode}
    if elle_valid == "unknown" or (returncode == 0 and isinstance(elle_valid, str)):
        result["valid"] = "unknown"
    if analysis is not None:
        result["elle"] = analysis
        kinds = analysis.get("anomaly-types") or []
        result["anomaly_types"] = sorted(str(k).lstrip(":") for k in kinds)
    if returncode not in (0, 1):
        tail = (stderr or stdout).strip().splitlines()
        result["error"] = f"elle-cli failed (exit {returncode}): " + (tail[-1] if tail else "")
    elif returncode == 1 and analysis is None:
        # A model mismatch: elle-cli says so on stderr and exits 1 without an analysis.
        tail = stderr.strip().splitlines()
        if tail:
            result["valid"] = "unknown"
            result["error"] = tail[-1]
    return result


def check(
    history: list[Op],
    model: str = "list-append",
    elle_jar: str | None = None,
    time_limit_s: float = 300.0,
    consistency_models: tuple[str, ...] = ("strict-serializable",),
    **_opts: Any,
) -> dict[str, Any]:
    """Runs Elle on the history; `unknown` with the reason when it cannot be run."""
    if model not in MODELS:
        return {"valid": "unknown", "error": f"elle model {model!r} not one of {MODELS}"}
    jar = elle_jar or os.environ.get(ENV_JAR)
    if not jar:
        return {
            "valid": "unknown",
            "error": f"no Elle jar configured (give --elle-jar or set {ENV_JAR}); "
            "tobtest's own checkers do not need it",
        }
    if not Path(jar).is_file():
        return {"valid": "unknown", "error": f"Elle jar not found at {jar}"}
    java = shutil.which("java")
    if java is None:
        return {"valid": "unknown", "error": "java is not installed: Elle needs a JVM (21+)"}
    with tempfile.TemporaryDirectory(prefix="tobtest-elle-") as tmp:
        path = write_elle_json(history, Path(tmp) / "history.json", model)
        argv = [java, "-jar", jar, "--model", model, "--output", "json"]
        if model in ("list-append", "rw-register"):
            argv += ["--consistency-models", ",".join(consistency_models)]
        try:
            proc = subprocess.run(
                [*argv, str(path)],
                capture_output=True,
                text=True,
                timeout=time_limit_s,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"valid": "unknown", "error": f"Elle timed out after {time_limit_s:g} s"}
        except OSError as exc:
            return {"valid": "unknown", "error": f"cannot run java: {exc}"}
    result = interpret(proc.returncode, proc.stdout, proc.stderr)
    result["command"] = " ".join([*argv, "history.json"])
    return result
