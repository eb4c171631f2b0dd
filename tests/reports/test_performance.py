"""The performance section of a report, as a data scientist sees it (wine with delayed labels).

The wine windows (tests/reports/labelled_source.py) are judged by the real performance profile: a
fully labelled window, a half labelled one, one whose labels disagree with the model (realized
degraded), one of the model's least confident records with 20 labels (estimated degraded, too few
labels to judge realized), and one without labels (the estimate alone).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from monitor.core.config import Config, load_config
from monitor.core.labelstore import PerformanceRow
from monitor.core.pgstore import PgStore
from monitor.core.store import EvaluationRow, EventStore
from monitor.reports import FleetReportSource, StoreReportSource, create_router
from monitor.reports.build import render_report
from monitor.reports.page import fmt_num
from monitor.reports.performance_view import PerfPoint, performance_view
from monitor.reports.plots import performance_svg
from monitor.reports.source import PerformanceHistory, StoredPerformance
from monitor.reports.view import report_view
from monitor.reports.worker import ReportWorker
from tests.monitor.runtime.fleet_helpers import write_configs
from tests.reports.conftest import check_golden
from tests.reports.labelled_source import OUTCOMES, LabelledSource
from tests.reports.memory_source import CONFIG, MemorySource


@pytest.fixture(scope="module")
def labelled() -> LabelledSource:
    return LabelledSource()


def _page(source: LabelledSource | MemorySource, model: str, window_id: int) -> str:
    worker = ReportWorker(source, evidently=False)
    try:
        return asyncio.run(worker.page(model, window_id))
    finally:
        worker.close()


def _section(html: str) -> str:
    found = re.search(r'<section class="card" id="performance">.*?</section>', html, re.S)
    assert found is not None, "no performance section"
    return found.group(0)


def _cell(section: str, metric: str, column: str) -> str:
    """The text of one cell of the metrics table (its first number, before any note under it)."""
    row = re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', section, re.S)
    assert row is not None, metric
    cell = re.search(rf'<td class="num {column}">(.*?)</td>', row.group(1), re.S)
    assert cell is not None, column
    return re.sub(r"<small>.*?</small>|<[^>]+>", "", cell.group(1)).strip()


# -- what the page shows ----------------------------------------------------------------------------


def test_a_model_with_labels_has_a_performance_section(labelled: LabelledSource) -> None:
    assert 'id="performance"' in _page(labelled, "wine", 1200)


def test_a_model_without_a_performance_config_has_no_section(source: MemorySource) -> None:
    assert 'id="performance"' not in _page(source, "churn", 2000)


def test_the_realized_headline_is_the_stored_value(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    assert _cell(section, "accuracy", "realized") == fmt_num(labelled.result(1200).result["realized"]["accuracy"])


def test_the_estimated_headline_is_the_stored_value(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    assert _cell(section, "accuracy", "estimated") == fmt_num(labelled.result(1200).result["estimated"]["accuracy"])


def test_the_reference_headline_is_the_stored_value(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    assert _cell(section, "accuracy", "reference") == fmt_num(labelled.result(1200).result["reference"]["accuracy"])


def test_the_estimates_band_is_under_it(labelled: LabelledSource) -> None:
    lo, hi = labelled.result(1200).result["band"]
    assert f"95% band {fmt_num(lo)}–{fmt_num(hi)}" in _section(_page(labelled, "wine", 1200))


def test_every_realized_metric_has_a_row(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    assert set(re.findall(r'data-metric="([^"]+)"', section)) == set(labelled.result(1200).result["realized"])


def test_a_metric_cbpe_cannot_estimate_says_so(labelled: LabelledSource) -> None:
    assert _cell(_section(_page(labelled, "wine", 1200)), "log_loss", "estimated") == "not estimable"


def test_per_class_f1_is_the_stored_value(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    stored = next(c for c in labelled.result(1200).result["per_class"] if c["class"] == "class_2")
    row = re.search(r'<tr data-class="class_2">(.*?)</tr>', section, re.S)
    assert row is not None
    assert re.findall(r"<td class=num>([^<]*)</td>", row.group(1))[2] == fmt_num(stored["f1"], 3)


def test_coverage_is_labelled_of_records(labelled: LabelledSource) -> None:
    found = re.search(r'<dd id="perf-coverage">([^<]*)</dd>', _section(_page(labelled, "wine", 1200)))
    assert found is not None
    assert found.group(1) == "300 of 400 (75.0%)"


def test_label_outcomes_show_unknown_ids(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    row = re.search(r'<tr data-outcome="unknown_id">.*?<td class="num warn">(\d+)</td>', section, re.S)
    assert row is not None
    assert int(row.group(1)) == OUTCOMES["unknown_id"]


def test_label_outcomes_list_zero_counts_too(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    assert re.search(r'<tr data-outcome="count_mismatch">.*?<td class="num">0</td>', section, re.S) is not None


def test_a_window_without_labels_is_worded_as_estimate_only(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 2000))
    found = re.search(r'<p class="warn" id="estimate-only">([^<]*)</p>', section)
    assert found is not None
    assert found.group(1).startswith("No labels yet for window #2000: the estimate alone")


def test_a_window_without_labels_has_no_realized_value(labelled: LabelledSource) -> None:
    assert _cell(_section(_page(labelled, "wine", 2000)), "accuracy", "realized") == "—"


def test_a_window_without_labels_still_has_its_estimate(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 2000))
    assert _cell(section, "accuracy", "estimated") == fmt_num(labelled.result(2000).result["estimated"]["accuracy"])


def test_a_labelled_window_is_not_called_estimate_only(labelled: LabelledSource) -> None:
    assert 'id="estimate-only"' not in _page(labelled, "wine", 1200)


def test_realized_degradation_is_marked(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1200))
    assert '<dd id="perf-realized"><span class="badge drift">degraded</span></dd>' in section


def test_estimated_degradation_is_marked(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1600))
    assert '<dd id="perf-estimated"><span class="badge drift">degraded</span></dd>' in section


def test_too_few_labels_are_not_judged(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 1600))
    assert '<dd id="perf-realized"><span class="badge none">too few labels to judge</span></dd>' in section


def test_the_chart_shades_exactly_the_degraded_windows(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 2000))
    assert set(re.findall(r'<rect class="degraded" data-window="(\d+)"', section)) == {"1200", "1600"}


def test_the_chart_has_a_realized_point_per_labelled_window(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 2000))
    assert re.findall(r'<circle class="realized" data-window="(\d+)"', section) == ["400", "800", "1200", "1600"]


def test_the_chart_has_an_estimated_point_per_window(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 2000))
    assert re.findall(r'<circle class="estimated" data-window="(\d+)"', section) == ["400", "800", "1200", "1600", "2000"]


def test_the_chart_shows_each_windows_labelled_share(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 2000))
    shares = re.findall(r'<rect class="coverage" data-window="\d+"[^>]*><title>window \d+: (\d+ of \d+) labelled', section)
    assert shares == ["400 of 400", "200 of 400", "300 of 400", "20 of 400", "0 of 400"]


def test_more_labels_draw_a_bigger_realized_dot(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 2000))
    radius = {w: float(r) for w, r in re.findall(r'<circle class="realized" data-window="(\d+)" cx="[^"]+" cy="[^"]+" r="([^"]+)"', section)}
    assert radius["400"] > radius["1200"] > radius["800"] > radius["1600"]


def test_the_chart_stops_at_the_reports_window(labelled: LabelledSource) -> None:
    section = _section(_page(labelled, "wine", 800))
    assert re.findall(r'<circle class="estimated" data-window="(\d+)"', section) == ["400", "800"]


def test_the_json_twin_carries_the_section(labelled: LabelledSource) -> None:
    app = FastAPI()
    app.include_router(create_router(labelled, evidently=False))
    data = asyncio.run(_get_json(app, "/reports/wine/1200.json"))
    accuracy = next(m for m in data["performance"]["metrics"] if m["name"] == "accuracy")
    assert accuracy["realized"] == labelled.result(1200).result["realized"]["accuracy"]


async def _get_json(app: FastAPI, url: str) -> dict:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_the_json_twin_of_a_model_without_ground_truth_has_none(source: MemorySource) -> None:
    app = FastAPI()
    app.include_router(create_router(source, evidently=False))
    assert asyncio.run(_get_json(app, "/reports/churn/2000.json"))["performance"] is None


# -- freshness, storage and sources ----------------------------------------------------------------


def test_a_served_page_shows_labels_that_arrived_after_it_was_first_served(labelled: LabelledSource) -> None:
    """Pages are cached per window, but a window's realized performance changes as labels arrive."""
    worker = ReportWorker(labelled, evidently=False)
    original = list(labelled.rows)
    try:
        before = asyncio.run(worker.page("wine", 2000))
        assert 'id="estimate-only"' in before
        now_labelled = labelled.result(1200)
        labelled.rows[-1] = replace(
            labelled.rows[-1], n_labelled=300, updated_at=labelled.rows[-1].updated_at + 60,
            result={**labelled.rows[-1].result, "n_labelled": 300, "realized": now_labelled.result["realized"]},
        )
        after = asyncio.run(worker.page("wine", 2000))
    finally:
        labelled.rows[:] = original
        worker.close()
    assert 'id="estimate-only"' not in after


