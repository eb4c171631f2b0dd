"""Generated Grafana dashboards: golden files, the metric contract, and Grafana conventions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import dashboards
from dashboards.grafana import dumps, stable_uid
from dashboards.promql import metric_names
from monitor.core.config import Config, load_config, parse_config
from monitor.exporter.names import MONITOR_METRICS
from monitor.sidecar.metrics import SIDECAR_METRICS
from tests.golden import assert_golden

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLE = ROOT / "examples" / "config.yaml"
OVERRIDE = ROOT / "tests" / "alerts" / "configs" / "override.yaml"
PERFORMANCE = ROOT / "tests" / "alerts" / "configs" / "performance.yaml"


def check_golden(name: str, text: str) -> None:
    assert_golden(GOLDEN / name, text)


@pytest.fixture(scope="module")
def example() -> Config:
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def boards(example: Config) -> dict[str, dict[str, Any]]:
    return dashboards.generate(example)


@pytest.fixture(scope="module")
def performance_boards() -> dict[str, dict[str, Any]]:
    return dashboards.generate(load_config(PERFORMANCE))


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in board["panels"]:
        yield p
        yield from p.get("panels", [])


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, annotation query and variable query of a dashboard."""
    for p in panels(board):
        for t in p.get("targets", []):
            yield f"panel {p['title']!r} {t['refId']}", t["expr"]
    for a in board["annotations"]["list"]:
        if "expr" in a:
            yield f"annotation {a['name']!r}", a["expr"]
    for v in board["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", v["query"])
            assert m, f"variable {v['name']} must be label_values(<selector>, <label>): {v['query']}"
            yield f"variable {v['name']!r}", m.group(1)


def test_golden_files(boards: dict[str, dict[str, Any]], example: Config) -> None:
    assert sorted(boards) == ["driftwatch-model-churn.json", "driftwatch-model-wine.json", "driftwatch-overview.json"]
    for filename, board in boards.items():
        check_golden(filename, dumps(board))
    configmaps = yaml.safe_dump_all(dashboards.configmaps(example), sort_keys=True, width=1_000_000)
    check_golden("configmaps.yaml", configmaps)


def test_output_is_deterministic(example: Config) -> None:
    first = {k: dumps(v) for k, v in dashboards.generate(example).items()}
    second = {k: dumps(v) for k, v in dashboards.generate(load_config(EXAMPLE)).items()}
    assert first == second


def _in_contract(name: str, contract: frozenset[str]) -> bool:
    """A histogram's `_bucket` series is in the contract where the contract names its family."""
    return name in contract or name.removesuffix("_bucket") in contract


def test_every_queried_metric_is_exported(boards: dict[str, dict[str, Any]],
                                          performance_boards: dict[str, dict[str, Any]]) -> None:
    contract = MONITOR_METRICS | SIDECAR_METRICS
    seen: set[str] = set()
    for filename, board in [*boards.items(), *performance_boards.items()]:
        for where, expr in expressions(board):
            names = metric_names(expr)
            assert names, f"{filename} {where} selects no metric: {expr}"
            outside = sorted(n for n in names if not _in_contract(n, contract))
            assert not outside, f"{filename} {where} uses {outside} outside the contract"
            seen |= names | {n.removesuffix("_bucket") for n in names}
    # The dashboards show every family the issue asks for (drift, performance, quality, capture, resources,
    # retraining).
    assert contract - seen == {
        "driftwatch_dataset_drift_detected",
        "driftwatch_build_info",
        "driftwatch_resource_collection_errors_total",
        "driftwatch_retrain_decisions_total",
        "driftwatch_sidecar_events_shipped_total",
        "driftwatch_sidecar_upstream_errors_total",
        "driftwatch_sidecar_auth_rejected_total",  # a log line and the spool panel show it; no panel of its own
        "driftwatch_sidecar_spool_events",
        "driftwatch_sidecar_request_duration_seconds_sum",
        "driftwatch_sidecar_request_duration_seconds_count",
    }


