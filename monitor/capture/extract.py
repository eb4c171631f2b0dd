"""One captured event → its feature records (the single place ingest and rebuild both parse)."""

from __future__ import annotations

from monitor.capture.generative import generative_records, operation_for
from monitor.capture.payload import ModelSchema, Record, Rejected, parse_payload
from monitor.capture.wire import CapturedEvent, decode_body

__all__ = ["event_records"]


def event_records(schema: ModelSchema, event: CapturedEvent) -> list[Record]:
    """Parse an event's bodies; `Rejected` when the call failed upstream or the payload misfits.

    A failed call (non-2xx) has no predictions and often malformed inputs, so it is counted as
    `upstream_error` instead of feeding the window. The response body is only decoded when the
    model has outputs to read from it. An OpenAI-compatible call (`protocol: openai`) always has
    its answer read: the prompt's token count is in it.
    """
    if not 200 <= event.status < 300:
        raise Rejected("upstream_error", f"the model answered {event.status}")
    request = decode_body(event.request)
    if schema.protocol == "openai":
        answer = decode_body(event.response) if event.response is not None else None
        return generative_records(schema.texts, operation_for(event.path, request, schema.texts), request, answer)
    response = decode_body(event.response) if schema.outputs and event.response is not None else None
    return parse_payload(schema, request, response)
