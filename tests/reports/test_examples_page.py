"""A generative model's report over HTTP (a real uvicorn server) and in Chromium: the example texts
of the drifted window in the page and its JSON twin, masked and inert, and the descriptor plots
grouped per text column. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from monitor.reports import create_router
from tests.browser import chromium
from tests.monitor.ingest_helpers import serve_in_thread
from tests.reports.text_source import TextSource

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_router(TextSource(), evidently=False))
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def german_json(client: httpx.Client) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/reports/chat/600.json").json()
    return data


def test_the_json_twin_carries_the_examples_of_each_text_column(german_json: dict[str, Any]) -> None:
    assert [(e["column"], len(e["current"])) for e in german_json["examples"]] == [("prompt", 5), ("completion", 5)]


def test_the_json_twin_masks_the_planted_email(german_json: dict[str, Any]) -> None:
    texts = [e["text"] for e in german_json["examples"][0]["current"]]
    assert "Schickst du mir übermorgen früh das Wetter für Köln? [EMAIL]" in texts


def test_no_part_of_the_email_leaves_the_monitor(client: httpx.Client) -> None:
    assert "doe@example" not in client.get("/reports/chat/600.json").text


def test_the_json_twin_says_why_an_undrifted_window_has_no_examples(client: httpx.Client) -> None:
    notes = [e["note"] for e in client.get("/reports/chat/300.json").json()["examples"]]
    assert notes == ["No descriptor of prompt drifted in this window.", "No descriptor of completion drifted in this window."]


def test_the_page_holds_no_script_from_the_traffic(client: httpx.Client) -> None:
    assert "<script" not in client.get("/reports/chat/600").text.lower()


def test_descriptor_plots_are_grouped_under_their_text_column(client: httpx.Client) -> None:
    html = client.get("/reports/chat/600").text
    groups = dict(re.findall(r'<div class="textgroup" data-text-column="([^"]+)">(.*?)</div></div></div>(?=<div class="textgroup"|</section>)', html, re.S))
    features = {col: set(re.findall(r'class="card" data-feature="([^"]+)"', body)) for col, body in groups.items()}
    assert {col: {f.split(".")[0] for f in names} for col, names in features.items()} == {"prompt": {"prompt"}, "completion": {"completion"}}


@pytest.mark.slow
def test_markup_in_a_prompt_does_not_run_in_the_browser_and_reads_as_text(url: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/reports/chat/600", wait_until="load")
            section = page.locator("#examples-prompt")
            section.wait_for()
            shots = ROOT / "test-artifacts"
            shots.mkdir(exist_ok=True)
            section.screenshot(path=str(shots / "report-examples-prompt.png"))
            seen = (page.title(), 'document.title="pwned"' in section.inner_text())
        finally:
            page.close()
    assert seen == ("chat · window #600 · driftwatch", True)
