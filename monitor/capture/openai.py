"""OpenAI-compatible generative traffic → prompt, completion, usage and vectors (pure, no I/O).

The shapes are those of vLLM's OpenAI-compatible server (and KServe's Hugging Face runtime and TGI,
which speak the same API): `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, with
an optional prefix (KServe serves them under `/openai/v1/...`).

A streamed answer (`"stream": true`) is Server-Sent Events: `data: {json}\\n\\n` per chunk, each
holding `choices[].delta.content` (chat) or `choices[].text` (completions) and, on the last chunk of
a choice, its `finish_reason`; with `stream_options: {"include_usage": true}` a final chunk with
`"choices": []` and `usage`; then `data: [DONE]`. vLLM reports a failure after the head was sent as
an event `data: {"error": {...}}` followed by `[DONE]`. `StreamAssembler` reassembles such a stream
into the shape of the non-streamed answer, so one parser (`parse_response`) reads both; it is fed
the body as it arrives, in pieces cut anywhere (mid-line, mid-UTF-8 character), and keeps at most
`max_chars` characters of content (then marks itself truncated), so its memory is bounded however
long the generation.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import numpy as np

from monitor.capture.payload import Rejected

__all__ = [
    "MAX_CHOICES",
    "GenRequest",
    "GenResponse",
    "Operation",
    "SSEDecoder",
    "StreamAssembler",
    "Usage",
    "operation_of",
    "parse_request",
    "parse_response",
    "prompt_text",
    "usage_from",
    "usage_of",
]

Operation = Literal["chat", "text_completion", "embeddings"]
"""OpenTelemetry's `gen_ai.operation.name` values for the three endpoints."""
_PATH = re.compile(r"(?:^|/)v1/(chat/completions|completions|embeddings)\Z")
_OPERATIONS: dict[str, Operation] = {"chat/completions": "chat", "completions": "text_completion", "embeddings": "embeddings"}
MAX_CHOICES = 16
"""Choices (`n`) reassembled per stream, and tool calls per choice; further indices are counted as truncation."""
MAX_TOOL_NAME = 256
"""Characters of a tool call's function name kept (names are short; the arguments count toward `max_chars`)."""


