"""Loading a model's reference data (the runtime profiles it at start-up; reports and the CLI read it too)."""

from __future__ import annotations

import pandas as pd

from monitor.core.config import ModelConfig

__all__ = ["load_reference"]


def load_reference(model: ModelConfig) -> pd.DataFrame:
    """The model's reference data (CSV or Parquet), sampled to `max_rows` with a fixed seed."""
    ref = model.reference
    fmt = ref.format if ref.format != "auto" else ("parquet" if ref.path.suffix.lower() in (".parquet", ".pq") else "csv")
    df = pd.read_parquet(ref.path) if fmt == "parquet" else pd.read_csv(ref.path)
    if ref.max_rows is not None and len(df) > ref.max_rows:
        df = df.sample(n=ref.max_rows, random_state=0).reset_index(drop=True)
    return df
