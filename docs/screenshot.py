"""Takes the README's screenshots of a real run's report, in headless Chromium.

    .venv/bin/python docs/screenshot.py store/latest          # writes docs/img/*.png

Opens RUN/report.html (made if missing) in Debian's /usr/bin/chromium through playwright
and saves the top of the page and the timeline around the first anomaly.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from tobtest.checker.report import write_report

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
OUT = Path(__file__).resolve().parent / "img"


def main(run: str) -> int:
    run_dir = Path(run).resolve()
    report = write_report(run_dir)
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(report.as_uri())
        page.screenshot(path=str(OUT / "report-invalid.png"))
        link = page.locator("text=show in the timeline").first
        if link.count():
            link.click()
            page.wait_for_timeout(300)
            page.screenshot(path=str(OUT / "report-timeline.png"))
        browser.close()
    print(f"wrote {OUT}/report-invalid.png and report-timeline.png from {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "store/latest"))
