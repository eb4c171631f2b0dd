"""Text descriptors: a column of prompts or completions turned into numeric and categorical columns
that the drift engine compares like any feature (definitions, regexes and names: docs/text.md).

    profile = build_text_profile(reference_texts)
    reference = describe_reference(reference_texts, profile)   # out-of-sample OOV for the reference
    window = describe(window_texts, profile, usage=usages)
    evaluate(build_profile(pd.DataFrame(reference), descriptor_specs(reference)), pd.DataFrame(window))

Character descriptors are array lookups over all texts' code points at once (`monitor.text.chars`);
the word, regex and JSON descriptors loop in C-backed calls, one per text. A missing text (None, NaN)
is missing in every column.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.core.descriptors import INPUT_TOKENS, KINDS, OUTPUT_TOKENS
from monitor.drift.spec import ColumnSpec
from monitor.text.chars import FIRST_SCRIPT, SCRIPTS, SPACE, class_table, code_points, per_text
from monitor.text.patterns import REFUSAL, fold_table, pii_hits
from monitor.text.profile import TextProfile, tokens, vocabulary

# usage keys as servers report them: OpenAI chat/completions (prompt/completion), OpenAI Responses and
# Anthropic (input/output)
_USAGE_KEYS = {INPUT_TOKENS: ("input_tokens", "prompt_tokens"), OUTPUT_TOKENS: ("output_tokens", "completion_tokens")}

NO_LETTERS = "none"
_SPACE_CHAR, _ASCII_MAX = 0x20, 0x7F
_DIGIT_LO, _DIGIT_HI, _AT = 0x30, 0x39, 0x40

Columns = dict[str, NDArray[Any]]


def describe(
    texts: Sequence[Any], profile: TextProfile, usage: Sequence[Mapping[str, Any] | None] | None = None
) -> Columns:
    """One array per descriptor, one row per text (column names: `KINDS`).

    `usage`: per text, the server's token usage object (or None); token columns appear when given.
    `json_valid` appears when the profile expects JSON.
    """
    return _describe(texts, profile, profile.words, usage)


def describe_reference(
    reference_texts: Sequence[Any], profile: TextProfile, usage: Sequence[Mapping[str, Any] | None] | None = None
) -> Columns:
    """`describe` for the texts the profile was built from: each half's OOV share is measured against
    the other half's vocabulary, so the reference is as out-of-sample as every window."""
    if len(reference_texts) != profile.n_texts:
        raise ValueError(f"the profile was built from {profile.n_texts} texts, got {len(reference_texts)}")
    columns = _describe(reference_texts, profile, profile.words, usage)
    even = list(reference_texts[0::2])
    odd_vocabulary = frozenset(vocabulary(reference_texts[1::2], profile.max_vocabulary))
    columns["oov_share"][0::2] = _oov_share([t if isinstance(t, str) else "" for t in even], odd_vocabulary, _missing(even))
    return columns


def descriptor_specs(columns: Mapping[str, Any], prefix: str = "") -> list[ColumnSpec]:
    """Feature specs for descriptor columns (named `prefix + name`), methods left to `auto`."""
    return [ColumnSpec(prefix + name, KINDS[name]) for name in columns]


def _describe(texts: Sequence[Any], profile: TextProfile, words: frozenset[str], usage: Sequence[Mapping[str, Any] | None] | None) -> Columns:
    if usage is not None and len(usage) != len(texts):
        raise ValueError(f"usage has {len(usage)} entries for {len(texts)} texts")
    missing = _missing(texts)
    strings = [t if isinstance(t, str) else "" for t in texts]
    cps, offsets = code_points(strings)
    classes = class_table()[cps]
    lengths = np.diff(offsets)
    columns: Columns = {"chars": lengths.astype(np.float64), "words": _word_count(classes, offsets).astype(np.float64)}
    with np.errstate(invalid="ignore", divide="ignore"):  # empty texts: shares are undefined (NaN)
        columns["non_ascii_share"] = per_text(cps > _ASCII_MAX, offsets) / lengths
        columns["non_letter_share"] = per_text((classes < FIRST_SCRIPT) & (cps != _SPACE_CHAR), offsets) / lengths
        columns["script"], columns["script_mix"] = _scripts(classes, lengths)
    columns["oov_share"] = _oov_share(strings, words, missing)
    columns["refusal"] = np.fromiter((REFUSAL.search(t) is not None for t in strings), dtype=np.float64, count=len(strings))
    columns["pii_hits"] = _pii(strings, cps, offsets)
    if profile.json_expected:
        columns["json_valid"] = _json_valid(strings, profile.json_schema)
    for name, col in columns.items():
        col[missing] = None if col.dtype == object else np.nan
        columns[name] = col
    if usage is not None:
        columns |= _usage(usage)
    return columns