def test_a_configured_model_with_no_judged_window_says_so_in_one_sentence(labelled: LabelledSource) -> None:
    ev = labelled.wine[0]
    view = replace(report_view(ev, [ev]), performance=performance_view(PerformanceHistory((), {}), ev.window_id))
    assert 'id="perf-none"' in render_report(view)


def test_a_stored_row_missing_newer_keys_still_renders() -> None:
    """Rows outlive the code that wrote them (retention): a row without band or per-class data is shown as it is."""
    row = StoredPerformance(400, 0.0, 1.0, 100, 0, 2.0, 2.0, False, {"metric": "accuracy", "n_records": 100, "estimated": {"accuracy": 0.9}})
    view = performance_view(PerformanceHistory((row,), {}), 400)
    assert view is not None
    assert view.window == PerfPoint(400, 100, 0, None, 0.9, None, None, None, None, None, False)


def test_a_band_stored_per_metric_is_read() -> None:
    result = {"metric": "f1_macro", "n_records": 10, "estimated": {"f1_macro": 0.8}, "band": {"f1_macro": [0.7, 0.9]}}
    view = performance_view(PerformanceHistory((StoredPerformance(10, 0.0, 1.0, 10, 0, 2.0, 2.0, False, result),), {}), 10)
    assert view is not None and view.window is not None
    assert view.window.band == (0.7, 0.9)


