"""A model's reference data: loading it (reports and the CLI read it too) and profiling it at start-up."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from monitor.core.config import Config, ModelConfig

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_reference", "load_reference_texts", "profile_references"]

log = logging.getLogger("driftwatch.monitor")


def load_reference(model: ModelConfig) -> pd.DataFrame:
    """The model's reference data (CSV or Parquet), sampled to `max_rows` with a fixed seed, as the
    drift engine's columns (a text column as its descriptors)."""
    return load_reference_texts(model)[0]


def load_reference_texts(model: ModelConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`load_reference` and the text profiles (vocabularies) of the model's text columns, built from
    the file's raw texts (monitor.text.columns)."""
    from monitor.text.columns import describe_reference_frame

    return describe_reference_frame(model, _read_reference(model))


def _read_reference(model: ModelConfig) -> pd.DataFrame:
    import pandas as pd

    ref = model.reference
    fmt = ref.format if ref.format != "auto" else ("parquet" if ref.path.suffix.lower() in (".parquet", ".pq") else "csv")
    df = pd.read_parquet(ref.path) if fmt == "parquet" else pd.read_csv(ref.path)
    if ref.max_rows is not None and len(df) > ref.max_rows:
        df = df.sample(n=ref.max_rows, random_state=0).reset_index(drop=True)
    return df


def profile_references(config: Config, models: list[ModelConfig]) -> tuple[dict[str, tuple[Any, Any]], dict[str, str]]:
    """Each model's (reference profile, calibrated detector or None), and the models whose reference
    could not be profiled, with the error: a bad reference must not take the whole monitor down."""
    from monitor.drift import build_profile, specs_from_config
    from monitor.drift.calibration import calibrated_detector

    profiles, errors = {}, {}
    for model in models:
        try:
            specs, settings = specs_from_config(config, model)
            reference, text = load_reference_texts(model)
            profile = dataclasses.replace(build_profile(reference, specs, settings), text=text)
            profiles[model.key] = (profile, calibrated_detector(model, reference, profile))
        except Exception as exc:
            errors[model.key] = f"{type(exc).__name__}: {exc}"
            log.error("reference_profile_failed model=%s error=%s", model.key, type(exc).__name__)
    return profiles, errors
