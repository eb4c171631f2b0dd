"""The typed config: what users see when their YAML is right, and when it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.core import methods as drift_methods
from monitor.core.config import ConfigError, ModelRouter, UnknownModel, load_config, parse_config
from monitor.core.units import format_duration, parse_duration, parse_size

EXAMPLE = Path(__file__).parents[2] / "examples" / "config.yaml"


def minimal(**model_overrides: object) -> dict:
    model = {
        "name": "m",
        "features": [{"name": "x", "type": "numeric"}],
        "reference": {"path": "ref.csv"},
    }
    model.update(model_overrides)
    return {"version": 1, "models": [model]}


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return dict(exc.value.errors)


def test_example_config_loads_and_resolves_paths_against_its_folder() -> None:
    cfg = load_config(EXAMPLE)
    assert [m.name for m in cfg.models] == ["wine", "churn"]
    wine = cfg.model("wine")
    assert wine.reference.path == EXAMPLE.parent / "data" / "wine_reference.csv"
    assert wine.reference.path.exists()
    assert cfg.server.store.path == EXAMPLE.parent / "driftwatch.db"
    assert [c.name for c in wine.columns][13:] == ["predicted_class", "confidence", "proba_class_0", "proba_class_1", "proba_class_2"]
    assert wine.performance is not None and wine.performance.headline == "accuracy"
    assert wine.features[0].resolved_source().index == 0
    # churn overrides the drift policy; wine inherits the defaults
    assert cfg.drift_policy(cfg.model("churn")).numeric.method == "wasserstein"
    assert cfg.drift_policy(wine) is cfg.defaults.drift
    assert cfg.retrain_for(wine) is not None and cfg.retrain_for(wine).cooldown == 6 * 3600
    assert cfg.local_log_dir(cfg.retrain_for(wine).local) == EXAMPLE.parent / "retrain-logs"


def test_local_retraining_logs_default_to_beside_the_store_not_the_config_folder() -> None:
    """The config may sit on a read-only mount (the chart's /etc/driftwatch): unset, logs go where the
    store is, which must be writable anyway; a set log_dir is relative to the config file as usual."""
    data = minimal(retrain={"local": {"command": ["true"]}})
    data["server"] = {"store": {"path": "/var/lib/driftwatch/driftwatch.db"}}
    cfg = parse_config(data, base_dir=Path("/etc/driftwatch"))
    local = cfg.retrain_for(cfg.models[0]).local
    assert local is not None and cfg.local_log_dir(local) == Path("/var/lib/driftwatch/retrain-logs")
    data["models"][0]["retrain"]["local"]["log_dir"] = "logs"
    cfg = parse_config(data, base_dir=Path("/etc/driftwatch"))
    local = cfg.retrain_for(cfg.models[0]).local
    assert local is not None and cfg.local_log_dir(local) == Path("/etc/driftwatch/logs")


def test_every_error_is_reported_with_the_path_of_the_bad_field() -> None:
    data = minimal(featurs=[], window={"records": 10, "step": 20})
    data["models"][0]["features"][0]["type"] = "numerc"
    data["defaults"] = {"drift": {"dataset_drift_share": 1.5}}
    errs = errors_of(data)
    assert "unknown key" in errs["models[0:m].featurs"]
    assert "'numeric', 'categorical', 'datetime', 'text' or 'embedding'" in errs["models[0:m].features[0:x].type"]
    assert "step (20) must not exceed records (10)" in errs["models[0:m].window"]
    assert "less than or equal to 1" in errs["defaults.drift.dataset_drift_share"]


@pytest.mark.parametrize(
    ("override", "path", "fragment"),
    [
        ({"name": "Wine_Model"}, "models[0:Wine_Model].name", "DNS label"),
        ({"features": []}, "models[0:m].features", "at least 1"),
        (
            {"features": [{"name": "x", "type": "numeric", "drift": {"method": "chisquare"}}]},
            "models[0:m].features[0:x]",
            "not available for numeric",
        ),
        (
            {"features": [{"name": "x", "type": "numeric", "source": {"key": "a", "index": 1}}]},
            "models[0:m].features[0:x].source",
            "not both",
        ),
        (
            {"outputs": [{"name": "x", "type": "numeric"}]},
            "models[0:m]",
            "defined twice",
        ),
        ({"window": {"records": None}}, "models[0:m].window", "needs `records` and/or `duration`"),
        ({"window": {"duration": "soon"}}, "models[0:m].window.duration", "invalid duration"),
        ({"retrain": {"launcher": "kubernetes"}}, "models[0:m].retrain", "no `kubernetes.template`"),
        (
            {"retrain": {"local": {"command": ["true"]}, "enter_share": 0.2, "exit_share": 0.4}},
            "models[0:m].retrain",
            "exit_share (0.4) must not exceed enter_share (0.2)",
        ),
        (
            {"retrain": {"launcher": "kubernetes", "kubernetes": {"template": {"kind": "Pod"}}}},
            "models[0:m].retrain.kubernetes.template",
            "batch/v1 Job",
        ),
        (
            {
                "retrain": {
                    "launcher": "kubernetes",
                    "kubernetes": {"template": {"spec": {"template": {"spec": {"containers": [{"name": "t"}]}}}}},
                }
            },
            "models[0:m].retrain.kubernetes.template",
            "container 0 needs a `name` and an `image`",
        ),
        (
            {"features": [{"name": "x", "type": "numeric", "min_value": 100, "max_value": 0}]},
            "models[0:m].features[0:x]",
            "min_value (100) must not exceed max_value (0)",
        ),
        (
            {"features": [{"name": "x", "type": "numeric", "drift": {"method": "ks", "threshold": 5}}]},
            "models[0:m].features[0:x].drift",
            "threshold 5 must be below 1: method 'ks' is a p-value test",
        ),
        (
            {"drift": {"categorical": {"threshold": 1}}},
            "models[0:m].drift.categorical",
            "method 'auto' may resolve to a p-value test",
        ),
        (
            {"alerts": {"dataset_drift": {"warning": 0.6, "critical": 0.5}}},
            "models[0:m].alerts.dataset_drift",
            "must not exceed critical",
        ),
        ({"versions": {"max_tracked": 0}}, "models[0:m].versions.max_tracked", "greater than or equal to 1"),
        ({"versions": {"idle_after": "0s"}}, "models[0:m].versions.idle_after", "idle_after must be > 0"),
    ],
)
def test_invalid_fields_are_named(override: dict, path: str, fragment: str) -> None:
    errs = errors_of(minimal(**override))
    assert path in errs, errs
    assert fragment in errs[path]


def test_duplicate_model_names_and_non_mapping_documents() -> None:
    data = minimal()
    data["models"].append(dict(data["models"][0]))
    assert "duplicated: m" in errors_of(data)["(root)"]
    assert "expected a mapping" in errors_of(["not", "a", "mapping"])["(root)"]
    assert "got an empty document" in errors_of(None)["(root)"]


def test_load_config_reports_yaml_syntax_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        load_config(bad)
    (where, msg), = exc.value.errors
    assert where.startswith("line ") and "invalid YAML" in msg
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.yaml")


def test_durations_sizes_and_round_trip() -> None:
    assert parse_duration("15m") == 900 and parse_duration("1.5h") == 5400 and parse_duration(30) == 30
    assert parse_duration("250ms") == 0.25
    for bad in ("-1s", "abc", True, "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_size("10MiB") == 10 * 1024**2 and parse_size("1GB") == 10**9 and parse_size(512) == 512
    with pytest.raises(ValueError):
        parse_size("lots")
    for seconds in (0.5, 1, 59, 60, 900, 3600, 86400, 604800, 90):
        assert parse_duration(format_duration(seconds)) == seconds


def test_exported_features_apply_allowlist_then_cap(tmp_path: Path) -> None:
    data = minimal(features=[{"name": f"f{i}", "type": "numeric"} for i in range(5)])
    data["metrics"] = {"max_features_per_model": 2, "feature_allowlist": ["f4", "f1", "f3"]}
    cfg = parse_config(data)
    assert cfg.exported_features(cfg.models[0]) == ["f1", "f3"]


def test_alert_for_is_spelled_like_prometheus() -> None:
    cfg = parse_config(minimal(alerts={"feature_drift": {"for": "45m"}}))
    assert cfg.alerts_for(cfg.models[0]).feature_drift.for_ == 2700
    assert yaml.safe_load(EXAMPLE.read_text())["defaults"]["alerts"]["dataset_drift"]["for"] == "15m"


def test_a_false_alarm_budget_needs_the_pace_of_windows() -> None:
    errs = errors_of(minimal(false_alarm_budget={"alarms": 1, "period": "30d"}))
    assert "expected_records_per_second" in errs["models[0:m]"]
    ok = parse_config(minimal(false_alarm_budget={"alarms": 1, "expected_records_per_second": 5}))
    assert ok.models[0].false_alarm_budget.expected_records_per_second == 5
    timed = minimal(false_alarm_budget={"alarms": 1}, window={"records": 500, "step": 100, "step_duration": "1m"})
    assert parse_config(timed).models[0].window.step_duration == 60


@pytest.mark.parametrize(
    ("resources", "path", "fragment"),
    [
        ({"namespace": "ML Team/../kube-system"}, "models[0:m].resources.namespace", "not a Kubernetes namespace name"),
        ({"namespace": "a" * 64}, "models[0:m].resources.namespace", "at most 63"),
        ({"selector": {"app name": "wine"}}, "models[0:m].resources.selector", "label key 'app name'"),
        ({"selector": {"app": "wine,env!=prod"}}, "models[0:m].resources.selector", "value 'wine,env!=prod'"),
        ({"selector": {"app": "x" * 64}}, "models[0:m].resources.selector", "at most 63"),
        ({"selector": {"Example.com/app": "wine"}}, "models[0:m].resources.selector", "prefix 'Example.com' is not a DNS subdomain"),
        ({"selector": {"/app": "wine"}}, "models[0:m].resources.selector", "prefix '' is not a DNS subdomain"),
        ({"selector": {"example.com/": "wine"}}, "models[0:m].resources.selector", "name '' must be 1-63"),
    ],
)
def test_resources_follow_kubernetes_name_grammar(resources: dict, path: str, fragment: str) -> None:
    """The selector is sent as `key=value,...`: a comma or `!=` in a value would add requirements."""
    errs = errors_of(minimal(resources=resources))
    assert path in errs, errs
    assert fragment in errs[path]


def test_valid_kubernetes_selectors_and_namespaces_load() -> None:
    selector = {"app.kubernetes.io/name": "wine-1.2_x", "tier": "", "example.com/Team_A": "ML"}
    cfg = parse_config(minimal(resources={"namespace": "ml-prod", "selector": selector}))
    assert cfg.models[0].resources.selector == selector and cfg.models[0].resources.namespace == "ml-prod"


# -- drift methods come from the one registry (monitor/core/methods.py) ----------------------------


def _feature_errors(kind: str, method: str) -> dict[str, str]:
    feature = {"name": "x", "type": kind, "drift": {"method": method}}
    try:
        parse_config(minimal(features=[feature]))
    except ConfigError as exc:
        return dict(exc.errors)
    return {}


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
@pytest.mark.parametrize("method", [m.name for m in drift_methods.METHODS])
def test_a_feature_accepts_exactly_the_methods_the_registry_declares_for_its_kind(kind: str, method: str) -> None:
    accepted = not _feature_errors(kind, method)
    assert accepted == (kind in drift_methods.get(method).kinds)


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_an_unknown_method_error_lists_auto_and_the_registry_methods_of_the_kind(kind: str) -> None:
    message = " ".join(_feature_errors(kind, "kolmogorov").values())
    assert message.endswith("choose one of " + ", ".join(("auto", *drift_methods.names_for(kind))))  # type: ignore[arg-type]


@pytest.mark.parametrize("method", sorted(drift_methods.P_VALUE_METHODS))
def test_a_p_value_method_rejects_a_threshold_of_one_or_more(method: str) -> None:
    kind = "numeric" if "numeric" in drift_methods.get(method).kinds else "categorical"
    policy = {"drift": {kind: {"method": method, "threshold": 5}}}
    with pytest.raises(ConfigError, match="must be below 1"):
        parse_config(minimal(**policy))


@pytest.mark.parametrize("method", sorted(drift_methods.DISTANCE_METHODS))
def test_a_distance_method_accepts_a_threshold_above_one(method: str) -> None:
    kind = "numeric" if "numeric" in drift_methods.get(method).kinds else "categorical"
    policy = {"drift": {kind: {"method": method, "threshold": 5}}}
    assert getattr(parse_config(minimal(**policy)).models[0].drift, kind).threshold == 5


CLASSIFIER_OUTPUTS = [{"name": "pred", "type": "categorical"}, {"name": "p_yes", "type": "numeric"}, {"name": "kind", "type": "categorical"}]


def _performance(**performance: object) -> dict:
    data = minimal(outputs=CLASSIFIER_OUTPUTS)
    data["models"][0]["performance"] = {"task": "classification", "prediction": "pred", **performance}
    return data


@pytest.mark.parametrize(
    ("performance", "path", "fragment"),
    [
        ({"prediction": "nope"}, "models[0:m]", "not an output column"),
        ({"probabilities": {"yes": "kind"}}, "models[0:m]", "is not a numeric output column"),
        ({"metric": "roc_auc"}, "models[0:m].performance", "it needs `probabilities`"),
        ({"metric": "mae"}, "models[0:m].performance", "not available for this classification model"),
        ({"task": "regression", "prediction": "p_yes", "probabilities": {"yes": "p_yes"}}, "models[0:m].performance", "are for classification"),
        ({"task": "regression", "prediction": "kind"}, "models[0:m]", "must be a numeric output"),
        ({"label_column": "x"}, "models[0:m]", "is also a feature or output column"),
        ({"false_alarm_rate": 0.7}, "models[0:m].performance.false_alarm_rate", "less than 0.5"),
        ({"min_labels": 3}, "models[0:m].performance.min_labels", "greater than or equal to 10"),
    ],
)
def test_a_performance_section_names_what_is_wrong(performance: dict, path: str, fragment: str) -> None:
    errors = errors_of(_performance(**performance))
    assert fragment in errors.get(path, ""), errors


@pytest.mark.parametrize(
    ("performance", "headline"),
    [({}, "accuracy"), ({"probabilities": {"yes": "p_yes"}}, "roc_auc"), ({"task": "regression", "prediction": "p_yes"}, "mae"),
     ({"metric": "f1_macro"}, "f1_macro")],
)
def test_the_headline_metric_defaults_by_task_and_probabilities(performance: dict, headline: str) -> None:
    cfg = parse_config(_performance(**performance))
    assert cfg.models[0].performance is not None and cfg.models[0].performance.headline == headline


def test_label_delay_defaults_to_fourteen_days() -> None:
    cfg = parse_config(_performance())
    assert cfg.models[0].performance is not None and cfg.models[0].performance.label_delay == 14 * 86400


def _models(*namespaces: str | None, **extra: object) -> dict:
    (model,) = minimal(**extra)["models"]
    return {"version": 1, "models": [{**model, **({"namespace": ns} if ns else {})} for ns in namespaces]}


def test_one_name_in_two_namespaces_is_two_models() -> None:
    cfg = parse_config(_models("team-a", "team-b"))
    assert [m.key for m in cfg.models] == ["team-a/m", "team-b/m"]


def test_a_name_shared_without_namespaces_is_refused() -> None:
    assert "each set `namespace`" in " ".join(errors_of(_models("team-a", None)).values())


def test_the_same_namespace_and_name_twice_is_refused() -> None:
    assert "duplicated: team-a/m" in " ".join(errors_of(_models("team-a", "team-a")).values())


def test_a_namespace_must_be_a_kubernetes_namespace() -> None:
    assert "models[0:m].namespace" in errors_of(_models("Team_A"))


def test_models_sharing_a_name_override_alerts_all_or_none() -> None:
    data = _models("team-a", "team-b")
    data["models"][0]["alerts"] = {"dataset_drift": {"warning": 0.6, "critical": 0.8}}
    assert "set `alerts` all or none" in " ".join(errors_of(data).values())


def test_a_namespaced_models_pods_are_in_its_namespace() -> None:
    assert parse_config(_models("team-a")).models[0].resources.namespace == "team-a"


@pytest.mark.parametrize(("name", "namespace", "key"), [
    ("m", "team-a", "team-a/m"),      # the namespace it names
    ("solo", None, "ml/solo"),        # the only model of that name, traffic naming no namespace
    ("any", "elsewhere", "any"),      # a model without a namespace takes traffic from any
    ("any", None, "any"),
])
def test_traffic_finds_its_model(name: str, namespace: str | None, key: str) -> None:
    router = ModelRouter(["team-a/m", "team-b/m", "ml/solo", "any"])
    assert router.key(name, namespace) == key


@pytest.mark.parametrize(("name", "namespace", "says"), [
    ("m", None, "several namespaces (team-a, team-b)"),
    ("m", "team-c", "in namespace 'team-c'"),
    ("solo", "team-a", "in namespace 'team-a'"),
    ("nobody", None, "no model 'nobody'"),
])
def test_traffic_without_a_model_is_refused_precisely(name: str, namespace: str | None, says: str) -> None:
    router = ModelRouter(["team-a/m", "team-b/m", "ml/solo", "any"])
    with pytest.raises(UnknownModel) as exc:
        router.key(name, namespace)
    assert says in exc.value.reason
