"""Embedding models on the runtime path: OpenAI `/v1/embeddings` calls ingested by a real `Monitor`
(SQLite store, sliding windows, the evaluator), each window's vectors judged against the reference
file's: on unchanged traffic at most the stated 1% of windows flag the column, a shift confined to a
few dimensions is caught, and bad vectors are counted as rejections, never taken in."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from monitor.capture import CapturedEvent
from monitor.core.config import Config, parse_config
from tests.monitor.runtime.runtime_helpers import Recorder, run_monitor

DIMS = 16
PER_CALL = 50
WINDOW = 100


def config(tmp_path: Path, reference: np.ndarray) -> Config:
    pd.DataFrame({"vec": [json.dumps(r.tolist()) for r in reference]}).to_csv(tmp_path / "ref.csv", index=False)
    data = {
        "server": {"store": {"path": "store/driftwatch.db"}},
        "models": [{
            "name": "emb", "protocol": "openai", "reference": {"path": "ref.csv"},
            "features": [{"name": "vec", "type": "embedding", "embedding": {"dimensions": DIMS}, "source": {"field": "embedding"}}],
            "window": {"records": WINDOW, "step": WINDOW, "min_records": WINDOW},
        }],
    }
    return parse_config(data, base_dir=tmp_path)


def draw(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    """Correlated, partly skewed vectors with two constant and one sparse dimension; `shift` moves 3 of them."""
    x = rng.standard_normal((rows, DIMS)) @ MIXING
    x[:, :4] += rng.exponential(1.0, (rows, 4))
    x[:, 4:6] = 0.5
    x[:, 6] = (rng.random(rows) < 0.005).astype(float)
    x[:, [8, 11, 14]] += shift
    return x.astype(np.float32)


MIXING = np.eye(DIMS) + 0.3 * np.random.default_rng(99).standard_normal((DIMS, DIMS))


def call(i: int, vectors: np.ndarray | list[Any]) -> CapturedEvent:
    rows = vectors.tolist() if isinstance(vectors, np.ndarray) else vectors
    request = {"model": "e", "input": [f"text {i}.{j}" for j in range(len(rows))]}
    answer = {"object": "list", "data": [{"index": j, "embedding": r} for j, r in enumerate(rows)]}
    return CapturedEvent.model_validate({
        "id": f"ev-{i}", "model": "emb", "timestamp": 1_700_000_000.0 + i, "status": 200, "path": "/v1/embeddings",
        "request": {"body": json.dumps(request), "encoding": "utf-8", "truncated": False},
        "response": {"body": json.dumps(answer), "encoding": "utf-8", "truncated": False},
    })


def windows(rng: np.random.Generator, count: int, shift: float = 0.0) -> list[list[CapturedEvent]]:
    """One batch per window: WINDOW / PER_CALL calls of PER_CALL inputs each."""
    calls = WINDOW // PER_CALL
    return [[call(w * calls + c, draw(rng, PER_CALL, shift)) for c in range(calls)] for w in range(count)]


def run(cfg: Config, batches: list[list[CapturedEvent]]) -> tuple[Recorder, dict[str, int]]:
    recorder = Recorder()

    async def scenario() -> dict[str, int]:
        mon, _ = await run_monitor(cfg, batches, listeners=[recorder])
        try:
            return dict(mon.snapshot()["emb"].rejected)
        finally:
            await mon.stop()

    return recorder, asyncio.run(scenario())


AA_WINDOWS = 500


def test_unchanged_embedding_traffic_flags_at_most_the_stated_share_of_windows(tmp_path: Path) -> None:
    """Level 0.01 per window (docs/drift-methods.md#embeddings): over 500 windows the flags stay at or
    under the binomial 0.999 bound (13); a true rate of 4% breaks it in 94% of runs (the 68% of the
    detector before sparse dimensions were handled, every time)."""
    rng = np.random.default_rng(1)
    recorder, _ = run(config(tmp_path, draw(rng, 4000)), windows(rng, AA_WINDOWS))
    assert len(recorder.calls) == AA_WINDOWS
    flags = sum("vec" in v.drifted_columns for v in recorder.calls)
    assert flags <= stats.binom.ppf(0.999, AA_WINDOWS, 0.01)


def test_a_shift_in_three_of_sixteen_dimensions_is_caught_in_every_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    recorder, _ = run(config(tmp_path, draw(rng, 4000)), windows(rng, 10, shift=0.8))
    assert [("vec" in v.drifted_columns) for v in recorder.calls] == [True] * 10


def test_the_verdict_names_the_shifted_dimensions(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    recorder, _ = run(config(tmp_path, draw(rng, 4000)), windows(rng, 1, shift=1.5))
    top = recorder.calls[0].result.features["vec"].details["top_dimensions"]
    assert {d["dimension"] for d in top[:3]} == {8, 11, 14}


def test_bad_vectors_are_counted_by_reason_and_kept_out_of_the_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    good = draw(rng, 2).tolist()
    bad = [call(900, [good[0][:-1]]), call(901, [[*good[0][:-1], float("nan")]]), call(902, [good[1][:-3]])]
    recorder, rejected = run(config(tmp_path, draw(rng, 500)), [bad, *windows(rng, 1)])
    assert (rejected.get("vector_dimensions"), rejected.get("vector_non_finite"), recorder.calls[0].n_records) == (2, 1, WINDOW)
