"""Text descriptors side by side with Evidently's on the same texts, and offline embedding throughput.

    python3 benchmarks/text_descriptors.py                 # 100k texts, 3 repeats (~2 minutes on 2 cores)
    python3 benchmarks/text_descriptors.py --size 10000    # quick run
    python3 benchmarks/text_descriptors.py --torch         # also sentence-transformers on torch (own venv)

Texts: synthetic prompts of the weather corpus (tests/infra/text_corpus.py: ~12 words, a long tail of
rare words, some numbers, emails and refusals). Per descriptor, driftwatch's time (its part of
`monitor.text.describe`) beside Evidently 0.7's descriptor of the same definition, each run alone
through `Dataset.from_pandas(..., descriptors=[d]).as_dataframe()`; both sides' values are compared
(equal = every row agrees). Evidently's OOVWordsPercentage downloads NLTK corpora at run time and so
cannot run here; it has no PII, script or non-ASCII descriptor. Times are wall-clock medians; the
load average is printed. Then `embed_texts` throughput (all-MiniLM-L6-v2 in numpy) on 2,000 texts;
with `--torch`, beside sentence-transformers on torch (CPU) on the same texts and weights, in a venv
of its own (tests/infra/venvs.py), with the largest difference between the two sets of vectors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.text import build_text_profile, describe
from monitor.text import descriptors as d
from monitor.text.chars import class_table, code_points, per_text
from monitor.text.patterns import REFUSAL
from tests.infra.text_corpus import corpus


def _median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def ours(texts: list[str], repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    """Each descriptor's own work (the shared code-point pass is timed once, as `code points`)."""
    profile = build_text_profile(texts[: len(texts) // 2], json_expected=True)
    missing = d._missing(texts)
    class_table()  # built once per process (~0.2 s), not per call
    t_cps, (cps, offsets) = _median(lambda: code_points(texts), repeats)
    classes = class_table()[cps]
    lengths = np.diff(offsets)
    runs: dict[str, Callable[[], np.ndarray]] = {
        "chars": lambda: np.fromiter(map(len, texts), float, len(texts)),
        "words": lambda: d._word_count(classes, offsets).astype(float),
        "non_ascii_share": lambda: per_text(cps > 127, offsets) / lengths,
        "non_letter_share": lambda: per_text((classes < 2) & (cps != 32), offsets) / lengths,
        "script + script_mix": lambda: d._scripts(classes, lengths)[1],
        "oov_share": lambda: d._oov_share(texts, profile.words, missing),
        "refusal": lambda: np.fromiter((REFUSAL.search(t) is not None for t in texts), float, len(texts)),
        "pii_hits": lambda: d._pii(texts, cps, offsets),
        "json_valid": lambda: d._json_valid(texts, None),
    }
    out = {"code points (shared)": (t_cps, np.empty(0))}
    for name, fn in runs.items():
        out[name] = _median(fn, repeats)
    out["describe (all)"] = (_median(lambda: describe(texts, profile), repeats)[0], np.empty(0))
    return out


def evidently_descriptors(texts: list[str], repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    from evidently import DataDefinition, Dataset
    from evidently.descriptors import IsValidJSON, NonLetterCharacterPercentage, RegExp, TextLength, WordCount

    frame = pd.DataFrame({"text": texts})
    made = {
        "chars": (lambda: TextLength("text", alias="v"), 1.0),
        "words": (lambda: WordCount("text", alias="v"), 1.0),
        "non_letter_share": (lambda: NonLetterCharacterPercentage("text", alias="v"), 0.01),
        "refusal": (lambda: RegExp("text", f"(?is).*(?:{REFUSAL.pattern}).*", alias="v"), 1.0),
        "json_valid": (lambda: IsValidJSON("text", alias="v"), 1.0),
    }
    out = {}
    for name, (make, scale) in made.items():
        def run(make: Callable[[], Any] = make) -> np.ndarray:
            data = Dataset.from_pandas(frame, data_definition=DataDefinition(text_columns=["text"]), descriptors=[make()])
            return data.as_dataframe()["v"].to_numpy(dtype=float)
        seconds, values = _median(run, repeats)
        out[name] = (seconds, values * scale)
    return out


ST_VERSION = "6.3.0"
ST_RUNNER = r"""
import json, sys, time
import numpy as np
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
texts = json.load(open(sys.argv[2]))
model.encode(texts[:64], batch_size=64)  # warm-up
start = time.perf_counter()
vectors = model.encode(texts, batch_size=64)
seconds = time.perf_counter() - start
np.save(sys.argv[3], vectors.astype(np.float32))
json.dump({"seconds": seconds}, open(sys.argv[4], "w"))
"""


def embedding_rate(n: int, with_torch: bool) -> list[str]:
    """`embed_texts` throughput (cost grows with word pieces), and with `with_torch` the same texts
    through sentence-transformers on torch (CPU) in a venv of its own, with the largest difference."""
    from monitor.text.embed import embed_texts, model, model_dir

    start = time.perf_counter()
    encoder = model()
    load = time.perf_counter() - start
    texts = corpus(np.random.default_rng(2), n)
    pieces = sum(len(encoder.tokenizer.encode(t, encoder.max_seq_length - 2)) + 2 for t in texts)
    embed_texts(texts[:64])  # warm-up, as for torch
    start = time.perf_counter()
    ours = embed_texts(texts)
    seconds = time.perf_counter() - start
    lines = [f"embed_texts (numpy): model load {load:.1f} s, {n / seconds:,.0f} texts/s ({pieces / seconds:,.0f} word "
             f"pieces/s) on {n:,} texts (load average {os.getloadavg()[0]:.1f})"]
    if with_torch:
        import json
        import subprocess
        import tempfile

        from tests.infra.venvs import isolated_python

        python = isolated_python(f"sentence-transformers-{ST_VERSION}", (f"sentence-transformers=={ST_VERSION}",))
        with tempfile.TemporaryDirectory() as tmp:
            paths = [Path(tmp, name) for name in ("run.py", "texts.json", "vectors.npy", "out.json")]
            paths[0].write_text(ST_RUNNER)
            paths[1].write_text(json.dumps(texts))
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            subprocess.run([str(python), *map(str, [paths[0], model_dir(), *paths[1:]])], check=True, env=env, timeout=1800)
            theirs, t_seconds = np.load(paths[2]), json.loads(paths[3].read_text())["seconds"]
        diff = float(np.abs(ours - theirs).max())
        cosine = float(np.min(np.sum(ours * theirs, axis=1)))
        lines.append(f"sentence-transformers {ST_VERSION} (torch, CPU): {n / t_seconds:,.0f} texts/s; largest "
                     f"|difference| {diff:.1e}, lowest cosine to ours {cosine:.6f} (load average {os.getloadavg()[0]:.1f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="texts")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement (median)")
    parser.add_argument("--embed", type=int, default=2000, help="texts to embed (0: skip)")
    parser.add_argument("--torch", action="store_true",
                        help="also run sentence-transformers on torch in a venv of its own (first run: ~3 GB of wheels)")
    args = parser.parse_args()
    texts = corpus(np.random.default_rng(1), args.size)
    mean_chars = statistics.fmean(map(len, texts))
    print(f"{args.size:,} texts of {mean_chars:.0f} characters on average; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeats}")
    mine = ours(texts, args.repeats)
    start = time.perf_counter()
    import evidently  # noqa: F401 - its import (~5 s) is not part of any descriptor's time
    print(f"(Evidently import {time.perf_counter() - start:.1f} s, not counted)")
    theirs = evidently_descriptors(texts, args.repeats)
    print(f"{'descriptor':<22} {'driftwatch s':>12} {'Evidently s':>12} {'speed-up':>9}  values")
    for name, (seconds, values) in mine.items():
        if name in theirs:
            t_seconds, t_values = theirs[name]
            agree = np.isclose(values, t_values, rtol=1e-9, equal_nan=True).mean()
            same = "equal" if agree == 1 else f"equal on {agree:.1%} of texts"
            if name == "words" and agree < 1:
                same += " (Evidently keeps only a-z letters before splitting)"
            print(f"{name:<22} {seconds:>12.3f} {t_seconds:>12.3f} {t_seconds / seconds:>8.0f}x  {same}")
        else:
            print(f"{name:<22} {seconds:>12.3f} {'-':>12} {'':>9}  (no Evidently descriptor runs offline)")
    if args.embed:
        print("\n".join(embedding_rate(args.embed, args.torch)))


if __name__ == "__main__":
    main()
