"""report.html: what a failing run's page must hold, and that nothing breaks it.

Run folders come from tests/checker/test_report_runs.py (a simulated cluster checked by the
real checkers) or from the hand-made corpus in tests/histories/; pages are parsed with the
standard library's HTMLParser, so the tests read what a browser would.
"""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.checker.test_report_runs import make_run, run_config, write_run
from tests.helpers.history_builder import HistoryBuilder, load_jsonl
from tobtest.checker import report_timeline
from tobtest.checker.report import write_report
from tobtest.histories.op import NEMESIS

CORPUS = Path(__file__).resolve().parent.parent / "histories"


class Page(HTMLParser):
    """Elements by id, their classes and attributes, script tags, and all the text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, Any]] = {}
        self.tags: list[tuple[str, dict[str, Any]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            self.by_id[a["id"]] = {"tag": tag, **a}

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def hrefs(self) -> list[str]:
        return [a["href"] for tag, a in self.tags if tag == "a" and "href" in a]

    def bar_of(self, index: int) -> dict[str, Any]:
        """The timeline bar holding op `index` (its own id, or an anchor inside it)."""
        element = self.by_id[f"op-{index}"]
        if element["tag"] == "div":
            return element
        # An anchor span sits inside its bar: the bar is the last op div opened before it.
        position = next(i for i, (_, a) in enumerate(self.tags) if a.get("id") == f"op-{index}")
        bars = [a for tag, a in self.tags[:position] if "op" in a.get("class", "").split()]
        if bars:
            return {"tag": "div", **bars[-1]}
        raise AssertionError(f"no bar for op {index}")


def _squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def invalid_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Page, dict[str, Any]]:
    store = tmp_path_factory.mktemp("store")
    run_dir = make_run(store, "paxos-broadcast-partition", "20260101T120000", seed=3, bug=True)
    page = Page(write_report(run_dir).read_text())
    return run_dir, page, json.loads((run_dir / "results.json").read_text())


def test_report_says_the_verdict_seed_and_how_to_reproduce(invalid_run: Any) -> None:
    run_dir, page, results = invalid_run
    assert page.by_id["verdict"]["class"].split() == ["verdict", "invalid"]
    assert "INVALID" in page.all_text
    assert results["reproduce"] in page.all_text
    assert f"seed {results['seed']}" in page.all_text
    assert "paxos-broadcast-partition" in page.all_text


def test_every_shown_anomaly_is_explained_and_its_ops_marked_in_the_timeline(
    invalid_run: Any,
) -> None:
    _, page, results = invalid_run
    anomalies = results["checkers"]["total-order"]["anomalies"]
    assert set(anomalies) >= {"incompatible-order", "realtime"}
    for kind, cases in anomalies.items():
        for number, case in enumerate(cases):
            anchor = f"anomaly-total-order-{kind}-{number}"
            assert anchor in page.by_id, anchor
            assert page.by_id[anchor]["data-ops"].split() == [str(i) for i in case["ops"]]
            assert _squash(case["explanation"]) in page.all_text
            for index in case["ops"]:
                bar = page.bar_of(index)
                assert "anomaly" in bar["class"].split(), (kind, index)
                assert anchor in bar["data-anomalies"].split()
                assert f"#op-{index}" in page.hrefs()
    # Totals beyond the checker's cap are said, not hidden.
    total = results["checkers"]["total-order"]["counts"]["anomalies"]["realtime"]
    assert f"realtime ({total})" in page.all_text


def test_ops_outside_anomalies_are_not_marked(invalid_run: Any) -> None:
    _, page, results = invalid_run
    marked = {i for cases in results["checkers"]["total-order"]["anomalies"].values()
              for case in cases for i in case["ops"]}  # fmt: skip
    bars = [a for tag, a in page.tags if tag == "div" and "op" in a.get("class", "").split()]
    assert len(bars) > 400
    for bar in bars:
        if "anomaly" in bar["class"].split():
            assert int(bar["id"][3:]) in marked or bar.get("data-anomalies")
        else:
            assert int(bar["id"][3:]) not in marked


def test_timeline_shades_the_partition_and_colours_outcomes(invalid_run: Any) -> None:
    _, page, _ = invalid_run
    bands = [a for tag, a in page.tags if "band" in a.get("class", "").split()]
    assert len(bands) == 1
    assert "n1<-x-n2,n3" in bands[0]["title"]
    assert "partition one n1<-x-n2,n3" in page.all_text
    bars = [a["class"].split() for t, a in page.tags if "op" in a.get("class", "").split()]
    assert all({"ok", "fail", "info", "open"} & set(b) for b in bars)
    assert {"ok", "nemesis"} <= {c for b in bars for c in b}
    title = page.by_id["op-0"]["title"]
    assert "op 0: invoke process" in title and "latency" in title


def test_plots_are_embedded_pngs_and_nothing_is_fetched_from_elsewhere(invalid_run: Any) -> None:
    run_dir, page, _ = invalid_run
    images = [a for tag, a in page.tags if tag == "img"]
    assert {a["id"] for a in images} == {"plot-latency", "plot-throughput"}
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    for tag, a in page.tags:
        for attr in ("src", "href"):
            value = a.get(attr, "")
            assert not value.startswith(("http:", "https:", "//")), (tag, value)
    assert [t for t, a in page.tags if t == "iframe"] == []
    assert all(a["href"].startswith("data:") for t, a in page.tags if t == "link")


def test_links_to_the_run_files_and_node_logs_resolve(invalid_run: Any) -> None:
    run_dir, page, _ = invalid_run
    files = [h for h in page.hrefs() if not h.startswith("#")]
    for expected in ("history.jsonl", "results.json", "test.yaml", "nodes/n1.log",
                     "nodes/n3.status.json"):  # fmt: skip
        assert expected in files
    for href in files:
        assert (run_dir / href).is_file(), href
    assert page.by_id["nodes"]["tag"] == "table"


def test_partial_run_without_results_still_shows_its_history(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "t", "20260101T120000", seed=4, partial=True)
    assert not (run_dir / "results.json").exists()
    page = Page(write_report(run_dir).read_text())
    assert page.by_id["verdict"]["class"].split() == ["verdict", "unchecked"]
    assert "NOT CHECKED" in page.all_text
    assert "results.json is missing" in page.all_text
    assert "1 line(s) of history.jsonl are not ops" in page.all_text
    bars = [a for tag, a in page.tags if "op" in a.get("class", "").split()]
    assert len(bars) > 100
    assert "plot-latency" in page.by_id


def test_empty_run_folder_gets_a_page_and_a_missing_one_raises(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    page = Page(write_report(tmp_path / "run").read_text())
    assert "history.jsonl is missing" in page.all_text
    assert "test.yaml is missing" in page.all_text
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nowhere")


def test_odd_values_are_escaped_everywhere(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    attr = '"><img src=x onerror=alert(2)>'
    h = HistoryBuilder()
    h.nemesis("start-partition", {"shape": evil, "grudge": {"n1": [attr]}})
    p = h.invoke(0, "broadcast", evil, node=attr)
    h.ok(p, position=0, note=evil)
    h.read(1, "n1", [evil], read_mode="log", final=True)
    config = {**run_config("odd", 1, False), "protocol": evil, "test_name": evil}
    run_dir = write_run(tmp_path, "odd", "20260101T120000", h.ops, config)
    results = json.loads((run_dir / "results.json").read_text())
    results["checkers"]["total-order"].update(
        valid=False,
        anomaly_types=[evil],
        anomalies={evil: [{"ops": [1, 2], "explanation": f"value {evil} was {attr}"}]},
    )
    results["reproduce"] = f"tobtest run --name '{evil}'"
    (run_dir / "results.json").write_text(json.dumps(results))
    text = write_report(run_dir).read_text()
    assert evil not in text
    assert "<img src=x" not in text
    page = Page(text)
    assert [t for t, _ in page.tags if t == "script"] == ["script"]  # only the page's own
    assert [t for t, _ in page.tags if t == "img"] == ["img", "img"]  # the two plots
    assert f"value {evil} was {attr}" in page.all_text  # shown, as text
    assert html.escape(evil) in text
    assert evil in page.bar_of(1)["title"]  # hover text, as an attribute value


def test_list_append_cycle_names_each_edge_and_its_kind(tmp_path: Path) -> None:
    history = load_jsonl(CORPUS / "invalid/list-append/G-single-realtime-stale-read.jsonl")
    config = {**run_config("txn", 1, False), "workload": "txn"}
    run_dir = write_run(tmp_path, "txn", "20260101T120000", history, config, ("list-append",))
    results = json.loads((run_dir / "results.json").read_text())
    case = results["checkers"]["list-append"]["anomalies"]["G-single-realtime"][0]
    page = Page(write_report(run_dir).read_text())
    for edge in case["cycle"]:
        assert _squash(edge["explanation"]) in page.all_text
    edges = [a for t, a in page.tags if t == "span" and a.get("class") == "edge-rel"]
    assert len(edges) == len(case["cycle"])
    assert "real time: the first completed before the second was invoked" in page.all_text
    assert "read-write (anti-dependency)" in page.all_text
    assert "Rules out: strong-snapshot-isolation." in page.all_text


def test_linearizability_failure_names_the_prefix_and_the_breaking_op(tmp_path: Path) -> None:
    history = load_jsonl(CORPUS / "invalid/linearizable/nonlinearizable-register-stale-read.jsonl")
    config = {**run_config("reg", 1, False), "workload": "register"}
    run_dir = write_run(tmp_path, "reg", "20260101T120000", history, config, ("linearizable",))
    result = json.loads((run_dir / "results.json").read_text())["checkers"]["linearizable"]
    page = Page(write_report(run_dir).read_text())
    prefix = result["linearized"]
    assert f"Longest linearizable prefix: {len(prefix)} ops" in page.all_text
    assert f"op {prefix[-1]}" in page.all_text
    assert f"The op that breaks it: {result['failed_op']['description']}" in page.all_text
    assert "anomaly" in page.bar_of(result["failed_op"]["index"])["class"].split()


def test_checker_error_and_odd_result_shapes_do_not_break_the_page(tmp_path: Path) -> None:
    h = HistoryBuilder()
    h.broadcast(0, 1, node="n1", position=0)
    run_dir = write_run(tmp_path, "t", "20260101T120000", h.ops, run_config("t", 1, False))
    results = {
        "valid": "unknown",
        "checkers": {
            "total-order": {"valid": "unknown", "error": "TimeoutError: budget", "traceback": "T"},
            "weird": "not a dict",
            "odd": {"valid": False, "anomalies": {"k": ["a bare string", {"ops": "x"}]}},
        },
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    page = Page(write_report(run_dir).read_text())
    assert page.by_id["verdict"]["class"].split() == ["verdict", "unknown"]
    assert "TimeoutError: budget" in page.all_text
    assert "a bare string" in page.all_text
    assert "the checker found a k anomaly" in page.all_text


def test_long_history_timeline_is_windowed_around_the_first_anomaly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_timeline, "ENTRIES_MAX", 200)
    h = HistoryBuilder()
    for v in range(300):
        h.broadcast(v % 4, v, node="n1", position=v)
    h.nemesis("start-partition", {"grudge": {}})
    late = h.invoke(9, "broadcast", 999, node="n2")
    h.ok(late, position=1000)
    h.read(5, "n1", list(range(300)), final=True)  # lost: 999 was acked
    run_dir = write_run(tmp_path, "t", "20260101T120000", h.ops, run_config("t", 1, False))
    page = Page(write_report(run_dir).read_text())
    note = page.all_text
    assert "capped at 200, around the first anomaly" in note
    bars = [a for tag, a in page.tags if "op" in a.get("class", "").split()]
    assert 90 <= len(bars) <= 110
    lost = json.loads((run_dir / "results.json").read_text())["checkers"]["total-order"]
    for index in lost["anomalies"]["lost"][0]["ops"]:
        assert "anomaly" in page.bar_of(index)["class"].split()
    assert "op-0" not in page.by_id  # the start of the history is outside the window
    assert "(outside the timeline window)" not in note


def test_report_through_the_latest_link_names_the_run_it_points_at(tmp_path: Path) -> None:
    make_run(tmp_path, "t", "20260101T120000", seed=3)
    path = write_report(tmp_path / "latest")
    assert path.resolve() == (tmp_path / "t" / "20260101T120000" / "report.html")
    assert "20260101T120000" in Page(path.read_text()).all_text


def test_nemesis_ops_get_bars_in_their_own_column(invalid_run: Any) -> None:
    run_dir, page, _ = invalid_run
    nemesis_ops = [
        json.loads(line)
        for line in (run_dir / "history.jsonl").read_text().splitlines()
        if json.loads(line)["process"] == NEMESIS
    ]
    lefts = set()
    for op in nemesis_ops:
        bar = page.bar_of(op["index"])
        assert "nemesis" in bar["class"].split()
        lefts.add(bar["style"].split(";")[0])
    assert len(lefts) == 1


def test_a_maelstrom_run_shows_messages_per_op_and_that_kills_lose_state(tmp_path: Path) -> None:
    h = HistoryBuilder()
    h.broadcast(0, 1, node="n1", position=0)
    config = {**run_config("m", 1, False), "maelstrom": "python3 broadcast.py"}
    run_dir = write_run(tmp_path, "m", "20260101T120000", h.ops, config, ("set-full",))
    results = json.loads((run_dir / "results.json").read_text())
    results["network"] = {"messages": 42, "client_ops": 2, "messages_per_op": 21.0}
    results["node_note"] = "these nodes keep their state in memory"
    (run_dir / "results.json").write_text(json.dumps(results))
    page = Page(write_report(run_dir).read_text())
    assert "messages per op 21.00 (42 node-to-node)" in _squash(page.all_text)
    assert "Note: these nodes keep their state in memory." in page.all_text
