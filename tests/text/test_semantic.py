"""Semantic text drift: `text: {semantic: true}` adds `<column>.semantic`, the texts' MiniLM vectors,
an embedding column the engine judges like any other (offline model, no downloads)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.core.config import parse_config
from monitor.drift import build_profile, evaluate, specs_from_config
from monitor.text.columns import describe_reference_frame, model_frame
from tests.infra.text_corpus import corpus

MODEL = parse_config({"models": [{"name": "m", "reference": {"path": "r.csv"},
                                  "features": [{"name": "q", "type": "text", "text": {"semantic": True}}]}]}).models[0]


@pytest.fixture(scope="module")
def reference() -> tuple[pd.DataFrame, dict]:  # type: ignore[type-arg]
    return describe_reference_frame(MODEL, pd.DataFrame({"q": corpus(np.random.default_rng(0), 600, "weather")}))


def _verdict(reference: tuple[pd.DataFrame, dict], texts: list[str | None]) -> object:  # type: ignore[type-arg]
    frame, profiles = reference
    specs, settings = specs_from_config(MODEL)
    window = model_frame(MODEL, [{"q": t} for t in texts], profiles)
    return evaluate(build_profile(frame, specs, settings), window).features["q.semantic"]


def test_the_semantic_column_holds_one_384_dimension_vector_per_text(reference: tuple[pd.DataFrame, dict]) -> None:  # type: ignore[type-arg]
    frame, _ = reference
    assert (frame["q.semantic"].map(len).unique().tolist(), len(frame)) == ([384], 600)


def test_a_missing_text_is_a_missing_vector(reference: tuple[pd.DataFrame, dict]) -> None:  # type: ignore[type-arg]
    window = model_frame(MODEL, [{"q": "is it going to rain"}, {"q": None}], reference[1])
    assert window["q.semantic"].isna().tolist() == [False, True]


def test_same_topic_prompts_do_not_drift(reference: tuple[pd.DataFrame, dict]) -> None:  # type: ignore[type-arg]
    f = _verdict(reference, corpus(np.random.default_rng(1), 300, "weather"))
    assert (f.method, f.drifted) == ("embedding", False)  # type: ignore[attr-defined]


def test_a_change_of_topic_drifts(reference: tuple[pd.DataFrame, dict]) -> None:  # type: ignore[type-arg]
    f = _verdict(reference, corpus(np.random.default_rng(2), 300, "finance"))
    assert f.drifted  # type: ignore[attr-defined]