def operation_of(path: str) -> Operation | None:
    """The generative operation a request path names (query string already removed), or None."""
    m = _PATH.search(path)
    return _OPERATIONS[m.group(1)] if m else None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the server reported them (`usage.prompt_tokens`, `usage.completion_tokens`)."""

    input_tokens: int | None
    output_tokens: int | None


@dataclass(frozen=True, slots=True)
class GenRequest:
    operation: Operation
    model: str | None
    prompt: str
    """Chat: `role: content` lines joined by newlines; completions: the prompt(s); embeddings: the inputs."""
    inputs: tuple[str, ...]
    """Embeddings: the input texts (token-id inputs are not text and are left out)."""
    stream: bool
    include_usage: bool
    max_tokens: int | None
    temperature: float | None


@dataclass(frozen=True, slots=True)
class GenResponse:
    operation: Operation
    model: str | None
    completions: tuple[str, ...]
    """One text per choice, in index order."""
    finish_reasons: tuple[str | None, ...]
    usage: Usage | None
    vectors: tuple[list[float], ...]
    """Embeddings, in `data[].index` order."""
    error: str | None
    truncated: bool
    """The content was cut at the capture limit (a reassembled stream's `truncated` mark)."""

    @property
    def completion(self) -> str:
        return self.completions[0] if self.completions else ""

    @property
    def finish_reason(self) -> str | None:
        return self.finish_reasons[0] if self.finish_reasons else None


# -- requests ------------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """A message's content: a string, or the text parts of a list of parts (images etc. left out)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _token_ids(value: Any) -> bool:
    """A non-empty list of token ids, or of such lists."""
    def ids(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)

    return ids(value) or (isinstance(value, list) and bool(value) and all(ids(v) for v in value))


def parse_request(operation: Operation, obj: Any) -> GenRequest:
    """The request's prompt, model and sampling parameters; `Rejected` when it is not the API's shape."""
    if not isinstance(obj, dict):
        raise Rejected("schema_mismatch", f"an OpenAI {operation} request is a JSON object")
    model = obj.get("model") if isinstance(obj.get("model"), str) else None
    inputs: tuple[str, ...] = ()
    if operation == "chat":
        messages = obj.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise Rejected("schema_mismatch", "`messages` must be a list of objects")
        prompt = "\n".join(f"{m.get('role', '')}: {_text(m.get('content'))}" for m in messages)
    else:
        key = "prompt" if operation == "text_completion" else "input"
        value = obj.get(key)
        if isinstance(value, str):
            inputs = (value,)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            inputs = tuple(value)
        elif not _token_ids(value):  # token ids are valid input but not text: no prompt text
            raise Rejected("schema_mismatch", f"`{key}` must be a string, a non-empty list of strings, or token ids")
        prompt = "\n".join(inputs)
    options = obj.get("stream_options")
    max_tokens = obj.get("max_completion_tokens", obj.get("max_tokens"))
    return GenRequest(
        operation, model, prompt, inputs if operation == "embeddings" else (),
        obj.get("stream") is True,
        isinstance(options, dict) and options.get("include_usage") is True,
        max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
        _number(obj.get("temperature")),
    )


def prompt_text(operation: Operation, obj: Any) -> str:
    """The text a user wrote: a chat's `user` messages (system prompts are the deployment's, assistant
    turns earlier answers), a completion's prompt(s); what a `field: prompt` text column monitors."""
    if operation != "chat":
        return parse_request(operation, obj).prompt
    parse_request(operation, obj)  # the same shape checks, the same rejections
    return "\n".join(_text(m.get("content")) for m in obj["messages"] if m.get("role") == "user")


# -- responses -----------------------------------------------------------------------------------


def usage_from(value: Any) -> Usage | None:
    """A decoded `usage` object's token counts (None when it is not an object)."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    return Usage(
        prompt if isinstance(prompt, int) and not isinstance(prompt, bool) else None,
        completion if isinstance(completion, int) and not isinstance(completion, bool) else None,
    )


def _error(value: Any) -> str | None:
    if isinstance(value, dict):
        message = value.get("message")
        return message if isinstance(message, str) else str(value)[:500]
    return None if value is None else str(value)[:500]


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):  # encoding_format=base64: little-endian float32
        try:
            return np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4").astype(float).tolist()
        except (binascii.Error, ValueError):
            raise Rejected("schema_mismatch", "an embedding is neither a list of numbers nor base64 float32") from None
    if isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        try:
            return [float(v) for v in value]
        except OverflowError:  # an integer beyond a double: not a vector any model sends
            raise Rejected("vector_non_finite", "an embedding holds a number beyond a double's range") from None
    raise Rejected("schema_mismatch", "an embedding is neither a list of numbers nor base64 float32")


def parse_response(operation: Operation, obj: Any) -> GenResponse:
    """Completion text, finish reason and usage (or embedding vectors) of a non-streamed answer or
    of a reassembled stream (`StreamAssembler.body()`); `Rejected` when it is not the API's shape."""
    if not isinstance(obj, dict):
        raise Rejected("schema_mismatch", f"an OpenAI {operation} response is a JSON object")
    model = obj.get("model") if isinstance(obj.get("model"), str) else None
    usage = usage_from(obj.get("usage"))
    error = _error(obj.get("error"))
    truncated = obj.get("truncated") is True
    if operation == "embeddings":
        data = obj.get("data", [])
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise Rejected("schema_mismatch", "`data` must be a list of objects")
        ordered = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d.get("index"), int) else 0)
        vectors = tuple(_vector(d.get("embedding")) for d in ordered)
        return GenResponse(operation, model, (), (), usage, vectors, error, truncated)
    choices = obj.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise Rejected("schema_mismatch", "`choices` must be a list of objects")
    texts: list[str] = []
    reasons: list[str | None] = []
    for c in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0):
        if operation == "chat":
            message = c.get("message")
            texts.append(_text(message.get("content")) if isinstance(message, dict) else "")
        else:
            texts.append(c["text"] if isinstance(c.get("text"), str) else "")
        reason = c.get("finish_reason")
        reasons.append(reason if isinstance(reason, str) else None)
    return GenResponse(operation, model, tuple(texts), tuple(reasons), usage, (), error, truncated)


