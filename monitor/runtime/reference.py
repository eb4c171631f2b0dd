"""A model's reference data: loading it (reports and the CLI read it too) and profiling it at start-up."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.core.config import Config, ModelConfig
from monitor.runtime.mlflow_reference import fetch_reference

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_reference", "load_reference_texts", "profile_frame", "profile_references", "sampled"]

log = logging.getLogger("driftwatch.monitor")


def load_reference(model: ModelConfig, config: Config | None = None) -> pd.DataFrame:
    """The model's reference data (CSV or Parquet), sampled to `max_rows` with a fixed seed, as the
    drift engine's columns (a text column as its descriptors). A reference in MLflow (`reference.mlflow`)
    needs `config` (its `mlflow` section, the cache beside the store): it is downloaded first
    (`monitor.runtime.mlflow_reference`)."""
    return load_reference_texts(model, config)[0]


def load_reference_texts(
    model: ModelConfig, config: Config | None = None, keep_texts: bool = False
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`load_reference` and the text profiles (vocabularies) of the model's text columns, built from
    the file's raw texts (monitor.text.columns); `keep_texts` keeps those texts in the frame too."""
    from monitor.text.columns import describe_reference_frame

    return describe_reference_frame(model, _read_reference(model, config), keep_texts)


def _read_reference(model: ModelConfig, config: Config | None) -> pd.DataFrame:
    import pandas as pd

    ref = model.reference
    if ref.mlflow is not None:
        if config is None:
            raise ValueError(f"model {model.key}: its reference is in MLflow; reading it needs the whole config")
        path = Path(fetch_reference(config, model).path)
        fmt = ref.file_format(ref.mlflow.artifact)
    else:
        assert ref.path is not None  # the config holds exactly one of path and mlflow
        path, fmt = ref.path, ref.file_format(ref.path.name)
    return sampled(model, pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path))


def sampled(model: ModelConfig, df: pd.DataFrame) -> pd.DataFrame:
    """The reference's rows, sampled to `reference.max_rows` with a fixed seed."""
    limit = model.reference.max_rows
    if limit is not None and len(df) > limit:
        df = df.sample(n=limit, random_state=0).reset_index(drop=True)
    return df


def profile_frame(config: Config, model: ModelConfig, raw: pd.DataFrame) -> tuple[Any, Any]:
    """The (reference profile, calibrated detector or None) of the reference rows `raw` (already sampled)."""
    from monitor.drift import build_profile, specs_from_config
    from monitor.drift.calibration import calibrated_detector
    from monitor.text.columns import describe_reference_frame

    specs, settings = specs_from_config(config, model)
    reference, text = describe_reference_frame(model, raw)
    profile = dataclasses.replace(build_profile(reference, specs, settings), text=text)
    return profile, calibrated_detector(model, reference, profile)


def profile_references(config: Config, models: list[ModelConfig]) -> tuple[dict[str, tuple[Any, Any]], dict[str, str]]:
    """Each model's (reference profile, calibrated detector or None), and the models whose reference
    could not be profiled, with the error: a bad reference must not take the whole monitor down."""
    profiles, errors = {}, {}
    for model in models:
        try:
            profiles[model.key] = profile_frame(config, model, _read_reference(model, config))
        except Exception as exc:
            errors[model.key] = f"{type(exc).__name__}: {exc}"
            log.error("reference_profile_failed model=%s error=%s", model.key, type(exc).__name__)
    return profiles, errors