def test_the_store_source_reads_windows_and_label_outcomes(tmp_path: Path, labelled: LabelledSource) -> None:
    config = load_config(CONFIG)
    config = config.model_copy(update={"server": config.server.model_copy(
        update={"store": config.server.store.model_copy(update={"path": str(tmp_path / "driftwatch.db")})})})
    store = EventStore(config.server.store.path)
    for stored in labelled.rows[:2]:
        first = stored.window_id - stored.n_records + 1
        store.add_evaluation(
            EvaluationRow("wine", stored.start, stored.end, 1, 2, first, stored.window_id, stored.n_records, {"dataset": {}}, stored.evaluated_at),
            PerformanceRow("wine", first, stored.window_id, stored.start, stored.end, None, stored.n_records, 0,
                           dict(stored.result), stored.evaluated_at, stored.updated_at),
        )
    with store.transaction():
        store.labels.count("wine", {"joined": 5, "too_late": 2})
    store.close()
    source = StoreReportSource(config)
    try:
        history = source.performance("wine", 30)
    finally:
        source.close()
    assert history is not None
    assert [w.window_id for w in history.windows] == [400, 800]
    assert history.windows[1].result["estimated"] == labelled.rows[1].result["estimated"]
    assert history.label_outcomes == {"joined": 5, "too_late": 2}


def test_the_store_source_has_no_performance_for_a_model_without_it(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    config = config.model_copy(update={"server": config.server.model_copy(
        update={"store": config.server.store.model_copy(update={"path": str(tmp_path / "driftwatch.db")})})})
    assert StoreReportSource(config).performance("churn", 30) is None


def _fleet_config(tmp_path: Path) -> Config:
    fleet = load_config(write_configs(tmp_path, bootstrap="127.0.0.1:1", topic="t")).fleet
    return load_config(CONFIG).model_copy(update={"fleet": fleet})


def test_the_fleet_source_reads_what_the_owning_replica_stored(tmp_path: Path, postgres_dsn: str, labelled: LabelledSource) -> None:
    store = PgStore(postgres_dsn, replica="owner")
    for stored in labelled.rows[:2]:
        first = stored.window_id - stored.n_records + 1
        point = ("count", float(stored.window_id))
        store.add_evaluation(
            EvaluationRow("wine", stored.start, stored.end, 1, 2, first, stored.window_id, stored.n_records, {"dataset": {}},
                          stored.evaluated_at, point),
            [], "t",
            performance=PerformanceRow("wine", first, stored.window_id, stored.start, stored.end, point, stored.n_records, 0,
                                       dict(stored.result), stored.evaluated_at, stored.updated_at),
        )
    store.count_labels("wine", {"joined": 5, "too_late": 2})
    history = FleetReportSource(_fleet_config(tmp_path), dsn=postgres_dsn).performance("wine", 30)
    assert history is not None
    assert [w.window_id for w in history.windows] == [400, 800]
    assert history.windows[1].result["estimated"] == labelled.rows[1].result["estimated"]
    assert history.label_outcomes == {"joined": 5, "too_late": 2}


def test_the_fleet_source_has_no_performance_for_a_model_without_it(tmp_path: Path) -> None:
    assert FleetReportSource(_fleet_config(tmp_path), dsn="unused").performance("churn", 30) is None


# -- the chart, golden ------------------------------------------------------------------------------

GOLDEN_POINTS = (
    PerfPoint(250, 500, 500, 0.93, 0.925, (0.905, 0.945), 0.88, 0.9, False, False, False),
    PerfPoint(500, 500, 240, 0.91, 0.92, (0.9, 0.94), 0.86, 0.9, False, False, False),
    PerfPoint(750, 500, 310, 0.71, 0.918, (0.897, 0.938), 0.87, 0.9, True, False, False),
    PerfPoint(1000, 500, 30, 0.8, 0.83, (0.79, 0.87), None, 0.9, None, True, True),
    PerfPoint(1250, 500, 0, None, 0.93, (0.91, 0.95), None, 0.9, None, False, False),
)


def test_performance_chart_golden() -> None:
    check_golden("performance.svg", performance_svg("accuracy", True, 0.919, GOLDEN_POINTS) + "\n")


def test_nothing_to_plot_is_no_chart() -> None:
    assert performance_svg("accuracy", True, 0.9, [PerfPoint(1, 10, 0, None, None, None, None, None, None, None, False)]) == ""
