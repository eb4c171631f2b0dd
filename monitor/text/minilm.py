"""all-MiniLM-L6-v2's forward pass in numpy (float32): BERT encoder, mean pooling, L2 normalisation,
as the model's sentence-transformers modules (Transformer, Pooling mean, Normalize) declare it.

Weights come from the model's `model.safetensors`, read with numpy (the format is an 8-byte header
length, a JSON header of dtype/shape/offsets, and the raw little-endian tensors).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.special import erf

from monitor.text.wordpiece import WordPiece

F32 = NDArray[np.float32]
_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def read_safetensors(path: Path) -> dict[str, NDArray[np.generic]]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = memoryview(data)[8 + n :]
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, stop = meta["data_offsets"]
        tensors[name] = np.frombuffer(body[start:stop], dtype=_DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return tensors


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + eps) * weight + bias, dtype=np.float32)


class MiniLM:
    """The sentence encoder; `encode` takes texts, returns unit vectors (n x hidden, float32)."""

    def __init__(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        self.max_seq_length = int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.hidden = int(config["hidden_size"])
        w = read_safetensors(model_dir / "model.safetensors")
        self.w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in w.items() if v.dtype != np.int64}
        for key in list(self.w):  # dense layers as x @ W (transposed once)
            if key.endswith(".weight") and self.w[key].ndim == 2 and "embeddings" not in key:
                self.w[key] = np.ascontiguousarray(self.w[key].T)
        vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
        self.tokenizer = WordPiece({token: i for i, token in enumerate(vocab) if token})
        self.cls, self.sep = self.tokenizer.vocab["[CLS]"], self.tokenizer.vocab["[SEP]"]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> F32:
        ids = [[self.cls, *self.tokenizer.encode(t, self.max_seq_length - 2), self.sep] for t in texts]
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths share a batch: little padding
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            out[batch] = self._forward([ids[i] for i in batch])
        return out

    def _forward(self, batch: list[list[int]]) -> F32:
        w, length = self.w, max(len(x) for x in batch)
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
        x = _layer_norm(x + w["embeddings.token_type_embeddings.weight"][0], w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        b, d, h = len(batch), self.hidden, self.heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def dense(v: F32, name: str, p: str = p) -> F32:
                # one 2-D GEMM over all tokens of the batch (a 3-D matmul may miss BLAS)
                weight = w[p + name + ".weight"]
                flat = np.ascontiguousarray(v).reshape(-1, weight.shape[0]) @ weight + w[p + name + ".bias"]
                return np.asarray(flat.reshape(*v.shape[:-1], weight.shape[1]), dtype=np.float32)

            def split(v: F32) -> F32:
                return v.reshape(b, length, h, d // h).transpose(0, 2, 1, 3)

            q, k, v = split(dense(x, "attention.self.query")), split(dense(x, "attention.self.key")), split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(d // h)) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(b, length, d)
            x = _layer_norm(x + dense(context, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            inner = dense(x, "intermediate.dense")
            inner = (0.5 * inner * (1.0 + erf(inner / np.float32(math.sqrt(2.0))))).astype(np.float32)
            x = _layer_norm(x + dense(inner, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.asarray(pooled / norms, dtype=np.float32)