class _UsageField(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _UsageOnly(msgspec.Struct):
    usage: _UsageField | None = None


_usage_decoder = msgspec.json.Decoder(_UsageOnly)


def usage_of(body: bytes) -> Usage | None:
    """Only the `usage` of a non-streamed JSON answer, without building the rest (vectors, choices):
    what the sidecar reads for its token metrics. None when absent or not JSON of that shape."""
    try:
        found = _usage_decoder.decode(body).usage
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return None if found is None else Usage(found.prompt_tokens, found.completion_tokens)


# -- streams -------------------------------------------------------------------------------------


class SSEDecoder:
    """Incremental `text/event-stream` parser (WHATWG HTML, "Parsing an event stream").

    Lines end in CRLF, LF or CR (a CRLF split between two pieces counts once); `:` starts a comment;
    only the `data` field matters here (`event`, `id`, `retry` are read past); a blank line
    dispatches the event's data lines joined by newlines. Lines are split as bytes (line ends are
    ASCII, so a UTF-8 character cut between pieces is whole again in its line) and an event's data
    is returned as bytes for the JSON decoder to read directly. A line longer than `max_line` bytes
    is dropped and `truncated` set, so a stream without line breaks cannot grow memory.
    """

    __slots__ = ("_after_cr", "_data", "_line", "_line_size", "_skipping", "_started", "max_line", "truncated")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._line: list[bytes] = []
        self._line_size = 0
        self._skipping = False
        self._after_cr = False
        self._started = False
        self._data: list[bytes] | None = None
        self.truncated = False

    def feed(self, data: bytes) -> list[bytes]:
        """The data of every event this piece completes."""
        if not self._started and data:
            self._started = True
            if data.startswith(b"\xef\xbb\xbf"):  # a byte order mark may start the stream
                data = data[3:]
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        self._after_cr = False
        if not data:
            return []
        if b"\r" in data:
            self._after_cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[bytes] = []
        lines = data.split(b"\n")
        for line in lines[:-1]:
            if self._line or self._skipping:
                self._take(line)
                line = b"".join(self._line)
                skipped = self._skipping
                self._line, self._line_size, self._skipping = [], 0, False
                if skipped:
                    continue
            elif len(line) > self.max_line:
                self.truncated = True
                continue
            self._complete(line, events)
        self._take(lines[-1])
        return events

    def _take(self, part: bytes) -> None:
        if self._skipping or not part:
            return
        self._line_size += len(part)
        if self._line_size > self.max_line:
            self._skipping = True
            self.truncated = True
            self._line = []
            return
        self._line.append(part)

    def _complete(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data is not None:
                events.append(self._data[0] if len(self._data) == 1 else b"\n".join(self._data))
                self._data = None
            return
        if line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
        elif line == b"data":
            value = b""
        else:
            return  # a comment (`:`), another field, or a line without a colon naming another field
        if self._data is None:
            self._data = [value]
        else:
            self._data.append(value)


class _FunctionDelta(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(msgspec.Struct):
    index: int = 0
    id: str | None = None
    type: str | None = None
    function: _FunctionDelta | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    role: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _ToolCall:
    """One tool call of a streamed choice: its id, type and name arrive once, its arguments in pieces."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type or "function",
                "function": {"name": self.name, "arguments": "".join(self.arguments)}}


class _ChoiceParts:
    """What a streamed choice has said so far."""

    __slots__ = ("finish_reason", "refusal", "role", "texts", "tool_calls")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.refusal: list[str] = []
        self.role: str | None = None
        self.finish_reason: str | None = None
        self.tool_calls: dict[int, _ToolCall] = {}


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    text: str | None = None
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    """The fields of a stream chunk that reassembly reads (others are skipped by the decoder)."""

    id: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: dict[str, Any] | None = None
    error: Any = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_encode = msgspec.json.Encoder().encode
_DONE = b"[DONE]"


class StreamAssembler:
    """A streamed chat or completions answer, reassembled as it arrives into the non-streamed shape.

    `feed` takes body pieces as they come off the wire; `body()` returns the equivalent non-streamed
    answer (id, model, choices with their text, refusal, tool calls and finish reason, usage when the server sent it,
    `error` when it sent an error event, and `"truncated": true` when content beyond `max_chars`
    was dropped). Events that are not JSON chunks of this shape are counted in `invalid` and skipped.
    """

    __slots__ = (
        "_chars", "_chat", "_choices", "content_events", "done", "error", "events", "id", "invalid", "max_chars", "model",
        "operation", "sse", "truncated", "usage",
    )

    def __init__(self, operation: Operation, max_chars: int) -> None:
        self.operation = operation
        self._chat = operation == "chat"
        self.max_chars = max_chars
        self.sse = SSEDecoder(max(max_chars, 64 * 1024))
        self._choices: dict[int, _ChoiceParts] = {}
        self._chars = 0
        self.events = 0
        self.content_events = 0
        """Events that carried content (the first one marks the time to first token)."""
        self.invalid = 0
        self.done = False
        self.truncated = False
        self.id: str | None = None
        self.model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.error: Any = None

    def feed(self, data: bytes) -> None:
        for payload in self.sse.feed(data):
            self._event(payload)

    def _event(self, payload: bytes) -> None:
        self.events += 1
        if payload.strip() == _DONE:
            self.done = True
            return
        try:
            chunk = _decode_chunk(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            self.invalid += 1
            return
        if chunk.error is not None:
            self.error = chunk.error
        if self.id is None:
            self.id = chunk.id
        if self.model is None:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage  # the last one wins (continuous usage grows)
        if not chunk.choices:
            return
        had_content = False
        for c in chunk.choices:
            slot = self._choices.get(c.index)
            if slot is None:
                if len(self._choices) >= MAX_CHOICES:
                    self.truncated = True
                    continue
                slot = self._choices[c.index] = _ChoiceParts()
            if self._chat:
                delta = c.delta
                if delta is not None:
                    if delta.role is not None:
                        slot.role = delta.role
                    had_content |= self._keep(slot.texts, delta.content)
                    had_content |= self._keep(slot.refusal, delta.refusal)
                    for call in delta.tool_calls or ():
                        had_content |= self._tool_call(slot, call)
            else:
                had_content |= self._keep(slot.texts, c.text)
            if c.finish_reason is not None:
                slot.finish_reason = c.finish_reason
        if had_content:
            self.content_events += 1

    def _keep(self, into: list[str], piece: str | None) -> bool:
        """Append what fits of `piece` under `max_chars` (the rest is dropped and marked); whether it had any."""
        if not piece:
            return False
        room = self.max_chars - self._chars
        if len(piece) > room:
            piece = piece[: max(room, 0)]
            self.truncated = True
        if piece:
            into.append(piece)
            self._chars += len(piece)
        return True

    def _tool_call(self, slot: _ChoiceParts, delta: _ToolCallDelta) -> bool:
        """Merge a tool-call delta into the call of its index (OpenAI sends id, type and name with the
        first delta of a call and the JSON arguments in pieces after it)."""
        call = slot.tool_calls.get(delta.index)
        if call is None:
            if len(slot.tool_calls) >= MAX_CHOICES:
                self.truncated = True
                return False
            call = slot.tool_calls[delta.index] = _ToolCall()
        call.id = delta.id or call.id
        call.type = delta.type or call.type
        fn = delta.function
        if fn is None:
            return False
        if fn.name:
            call.name = fn.name[:MAX_TOOL_NAME]
        return self._keep(call.arguments, fn.arguments) or bool(fn.name)

    def body(self) -> dict[str, Any]:
        """The non-streamed equivalent of everything fed so far (what `parse_response` reads)."""
        chat = self.operation == "chat"
        choices = []
        for index in sorted(self._choices):
            slot = self._choices[index]
            text = "".join(slot.texts)
            if chat:
                message: dict[str, Any] = {"role": slot.role or "assistant", "content": text}
                if slot.refusal:
                    message["refusal"] = "".join(slot.refusal)
                if slot.tool_calls:
                    message["tool_calls"] = [slot.tool_calls[i].body() for i in sorted(slot.tool_calls)]
                choices.append({"index": index, "message": message, "finish_reason": slot.finish_reason})
            else:
                choices.append({"index": index, "text": text, "finish_reason": slot.finish_reason})
        out: dict[str, Any] = {"object": "chat.completion" if chat else "text_completion", "choices": choices}
        if self.id is not None:
            out["id"] = self.id
        if self.model is not None:
            out["model"] = self.model
        if self.usage is not None:
            out["usage"] = self.usage
        if self.error is not None:
            out["error"] = self.error
        if self.truncated or self.sse.truncated:
            out["truncated"] = True
        return out

    def encoded(self) -> bytes:
        """`body()` as compact JSON (the captured response body of a streamed answer)."""
        return _encode(self.body())
