"""The chart's generated files (config in values, rules, dashboards, reference data, README table)
match what monitor.app.chartgen makes from examples/config.yaml, so they can never drift apart."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import by_kind, one, validate
from conftest import CHART, Render

from monitor.app import chartgen
from monitor.core.config import parse_config

REGENERATE = "python -m monitor.app.chartgen"


def test_committed_chart_files_are_not_stale() -> None:
    texts, copies = chartgen.chart_outputs(chartgen.DEFAULT_CONFIG, CHART)
    for rel, text in texts.items():
        assert (CHART / rel).read_text(encoding="utf-8") == text, f"charts/driftwatch/{rel} is stale: run `{REGENERATE}`"
    for rel, src in copies.items():
        assert (CHART / rel).read_bytes() == src.read_bytes(), f"charts/driftwatch/{rel} is stale: run `{REGENERATE}`"
    for folder in ("files/dashboards", "files/reference"):
        extra = {p.relative_to(CHART).as_posix() for p in (CHART / folder).iterdir()} - set(texts) - set(copies)
        assert not extra, f"left over from an older config: {sorted(extra)}; run `{REGENERATE}`"


def test_reference_mount_matches_the_values() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["reference"]["mountPath"] == chartgen.REFERENCE_MOUNT
    for model in values["config"]["models"]:
        assert model["reference"]["path"].startswith(chartgen.REFERENCE_MOUNT + "/")


def test_default_config_beyond_models_equals_the_builtin_defaults() -> None:
    """Helm merges a user's `config` into the default: only `models` may carry example choices."""
    config = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    full, bare = parse_config(config), parse_config({"models": config["models"]})
    owned = {"host", "port", "public_url", "auth_token_env", "store"}  # set by the chart's templates
    assert full.server.model_dump(exclude=owned) == bare.server.model_dump(exclude=owned)
    assert full.server.store.model_dump(exclude={"path"}) == bare.server.store.model_dump(exclude={"path"})
    assert (full.metrics, full.defaults) == (bare.metrics, bare.defaults)


def test_every_value_is_documented_in_the_readme_table() -> None:
    values_text = (CHART / "values.yaml").read_text()
    table = chartgen.values_table(values_text)
    keys = {line.split("|")[1].strip() for line in table.splitlines()[2:]}

    def leaves(node: Any, path: str) -> list[str]:
        if isinstance(node, dict) and node and path != "config":
            return [leaf for k, v in node.items() for leaf in leaves(v, f"{path}.{k}" if path else k)]
        return [path]

    for leaf in leaves(yaml.safe_load(values_text), ""):
        documented = [k for k in keys if leaf == k or leaf.startswith(k + ".")]
        assert documented, f"values.yaml key {leaf} has no `# --` comment"
    assert "| config | object | the example models `wine` and `churn` |" in table
    assert "| persistence.enabled | bool | `false` |" in table
    assert table in (CHART / "README.md").read_text()


def test_regeneration_follows_a_changed_config_and_removes_stale_files(tmp_path: Path) -> None:
    chart = tmp_path / "driftwatch"
    shutil.copytree(CHART, chart)
    examples = tmp_path / "examples"
    shutil.copytree(chartgen.DEFAULT_CONFIG.parent, examples)
    config = yaml.safe_load((examples / "config.yaml").read_text())
    config["models"] = [m for m in config["models"] if m["name"] == "churn"]
    config["models"][0]["name"] = "churn-v2"
    (examples / "config.yaml").write_text(yaml.safe_dump(config))

    chartgen.write_chart_files(examples / "config.yaml", chart)

    dashboards = sorted(p.name for p in (chart / "files" / "dashboards").iterdir())
    assert dashboards == ["driftwatch-model-churn-v2.json", "driftwatch-overview.json"]
    assert sorted(p.name for p in (chart / "files" / "reference").iterdir()) == ["churn_reference.csv"]
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert [m["name"] for m in values["config"]["models"]] == ["churn-v2"]
    assert "wine" not in (chart / "files" / "rules.yaml").read_text()
    assert (chart / "values.yaml").read_text().startswith((CHART / "values.yaml").read_text().split("config:\n")[0])


