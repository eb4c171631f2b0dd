"""The text descriptors' names and kinds: the config expands a `type: text` column into them, and
`monitor.text` computes them (definitions: docs/text.md). Here, in core, so both read one table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

__all__ = ["INPUT_TOKENS", "KINDS", "OUTPUT_TOKENS", "SEMANTIC", "SEMANTIC_DIMENSIONS", "TEXT_DESCRIPTORS", "TOKEN_DESCRIPTORS", "text_columns_of"]

# OpenTelemetry GenAI semantic conventions name token usage; the other descriptors have no OTel name.
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"

KINDS: dict[str, Literal["numeric", "categorical"]] = {
    "chars": "numeric",
    "words": "numeric",
    "non_ascii_share": "numeric",
    "non_letter_share": "numeric",
    "script": "categorical",
    "script_mix": "numeric",
    "oov_share": "numeric",
    "refusal": "numeric",
    "pii_hits": "numeric",
    "json_valid": "numeric",
    INPUT_TOKENS: "numeric",
    OUTPUT_TOKENS: "numeric",
}
TOKEN_DESCRIPTORS = (INPUT_TOKENS, OUTPUT_TOKENS)
TEXT_DESCRIPTORS = tuple(name for name in KINDS if name not in (*TOKEN_DESCRIPTORS, "json_valid"))
"""Computed from every text; `json_valid` only when JSON is expected, token counts only from `usage`."""

SEMANTIC = "semantic"
"""`text: {semantic: true}`: the embedding column `<column>.semantic`, the texts' sentence vectors."""
SEMANTIC_DIMENSIONS = 384
"""all-MiniLM-L6-v2's vector length (monitor.text.embed)."""


def text_columns_of(names: Iterable[str]) -> dict[str, list[str]]:
    """The text columns behind descriptor column names (`<column>.<descriptor>`), each with its
    descriptor columns among `names`, in their order. A prefix counts only when every descriptor
    computed from every text (`TEXT_DESCRIPTORS`) is there, so a plain column named `a.chars` stays plain."""
    names = list(names)
    found: dict[str, list[str]] = {}
    for name in names:
        for descriptor in KINDS:
            if name.endswith("." + descriptor):
                found.setdefault(name[: -len(descriptor) - 1], []).append(name)
                break
    present = set(names)
    return {col: cols for col, cols in found.items() if all(f"{col}.{d}" in present for d in TEXT_DESCRIPTORS)}
