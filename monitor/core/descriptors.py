"""The text descriptors' names and kinds: the config expands a `type: text` column into them, and
`monitor.text` computes them (definitions: docs/text.md). Here, in core, so both read one table."""

from __future__ import annotations

from typing import Literal

__all__ = ["INPUT_TOKENS", "KINDS", "OUTPUT_TOKENS", "SEMANTIC", "SEMANTIC_DIMENSIONS", "TEXT_DESCRIPTORS", "TOKEN_DESCRIPTORS"]

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
