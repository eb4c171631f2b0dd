"""The shipped inhibition rules in Debian's real Alertmanager (and amtool): a firing critical alert
mutes its warning twin of the same model, and nothing else."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerts import INHIBIT_FILE, inhibit_rules, write
from alerts.inhibition import alertmanager_config_inhibit_rules
from monitor.core.config import load_config
from tests.e2e.promstack import alertmanager, wait_for
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
WHERE = {"cluster": "eu-west", "namespace": "ml"}


def _alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, **WHERE, **labels}, "annotations": {"summary": "test"}}


# (alert, expected state): critical twins mute their warnings; other models, features and checks do not.
ALERTS: list[tuple[dict[str, Any], str]] = [
    (_alert("DriftwatchDatasetDrift", "critical", model="wine"), "active"),
    (_alert("DriftwatchDatasetDrift", "warning", model="wine"), "suppressed"),
    (_alert("DriftwatchDatasetDrift", "warning", model="churn"), "active"),
    (_alert("DriftwatchDatasetDrift", "warning", model="wine", namespace="ml-staging"), "active"),
    (_alert("DriftwatchDatasetDrift", "warning", model="wine", cluster="us-east"), "active"),
    (_alert("DriftwatchPerformanceDegraded", "critical", model="wine", kind="realized", metric="accuracy"), "active"),
    (_alert("DriftwatchPerformanceDegraded", "warning", model="wine", kind="estimated", metric="accuracy"), "suppressed"),
    (_alert("DriftwatchDataQuality", "critical", model="wine", feature="ash", check="missing"), "active"),
    (_alert("DriftwatchDataQuality", "info", model="wine", feature="ash", check="missing"), "suppressed"),
    (_alert("DriftwatchDataQuality", "warning", model="wine", feature="hue", check="missing"), "active"),
    (_alert("DriftwatchDataQuality", "warning", model="wine", feature="ash", check="out_of_range"), "active"),
    (_alert("DriftwatchFeatureDrift", "warning", model="wine", feature="ash", method="ks"), "active"),
    (_alert("SomeoneElsesAlert", "warning", model="wine"), "active"),
    (_alert("SomeoneElsesAlert", "critical", model="churn"), "active"),
    (_alert("DriftwatchNoTraffic", "warning", model="churn"), "active"),
]


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, str]]:
    workdir = tmp_path_factory.mktemp("inhibit")
    port = free_port()
    am = alertmanager(port=port, webhook_url="http://127.0.0.1:9/", workdir=workdir,
                      inhibit_rules=inhibit_rules()["inhibit_rules"])
    am.start()
    try:
        url = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{url}/api/v2/alerts", json=[a for a, _ in ALERTS], timeout=10)
        assert r.status_code == 200, r.text

        def all_seen() -> dict[int, str] | None:
            got = httpx.get(f"{url}/api/v2/alerts", timeout=10).json()
            by_labels = {tuple(sorted(a["labels"].items())): a["status"]["state"] for a in got}
            out = {i: by_labels.get(tuple(sorted(a["labels"].items())), "missing") for i, (a, _) in enumerate(ALERTS)}
            return out if "missing" not in out.values() else None

        yield wait_for("Alertmanager to hold every alert", all_seen, 20)
    finally:
        am.stop()


@pytest.mark.parametrize("i", range(len(ALERTS)), ids=lambda i: f"{ALERTS[i][0]['labels']['alertname']}-{ALERTS[i][1]}-{i}")
def test_alertmanager_mutes_exactly_the_lower_severity_twin(states: dict[int, str], i: int) -> None:
    assert states[i] == ALERTS[i][1]


def test_amtool_accepts_the_snippet_merged_into_a_configuration(tmp_path: Path) -> None:
    write(load_config(ROOT / "examples" / "config.yaml"), tmp_path)
    snippet = yaml.safe_load((tmp_path / INHIBIT_FILE).read_text())
    config = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}], **snippet}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    res = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_operator_form_says_the_same_rules() -> None:
    """AlertmanagerConfig's matchers ({name, value, matchType}) read back as the file's matchers."""
    as_file = [
        ([f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in r["sourceMatch"]],
         [f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in r["targetMatch"]], r["equal"])
        for r in alertmanager_config_inhibit_rules()
    ]
    assert as_file == [(r["source_matchers"], r["target_matchers"], r["equal"]) for r in inhibit_rules()["inhibit_rules"]]
