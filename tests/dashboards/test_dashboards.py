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
from dashboards.grafana import dumps, stable_uid, without_nulls
from dashboards.promql import Matcher, Selector, metric_names, selectors
from monitor.core.config import Config, load_config, parse_config
from monitor.exporter.names import HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, MONITOR_METRICS, STORE_SIZE_BYTES
from monitor.sidecar.metrics import GENAI_HISTOGRAMS, SIDECAR_METRICS, SIDECAR_TOKEN_USAGE_TOKENS
from tests.golden import assert_golden

SCOPE = 'cluster=~"$cluster",namespace=~"$namespace"'

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLE = ROOT / "examples" / "config.yaml"
OVERRIDE = ROOT / "tests" / "alerts" / "configs" / "override.yaml"
PERFORMANCE = ROOT / "tests" / "alerts" / "configs" / "performance.yaml"
LLM = ROOT / "examples" / "llm" / "config.yaml"


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


@pytest.fixture(scope="module")
def llm_boards() -> dict[str, dict[str, Any]]:
    """The generative model's example (`protocol: openai`, text columns)."""
    return dashboards.generate(load_config(LLM))


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
                                          performance_boards: dict[str, dict[str, Any]],
                                          llm_boards: dict[str, dict[str, Any]]) -> None:
    contract = MONITOR_METRICS | SIDECAR_METRICS
    seen: set[str] = set()
    for filename, board in [*boards.items(), *performance_boards.items(), *llm_boards.items()]:
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
        # Generative calls: the LLM row reads quantiles of the latency histograms and sums of the token one.
        *(name + suffix for name in GENAI_HISTOGRAMS if name != SIDECAR_TOKEN_USAGE_TOKENS for suffix in ("_sum", "_count")),
        SIDECAR_TOKEN_USAGE_TOKENS + "_bucket",
    }


def test_the_llm_row_is_on_generative_models_only(boards: dict[str, dict[str, Any]], llm_boards: dict[str, dict[str, Any]]) -> None:
    def rows(board: dict[str, Any]) -> list[str]:
        return [p["title"] for p in board["panels"] if p["type"] == "row"]

    llm_row = "LLM: tokens, latency and text descriptors"
    assert [llm_row in rows(b) for b in (boards["driftwatch-model-wine.json"], llm_boards["driftwatch-model-chat.json"])] == [False, True]


def test_the_llm_row_golden(llm_boards: dict[str, dict[str, Any]]) -> None:
    check_golden("driftwatch-model-chat.json", dumps(llm_boards["driftwatch-model-chat.json"]))


def test_every_panel_and_target_uses_the_datasource_variable(boards: dict[str, dict[str, Any]]) -> None:
    ds = {"type": "prometheus", "uid": "${datasource}"}
    for filename, board in boards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for name, variable in variables.items():
            if variable["type"] == "query":
                assert variable["datasource"] == ds, f"{filename} variable {name}"
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
    assert [s.get("value") for s in steps] == [None, 0.6, 0.8]
    missing = _panel(churn, "Missing values")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s.get("value") for s in missing] == [None, 0.2]
    # The prediction panel follows the first output; a model without outputs has none.
    prediction = _panel(churn, "Prediction drift (churn_probability)")
    assert prediction["targets"][0]["expr"].startswith("driftwatch_prediction_drift_severity{")
    assert not [p for p in panels(fraud) if p["title"].startswith("Prediction drift")]
    # Each per-model dashboard queries that model; the overview links to all of them.
    assert 'model="fraud"' in _panel(fraud, "Dataset drift share")["targets"][0]["expr"]
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
    assert realized_vs_estimated["expr"] == ('max by (cluster, namespace, kind) (driftwatch_model_performance'
                                             f'{{{SCOPE},model="fraud",metric="roc_auc"}})')
    assert realized_vs_estimated["legendFormat"] == "{{kind}}"
    assert reference["expr"] == ('max by (cluster, namespace, metric) (driftwatch_model_performance_reference'
                                 f'{{{SCOPE},model="fraud",metric="roc_auc"}})')
    assert threshold["expr"] == ('max by (cluster, namespace, kind) (driftwatch_model_performance_threshold'
                                 f'{{{SCOPE},model="fraud",metric="roc_auc"}})')


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
    assert _exprs(_panel(fraud, "Label coverage")) == [
        f'max by (cluster, namespace, model) (driftwatch_label_coverage_ratio{{{SCOPE},model="fraud"}})']
    lag = _panel(fraud, "Label lag")
    assert [t["legendFormat"] for t in lag["targets"]] == ["p50", "p90"]
    assert _exprs(lag)[1] == ('histogram_quantile(0.9, sum by (cluster, namespace, le) '
                              f'(rate(driftwatch_label_lag_seconds_bucket{{{SCOPE},model="fraud"}}[$__rate_interval])))')
    # The line is the model's label_delay (7d): later labels are not joined.
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 7 * 86400
    outcomes = _panel(fraud, "Labels by outcome")
    assert _exprs(outcomes) == [
        f'sum by (cluster, namespace, outcome) (rate(driftwatch_labels_total{{{SCOPE},model="fraud"}}[$__rate_interval]))']


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


