"""The `POST /v1/labels` wire format: delayed ground truth, keyed by the captured event's id.

```json
{"model": "fraud", "labels": [
  {"id": "req-81f2", "label": 1, "timestamp": 1764950400.0},
  {"id": "req-81f3", "labels": ["cat", "dog"], "timestamp": "2026-12-05T16:00:00Z"}
]}
```

`id` is the id the capture stored: the sidecar's `ce-id` or `x-request-id` request header (a
generated one otherwise), KServe's `Ce-Id`, the `id` of an event posted to `/v1/events`. An event
of several records (a batch of instances) takes `labels`, one per record in order; an event of
one record takes `label`. `timestamp` (optional) is when the ground truth became known: unix
seconds or RFC 3339. A malformed batch is refused whole (422 with the item's index), so nothing
of it is half-stored; a well-formed label that cannot be joined is counted by its outcome.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

import msgspec

from monitor.capture.wire import ID_PATTERN, MAX_ID, MAX_MODEL, EnvelopeError, Namespace
from monitor.core.units import MAX_TIMESTAMP

__all__ = ["MAX_LABELS", "MAX_RECORDS_PER_LABEL", "Label", "LabelBatch", "decode_labels", "encode_labels"]

MAX_LABELS = 10_000
"""Labels one request may carry (larger uploads are split by `driftwatch labels upload`)."""
MAX_RECORDS_PER_LABEL = 10_000
MAX_LABEL_TEXT = 256

Scalar = str | int | float | bool


class Label(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
    label: Scalar | None = None
    labels: Annotated[list[Scalar], msgspec.Meta(min_length=1, max_length=MAX_RECORDS_PER_LABEL)] | None = None
    timestamp: float | str | None = None

    def values(self) -> list[Scalar]:
        """The label of each of the event's records, in order."""
        return self.labels if self.labels is not None else [self.label]  # type: ignore[list-item]


class LabelBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MODEL)]
    namespace: Namespace | None = None
    """Needed only when models of this name run in several namespaces."""
    labels: Annotated[list[Label], msgspec.Meta(max_length=MAX_LABELS)]


_decoder = msgspec.json.Decoder(LabelBatch)


def decode_labels(data: bytes) -> tuple[LabelBatch, list[float | None]]:
    """The batch and each label's timestamp in unix seconds, or `EnvelopeError` (`invalid_json`,
    or `validation_failed` with the failing fields; label values are never echoed)."""
    try:
        batch = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        msg, _, path = str(exc).partition(" - at `$")
        raise EnvelopeError("validation_failed", [{"loc": path.rstrip("`") or "(body)", "msg": _quiet(msg)}]) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        try:
            json.loads(data)
        except (ValueError, RecursionError):
            raise EnvelopeError("invalid_json", "body is not valid JSON") from None
        raise EnvelopeError("invalid_json", str(exc)[:200]) from None
    errors: list[dict[str, str]] = []
    stamps: list[float | None] = []
    for i, item in enumerate(batch.labels):
        loc = f"labels[{i}]"
        if (item.label is None) == (item.labels is None):
            errors.append({"loc": loc, "msg": "give exactly one of `label` (one record) and `labels` (one per record)"})
        for value in item.values():
            if isinstance(value, float) and not math.isfinite(value):
                errors.append({"loc": loc, "msg": "a label must be a finite number, a string or a boolean"})
            elif isinstance(value, str) and len(value) > MAX_LABEL_TEXT:
                errors.append({"loc": loc, "msg": f"a label's text is at most {MAX_LABEL_TEXT} characters"})
        try:
            stamps.append(_seconds(item.timestamp))
        except ValueError as exc:
            stamps.append(None)
            errors.append({"loc": f"{loc}.timestamp", "msg": str(exc)})
        if len(errors) >= 50:
            break
    if errors:
        raise EnvelopeError("validation_failed", errors[:50])
    return batch, stamps


def _seconds(value: float | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("timestamp must be unix seconds or RFC 3339 (e.g. 2026-12-05T16:00:00Z)") from None
        if parsed.tzinfo is None:
            raise ValueError("an RFC 3339 timestamp needs its offset (e.g. Z or +01:00)")
        value = parsed.timestamp()
    if not 0 <= value <= MAX_TIMESTAMP:
        raise ValueError("timestamp must be between 1970 and 9999")
    return float(value)


def _quiet(msg: str) -> str:
    """msgspec's message without quoting sender data."""
    return "Invalid enum value" if msg.startswith("Invalid enum value") else msg


def encode_labels(model: str, items: list[dict[str, Any]]) -> bytes:
    """A batch as the CLI uploader sends it."""
    return msgspec.json.encode({"model": model, "labels": items})
