"""Which models one generated rule covers.

Models that keep the default settings of an alert share ONE rule whose `model` label comes from the
series (so a model added later is covered without regenerating); each model that overrides that
alert's settings gets its own rule, and is excluded from the shared one. Overrides are compared per
alert, so overriding the dataset-drift thresholds does not duplicate the other alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.core.config import AlertsConfig, Config, ModelConfig

__all__ = ["Scope", "scopes"]


@dataclass(frozen=True)
class Scope:
    """Models sharing one rule, their alert settings, and the PromQL matcher selecting them."""

    models: tuple[ModelConfig, ...]
    alerts: AlertsConfig
    matcher: str
    """`` (every model), `model="wine"` or `model!~"wine|churn"` (everyone but the overriders)."""

    @property
    def labels(self) -> dict[str, str]:
        """Rule labels: a model's own rule names its model, which also keeps promtool's duplicate-rule
        lint (same alert, same labels) quiet; the value equals the series' own `model` label."""
        if len(self.models) != 1 or self.matcher != self.models[0].matcher:
            return {}
        m = self.models[0]
        return {"model": m.name} if m.namespace is None else {"namespace": m.namespace, "model": m.name}

    def selector(self, metric: str, *extra: str) -> str:
        matchers = [m for m in (self.matcher, *extra) if m]
        return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def _settings(alerts: AlertsConfig, kind: str) -> tuple[Any, ...]:
    key: tuple[Any, ...] = (getattr(alerts, kind), alerts.runbook_url)
    if kind == "dataset_drift":
        key += (alerts.retrain_on_critical,)
    return key


def scopes(cfg: Config, kind: str) -> list[Scope]:
    """The scopes of alert `kind` (an AlertsConfig field such as `dataset_drift`), shared one first."""
    default = cfg.defaults.alerts
    shared = [m for m in cfg.models if _settings(cfg.alerts_for(m), kind) == _settings(default, kind)]
    own = [m for m in cfg.models if m not in shared]
    out = []
    if shared:
        # by name: models sharing a name override alerts all or none (the config says so), so no name here
        # is also the name of a shared-scope model in another namespace
        matcher = f'model!~"{"|".join(sorted({m.name for m in own}))}"' if own else ""
        out.append(Scope(tuple(shared), default, matcher))
    out.extend(Scope((m,), cfg.alerts_for(m), m.matcher) for m in own)
    return out
