"""Our WordPiece against Hugging Face `tokenizers` reading the model's own tokenizer.json, run in a
virtual environment of its own (tests/infra/venvs.py: it brings huggingface_hub, which driftwatch
does not need): the same ids for every text, including truncation at the model's 256 pieces."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from monitor.text.embed import model, model_dir
from tests.infra.text_corpus import corpus
from tests.infra.venvs import isolated_python
from tests.text.test_descriptors import _mixed

TOKENIZERS = "tokenizers==0.23.3"
RUNNER = r"""
import json, sys
from tokenizers import Tokenizer
tokenizer = Tokenizer.from_file(sys.argv[1])
tokenizer.no_padding()
tokenizer.enable_truncation(int(sys.argv[2]))
texts = json.load(open(sys.argv[3]))
json.dump([e.ids for e in tokenizer.encode_batch(texts)], open(sys.argv[4], "w"))
"""
EDGE_CASES = [
    "Héllo, WORLD!中文", "naïve café — “quotes” ‘x’ … 3.14 $5 #tag @user", "\u200bzero\u200dwidth", "İstanbul ǅ ß ﬁ",
    "e\u0301 a\u0300", "\x00nul\ufffd", "😀 emoji 👍🏽", "tab\tnew\nline\r", "", "   ", "x" * 150, "word " * 400,
]


def test_the_same_ids_as_hugging_faces_tokenizer(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    texts = _mixed(rng, 1500) + corpus(rng, 500) + EDGE_CASES
    encoder = model()
    ours = [[encoder.cls, *encoder.tokenizer.encode(t, encoder.max_seq_length - 2), encoder.sep] for t in texts]
    python = isolated_python(TOKENIZERS.replace("==", "-"), (TOKENIZERS,))
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    (tmp_path / "run.py").write_text(RUNNER)
    subprocess.run(
        [str(python), str(tmp_path / "run.py"), str(model_dir() / "tokenizer.json"), str(encoder.max_seq_length),
         str(tmp_path / "texts.json"), str(tmp_path / "ids.json")],
        check=True, timeout=300,
    )
    theirs = json.loads((tmp_path / "ids.json").read_text())
    assert [t for t, a, b in zip(texts, ours, theirs, strict=True) if a != b] == []
