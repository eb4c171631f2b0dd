"""A `ReportSource` with ground truth: the wine example's windows, evaluated by the real drift engine
and judged by the real performance profile (CBPE and bootstrap thresholds), as the runtime stores them.

Five windows of 400 records drawn from the wine reference, each with a story a data scientist must
be able to read off the report:

| window | labels | what happens |
|---|---|---|
| 400  | all 400 | nothing: realized and estimated near the reference |
| 800  | 200 (50%) | nothing, half labelled |
| 1200 | 300, 35% of them wrong | realized degraded (the labels disagree with the model) |
| 1600 | 20 | the model's least confident records: estimated degraded; 20 labels are too few to judge |
| 2000 | none | estimate alone |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.config import Config, load_config
from monitor.drift import build_profile, evaluate, specs_from_config
from monitor.performance import LabelledRecords, PerformanceProfile
from monitor.reports.source import Evaluation, PerformanceHistory, StoredPerformance
from tests.reports.memory_source import CONFIG, DATA, T0, FramesSource

WINDOW = 400
LABELS = (400, 200, 300, 20, 0)
OUTCOMES = {"joined": 920, "duplicate": 14, "unknown_id": 37, "too_late": 6}


class LabelledSource(FramesSource):
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or load_config(CONFIG)
        model = self.config.model("wine")
        assert model.performance is not None
        perf_config = model.performance
        self.reference = pd.read_csv(DATA / "wine_reference.csv")
        rng = np.random.default_rng(11)
        unsure = self.reference.nsmallest(WINDOW, "confidence")
        frames = [self.reference.sample(n=WINDOW, random_state=20 + i).reset_index(drop=True) for i in range(3)]
        frames += [unsure.sample(frac=1.0, random_state=3).reset_index(drop=True)]
        frames += [self.reference.sample(n=WINDOW, random_state=24).reset_index(drop=True)]
        classes = sorted(self.reference["label"].unique())
        specs, settings = specs_from_config(self.config, "wine")
        drift = build_profile(self.reference, specs, settings)
        judge = PerformanceProfile.from_reference(self.reference, perf_config)
        self.frames: dict[int, pd.DataFrame] = {}
        self.wine: list[Evaluation] = []
        self.rows: list[StoredPerformance] = []
        for i, (frame, n_labels) in enumerate(zip(frames, LABELS, strict=True)):
            window_id = (i + 1) * WINDOW
            self.frames[window_id] = frame
            start, end = T0 + 600 * i, T0 + 600 * (i + 1)
            self.wine.append(Evaluation(
                model="wine", window_id=window_id, start=start, end=end, first_seq=i * 40 + 1, last_seq=(i + 1) * 40,
                n_records=len(frame), evaluated_at=end + 2, result=evaluate(drift, frame).to_dict(),
            ))
            labelled = frame.iloc[:n_labels]
            labels = list(labelled["label"])
            if window_id == 1200:  # 35% of the labels disagree with what the model was right about
                wrong = rng.choice(len(labels), size=round(0.35 * len(labels)), replace=False)
                for k in wrong:
                    labels[k] = next(c for c in classes if c != labelled["predicted_class"].iloc[k])
            rows = [
                {"label": y, "prediction": r.predicted_class, "probabilities": [r.proba_class_0, r.proba_class_1, r.proba_class_2]}
                for y, r in zip(labels, labelled.itertuples(), strict=True)
            ]
            result = judge.evaluate(frame, LabelledRecords.from_rows(rows, perf_config) if rows else None)
            self.rows.append(StoredPerformance(
                window_id=window_id, start=start, end=end, n_records=len(frame), n_labelled=result.n_labelled,
                evaluated_at=end + 2, updated_at=end + 3600, pending_refresh=False, result=result.to_dict(),
            ))

    def performance(self, model: str, limit: int, before: int | None = None) -> PerformanceHistory | None:
        if self.config.model(model).performance is None:
            return None
        rows = [r for r in self.rows if model == "wine" and (before is None or r.window_id <= before)]
        return PerformanceHistory(tuple(rows[-limit:]), dict(OUTCOMES) if model == "wine" else {})

    def result(self, window_id: int) -> StoredPerformance:
        return next(r for r in self.rows if r.window_id == window_id)

    def _of(self, model: str) -> list[Evaluation]:
        return self.wine if model == "wine" else []
