"""The runtime's `WindowVerdict` as the retraining policy's `WindowEvaluation` (retrain.adapter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.core.config import Config, parse_config
from monitor.drift import DatasetResult, DriftResult, FeatureResult, QualityResult
from monitor.runtime import WindowVerdict
from retrain.adapter import window_evaluation
from retrain.controller import RetrainController
from retrain.policy import WindowEvaluation


def config(public_url: str | None) -> Config:
    features = [{"name": "x", "type": "numeric", "critical": True}, {"name": "y", "type": "numeric"},
                {"name": "z", "type": "numeric", "critical": True}]
    data: dict[str, Any] = {
        "models": [{"name": "wine", "features": features, "outputs": [{"name": "score", "type": "numeric"}],
                    "reference": {"path": "wine.csv"},
                    "retrain": {"launcher": "local", "dry_run": True, "consecutive_windows": 1, "min_records": 10,
                                "local": {"command": ["true"]}}}],
    }
    if public_url is not None:
        data["server"] = {"public_url": public_url}
    return parse_config(data)


def feature(name: str, drifted: bool, role: str = "feature") -> FeatureResult:
    return FeatureResult(name=name, kind="numeric", role=role, method="ks", score=0.01 if drifted else 0.5,  # type: ignore[arg-type]
                         p_value=0.01 if drifted else 0.5, threshold=0.05, drifted=drifted, n_reference=100,
                         n_current=100, quality=QualityResult(0.0, 0.0, 0.0, 0.0, 100))


def verdict(model: str = "wine") -> WindowVerdict:
    result = DriftResult(
        dataset=DatasetResult(drift_share=2 / 3, drifted=True, n_drifted=2, n_features=3, n_reference=100, n_current=100),
        features={"z": feature("z", True), "y": feature("y", True), "x": feature("x", False),
                  "score": feature("score", True, role="output")},
    )
    return WindowVerdict(model=model, window_start=1000.0, window_end=1300.0, n_records=120,
                         point=("count", 120.0), result=result, evaluated_at=1301.5)


def test_a_verdict_becomes_the_policys_window_evaluation() -> None:
    ev = window_evaluation(verdict(), config("http://monitor.example:8080/"))
    assert ev == WindowEvaluation(
        window_start=1000.0, window_end=1300.0, n_records=120, drift_share=2 / 3, dataset_drifted=True,
        drifted_features=("score", "y", "z"), critical_drifted=("z",),
        report_url="http://monitor.example:8080/reports/wine", point=("count", 120.0),
    )


def test_without_a_public_url_there_is_no_report_link() -> None:
    assert window_evaluation(verdict(), config(None)).report_url is None


def test_a_model_the_config_does_not_know_has_no_critical_columns() -> None:
    ev = window_evaluation(verdict("ghost"), config(None))
    assert ev.critical_drifted == ()
    assert ev.drifted_features == ("score", "y", "z")


def test_the_controller_decides_on_a_verdict(tmp_path: Path) -> None:
    controller = RetrainController(config(None), tmp_path / "driftwatch.db", clock=lambda: 2000.0)
    try:
        controller.on_verdict(verdict())
        (decision,) = controller.history.recent_decisions("wine")
    finally:
        controller.stop()
    assert (decision.action, decision.reason) == ("skip", "dry_run")


def test_the_reference_that_judged_the_window_reaches_the_policy() -> None:
    from dataclasses import replace

    ev = window_evaluation(replace(verdict(), reference_id=4), config(None))
    assert ev.reference_id == 4
