"""Embedding drift: vector columns (an embeddings response, a tensor input, a list column in a file).

    prof = profile(reference)            # n x d float matrix, once; prof.to_arrays() for storage
    result = test(prof, window, alpha)   # always on: ~0.5 s at 100k x 768 on 2 cores
    deep = mmd_test(reference, window)   # on demand, for reports: MMD with a permutation test

Pure numpy/scipy, no I/O. Design and measurements: docs/drift-methods.md, "Embeddings".
"""

from monitor.drift.embedding.detector import (
    DEFAULT_ALPHA,
    ComponentShift,
    DimensionShift,
    EmbeddingDriftResult,
    test,
)
from monitor.drift.embedding.mmd import MMDResult, mmd_test
from monitor.drift.embedding.profile import EmbeddingProfile, profile

__all__ = [
    "DEFAULT_ALPHA",
    "ComponentShift",
    "DimensionShift",
    "EmbeddingDriftResult",
    "EmbeddingProfile",
    "MMDResult",
    "mmd_test",
    "profile",
    "test",
]
