"""OpenAI-compatible calls → records of a `protocol: openai` model's text columns (pure, no I/O).

A call gives one record: its prompt text (`field: prompt`), its first choice's completion
(`field: completion`) and, for columns with `text.tokens`, the token counts the server reported in
`usage` (missing when it did not). The texts stay texts here; `monitor.text.columns` turns them into
descriptor values where records become the frame the drift engine evaluates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.capture.openai import Operation, operation_of, parse_response, prompt_text
from monitor.capture.payload import Record, Rejected, TextColumn

__all__ = ["generative_records", "operation_for"]


def operation_for(path: str, request: Any) -> Operation:
    """The call's operation: from its path (`/v1/chat/completions`...), else from the body's shape
    (`messages` is a chat, `prompt` a completion), for senders that do not say the path."""
    op = operation_of(path.split("?", 1)[0]) if path else None
    if op is None and isinstance(request, dict):
        op = "chat" if "messages" in request else "text_completion" if "prompt" in request else None
    if op is None:
        raise Rejected("schema_mismatch", f"not an OpenAI-compatible chat or completions call (path {path!r})")
    if op == "embeddings":
        raise Rejected("schema_mismatch", "an embeddings call has no prompt or completion text for a `protocol: openai` model")
    return op


def generative_records(columns: Sequence[TextColumn], operation: Operation, request: Any, response: Any | None) -> list[Record]:
    """The one record of a call; `Rejected` when the request or answer is not the API's shape, or the
    answer reports an error (a failed generation is no completion to compare)."""
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
        else:
            record[c.name] = answer.completion if answer is not None and answer.completions else None
            count = usage.output_tokens if usage is not None else None
        if c.tokens is not None:
            record[c.tokens] = count
    return [record]
