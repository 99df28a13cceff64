"""Run folders, the latest links, and finding runs again."""

import os

import pytest
import yaml

from tobtest.histories.store import RunStore, find_run, load_config


def test_create_writes_config_and_links(tmp_path):
    run = RunStore.create(tmp_path, "paxos-broadcast-partition", {"seed": 7, "nodes": 3})
    assert run.path.parent == tmp_path / "paxos-broadcast-partition"
    assert yaml.safe_load((run.path / "test.yaml").read_text())["seed"] == 7
    assert (run.path / "nodes").is_dir()
    assert (tmp_path / "latest").resolve() == run.path.resolve()
    assert (tmp_path / "paxos-broadcast-partition" / "latest").resolve() == run.path.resolve()
    # Links are relative, so a store can be moved or archived whole.
    assert not os.readlink(tmp_path / "latest").startswith("/")
    assert load_config(run.path) == {"seed": 7, "nodes": 3}


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path):
    first = RunStore.create(tmp_path, "t", {})
    second = RunStore.create(tmp_path, "t", {})
    assert first.path != second.path
    assert (tmp_path / "latest").resolve() == second.path.resolve()


def test_find_run(tmp_path):
    run = RunStore.create(tmp_path, "t", {})
    run.history_path.write_text("")
    assert find_run(tmp_path, None) == run.path.resolve()
    assert find_run(tmp_path, "t") == run.path.resolve()
    assert find_run(tmp_path, str(run.path)) == run.path.resolve()
    with pytest.raises(FileNotFoundError, match="no run at"):
        find_run(tmp_path, "nothing-here")
    with pytest.raises(FileNotFoundError, match="no runs in store"):
        find_run(tmp_path / "empty", None)


def test_write_results_is_atomic_json(tmp_path):
    run = RunStore.create(tmp_path, "t", {})
    run.write_results({"valid": True})
    assert (run.path / "results.json").read_text().strip().startswith("{")
    assert not list(run.path.glob("*.tmp"))