def _missing(texts: Sequence[Any]) -> NDArray[np.bool_]:
    return np.fromiter((not isinstance(t, str) for t in texts), dtype=bool, count=len(texts))


def _word_count(classes: NDArray[np.uint8], offsets: NDArray[np.int64]) -> NDArray[np.int64]:
    """Whitespace-separated words, as `len(text.split())`: non-space characters after a space or a start."""
    space = classes == SPACE
    starts = ~space
    starts[1:] &= space[:-1]
    first = offsets[:-1][offsets[:-1] < offsets[1:]]  # each non-empty text's first character starts a word if not a space
    starts[first] = ~space[first]
    return per_text(starts, offsets)


def _scripts(classes: NDArray[np.uint8], lengths: NDArray[np.int64]) -> tuple[NDArray[np.object_], NDArray[np.float64]]:
    """The script most of a text's letters are in (`none` without letters), and the share of its
    letters in other scripts."""
    n, k = lengths.size, len(SCRIPTS)
    text_of = np.repeat(np.arange(n), lengths)
    letter = classes >= FIRST_SCRIPT
    counts = np.bincount(text_of[letter] * k + (classes[letter] - FIRST_SCRIPT), minlength=n * k).reshape(n, k)
    letters = counts.sum(axis=1)
    top = counts.argmax(axis=1)
    names = np.array([*SCRIPTS, NO_LETTERS], dtype=object)
    dominant = names[np.where(letters > 0, top, k)]
    mix = 1.0 - counts[np.arange(n), top] / letters
    return dominant, mix


def _oov_share(strings: Sequence[str], words: frozenset[str], missing: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Share of a text's tokens that are not in the vocabulary (NaN for a text without tokens)."""
    per = [tokens(t) for t in strings]
    n_tokens = np.fromiter(map(len, per), dtype=np.int64, count=len(per))
    flat = list(chain.from_iterable(per))
    unknown = np.fromiter((w not in words for w in flat), dtype=bool, count=len(flat))
    offsets = np.zeros(len(per) + 1, dtype=np.int64)
    np.cumsum(n_tokens, out=offsets[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return per_text(unknown, offsets) / n_tokens


def _pii(strings: Sequence[str], cps: NDArray[np.uint32], offsets: NDArray[np.int64]) -> NDArray[np.float64]:
    """PII hits per text. Every pattern needs a digit or an '@' (read after folding: a fullwidth `４`,
    an Arabic-Indic `٤`, a `＠`), so only texts with one are searched."""
    hits = np.zeros(len(strings))
    wide = cps > _ASCII_MAX
    lookalike = np.zeros(cps.size, dtype=bool)
    lookalike[wide] = np.isin(cps[wide], _digit_or_at_lookalikes())
    candidate = per_text(((cps >= _DIGIT_LO) & (cps <= _DIGIT_HI)) | (cps == _AT) | lookalike, offsets) > 0
    for i in np.flatnonzero(candidate):
        hits[i] = pii_hits(strings[int(i)])
    return hits


@functools.cache
def _digit_or_at_lookalikes() -> NDArray[np.uint32]:
    """Code points beyond ASCII that the PII patterns read as a digit or an '@' (`fold_table`)."""
    return np.array(sorted(c for c, to in fold_table().items() if _DIGIT_LO <= to <= _DIGIT_HI or to == _AT), dtype=np.uint32)


def _json_valid(strings: Sequence[str], schema: Mapping[str, Any] | None) -> NDArray[np.float64]:
    """1 when the text parses as JSON (and satisfies the schema when one is given), else 0."""
    validator = _schema_validator(schema) if schema is not None else None
    out = np.zeros(len(strings))
    for i, text in enumerate(strings):
        try:
            value = json.loads(text)
        except ValueError:
            continue
        out[i] = 1.0 if validator is None or validator.is_valid(value) else 0.0
    return out


def _schema_validator(schema: Mapping[str, Any]) -> Any:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise RuntimeError("a JSON Schema for text descriptors needs the jsonschema package: pip install 'driftwatch[text]'") from exc
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _usage(usage: Sequence[Mapping[str, Any] | None]) -> Columns:
    """Token counts as the server reported them; NaN where it did not (or not as a number)."""
    columns: Columns = {}
    for name, keys in _USAGE_KEYS.items():
        col = np.full(len(usage), np.nan)
        for i, u in enumerate(usage):
            if not isinstance(u, Mapping):
                continue
            value = next((u[k] for k in keys if k in u), None)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                col[i] = float(value)
        columns[name] = col
    return columns