def test_values_overlay_installs_a_custom_config_with_matching_rules_and_dashboards(tmp_path: Path, render: Render) -> None:
    config = yaml.safe_load(chartgen.DEFAULT_CONFIG.read_text())
    config["models"] = [m for m in config["models"] if m["name"] == "wine"]
    config["models"][0]["name"] = "vino"
    # Written as for a local check-config run: the overlay moves the reference under the chart's mount.
    config["models"][0]["reference"]["path"] = str(chartgen.DEFAULT_CONFIG.parent / "data" / "wine_reference.csv")
    config["defaults"]["alerts"]["dataset_drift"]["warning"] = 0.25
    config["defaults"]["alerts"]["job_label"] = "dw-monitor"
    assert config["server"]["public_url"].startswith("http://127.0.0.1")  # dropped: the Service URL is used
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    overlay_path = tmp_path / "overlay.yaml"
    assert chartgen.main(["--config", str(path), "--values-out", str(overlay_path)]) == 0
    overlay = yaml.safe_load(overlay_path.read_text())

    objs = render(overlay | {k: {**overlay.get(k, {}), "enabled": True} for k in ("prometheusRule", "serviceMonitor")})
    for obj in objs:
        validate(obj)
    rule = one(objs, "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any("(driftwatch_dataset_drift_share) >= 0.25" in e for e in exprs)
    # The monitor is scraped under the job name the rules look for.
    (relabel,) = [r for r in one(objs, "ServiceMonitor")["spec"]["endpoints"][0]["relabelings"] if r["targetLabel"] == "job"]
    assert relabel["replacement"] == "dw-monitor"
    assert any('absent(up{job="dw-monitor"})' in e for e in exprs)
    assert not any('job="driftwatch"' in e for e in exprs)
    links = [r["annotations"]["report_url"] for g in rule["spec"]["groups"] for r in g["rules"] if "report_url" in r["annotations"]]
    assert links
    assert all(u.startswith("http://dw-driftwatch.driftwatch.svc:8080/reports/") for u in links)
    boards = sorted(k for cm in by_kind(objs, "ConfigMap") if "grafana_dashboard" in cm["metadata"]["labels"] for k in cm["data"])
    assert boards == ["driftwatch-model-vino.json", "driftwatch-overview.json"]
    rendered = parse_config(yaml.safe_load(one(objs, "ConfigMap", "dw-driftwatch")["data"]["config.yaml"]))
    assert [m.name for m in rendered.models] == ["vino"]
    assert rendered.models[0].reference.path == Path("/etc/driftwatch/reference/wine_reference.csv")
    assert not [cm for cm in by_kind(objs, "ConfigMap") if cm["metadata"]["name"].endswith("-reference")]


def test_cli_reports_a_bad_config_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: Bad_Name\n")
    assert chartgen.main(["--config", str(bad), "--values-out", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err
    assert "models[0:Bad_Name].name" in err
    assert "Traceback" not in err
    assert chartgen.main(["--config", str(tmp_path / "missing.yaml"), "--values-out", str(tmp_path / "o.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_models_sharing_one_reference_file_mount_it_once(tmp_path: Path) -> None:
    """A canary and its stable model often share a reference; two different files of one name clash."""
    (tmp_path / "ref.csv").write_text("x\n1\n2\n3\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "ref.csv").write_text("x\n4\n5\n6\n")
    model = {"features": [{"name": "x", "type": "numeric"}], "reference": {"path": "ref.csv"}}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"version": 1, "models": [{"name": "churn", **model}, {"name": "churn-canary", **model}]}))
    raw, sources = chartgen.incluster_config(cfg)
    assert sources == [tmp_path / "ref.csv"]
    assert raw["models"][0]["reference"]["path"] == raw["models"][1]["reference"]["path"]
    clash = {**model, "reference": {"path": "other/ref.csv"}}
    cfg.write_text(yaml.safe_dump({"version": 1, "models": [{"name": "churn", **model}, {"name": "canary", **clash}]}))
    with pytest.raises(chartgen.ConfigError, match=r"two reference files are named ref\.csv"):
        chartgen.incluster_config(cfg)


def test_generated_files_depend_on_no_server_setting_but_the_public_url() -> None:
    """The chart compares only `config` without `server` with files/generated-from.yaml: this keeps that sound."""
    config = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    other = {**config, "server": {"host": "10.0.0.1", "port": 9999, "auth_token_env": "T", "max_body_bytes": "1MiB",
                                  "cloudevents_join_timeout": "5s", "evaluation_interval": "1m",
                                  "store": {"path": "/x.db", "max_age": "1d", "max_bytes": "10MiB"}}}
    assert chartgen.generated_files(other) == chartgen.generated_files(config)
    shipped = yaml.safe_load((CHART / chartgen.GENERATED_FROM).read_text())
    assert shipped == {k: v for k, v in config.items() if k != "server"}


@pytest.mark.parametrize(("url", "kept"), [("http://127.0.0.1:8080", False), ("http://localhost:8080/", False),
                                           ("http://[::1]:8080", False), ("https://drift.example.com", True)])
def test_only_a_loopback_public_url_is_replaced_by_the_services(tmp_path: Path, url: str, kept: bool) -> None:
    config = yaml.safe_load(chartgen.DEFAULT_CONFIG.read_text())
    config["server"]["public_url"] = url
    for model in config["models"]:
        model["reference"]["path"] = str(chartgen.DEFAULT_CONFIG.parent / model["reference"]["path"])
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    raw, _ = chartgen.incluster_config(path)
    assert raw["server"].get("public_url") == (url if kept else None)