def test_every_panel_and_target_uses_the_datasource_variable(boards: dict[str, dict[str, Any]]) -> None:
    ds = {"type": "prometheus", "uid": "${datasource}"}
    for filename, board in boards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["model"]["query"] == "label_values(driftwatch_dataset_drift_share, model)"
        assert variables["model"]["datasource"] == ds
        for p in panels(board):
            if p["type"] == "row":
                continue
            assert p["datasource"] == ds, f"{filename} panel {p['title']!r}"
            assert p["targets"], f"{filename} panel {p['title']!r} has no query"
            assert all(t["datasource"] == ds for t in p["targets"]), f"{filename} panel {p['title']!r}"
        for a in board["annotations"]["list"]:
            if "expr" in a:
                assert a["datasource"] == ds


def test_rates_use_rate_interval_and_panels_have_units(boards: dict[str, dict[str, Any]]) -> None:
    for filename, board in boards.items():
        for where, expr in expressions(board):
            for rng in re.findall(r"\[([^\]]*)\]", expr):
                assert rng == "$__rate_interval", f"{filename} {where}: range [{rng}] instead of [$__rate_interval]"
        for p in panels(board):
            if p["type"] in ("timeseries", "stat"):
                assert p["fieldConfig"]["defaults"]["unit"], f"{filename} panel {p['title']!r} has no unit"


def test_uids_ids_and_layout(boards: dict[str, dict[str, Any]]) -> None:
    uids = [b["uid"] for b in boards.values()]
    assert len(set(uids)) == len(uids)
    assert boards["driftwatch-model-wine.json"]["uid"] == "driftwatch-model-wine"
    for filename, board in boards.items():
        assert len(board["uid"]) <= 40
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{filename}: duplicate panel ids"
        cells: dict[tuple[int, int], str] = {}
        for p in panels(board):
            pos = p["gridPos"]
            assert 0 <= pos["x"], f"{filename} {p['title']!r} leaves the grid"
            assert pos["x"] + pos["w"] <= 24, f"{filename} {p['title']!r} leaves the grid"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{filename}: {p['title']!r} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = p["title"]


def test_long_model_names_get_short_distinct_uids() -> None:
    a, b = "m" * 62 + "a", "m" * 62 + "b"
    assert len(stable_uid("driftwatch", "model", a)) <= 40
    assert stable_uid("driftwatch", "model", a) != stable_uid("driftwatch", "model", b)
    assert stable_uid("driftwatch", "model", a) == stable_uid("driftwatch", "model", a)


def _panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    found = [p for p in panels(board) if p["title"] == title]
    assert found, f"no panel {title!r}"
    return found[0]


def test_the_config_shapes_the_dashboards() -> None:
    cfg = load_config(OVERRIDE)
    boards = dashboards.generate(cfg)
    churn, fraud = boards["driftwatch-model-churn.json"], boards["driftwatch-model-fraud.json"]
    # The model's own alert thresholds are drawn, not the defaults.
    steps = _panel(churn, "Dataset drift share")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.6, 0.8]
    missing = _panel(churn, "Missing values")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in missing] == [None, 0.2]
    # The prediction panel follows the first output; a model without outputs has none.
    prediction = _panel(churn, "Prediction drift (churn_probability)")
    assert 'feature="churn_probability"' in prediction["targets"][1]["expr"]
    assert not [p for p in panels(fraud) if p["title"].startswith("Prediction drift")]
    # The default model of each per-model dashboard is that model; the overview links to all of them.
    model_var = next(v for v in fraud["templating"]["list"] if v["name"] == "model")
    assert model_var["current"]["value"] == "fraud"
    links = {link["url"] for link in boards["driftwatch-overview.json"]["links"]}
    assert links == {f"/d/driftwatch-model-{m}" for m in ("wine", "churn", "fraud")}


