"""`tobtest serve` in a real headless Chromium: the run list, a report with its plots, the
anomaly -> timeline link, and nothing fetched from anywhere but the server.

Needs Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`), driven by
playwright-python without playwright's own browser download. The invalid run's report is
photographed; with TOBTEST_UPDATE_SCREENSHOTS=1 the pictures go to docs/img/ for the README:

    TOBTEST_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/tobtest/test_serve_browser.py
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.checker.test_report_runs import make_run
from tobtest.serve import StoreServer, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
TEST = "paxos-broadcast-partition"
VALID, INVALID = f"{TEST}/20260101T120000", f"{TEST}/20260101T120100"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = tmp_path_factory.mktemp("browser") / "store"
    make_run(store, TEST, "20260101T120000", seed=3)
    make_run(store, TEST, "20260101T120100", seed=3, bug=True)
    server: StoreServer = make_server(store, 0)
    thread = threading.Thread(target=server.serve_forever, name="serve-browser", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.requests, page.problems = [], []  # read by the tests below
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    try:
        yield page
    finally:
        context.close()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _screenshot_dir(tmp_path: Path) -> Path:
    if os.environ.get("TOBTEST_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path


def test_run_list_shows_every_run_with_its_verdict(page: Any, base_url: str) -> None:
    page.goto(base_url)
    rows = page.locator("#runs tr.run")
    assert rows.count() == 2
    assert rows.nth(0).locator(".verdict").inner_text() == "INVALID"
    assert rows.nth(1).locator(".verdict").inner_text() == "VALID"
    red = rows.nth(0).locator(".verdict").evaluate("e => getComputedStyle(e).backgroundColor")
    green = rows.nth(1).locator(".verdict").evaluate("e => getComputedStyle(e).backgroundColor")
    assert red == "rgb(198, 40, 40)" and green == "rgb(46, 125, 50)"
    assert page.problems == []


def test_invalid_report_opens_with_plots_and_links_anomalies_to_the_timeline(
    page: Any, base_url: str, tmp_path: Path
) -> None:
    page.goto(base_url)
    page.locator(f'#runs a.report-link[href="{INVALID}/report.html"]').click()
    page.wait_for_load_state("load")
    assert page.url == f"{base_url}{INVALID}/report.html"
    assert page.locator("#verdict").inner_text() == "INVALID"
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.id, i.complete, i.naturalWidth])"
    )
    assert sorted(i[0] for i in images) == ["plot-latency", "plot-throughput"]
    assert all(complete and width > 0 for _, complete, width in images), images

    shots = _screenshot_dir(tmp_path)
    page.screenshot(path=str(shots / "report-invalid.png"))

    anomaly = page.locator(".anomaly").first
    ops = anomaly.get_attribute("data-ops").split()
    anomaly.locator("a.show-in-timeline").click()
    focused = page.evaluate("Array.from(document.querySelectorAll('.op.focus')).map(e => e.id)")
    assert len(focused) >= 1
    assert all(("op-" + i) in page.evaluate(_IDS_IN_FOCUS) for i in ops)
    first_bar = page.locator(f"#op-{ops[0]}")
    assert first_bar.is_visible()
    box = first_bar.bounding_box()
    assert box is not None and 0 <= box["y"] <= 1000  # scrolled into view
    page.screenshot(path=str(shots / "report-timeline.png"))

    for name in ("report-invalid.png", "report-timeline.png"):
        assert _png_size(shots / name) == (1400, 1000)
    assert page.problems == []
    outside = [u for u in page.requests if not u.startswith((base_url, "data:"))]
    assert outside == []


# Ids of the focused bars and of the op anchors inside them (a bar stands for two ops).
_IDS_IN_FOCUS = """Array.from(document.querySelectorAll('.op.focus')).flatMap(
    e => [e.id, ...Array.from(e.querySelectorAll('.anchor')).map(a => a.id)])"""


def test_valid_report_and_run_files_open_from_the_run_folder(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}{VALID}/")
    page.locator("#report-link").click()
    page.wait_for_load_state("load")
    assert page.locator("#verdict").inner_text() == "VALID"
    assert page.locator(".anomaly").count() == 0
    widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert len(widths) == 2 and min(widths) > 0
    page.locator('#files a[href="results.json"]').click()
    page.wait_for_load_state("load")
    assert page.url == f"{base_url}{VALID}/results.json"
    assert '"valid": true' in page.content()
    assert page.problems == []
