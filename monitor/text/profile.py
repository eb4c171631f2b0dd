"""The text reference profile: what describing a window needs from the reference texts.

The vocabulary for the out-of-vocabulary share is built from half of the reference (its even rows):
describing the reference against a vocabulary built from those same texts would make the reference's
OOV share near zero in-sample, and every window, whose words the vocabulary never saw, would drift.
The odd rows' vocabulary describes the even rows (`describe_reference`), so reference and windows are
both measured against a vocabulary of the same size built from texts they are not part of.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The tokenizer of the vocabulary: lowercased runs of letters (digits, underscores and punctuation
# split words). Scripts written without spaces (Chinese, Japanese, Thai) give one token per run.
WORD = re.compile(r"[^\W\d_]+")
MAX_VOCABULARY = 50_000


@dataclass(frozen=True)
class TextProfile:
    """Plain data (`to_dict`/`from_dict` round-trip through JSON).

    `vocabulary`: at most `max_vocabulary` words of the reference's even rows, most frequent first
    (ties alphabetical). `json_expected`: texts should be JSON (the `json_valid` descriptor is
    computed); `json_schema`: the JSON Schema they should also satisfy, when given.
    """

    vocabulary: tuple[str, ...]
    n_texts: int
    max_vocabulary: int = MAX_VOCABULARY
    json_expected: bool = False
    json_schema: Mapping[str, Any] | None = None
    _index: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", frozenset(self.vocabulary))

    @property
    def words(self) -> frozenset[str]:
        return self._index

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocabulary": list(self.vocabulary),
            "n_texts": self.n_texts,
            "max_vocabulary": self.max_vocabulary,
            "json_expected": self.json_expected,
            "json_schema": None if self.json_schema is None else dict(self.json_schema),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextProfile:
        return cls(
            vocabulary=tuple(str(w) for w in data["vocabulary"]),
            n_texts=int(data["n_texts"]),
            max_vocabulary=int(data.get("max_vocabulary", MAX_VOCABULARY)),
            json_expected=bool(data.get("json_expected", False)),
            json_schema=data.get("json_schema"),
        )


def tokens(text: str) -> list[str]:
    """The vocabulary's tokenizer (see WORD)."""
    return WORD.findall(text.lower())


def vocabulary(texts: Iterable[str | None], max_size: int = MAX_VOCABULARY) -> tuple[str, ...]:
    """The `max_size` most frequent tokens of `texts`, ties broken alphabetically (deterministic)."""
    counts: Counter[str] = Counter()
    for text in texts:
        if isinstance(text, str):
            counts.update(tokens(text))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(word for word, _ in ranked[:max_size])


def build_text_profile(
    reference_texts: Sequence[str | None],
    max_vocabulary: int = MAX_VOCABULARY,
    json_expected: bool = False,
    json_schema: Mapping[str, Any] | None = None,
) -> TextProfile:
    """The profile of a reference (prompts or completions); `json_schema` implies `json_expected`."""
    if max_vocabulary < 1:
        raise ValueError(f"max_vocabulary must be >= 1, got {max_vocabulary!r}")
    if len(reference_texts) < 2:
        raise ValueError(f"a text reference needs at least 2 texts (its vocabulary is built from half), got {len(reference_texts)}")
    return TextProfile(
        vocabulary=vocabulary(reference_texts[0::2], max_vocabulary),
        n_texts=len(reference_texts),
        max_vocabulary=max_vocabulary,
        json_expected=json_expected or json_schema is not None,
        json_schema=json_schema,
    )
