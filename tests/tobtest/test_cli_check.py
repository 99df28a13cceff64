"""`tobtest check` on files: one or many, the checker inferred from the ops, budgets, errors.

The fixtures in check_fixtures/ are small histories written in the shapes of Elle's own
examples (no `:f`, sometimes no `:process`, `[ :append 4 2]` spacing, `;` comments) and of
Knossos's and Porcupine's (one vector of op maps; keyed kv ops).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import subprocess_env, tobtest_argv
from tobtest.cli_check import main
from tobtest.exits import EXIT_BAD_ARGS, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID

FIXTURES = Path(__file__).parent / "check_fixtures"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.mark.parametrize(
    ("name", "code", "chose"),
    [
        ("elle-append-no-f-no-process.edn", EXIT_VALID, "list-append, inferred"),
        ("elle-append-no-f-stale.edn", EXIT_INVALID, "list-append, inferred"),
        ("register-cas.edn", EXIT_VALID, "linearizable (model cas-register)"),
        ("register-stale-read.edn", EXIT_INVALID, "linearizable (model register)"),
        ("kv-appends.edn", EXIT_VALID, "linearizable (model kv)"),
    ],
)
def test_a_file_gets_the_checker_its_ops_call_for_named_on_one_line(capsys, name, code, chose):
    got, out, _ = run(capsys, str(FIXTURES / name))
    assert got == code, out
    [line] = [line for line in out.splitlines() if "inferred from the ops" in line]
    assert f"checker: {chose}" in line


def test_many_files_print_one_line_each_and_exit_with_the_worst_verdict(capsys):
    code, out, _ = run(capsys, str(FIXTURES))
    lines = out.splitlines()
    files = sorted(FIXTURES.iterdir())
    assert code == EXIT_INVALID
    assert len(lines) == len(files) + 1
    for path, line in zip(files, lines, strict=False):
        name, verdict, elapsed = line.split("\t")[:3]
        assert name == str(path) and elapsed.endswith(" ms")
        assert verdict == ("INVALID" if "stale" in path.name else "VALID")
    assert lines[-1] == f"{len(files)} checked: 3 valid, 2 invalid, 0 unknown"
    valid_only = [str(FIXTURES / "register-cas.edn"), str(FIXTURES / "kv-appends.edn")]
    assert run(capsys, *valid_only)[0] == EXIT_VALID


def test_many_files_as_json(capsys):
    code, out, _ = run(capsys, str(FIXTURES / "register-cas.edn"), str(FIXTURES), "--json")
    report = json.loads(out)
    assert code == EXIT_INVALID and report["valid"] is False
    assert [f["valid"] for f in report["files"]][:1] == [True]


def test_an_unreadable_file_among_many_is_unknown_and_says_why(capsys, tmp_path):
    bad = tmp_path / "bad.edn"
    bad.write_text("{:type :invoke, :process 0, :f :read, :value 1x}\n")
    code, out, _ = run(capsys, str(FIXTURES / "register-cas.edn"), str(bad))
    assert code == EXIT_UNKNOWN
    assert f"{bad}\tUNKNOWN" in out and "unreadable:" in out and "malformed number" in out


def test_time_limit_and_memory_bound_give_unknown_with_the_reason(capsys, tmp_path):
    # Twelve concurrent appends then a read that no order explains: every order is tried.
    rows = [{"process": i, "type": "invoke", "f": "append", "key": "k", "value": f"<{i}>"}
            for i in range(12)]  # fmt: skip
    rows += [{**r, "type": "ok"} for r in rows]
    rows += [{"process": 99, "type": "invoke", "f": "get", "key": "k", "value": None},
             {"process": 99, "type": "ok", "f": "get", "key": "k", "value": "!"}]  # fmt: skip
    hard = tmp_path / "hard.jsonl"
    hard.write_text("".join(json.dumps({"index": i, "time_ns": i, **r}) + "\n"
                            for i, r in enumerate(rows)))  # fmt: skip
    code, out, _ = run(capsys, str(hard), "--model", "kv", "--time-limit", "0.2")
    assert code == EXIT_UNKNOWN and "timed out after 0.2 s" in out
    code, out, _ = run(capsys, str(hard), "--model", "kv", "--max-configurations", "1000")
    assert code == EXIT_UNKNOWN
    assert "gave up at 1,000 memoised configurations (the memory bound" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "registr"], "--model: unknown model 'registr' (known: append-log,"),
        (["--time-limit", "0"], "--time-limit"),
        (["--max-configurations", "0"], "--max-configurations"),
        (["--initial", "{nope"], "--initial must be JSON"),
    ],
)
def test_bad_options_are_a_one_line_error_with_exit_254(capsys, args, message):
    code, out, err = run(capsys, str(FIXTURES / "register-cas.edn"), *args)
    assert code == EXIT_BAD_ARGS and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_a_folder_without_histories_and_a_missing_path_are_bad_arguments(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path))
    assert code == EXIT_BAD_ARGS and "a folder with no history files" in err
    code, _, err = run(capsys, str(tmp_path / "nothere"), "--store", str(tmp_path))
    assert code == EXIT_BAD_ARGS and "nothere" in err


@pytest.mark.timeout(60)
def test_the_command_checks_without_importing_the_runner():
    # `python -m tobtest check` goes through tobtest.entry: no asyncio, no nemesis code.
    probe = (
        "import runpy, sys; sys.argv = ['tobtest', 'check', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('tobtest', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    heavy = sorted(m for m in sys.modules if m.startswith(('asyncio', 'tobtest.nemesis',"
        " 'tobtest.runner', 'tobtest.options')))\n"
        "    print('EXIT', e.code, heavy)\n"
    )
    done = subprocess.run(
        [tobtest_argv()[0], "-c", probe, str(FIXTURES / "register-cas.edn")],
        capture_output=True, text=True, timeout=50, env=subprocess_env(),
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == "EXIT 0 []", done.stdout + done.stderr
