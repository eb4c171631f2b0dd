"""Text columns as descriptor columns: the reference and a window described the same way."""

from __future__ import annotations

import pandas as pd
import pytest

from monitor.app.demo import chat
from monitor.core.config import parse_config
from monitor.text.columns import describe_reference_frame, model_frame

MODEL = parse_config({"models": [{"name": "chat", "protocol": "openai", "reference": {"path": "r.csv"},
                                  "features": [{"name": "prompt", "type": "text", "source": {"field": "prompt"}}],
                                  "outputs": [{"name": "completion", "type": "text", "source": {"field": "completion"}}]}]}).models[0]


def test_the_reference_becomes_the_engines_columns() -> None:
    frame, _ = describe_reference_frame(MODEL, chat.reference(50))
    assert list(frame.columns) == [c.name for c in MODEL.columns]


def test_the_profile_vocabulary_comes_from_the_reference_texts() -> None:
    _, profiles = describe_reference_frame(MODEL, chat.reference(50))
    assert "weather" in profiles["prompt"].words


def test_a_window_is_described_against_the_reference_vocabulary() -> None:
    _, profiles = describe_reference_frame(MODEL, chat.reference(50))
    frame = model_frame(MODEL, [{"prompt": "Wie wird das Wetter in Berlin morgen?", "completion": None}], profiles)
    # 7 tokens, of which the English reference knows "in" and "berlin"
    assert (frame["prompt.oov_share"][0], frame["completion.chars"].isna()[0]) == (pytest.approx(5 / 7), True)


def test_a_reference_without_token_counts_is_refused_naming_the_column() -> None:
    raw = chat.reference(10).drop(columns=["prompt.gen_ai.usage.input_tokens"])
    with pytest.raises(ValueError, match=r"no column\(s\) prompt.gen_ai.usage.input_tokens"):
        describe_reference_frame(MODEL, raw)


def test_a_model_without_text_columns_passes_through() -> None:
    plain = parse_config({"models": [{"name": "m", "features": [{"name": "x", "type": "numeric"}], "reference": {"path": "r.csv"}}]}).models[0]
    raw = pd.DataFrame({"x": [1.0, 2.0]})
    assert describe_reference_frame(plain, raw)[0] is raw


def test_a_reference_can_keep_its_raw_texts_beside_the_descriptors() -> None:
    raw = chat.reference(50)
    frame, _ = describe_reference_frame(MODEL, raw, keep_texts=True)
    assert frame["prompt"].tolist() == raw["prompt"].tolist()


def test_a_window_can_keep_its_raw_texts_beside_the_descriptors() -> None:
    _, profiles = describe_reference_frame(MODEL, chat.reference(50))
    frame = model_frame(MODEL, [{"prompt": "Wie wird das Wetter?", "completion": "Sonnig."}], profiles, keep_texts=True)
    assert list(frame.columns) == [*(c.name for c in MODEL.columns), "prompt", "completion"]