def test_critical_columns_and_retraining_annotations(boards: dict[str, dict[str, Any]]) -> None:
    wine = boards["driftwatch-model-wine.json"]
    critical = _panel(wine, "Critical columns: drift severity")
    assert 'feature=~"flavanoids"' in critical["targets"][0]["expr"]
    names = {a["name"] for a in wine["annotations"]["list"]}
    assert {"Retraining launched", "Retraining succeeded", "Retraining failed"} <= names
    repeated = _panel(wine, "$feature")
    assert repeated["repeat"] == "feature"


def test_configmaps_are_valid_and_follow_the_sidecar_convention(example: Config) -> None:
    convention = dashboards.SidecarConvention(
        label_key="example.com/dashboard", label_value="yes", folder_annotation_key="example.com/folder",
        folder="ML / Drift", namespace="monitoring",
    )
    maps = dashboards.configmaps(example, convention)
    assert len(maps) == 3
    for cm in maps:
        kubernetes_validate.validate(cm, "1.33", strict=True)
        meta = cm["metadata"]
        assert meta["labels"]["example.com/dashboard"] == "yes"
        assert meta["annotations"] == {"example.com/folder": "ML / Drift"}
        assert meta["namespace"] == "monitoring"
        ((filename, text),) = cm["data"].items()
        assert json.loads(text) == dashboards.generate(example)[filename]
    default = dashboards.configmaps(example)[0]["metadata"]
    assert default["labels"]["grafana_dashboard"] == "1"
    assert "namespace" not in default


@pytest.mark.parametrize(
    "kwargs",
    [{"label_key": "bad key"}, {"label_value": "-x"}, {"folder_annotation_key": "/x"}, {"namespace": "Not_DNS"}],
)
def test_invalid_sidecar_convention_is_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid"):
        dashboards.SidecarConvention(**kwargs)


@pytest.mark.parametrize("kwargs", [{"label_value": ""}, {"folder": ""}, {"folder": "  "}])
def test_empty_label_value_or_folder_is_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="empty"):
        dashboards.SidecarConvention(**kwargs)


