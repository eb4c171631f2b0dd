"""One captured event → its feature records (the single place ingest and rebuild both parse)."""

from __future__ import annotations

from monitor.capture.generative import generative_records, operation_for
from monitor.capture.payload import ModelSchema, Record, Rejected, parse_payload, sniff_protocol
from monitor.capture.version import body_version, envelope_version
from monitor.capture.wire import CapturedEvent, decode_body

__all__ = ["event_records", "versioned_records"]


def event_records(schema: ModelSchema, event: CapturedEvent) -> list[Record]:
    """Parse an event's bodies; `Rejected` when the call failed upstream or the payload misfits.

    A failed call (non-2xx) has no predictions and often malformed inputs, so it is counted as
    `upstream_error` instead of feeding the window. The response body is only decoded when the
    model has outputs to read from it. An OpenAI-compatible call (`protocol: openai`) always has
    its answer read: the prompt's token count is in it.
    """
    records, _, rejected = versioned_records(schema, event)
    if rejected is not None:
        raise rejected
    return records


def versioned_records(schema: ModelSchema, event: CapturedEvent) -> tuple[list[Record], str | None, Rejected | None]:
    """`event_records`, and the version the traffic names (unchecked, monitor.capture.version), with
    the rejection returned rather than raised: a rejected event still belongs to its version.

    The response of a model without outputs is decoded for its `model_version` only when nothing
    cheaper named the version and the call speaks Open Inference v2."""
    version = envelope_version(event)
    if not 200 <= event.status < 300:
        return [], version, Rejected("upstream_error", f"the model answered {event.status}")
    try:
        request = decode_body(event.request)
        if schema.protocol == "openai":
            answer = decode_body(event.response) if event.response is not None else None
            return generative_records(schema.texts, operation_for(event.path, request, schema.texts), request, answer), version, None
        response = decode_body(event.response) if schema.outputs and event.response is not None else None
        if version is None and event.response is not None and _speaks_v2(schema, request):
            if response is None:
                try:  # read for its version only: an answer that cannot be read is not the record's fault
                    response = decode_body(event.response)
                except Rejected:
                    response = None
            version = body_version(response)
        return parse_payload(schema, request, response if schema.outputs else None), version, None
    except Rejected as exc:
        return [], version, exc


def _speaks_v2(schema: ModelSchema, request: object) -> bool:
    return schema.protocol == "v2" or (schema.protocol == "auto" and sniff_protocol(request) == "v2")