# -- variables an SRE can trust: datasource, cluster, namespace; no model dropdown that lies -------------


@pytest.fixture(scope="module")
def every_board(boards: dict[str, dict[str, Any]], performance_boards: dict[str, dict[str, Any]]
                ) -> dict[str, dict[str, Any]]:
    """The dashboards of the example, performance and override configs, by config and filename."""
    out = {f"example/{k}": v for k, v in boards.items()}
    out |= {f"performance/{k}": v for k, v in performance_boards.items()}
    out |= {f"override/{k}": v for k, v in dashboards.generate(load_config(OVERRIDE)).items()}
    return out


def _query_exprs(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and annotation: what draws data."""
    for where, expr in expressions(board):
        if not where.startswith("variable"):
            yield where, expr


def _variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


def _selector_of(variable: dict[str, Any]) -> Selector:
    m = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["query"])
    assert m, variable["query"]
    (selector,) = selectors(m.group(1))
    return selector


def _per_model(every_board: dict[str, dict[str, Any]]) -> Iterator[tuple[str, Config, dict[str, Any]]]:
    configs = {"example": load_config(EXAMPLE), "performance": load_config(PERFORMANCE), "override": load_config(OVERRIDE)}
    for key, board in every_board.items():
        config, filename = key.split("/")
        if filename.startswith("driftwatch-model-"):
            name = filename.removeprefix("driftwatch-model-").removesuffix(".json")
            yield key, configs[config], board | {"_model": name}


@pytest.mark.parametrize("label", ["cluster", "namespace"])
def test_every_selector_carries_the_cluster_and_namespace_matchers(
        every_board: dict[str, dict[str, Any]], label: str) -> None:
    wanted = Matcher(label, "=~", f"${label}")
    for filename, board in every_board.items():
        for where, expr in _query_exprs(board):
            for selector in selectors(expr):
                assert wanted in selector.matchers, f"{filename} {where}: {selector.name} without {label}=~\"${label}\""


@pytest.mark.parametrize("label", ["cluster", "namespace"])
def test_cluster_and_namespace_variables_default_to_all_matching_series_without_the_label(
        every_board: dict[str, dict[str, Any]], label: str) -> None:
    for filename, board in every_board.items():
        variable = _variables(board)[label]
        assert (variable["type"], variable["multi"], variable["includeAll"]) == ("query", True, True), filename
        assert variable["allValue"] == ".*", filename
        assert variable["current"]["value"] == "$__all", filename


def test_the_datasource_variable_comes_first_and_picks_prometheus(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, board in every_board.items():
        first = board["templating"]["list"][0]
        assert (first["name"], first["type"], first["query"]) == ("datasource", "datasource", "prometheus"), filename


def test_namespace_choices_follow_the_chosen_cluster(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, board in every_board.items():
        selector = _selector_of(_variables(board)["namespace"])
        assert Matcher("cluster", "=~", "$cluster") in selector.matchers, filename


@pytest.mark.parametrize("label", ["cluster", "namespace"])
def test_model_and_column_choices_follow_the_chosen_cluster_and_namespace(
        every_board: dict[str, dict[str, Any]], label: str) -> None:
    for filename, board in every_board.items():
        for name in ("model", "feature"):
            if name in _variables(board):
                selector = _selector_of(_variables(board)[name])
                assert Matcher(label, "=~", f"${label}") in selector.matchers, f"{filename} variable {name}"


def test_a_model_dashboard_has_no_model_variable(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, _config, board in _per_model(every_board):
        assert "model" not in _variables(board), filename


def test_a_model_dashboard_never_mentions_a_model_variable(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, _config, board in _per_model(every_board):
        board = {k: v for k, v in board.items() if k != "_model"}
        assert "$model" not in json.dumps(board), filename


def test_every_selector_of_a_model_dashboard_names_that_model(every_board: dict[str, dict[str, Any]]) -> None:
    """Sidecar histograms and gauges carry no `model` label: they are joined (on instance) to the model's
    own sidecar counter in the same expression, which names the model."""
    for filename, _config, board in _per_model(every_board):
        this = Matcher("model", "=", board["_model"])
        for where, expr in expressions(board):
            found = selectors(expr)
            for selector in found:
                if selector.name in SIDECAR_METRICS and not selector.matching("model"):
                    assert any(this in s.matchers for s in found), f"{filename} {where}: {selector.name} not joined"
                    continue
                assert selector.matching("model") == [this], f"{filename} {where}: {selector.name}"


def test_a_model_dashboard_queries_only_its_own_columns(every_board: dict[str, dict[str, Any]]) -> None:
    """Every `feature` matcher names this model's columns, or the `feature` variable filled from its series."""
    for filename, config, board in _per_model(every_board):
        own = {c.name for c in config.model(board["_model"]).columns}
        for where, expr in expressions(board):
            for selector in selectors(expr):
                for m in selector.matching("feature"):
                    named = {m.value} if m.op == "=" else set(m.value.split("|"))
                    assert named == {"$feature"} or named <= own, f"{filename} {where}: {m}"


def test_the_column_variable_lists_only_the_models_columns(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, _config, board in _per_model(every_board):
        selector = _selector_of(_variables(board)["feature"])
        assert selector.matching("model") == [Matcher("model", "=", board["_model"])], filename


def test_a_model_dashboard_lists_the_other_dashboards(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, _config, board in _per_model(every_board):
        dropdowns = [link for link in board["links"] if link["type"] == "dashboards"]
        assert [(d["tags"], d["includeVars"], d["keepTime"]) for d in dropdowns] == [(["driftwatch"], True, True)], filename


def test_the_model_dashboard_says_why_it_has_no_model_dropdown(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, _config, board in _per_model(every_board):
        assert "No model dropdown" in board["description"], filename


MONITOR_ITSELF = {HTTP_REQUESTS_TOTAL, f"{HTTP_REQUEST_DURATION_SECONDS}_bucket", STORE_SIZE_BYTES}
"""The monitor's own series: no `model` label to follow."""


def test_every_overview_selector_follows_the_model_variable(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, board in every_board.items():
        if filename.endswith("driftwatch-overview.json"):
            for where, expr in _query_exprs(board):
                for selector in selectors(expr):
                    if selector.name not in MONITOR_ITSELF:
                        assert selector.matching("model") == [Matcher("model", "=~", "$model")], f"{filename} {where}"


def test_the_monitors_own_series_are_not_filtered_by_a_model(every_board: dict[str, dict[str, Any]]) -> None:
    own = [s for name, board in every_board.items() if name.endswith("driftwatch-overview.json")
           for _, expr in _query_exprs(board) for s in selectors(expr) if s.name in MONITOR_ITSELF]
    assert own and all(s.matching("model") == [] for s in own)


def test_the_overview_hard_codes_no_column(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, board in every_board.items():
        if filename.endswith("driftwatch-overview.json"):
            for where, expr in expressions(board):
                assert all(not s.matching("feature") for s in selectors(expr)), f"{filename} {where}"


# -- JSON that strict readers accept ----------------------------------------------------------------------


def _nulls(value: Any, path: str = "") -> Iterator[str]:
    if value is None:
        yield path or "/"
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nulls(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nulls(v, f"{path}[{i}]")


def test_no_dashboard_carries_an_explicit_null(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, board in every_board.items():
        assert list(_nulls(json.loads(dumps(board)))) == [], filename


def test_no_configmap_dashboard_carries_an_explicit_null(example: Config) -> None:
    for cm in dashboards.configmaps(example):
        for filename, text in cm["data"].items():
            assert list(_nulls(json.loads(text))) == [], filename


def test_nulls_inside_lists_are_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="null inside a list"):
        without_nulls({"a": [1, None]})


def _foundation_sdk_round_trip(board: dict[str, Any]) -> dict[str, Any]:
    """The dashboard read by grafana-foundation-sdk's `Dashboard.from_json` (with its panel and Prometheus
    query plugins registered, as its own loaders do) and written back with its JSON encoder."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    parsed = Dashboard.from_json(json.loads(dumps(board)))
    return json.loads(json.dumps(parsed, cls=JSONEncoder))


def _what_a_user_sees(panel: dict[str, Any]) -> dict[str, Any]:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    return {
        "type": panel["type"],
        "title": panel["title"],
        "description": panel.get("description"),
        "gridPos": panel["gridPos"],
        "datasource": panel.get("datasource"),
        "repeat": panel.get("repeat"),
        "unit": defaults.get("unit"),
        "thresholds": [(s["color"], s.get("value")) for s in defaults.get("thresholds", {}).get("steps", [])],
        "transformations": panel.get("transformations", []) if panel["type"] == "table" else [],
        "targets": [(t["refId"], t["expr"], t.get("legendFormat"), t.get("instant"), t.get("format"))
                    for t in panel.get("targets", [])],
    }


def test_grafana_foundation_sdk_parses_every_dashboard(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, board in every_board.items():
        assert _foundation_sdk_round_trip(board)["uid"] == board["uid"], filename


def test_grafana_foundation_sdk_round_trips_every_panel(every_board: dict[str, dict[str, Any]]) -> None:
    for filename, board in every_board.items():
        again = _foundation_sdk_round_trip(board)
        assert [_what_a_user_sees(p) for p in again["panels"]] == [_what_a_user_sees(p) for p in board["panels"]], filename


def test_grafana_foundation_sdk_round_trips_every_variable(every_board: dict[str, dict[str, Any]]) -> None:
    def seen(v: dict[str, Any]) -> tuple[Any, ...]:
        return (v["name"], v["type"], v["query"], v.get("multi"), v.get("includeAll"), v.get("allValue"))

    for filename, board in every_board.items():
        again = _foundation_sdk_round_trip(board)
        assert [seen(v) for v in again["templating"]["list"]] == [seen(v) for v in board["templating"]["list"]], filename


def test_models_of_one_name_in_two_namespaces_get_a_dashboard_each() -> None:
    boards = dashboards.generate(load_config(ROOT / "tests" / "alerts" / "configs" / "namespaces.yaml"))
    assert {"driftwatch-model-payments.fraud.json", "driftwatch-model-risk.fraud.json"} <= set(boards)


@pytest.mark.parametrize("namespace", ["payments", "risk"])
def test_a_namespaced_models_dashboard_selects_its_namespace_only(namespace: str) -> None:
    board = dashboards.generate(load_config(ROOT / "tests" / "alerts" / "configs" / "namespaces.yaml"))[
        f"driftwatch-model-{namespace}.fraud.json"]
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets", []) if "driftwatch_" in t.get("expr", "")
             and 'model="fraud"' in t["expr"]]
    assert exprs and all(f'namespace="{namespace}",model="fraud"' in e for e in exprs)
