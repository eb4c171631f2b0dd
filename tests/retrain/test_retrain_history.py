"""The retraining history: bounded decision list, counts that never go back."""

from __future__ import annotations

from pathlib import Path

from retrain.history import History, MlflowLink
from retrain.policy import Decision, ModelState, Trigger
from retrain.run import Run


def decide(history: History, model: str, i: int, action: str = "none", reason: str = "no_drift") -> None:
    history.record(Decision(model, 1_795_000_000.0 + i, "window", action, reason), ModelState(), None, None)  # type: ignore[arg-type]


def test_only_the_newest_decisions_stay_listed_but_counts_keep_everything(tmp_path: Path) -> None:
    history = History(tmp_path / "dw.db", keep_decisions=10)
    try:
        for i in range(25):
            decide(history, "wine", i, *(("skip", "cooldown") if i % 5 == 0 else ("none", "no_drift")))
        decide(history, "churn", 0)
        listed = history.recent_decisions("wine", limit=1000)
        assert [d.at - 1_795_000_000.0 for d in listed] == list(range(24, 14, -1))  # newest first, 10 kept
        assert len(history.recent_decisions("churn")) == 1  # trimming is per model
        # Counters exported to Prometheus must never go down when old rows are trimmed.
        assert history.decision_counts() == {"wine": {"no_drift": 20, "cooldown": 5}, "churn": {"no_drift": 1}}
    finally:
        history.close()


def test_an_mlflow_link_stays_with_its_run_across_a_reopen(tmp_path: Path) -> None:
    trigger = Trigger("window", 1_795_000_000.0, 1_795_000_600.0, 1.0, ("x",), None, "drift held")
    run = Run(name="wine-retrain-0123456789", model="wine", fingerprint="0123456789ab", trigger=trigger, reference="w.csv")
    history = History(tmp_path / "dw.db")
    history.adopt(run, "local", None, 1_795_000_700.0)
    history.link(run.name, MlflowLink("r1", (("wine", "7"), ("wine-onnx", "2")), 1_795_000_800.0))
    history.close()
    again = History(tmp_path / "dw.db")
    try:
        (job,) = again.jobs(model="wine")
        assert job.mlflow == MlflowLink("r1", (("wine", "7"), ("wine-onnx", "2")), 1_795_000_800.0)
    finally:
        again.close()


def test_a_run_without_a_link_has_none(tmp_path: Path) -> None:
    trigger = Trigger("window", 1_795_000_000.0, 1_795_000_600.0, 1.0, ("x",), None, "drift held")
    run = Run(name="wine-retrain-0123456789", model="wine", fingerprint="0123456789ab", trigger=trigger, reference="w.csv")
    history = History(tmp_path / "dw.db")
    try:
        history.adopt(run, "local", None, 1_795_000_700.0)
        assert history.job(run.name).mlflow is None  # type: ignore[union-attr]
    finally:
        history.close()


# Upgrades of files from older versions (a version-1 history keeps its counts) are tested with the
# schema that owns them: tests/monitor/test_store_schema.py.
