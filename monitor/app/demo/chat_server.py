"""A toy OpenAI-compatible chat server for `driftwatch demo --llm` and the tests.

`POST /v1/chat/completions` answers the last user message with `chat.answer` (deterministic, no
weights): as one JSON `chat.completion`, or with `"stream": true` as Server-Sent Events, one
`chat.completion.chunk` per word `--token-delay` seconds apart, a final chunk with `usage` when the
request asks for it (`stream_options.include_usage`), then `data: [DONE]`, as vLLM streams.
`GET /v1/models` lists the model (readiness).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from monitor.app.demo.chat import answer, count_tokens

MODEL = "toy-chat"
_PIECE = re.compile(r"\S+\s*")


def create_app(token_delay: float = 0.002) -> Starlette:
    async def models(_: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "driftwatch-demo"}]})

    async def completions(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            messages = body["messages"]
            prompt = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
            if not isinstance(prompt, str):
                raise TypeError("the user message's content must be a string")
        except (ValueError, KeyError, TypeError, StopIteration, AttributeError) as exc:
            return JSONResponse({"error": {"message": f"bad request: {exc!r}", "type": "invalid_request_error"}}, status_code=400)
        text = answer(prompt)
        usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": count_tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident, created = f"chatcmpl-{time.monotonic_ns()}", int(time.time())
        if body.get("stream") is True:
            options = body.get("stream_options")
            with_usage = isinstance(options, dict) and options.get("include_usage") is True
            return StreamingResponse(_stream(ident, created, text, usage if with_usage else None, token_delay),
                                     media_type="text/event-stream")
        return JSONResponse({
            "id": ident, "object": "chat.completion", "created": created, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        })

    return Starlette(routes=[Route("/v1/models", models, methods=["GET"]),
                             Route("/v1/chat/completions", completions, methods=["POST"])])


async def _stream(ident: str, created: int, text: str, usage: dict[str, int] | None, delay: float) -> AsyncIterator[bytes]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL, "choices": choices, **extra}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    for piece in _PIECE.findall(text):
        await asyncio.sleep(delay)  # the pace of generation
        yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage is not None:
        yield event([], usage=usage)
    yield b"data: [DONE]\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--token-delay", type=float, default=0.002, help="Seconds between streamed words.")
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args()
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    uvicorn.run(create_app(args.token_delay), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
