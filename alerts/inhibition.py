"""Alertmanager inhibition shipped with the rules: a firing alert silences its lower-severity twin.

DriftwatchDatasetDrift fires at warning and critical together above the critical threshold, and
DriftwatchPerformanceDegraded warns on the estimate before the labels confirm it at critical: without
inhibition the on-call engineer gets both pages for one problem. Each rule here mutes a driftwatch
alert while one of the same name, a higher severity and the same identity is firing. The identity
is the model's (`IDENTITY`: cluster, namespace, model) plus the labels that tell two instances of one
alert apart (`feature`, `check`); a label absent on both sides counts as equal, as Alertmanager
defines `equal`. `kind` is left out on purpose: the realized performance alert silences the
estimated one.

Two forms of the same rules: `inhibit_rules` for an Alertmanager configuration file, and
`alertmanager_config_inhibit_rules` for the Prometheus Operator's AlertmanagerConfig
(monitoring.coreos.com/v1alpha1), whose operator also restricts every rule to alerts whose
`namespace` label is the AlertmanagerConfig's namespace.
"""

from __future__ import annotations

from typing import Any

from alerts.rules import IDENTITY

__all__ = ["EQUAL", "SEVERITY_ORDER", "alertmanager_config_inhibit_rules", "inhibit_rules"]

SEVERITY_ORDER = ("critical", "warning", "info")
"""Severities the config allows, highest first."""
ALERTNAME = "Driftwatch.+"
EQUAL = ("alertname", *IDENTITY, "feature", "check")


def _pairs() -> list[tuple[str, list[str]]]:
    """(source severity, the lower severities it silences)."""
    return [(s, list(SEVERITY_ORDER[i + 1 :])) for i, s in enumerate(SEVERITY_ORDER[:-1])]


def inhibit_rules() -> dict[str, Any]:
    """`{"inhibit_rules": [...]}`, to merge into an Alertmanager configuration (matchers syntax, 0.22+)."""
    return {
        "inhibit_rules": [
            {
                "source_matchers": [f'alertname=~"{ALERTNAME}"', f'severity="{source}"'],
                "target_matchers": [f'alertname=~"{ALERTNAME}"', f'severity=~"{"|".join(targets)}"'],
                "equal": list(EQUAL),
            }
            for source, targets in _pairs()
        ]
    }


def alertmanager_config_inhibit_rules() -> list[dict[str, Any]]:
    """The same rules as an AlertmanagerConfig's `spec.inhibitRules`."""
    return [
        {
            "sourceMatch": [
                {"name": "alertname", "value": ALERTNAME, "matchType": "=~"},
                {"name": "severity", "value": source, "matchType": "="},
            ],
            "targetMatch": [
                {"name": "alertname", "value": ALERTNAME, "matchType": "=~"},
                {"name": "severity", "value": "|".join(targets), "matchType": "=~"},
            ],
            "equal": list(EQUAL),
        }
        for source, targets in _pairs()
    ]
