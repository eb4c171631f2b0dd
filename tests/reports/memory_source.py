"""A real, in-memory `ReportSource`: the churn example's windows evaluated by the real drift engine.

Windows 1-3 are resampled from the reference (no drift), windows 4-5 are slices of the drifted
current data, so the history plot shows the drift arriving.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from monitor.core.config import Config, load_config
from monitor.drift import build_profile, evaluate, specs_from_config
from monitor.reports.source import Evaluation, PerformanceHistory, text_examples

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "config.yaml"
DATA = ROOT / "examples" / "data"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, fixed so pages are deterministic
WINDOW = 400


class FramesSource:
    """The `ReportSource` reads over windows held in memory (`frames` by window id, `_of` per model)."""

    config: Config
    reference: pd.DataFrame
    frames: dict[int, pd.DataFrame]

    def models(self) -> Sequence[str]:
        return [m.name for m in self.config.models]

    def evaluations(self, model: str, limit: int, before: int | None = None) -> Sequence[Evaluation]:
        evs = [e for e in self._of(model) if before is None or e.window_id <= before]
        return evs[-limit:]

    def evaluation(self, model: str, window_id: int) -> Evaluation | None:
        return next((e for e in self._of(model) if e.window_id == window_id), None)

    def window_frame(self, model: str, window_id: int) -> pd.DataFrame:
        return self.frames[window_id]

    def reference_frame(self, model: str, reference_id: int | None = None) -> pd.DataFrame:
        return self.reference

    def text_examples(self, model: str) -> dict[str, int]:
        return text_examples(self.config.model(model))

    def _of(self, model: str) -> list[Evaluation]:
        raise NotImplementedError


class MemorySource(FramesSource):
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or load_config(CONFIG)
        self.reference = pd.read_csv(DATA / "churn_reference.csv")
        current = pd.read_csv(DATA / "churn_current.csv")
        unchanged = self.reference.sample(n=3 * WINDOW, random_state=7).reset_index(drop=True)
        frames = [unchanged.iloc[i * WINDOW : (i + 1) * WINDOW] for i in range(3)]
        frames += [current.iloc[i * WINDOW : (i + 1) * WINDOW] for i in range(2)]
        specs, settings = specs_from_config(self.config, "churn")
        profile = build_profile(self.reference, specs, settings)
        self.frames: dict[int, pd.DataFrame] = {}
        self.churn: list[Evaluation] = []
        for i, frame in enumerate(frames):
            window_id = (i + 1) * WINDOW
            self.frames[window_id] = frame.reset_index(drop=True)
            self.churn.append(
                Evaluation(
                    model="churn", window_id=window_id, start=T0 + 600 * i, end=T0 + 600 * (i + 1),
                    first_seq=i * 40 + 1, last_seq=(i + 1) * 40, n_records=len(frame),
                    evaluated_at=T0 + 600 * (i + 1) + 2, result=evaluate(profile, frame).to_dict(),
                )
            )

    def performance(self, model: str, limit: int, before: int | None = None) -> PerformanceHistory | None:
        """None for a model without ground truth (churn); wine has a performance section but no window here."""
        return None if self.config.model(model).performance is None else PerformanceHistory((), {})

    def _of(self, model: str) -> list[Evaluation]:
        return self.churn if model == "churn" else []
