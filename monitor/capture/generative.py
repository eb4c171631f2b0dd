"""OpenAI-compatible calls → records of a `protocol: openai` model's text columns (pure, no I/O).

A chat or completions call gives one record: its prompt text (`field: prompt`), its first choice's
completion (`field: completion`) and, for columns with `text.tokens`, the token counts the server
reported in `usage` (missing when it did not). An embeddings call gives one record per input: its
text (`field: prompt`) and its vector (`field: embedding`, checked against the column's dimensions);
its completion is missing, and so is its token count unless it is the call's only input (`usage`
counts the whole call). The texts stay texts here; `monitor.text.columns` turns them into
descriptor values where records become the frame the drift engine evaluates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.capture.openai import Operation, operation_of, parse_request, parse_response, prompt_text
from monitor.capture.payload import Record, Rejected, TextColumn, vector

__all__ = ["generative_records", "operation_for"]


def operation_for(path: str, request: Any, columns: Sequence[TextColumn] = ()) -> Operation:
    """The call's operation: from its path (`/v1/chat/completions`...), else from the body's shape
    (`messages` is a chat, `prompt` a completion, `input` an embeddings call), for senders that do not
    say the path. An embeddings call fits only a model with a `field: embedding` column."""
    op = operation_of(path.split("?", 1)[0]) if path else None
    if op is None and isinstance(request, dict):
        op = "chat" if "messages" in request else "text_completion" if "prompt" in request else "embeddings" if "input" in request else None
    if op is None:
        raise Rejected("schema_mismatch", f"not an OpenAI-compatible chat, completions or embeddings call (path {path!r})")
    if op == "embeddings" and not any(c.field == "embedding" for c in columns):
        raise Rejected("schema_mismatch", "an embeddings call fits a `protocol: openai` model only with a `field: embedding` column")
    return op


def generative_records(columns: Sequence[TextColumn], operation: Operation, request: Any, response: Any | None) -> list[Record]:
    """The call's records; `Rejected` when the request or answer is not the API's shape, or the
    answer reports an error (a failed generation is no completion to compare)."""
    if operation == "embeddings":
        return _embedding_records(columns, request, response)
    prompt = prompt_text(operation, request)
    answer = parse_response(operation, response) if response is not None else None
    if answer is not None and answer.error is not None:
        raise Rejected("upstream_error", f"the model reported an error: {answer.error[:200]}")
    usage = answer.usage if answer is not None else None
    record: Record = {}
    for c in columns:
        if c.field == "prompt":
            record[c.name] = prompt
            count = usage.input_tokens if usage is not None else None
        elif c.field == "completion":
            record[c.name] = answer.completion if answer is not None and answer.completions else None
            count = usage.output_tokens if usage is not None else None
        else:  # a chat or completion has no vector
            record[c.name] = count = None
        if c.tokens is not None:
            record[c.tokens] = count
    return [record]


def _embedding_records(columns: Sequence[TextColumn], request: Any, response: Any | None) -> list[Record]:
    """One record per input of an embeddings call: its text and its vector (in `data[].index` order)."""
    inputs = parse_request("embeddings", request).inputs
    if response is None:
        raise Rejected("schema_mismatch", "an embeddings call without its answer has no vectors")
    answer = parse_response("embeddings", response)
    if answer.error is not None:
        raise Rejected("upstream_error", f"the model reported an error: {answer.error[:200]}")
    if not answer.vectors:
        raise Rejected("empty_payload", "the embeddings answer has no vectors")
    usage = answer.usage
    if inputs and len(inputs) != len(answer.vectors):
        raise Rejected("schema_mismatch", f"{len(answer.vectors)} vectors for {len(inputs)} inputs")
    records: list[Record] = []
    for i, vec in enumerate(answer.vectors):
        record: Record = {}
        for c in columns:
            if c.field == "embedding":
                assert c.dimensions is not None  # the config requires `type: embedding` for the field
                record[c.name] = vector(vec, c.name, c.dimensions)
            else:
                record[c.name] = inputs[i] if c.field == "prompt" and inputs else None
            if c.tokens is not None:  # `usage` counts the call: one input's own count only when it is alone
                record[c.tokens] = usage.input_tokens if c.field == "prompt" and usage is not None and len(answer.vectors) == 1 else None
        records.append(record)
    return records
