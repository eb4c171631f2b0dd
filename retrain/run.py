"""A retraining run as both launchers see it: its deterministic name and its environment contract."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.core.units import MAX_TIMESTAMP
from retrain.policy import Trigger

MAX_NAME = 63
_SUFFIX = "-retrain-"


class LaunchError(RuntimeError):
    """A run could not be started; `transient` says whether retries were exhausted or it was refused."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def job_name(model: str, fingerprint: str) -> str:
    """`<model>-retrain-<10 hex>`, at most 63 characters (a DNS label, and a valid label value).

    Deterministic in the trigger, so a second attempt (a retry, a restarted monitor, a second
    replica) asks for the same name and the API server's 409 AlreadyExists stops the duplicate.
    """
    digest = fingerprint[:10]
    prefix = model[: MAX_NAME - len(_SUFFIX) - len(digest)].rstrip("-")
    return f"{prefix}{_SUFFIX}{digest}"


def rfc3339(ts: float) -> str:
    """The stamp for a Job's environment; clamped to what RFC 3339 can write, so an odd sender clock
    (a store from before ingest bounded stamps) can never fail a launch."""
    return datetime.fromtimestamp(min(max(ts, 0.0), MAX_TIMESTAMP), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Run:
    name: str
    model: str
    fingerprint: str
    trigger: Trigger
    reference: str

    @property
    def model_name(self) -> str:
        """The model's name (`model` is its key: `namespace/name` for a namespaced model)."""
        return self.model.rpartition("/")[2]

    @property
    def model_namespace(self) -> str:
        """The model's namespace; empty for a model configured without one."""
        return self.model.rpartition("/")[0]

    def env(self) -> dict[str, str]:
        """The environment every retraining process or container gets."""
        t = self.trigger
        return {
            "DRIFTWATCH_MODEL": self.model_name,
            # only for a model configured with a namespace: a pipeline run refuses parameters it does not declare
            **({"DRIFTWATCH_MODEL_NAMESPACE": self.model_namespace} if self.model_namespace else {}),
            "DRIFTWATCH_TRIGGER": self.fingerprint,
            "DRIFTWATCH_WINDOW_START": rfc3339(t.window_start),
            "DRIFTWATCH_WINDOW_END": rfc3339(t.window_end),
            "DRIFTWATCH_DRIFTED_FEATURES": ",".join(t.drifted_features),
            "DRIFTWATCH_REPORT_URL": t.report_url or "",
            "DRIFTWATCH_REFERENCE": self.reference,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "trigger": self.trigger.to_json(),
            "reference": self.reference,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Run:
        return cls(
            name=d["name"],
            model=d["model"],
            fingerprint=d["fingerprint"],
            trigger=Trigger.from_json(d["trigger"]),
            reference=d["reference"],
        )
