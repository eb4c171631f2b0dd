"""BERT's uncased WordPiece tokenizer, as all-MiniLM-L6-v2's `tokenizer.json` declares it
(BertNormalizer with lowercase and accent stripping, Chinese characters split, BertPreTokenizer,
WordPiece with `##` continuations and at most 100 characters a word), in plain Python so the
embedding needs no tokenizers/transformers install."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
MAX_WORD_CHARS = 100


@functools.cache
def _kind(ch: str) -> str:
    """' ' whitespace, 'x' dropped, 'p' punctuation (split alone), 'c' CJK (split alone), 'w' word."""
    cp = ord(ch)
    if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
        return " "
    if cp == 0 or cp == 0xFFFD or unicodedata.category(ch).startswith("C"):
        return "x"
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or unicodedata.category(ch).startswith("P"):
        return "p"
    if any(lo <= cp <= hi for lo, hi in _CJK):
        return "c"
    return "w"


def _strip_accents(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", word) if unicodedata.category(ch) != "Mn")


def pre_tokenize(text: str) -> list[str]:
    """Normalised words and single punctuation/CJK characters, in order."""
    out: list[str] = []
    current: list[str] = []
    for ch in text:
        kind = _kind(ch)
        if kind == "w":
            current.append(ch)
            continue
        if kind == "x":  # removed by the normalizer before words are split: it joins, not separates
            continue
        if current:
            out.append("".join(current))
            current = []
        if kind in "pc":
            out.append(ch)
    if current:
        out.append("".join(current))
    # lowercasing and accent stripping may turn a character into punctuation-free pieces; BERT applies
    # them before splitting, which gives the same words for every character this vocabulary knows
    return [w for w in (_strip_accents(w.lower()) for w in out) if w]


class WordPiece:
    def __init__(self, vocab: Mapping[str, int], unk: str = "[UNK]") -> None:
        self.vocab = vocab
        self.unk_id = vocab[unk]

    @functools.lru_cache(maxsize=200_000)  # noqa: B019 - one tokenizer per process, words repeat
    def word_ids(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first pieces of one word; [UNK] when any part has no piece."""
        if len(word) > MAX_WORD_CHARS:
            return (self.unk_id,)
        ids = []
        start = 0
        while start < len(word):
            end = len(word)
            piece_id = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                piece_id = self.vocab.get(piece)
                if piece_id is not None:
                    break
                end -= 1
            if piece_id is None:
                return (self.unk_id,)
            ids.append(piece_id)
            start = end
        return tuple(ids)

    def encode(self, text: str, max_pieces: int) -> list[int]:
        """The word pieces of a text, at most `max_pieces` (without [CLS]/[SEP])."""
        ids: list[int] = []
        for word in pre_tokenize(text):
            ids.extend(self.word_ids(word))
            if len(ids) >= max_pieces:
                return ids[:max_pieces]
        return ids
