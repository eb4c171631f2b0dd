"""The report worker: a window's page is served without waiting for Evidently, which then runs once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from monitor.reports import worker as worker_module
from monitor.reports.evidently_report import ColumnPlan, EvidentlyOutcome, EvidentlyScore
from monitor.reports.worker import ReportWorker
from tests.reports.memory_source import MemorySource


class _GatedEvidently:
    """Stands in for Evidently's run: blocks until released, counts its runs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.runs = 0

    def __call__(self, reference: pd.DataFrame, current: pd.DataFrame, plans: Sequence[ColumnPlan], share: float) -> EvidentlyOutcome:
        self.runs += 1
        assert self.release.wait(30)
        return EvidentlyOutcome("<p>Dataset Drift</p>", {p.name: EvidentlyScore(p.method, p.threshold, -1.0) for p in plans})


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> _GatedEvidently:
    gate = _GatedEvidently()
    monkeypatch.setattr(worker_module, "run_evidently", gate)
    return gate


def _worker(source: MemorySource) -> ReportWorker:
    w = ReportWorker(source)
    pool = ThreadPoolExecutor(1)
    w._pool = lambda: pool  # type: ignore[method-assign]  # in-process, so the gated stand-in is used
    return w


def test_the_page_is_served_while_evidently_is_still_running(source: MemorySource, gated: _GatedEvidently) -> None:
    async def scenario() -> tuple[str, str]:
        w = _worker(source)
        try:
            page = await asyncio.wait_for(w.page("churn", 2000), 10)  # would hang if it waited for Evidently
            await asyncio.sleep(0.2)
            assert gated.runs == 1  # serving the page started Evidently in the background
            gated.release.set()
            agreement = await asyncio.wait_for(w.agreement("churn", 2000), 10)
            return page, agreement
        finally:
            gated.release.set()
            w.close()

    page, agreement = asyncio.run(scenario())
    assert 'class="dist" data-feature="tenure_months"' in page  # our own plots are in the first view
    assert 'src="/reports/churn/2000/agreement"' in page
    assert "differs by" in agreement  # the stand-in's scores reached the framed comparison
    assert gated.runs == 1  # the agreement frame reused the background run


class _ForgetfulSource(MemorySource):
    """A store whose window records are gone (retention)."""

    def window_frame(self, model: str, window_id: int) -> pd.DataFrame:
        raise LookupError("the store holds 0 of the window's 400 records (retention)")


def test_a_window_without_records_still_gets_plots_from_the_stored_quantiles(gated: _GatedEvidently) -> None:
    async def scenario() -> str:
        w = _worker(_ForgetfulSource())
        try:
            return await asyncio.wait_for(w.page("churn", 2000), 10)
        finally:
            gated.release.set()
            w.close()

    page = asyncio.run(scenario())
    assert page.count('class="dist" data-feature=') == 8
    assert "no longer available: cumulative shares at the stored quantiles" in page
    assert gated.runs == 0  # nothing for Evidently to run on
