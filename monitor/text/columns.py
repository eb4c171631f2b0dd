"""A model's `type: text` columns as descriptor columns: the one place texts become numbers.

The reference file and the records of a window hold raw texts (and, for columns with `text.tokens`,
the token counts under the descriptor's own name, `<column>.gen_ai.usage.input_tokens`); the drift
engine evaluates `ModelConfig.columns`, where each text column is its descriptors,
`<column>.<descriptor>`. `describe_reference_frame` does it for the reference and builds the text
profiles (vocabularies) the windows are described against; `model_frame` does it for a window.
A text column with `text.semantic` also gets `<column>.semantic`, its texts' sentence vectors
(`monitor.text.embed`, offline MiniLM; a missing text stays a missing vector), an embedding column.
A model without text columns passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from monitor.core.config import FeatureConfig, ModelConfig
from monitor.core.descriptors import SEMANTIC, TOKEN_DESCRIPTORS
from monitor.text.descriptors import describe, describe_reference
from monitor.text.profile import TextProfile, build_text_profile

__all__ = ["describe_reference_frame", "model_frame", "record_columns"]


def record_columns(model: ModelConfig) -> list[str]:
    """The keys a record of this model holds: the engine's columns, with each text column's computed
    descriptors replaced by its raw text (token counts stay: they are read, not computed)."""
    out: list[str] = []
    for col in (*model.features, *model.outputs):
        if col.type != "text":
            out.append(col.name)
            continue
        out.append(col.name)
        if col.token_descriptor is not None:
            out.append(f"{col.name}.{col.token_descriptor}")
    return out


def describe_reference_frame(
    model: ModelConfig, raw: pd.DataFrame, keep_texts: bool = False
) -> tuple[pd.DataFrame, dict[str, TextProfile]]:
    """The reference as the engine's columns, and each text column's profile built from its texts;
    `keep_texts`: the raw texts stay too, under the text columns' names (a report's examples).

    Raises ValueError naming a text column (or its token-count column) the file lacks."""
    texts = model.text_columns
    if not texts:
        return raw, {}
    missing = [name for name in record_columns(model) if name not in raw.columns]
    if missing:
        raise ValueError(f"reference data has no column(s) {', '.join(missing)} (a text column's raw texts, "
                         "and its token counts when `text.tokens` is on)")
    profiles: dict[str, TextProfile] = {}
    out = raw.copy()
    for col in texts:
        values = _texts(raw[col.name])
        opts = col.options
        profile = build_text_profile(values, opts.max_vocabulary, opts.json_expected, opts.json_schema)
        profiles[col.name] = profile
        _put(out, col, describe_reference(values, profile))
        _put_semantic(out, col, values)
    return out[_kept(model, keep_texts)], profiles


def model_frame(
    model: ModelConfig, records: Sequence[Mapping[str, Any]], profiles: Mapping[str, TextProfile], keep_texts: bool = False
) -> pd.DataFrame:
    """A window's records as the frame the drift engine evaluates (one column per `model.columns`);
    `keep_texts`: with the raw texts too, under the text columns' names (the engine ignores them)."""
    frame = pd.DataFrame.from_records(records, columns=record_columns(model))
    if not model.text_columns:
        return frame
    for col in model.text_columns:
        profile = profiles.get(col.name)
        if profile is None:
            raise ValueError(f"no text profile for column {col.name!r}: the reference was not described")
        texts = _texts(frame[col.name])
        _put(frame, col, describe(texts, profile))
        _put_semantic(frame, col, texts)
    return frame[_kept(model, keep_texts)]


def _kept(model: ModelConfig, keep_texts: bool) -> list[str]:
    return [c.name for c in model.columns] + ([c.name for c in model.text_columns] if keep_texts else [])


def _texts(series: pd.Series) -> list[Any]:
    """Strings stay, anything else (NaN, None, a number in a CSV) is a missing text."""
    return [v if isinstance(v, str) else None for v in series.tolist()]


def _put(frame: pd.DataFrame, col: FeatureConfig, described: Mapping[str, Any]) -> None:
    for name, values in described.items():
        if name not in TOKEN_DESCRIPTORS:  # token counts are the record's own column
            frame[f"{col.name}.{name}"] = values


def _put_semantic(frame: pd.DataFrame, col: FeatureConfig, texts: Sequence[str | None]) -> None:
    """`<column>.semantic`: one sentence vector per present text, None for a missing one."""
    if not col.options.semantic:
        return
    from monitor.text.embed import embed_texts  # loads the model's weights: only for a semantic column

    present = [i for i, t in enumerate(texts) if t is not None]
    vectors = embed_texts([texts[i] for i in present]) if present else None
    column: list[Any] = [None] * len(texts)
    for row, i in enumerate(present):
        assert vectors is not None
        column[i] = vectors[row]
    frame[f"{col.name}.{SEMANTIC}"] = pd.Series(column, index=frame.index, dtype=object)
