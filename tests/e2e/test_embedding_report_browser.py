"""An embedding column's report card in a real browser (Debian's Chromium through Playwright): the
offline report of `driftwatch report` shows the principal-component scatter with both sides' dots
and the MMD check, and the card does not scroll sideways. A screenshot is kept in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from playwright.sync_api import Browser
from typer.testing import CliRunner

from monitor.app.cli import app
from monitor.reports.distributions import SCATTER_POINTS
from tests.browser import chromium

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("embedding-report")
    rng = np.random.default_rng(0)
    ref, cur = rng.standard_normal((2000, 24)).astype(np.float32), rng.standard_normal((600, 24)).astype(np.float32)
    cur[:, [1, 5]] += 0.8
    pd.DataFrame({"a_rather_long_embedding_column_name": list(ref)}).to_parquet(tmp / "ref.parquet")
    pd.DataFrame({"a_rather_long_embedding_column_name": list(cur)}).to_parquet(tmp / "cur.parquet")
    (tmp / "c.yaml").write_text(yaml.safe_dump({"models": [{"name": "emb", "reference": {"path": "ref.parquet"}, "features": [
        {"name": "a_rather_long_embedding_column_name", "type": "embedding", "embedding": {"dimensions": 24}}]}]}))
    out = tmp / "report.html"
    res = CliRunner().invoke(app, ["report", "--config", str(tmp / "c.yaml"), "--reference", str(tmp / "ref.parquet"),
                                   "--current", str(tmp / "cur.parquet"), "--out", str(out), "--no-evidently"])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("width", [1400, 1920])
def test_the_embedding_card_shows_its_scatter_and_mmd_check_without_scrolling(browser: Browser, report: Path, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.goto(report.as_uri(), wait_until="domcontentloaded")
    card = page.locator('#distributions .card[data-feature="a_rather_long_embedding_column_name"]')
    dots = (card.locator("svg circle.ref").count(), card.locator("svg circle.cur").count())
    overflow = card.evaluate("e => e.scrollWidth > e.clientWidth")
    shots = ROOT / "test-artifacts"
    shots.mkdir(exist_ok=True)
    card.screenshot(path=str(shots / f"report-embedding-{width}.png"))
    assert (dots, card.locator("p.mmd").is_visible(), overflow) == ((SCATTER_POINTS, SCATTER_POINTS), True, False)
