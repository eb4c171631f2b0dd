"""KServe payload-logger CloudEvents → request/response halves, and joining halves into an event.

KServe's agent (pkg/logger/worker.go) sends the request and the response of one inference as two
binary-mode CloudEvents with the same `ce-id`, from concurrent workers, so they arrive in either
order. Structured mode (`application/cloudevents+json`) and spec 0.2 / older header names
(`ce-inferenceservice`) are accepted too. Pure: the service persists and joins the halves.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from monitor.capture.wire import Body, CapturedEvent
from monitor.core.names import DNS1123_LABEL_RE as NAMESPACE_RE
from monitor.core.units import MAX_TIMESTAMP

__all__ = ["CloudEventError", "Half", "join_halves", "parse_cloudevent"]

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
_KINDS: dict[str, Literal["request", "response"]] = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
_SPEC_VERSIONS = frozenset({"1.0", "0.3", "0.2"})
_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}\Z")
_CONTEXT = ("namespace", "component", "endpoint", "source")


class CloudEventError(ValueError):
    """A request that is not a usable inference CloudEvent (answered 400 with `error`)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class Half:
    """One side of an inference: what the store keeps until its partner arrives."""

    model: str
    id: str
    kind: Literal["request", "response"]
    time: float | None
    body: Body
    context: dict[str, str]

    @property
    def namespace(self) -> str | None:
        """The InferenceService's namespace (`Ce-Namespace`), when it is one (a DNS label)."""
        ns = self.context.get("namespace")
        return ns if ns is not None and NAMESPACE_RE.match(ns) else None

    def to_json(self) -> str:
        return json.dumps({
            "model": self.model, "id": self.id, "kind": self.kind, "time": self.time,
            "body": msgspec.structs.asdict(self.body), "context": self.context,
        })

    @classmethod
    def from_json(cls, text: str) -> Half:
        d = json.loads(text)
        return cls(d["model"], d["id"], d["kind"], d["time"], Body.model_validate(d["body"]), d["context"])


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Go emits nanoseconds; Python's parser takes at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise CloudEventError("invalid_cloudevent", f"`time` is not RFC 3339: {value[:64]!r}") from None


def _body(data: bytes, content_type: str | None) -> Body:
    try:
        return Body(body=data.decode("utf-8"), content_type=content_type)
    except UnicodeDecodeError:
        return Body(body=base64.b64encode(data).decode("ascii"), encoding="base64", content_type=content_type)


def _half(attrs: dict[str, Any], data: bytes, content_type: str | None) -> Half:
    """Validate the attributes shared by both modes; `attrs` keys are lower-case attribute names.

    Every constraint of the event envelope is checked here (a 400 for the sender), because
    `join_halves` builds the event directly, without validation.
    """
    spec = attrs.get("specversion")
    if not isinstance(spec, str) or spec not in _SPEC_VERSIONS:
        raise CloudEventError("invalid_cloudevent", f"unsupported or missing specversion {spec!r}")
    for name in ("id", "type", "source"):
        if not isinstance(attrs.get(name), str) or not attrs[name]:
            raise CloudEventError("invalid_cloudevent", f"missing required attribute `{name}`")
    kind = _KINDS.get(attrs["type"])
    if kind is None:
        raise CloudEventError("unsupported_type", f"type must be {REQUEST_TYPE} or {RESPONSE_TYPE}")
    if not _ID_RE.match(attrs["id"]):
        raise CloudEventError("invalid_cloudevent", "`id` must be 1-128 characters of [A-Za-z0-9._:-]")
    model = attrs.get("inferenceservicename") or attrs.get("inferenceservice")
    if not isinstance(model, str) or not model or len(model) > 253:
        raise CloudEventError("invalid_cloudevent", "missing or over-long `inferenceservicename` (or `inferenceservice`)")
    time = _parse_time(attrs.get("time") if isinstance(attrs.get("time"), str) else None)
    if time is not None and not 0 <= time <= MAX_TIMESTAMP:
        raise CloudEventError("invalid_cloudevent", "`time` is before 1970 or after 9999-12-31T23:59:59Z")
    if content_type is not None and len(content_type) > 256:
        raise CloudEventError("invalid_cloudevent", "content type longer than 256 characters")
    context = {k: attrs[k][:256] for k in _CONTEXT if isinstance(attrs.get(k), str)}
    if not all(map(_unicode, (model, content_type or "", *context.values()))):
        raise CloudEventError("invalid_cloudevent", "attributes must be valid Unicode (a lone surrogate escape is not)")
    return Half(model, attrs["id"], kind, time, _body(data, content_type), context)


def _unicode(text: str) -> bool:
    """Whether `text` can be stored as UTF-8 (JSON's `\\ud800` escapes decode to lone surrogates, which cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_cloudevent(headers: dict[str, str], body: bytes) -> Half:
    """A half from an HTTP request (headers with lower-case names), in binary or structured mode."""
    content_type = headers.get("content-type")
    if content_type and content_type.split(";")[0].strip().lower() == "application/cloudevents+json":
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            raise CloudEventError("invalid_json", "structured CloudEvent is not valid JSON") from None
        if not isinstance(envelope, dict):
            raise CloudEventError("invalid_cloudevent", "a structured CloudEvent is a JSON object")
        attrs = {k.lower(): v for k, v in envelope.items()}
        if "data_base64" in attrs:
            try:
                data = base64.b64decode(str(attrs["data_base64"]), validate=True)
            except ValueError:
                raise CloudEventError("invalid_cloudevent", "`data_base64` is not valid base64") from None
        elif isinstance(attrs.get("data"), str):
            if not _unicode(attrs["data"]):
                raise CloudEventError("invalid_cloudevent", "`data` must be valid Unicode (a lone surrogate escape is not)")
            data = attrs["data"].encode("utf-8")
        else:
            data = json.dumps(attrs.get("data"), allow_nan=True).encode("utf-8")
        inner = attrs.get("datacontenttype") or attrs.get("contenttype")
        return _half(attrs, data, inner if isinstance(inner, str) else None)
    attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    return _half(attrs, body, content_type)


def join_halves(request: Half | None, response: Half | None, received: float) -> CapturedEvent:
    """The captured event for a pair, or for a half whose partner never came."""
    first = request or response
    assert first is not None, "join needs at least one half"
    timestamp = (request.time if request else None) or first.time or received
    latency = None
    if request and response and request.time is not None and response.time is not None:
        latency = max(0.0, response.time - request.time)
    return CapturedEvent(
        id=first.id,
        model=first.model,
        namespace=first.namespace,
        timestamp=timestamp,
        latency_seconds=latency,
        path=first.context.get("endpoint", ""),
        request=request.body if request else Body(body="null"),
        response=response.body if response else None,
        headers={f"ce-{k}": v for k, v in first.context.items()},
    )
