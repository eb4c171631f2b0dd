"""The performance section in Chromium (Debian's, driven by Playwright): at the widths a data
scientist uses, nothing in it scrolls sideways, the chart is drawn inside its card, and a window
without labels reads as the estimate alone. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser

from monitor.reports import create_router
from tests.browser import chromium
from tests.monitor.ingest_helpers import serve_in_thread
from tests.reports.labelled_source import LabelledSource

ROOT = Path(__file__).resolve().parents[2]



@pytest.fixture(scope="module")
def wine_url() -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_router(LabelledSource(), evidently=False))
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


OVERFLOWING = """() => [...document.querySelectorAll('#performance, #performance .tablewrap'), document.documentElement]
    .filter(e => e.scrollWidth > e.clientWidth)
    .map(e => (e.id || e.className || e.tagName) + ' ' + e.scrollWidth + '>' + e.clientWidth)"""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 1920])
@pytest.mark.parametrize("window", [1200, 2000])
def test_the_performance_section_fits_its_card(browser: Browser, wine_url: str, width: int, window: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto(f"{wine_url}/reports/wine/{window}", wait_until="domcontentloaded")
        section = page.locator("#performance")
        section.wait_for()
        assert page.evaluate(OVERFLOWING) == []
        card, chart = section.bounding_box(), section.locator("svg.performance").bounding_box()
        assert card is not None and chart is not None
        assert chart["x"] + chart["width"] <= card["x"] + card["width"]
        shots = ROOT / "test-artifacts"
        shots.mkdir(exist_ok=True)
        section.screenshot(path=str(shots / f"report-performance-{window}-{width}.png"))
    finally:
        page.close()


@pytest.mark.slow
def test_a_window_without_labels_reads_as_the_estimate_alone(browser: Browser, wine_url: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{wine_url}/reports/wine/2000", wait_until="domcontentloaded")
        assert page.locator("#estimate-only").inner_text().startswith("No labels yet for window #2000")
    finally:
        page.close()