def test_panel_count_does_not_grow_with_columns() -> None:
    """Per-feature panels repeat over the exported features, so a 200-column model stays one dashboard."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"][0]["features"] = [{"name": f"f{i}", "type": "numeric", "critical": i == 0} for i in range(200)]
    cfg = parse_config(raw, base_dir=EXAMPLE.parent)
    wide = dashboards.generate(cfg)["driftwatch-model-wine.json"]
    narrow = dashboards.generate(load_config(EXAMPLE))["driftwatch-model-wine.json"]
    assert len(list(panels(wide))) == len(list(panels(narrow)))


# -- model performance -----------------------------------------------------------------------------


def _row_titles(board: dict[str, Any]) -> list[str]:
    return [p["title"] for p in board["panels"] if p["type"] == "row"]


def _columns(board: dict[str, Any], title: str) -> list[str]:
    """The column titles of table `title`, in order."""
    (table,) = [p for p in panels(board) if p["title"] == title and p["type"] == "table"]
    options = next(t for t in table["transformations"] if t["id"] == "organize")["options"]
    order = sorted(options["indexByName"], key=options["indexByName"].get)
    return [options["renameByName"][field] for field in order]


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel["targets"]]


def test_performance_golden_files(performance_boards: dict[str, dict[str, Any]]) -> None:
    for filename, board in performance_boards.items():
        check_golden(f"performance/{filename}", dumps(board))


def test_a_model_with_performance_gets_a_performance_row(performance_boards: dict[str, dict[str, Any]]) -> None:
    assert "Performance" in _row_titles(performance_boards["driftwatch-model-fraud.json"])


def test_a_model_without_performance_gets_no_performance_row(performance_boards: dict[str, dict[str, Any]],
                                                            boards: dict[str, dict[str, Any]]) -> None:
    assert "Performance" not in _row_titles(performance_boards["driftwatch-model-churn.json"])
    assert "Performance" not in _row_titles(boards["driftwatch-model-churn.json"])


def test_the_example_wine_model_gets_a_performance_row(boards: dict[str, dict[str, Any]]) -> None:
    assert "Performance" in _row_titles(boards["driftwatch-model-wine.json"])


def _without_performance(config: Config) -> Config:
    return config.model_copy(update={"models": [m.model_copy(update={"performance": None}) for m in config.models]})


def test_the_headline_metric_realized_vs_estimated_with_reference_and_thresholds(
        performance_boards: dict[str, dict[str, Any]]) -> None:
    panel = _panel(performance_boards["driftwatch-model-fraud.json"], "roc_auc: realized vs estimated")
    realized_vs_estimated, reference, threshold = panel["targets"]
    assert realized_vs_estimated["expr"] == 'max by (kind) (driftwatch_model_performance{model="$model",metric="roc_auc"})'
    assert realized_vs_estimated["legendFormat"] == "{{kind}}"
    assert reference["expr"] == 'max by (metric) (driftwatch_model_performance_reference{model="$model",metric="roc_auc"})'
    assert threshold["expr"] == 'max by (kind) (driftwatch_model_performance_threshold{model="$model",metric="roc_auc"})'


def test_each_model_plots_its_own_headline_metric(performance_boards: dict[str, dict[str, Any]]) -> None:
    wine = _panel(performance_boards["driftwatch-model-wine.json"], "f1_macro: realized vs estimated")
    assert all('metric="f1_macro"' in e for e in _exprs(wine))
    price = _panel(performance_boards["driftwatch-model-price.json"], "mae: realized vs estimated")
    assert "degraded above the threshold" in price["description"].lower()


def test_every_metric_in_one_table(performance_boards: dict[str, dict[str, Any]]) -> None:
    assert _columns(performance_boards["driftwatch-model-fraud.json"], "All metrics") == [
        "Metric", "Realized", "Estimated", "Reference"]
    table = _panel(performance_boards["driftwatch-model-fraud.json"], "All metrics")
    assert 'kind="realized"' in _exprs(table)[0]
    assert 'kind="estimated"' in _exprs(table)[1]


def test_label_coverage_lag_and_outcomes(performance_boards: dict[str, dict[str, Any]]) -> None:
    fraud = performance_boards["driftwatch-model-fraud.json"]
    assert _exprs(_panel(fraud, "Label coverage")) == ['max by (model) (driftwatch_label_coverage_ratio{model="$model"})']
    lag = _panel(fraud, "Label lag")
    assert [t["legendFormat"] for t in lag["targets"]] == ["p50", "p90"]
    assert _exprs(lag)[1] == ('histogram_quantile(0.9, sum by (le) '
                              '(rate(driftwatch_label_lag_seconds_bucket{model="$model"}[$__rate_interval])))')
    # The line is the model's label_delay (7d): later labels are not joined.
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 7 * 86400
    outcomes = _panel(fraud, "Labels by outcome")
    assert _exprs(outcomes) == ['sum by (outcome) (rate(driftwatch_labels_total{model="$model"}[$__rate_interval]))']


def test_the_overview_shows_performance_degraded_only_with_a_performance_section(
        performance_boards: dict[str, dict[str, Any]], example: Config) -> None:
    assert _columns(performance_boards["driftwatch-overview.json"], "Models")[-1] == "Performance degraded"
    plain = dashboards.generate(_without_performance(example))
    assert "Performance degraded" not in _columns(plain["driftwatch-overview.json"], "Models")


def test_performance_rows_follow_the_grafana_conventions(performance_boards: dict[str, dict[str, Any]]) -> None:
    """Layout without overlaps, unique ids, units, the datasource variable and $__rate_interval."""
    test_uids_ids_and_layout(performance_boards)
    test_every_panel_and_target_uses_the_datasource_variable(performance_boards)
    test_rates_use_rate_interval_and_panels_have_units(performance_boards)
