"""Prometheus alert rules generated from the driftwatch config, like a monitoring mixin.

`rules(config)` is the `groups:` document (promtool, Prometheus `rule_files`), `prometheus_rule(...)`
the same rules as a PrometheusRule for the Prometheus Operator, `unit_tests(config)` the promtool
tests proving them, `inhibit_rules()` the Alertmanager inhibition that keeps a warning quiet under
its critical twin; `write(...)` puts them on disk. Output is deterministic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alerts import crd
from alerts.inhibition import inhibit_rules
from alerts.rules import groups as rules
from alerts.unittests import RULES_FILE
from alerts.unittests import unit_tests as _unit_tests
from monitor.core.config import Config

__all__ = [
    "CRD_FILE", "INHIBIT_FILE", "RULES_FILE", "TESTS_FILE", "dump", "inhibit_rules", "prometheus_rule", "rules", "unit_tests", "write",
]

TESTS_FILE = "rules.test.yaml"
INHIBIT_FILE = "alertmanager-inhibit.yaml"
"""`inhibit_rules:` to merge into the Alertmanager configuration."""
CRD_FILE = "prometheusrule.yaml"


def prometheus_rule(
    config: Config, name: str = "driftwatch", namespace: str = "monitoring", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return crd.prometheus_rule(rules(config), name, namespace, labels or {})


def unit_tests(config: Config) -> dict[str, Any]:
    return _unit_tests(config, RULES_FILE)


def dump(document: dict[str, Any]) -> str:
    """Deterministic YAML: sorted keys, no line wrapping (PromQL stays on one line)."""
    return yaml.safe_dump(document, sort_keys=True, width=1_000_000, allow_unicode=True)


def write(config: Config, out_dir: Path, crd_options: dict[str, Any] | None = None) -> list[Path]:
    """Write rules.yaml, rules.test.yaml and alertmanager-inhibit.yaml, and prometheusrule.yaml given
    `crd_options` (`name`, `namespace`, `labels`); returns the paths."""
    docs = {RULES_FILE: rules(config), TESTS_FILE: unit_tests(config), INHIBIT_FILE: inhibit_rules()}
    if crd_options is not None:
        docs[CRD_FILE] = prometheus_rule(config, **crd_options)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, doc in sorted(docs.items()):
        path = out_dir / filename
        path.write_text(dump(doc), encoding="utf-8")
        paths.append(path)
    return paths
