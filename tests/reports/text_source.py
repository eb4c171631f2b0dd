"""A real, in-memory `ReportSource` for a generative model: the LLM example's chat model, its English
reference, an English window (no drift) and a German one, both described and evaluated as the
monitor does (`monitor.text.columns`, the drift engine). The German window carries planted texts: one
with an email hidden by a zero-width space, and one holding markup that must not run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitor.app.demo import chat
from monitor.core.config import Config, load_config
from monitor.drift import build_profile, evaluate, specs_from_config
from monitor.reports.source import Evaluation, PerformanceHistory
from monitor.text.columns import describe_reference_frame, model_frame
from tests.reports.memory_source import T0, FramesSource

LLM_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "llm" / "config.yaml"
WINDOW = 300
PLANTED_EMAIL = "Schickst du mir übermorgen früh das Wetter für Köln? jo\u200bhn.doe@example.com"
PLANTED_MARKUP = 'Wie wird das Wetter in <script>document.title="pwned"</script><img src=x onerror="document.title=1"> München?'


class TextSource(FramesSource):
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or load_config(LLM_CONFIG)
        model = self.config.model("chat")
        self.reference, profiles = describe_reference_frame(model, chat.reference(600, seed=5), keep_texts=True)
        specs, settings = specs_from_config(self.config, "chat")
        profile = build_profile(self.reference, specs, settings)
        german = [*chat.prompts(WINDOW - 2, "german", seed=9), PLANTED_EMAIL, PLANTED_MARKUP]
        windows = [chat.prompts(WINDOW, "english", seed=3), german]
        self.frames: dict[int, pd.DataFrame] = {}
        self.chat: list[Evaluation] = []
        for i, prompts in enumerate(windows):
            window_id = (i + 1) * WINDOW
            frame = model_frame(model, chat.calls(prompts), profiles, keep_texts=True)
            self.frames[window_id] = frame
            self.chat.append(Evaluation(
                model="chat", window_id=window_id, start=T0 + 600 * i, end=T0 + 600 * (i + 1),
                first_seq=i * WINDOW + 1, last_seq=(i + 1) * WINDOW, n_records=WINDOW,
                evaluated_at=T0 + 600 * (i + 1) + 2, result=evaluate(profile, frame).to_dict(),
            ))

    def performance(self, model: str, limit: int, before: int | None = None) -> PerformanceHistory | None:
        return None

    def _of(self, model: str) -> list[Evaluation]:
        return self.chat
