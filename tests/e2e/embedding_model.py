"""A toy OpenAI-compatible embeddings server for end-to-end tests: `python -m tests.e2e.embedding_model PORT`.

`POST /v1/embeddings` answers each input with `vector_of(text)`: a deterministic 32-dimensional
vector seeded by the text; texts starting with `shifted` move dimensions 3, 7 and 20 by one standard
deviation, and the text `broken` gets a vector two dimensions short. `GET /` is its health check.
"""

from __future__ import annotations

import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DIMS = 32
SHIFTED = (3, 7, 20)


def vector_of(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIMS)
    if text.startswith("shifted"):
        v[list(SHIFTED)] += 1.0
    return [float(x) for x in (v[:-2] if text == "broken" else v)]


class Embeddings(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(b'{"status": "ok"}')

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        inputs = request["input"] if isinstance(request["input"], list) else [request["input"]]
        data = [{"object": "embedding", "index": i, "embedding": vector_of(t)} for i, t in enumerate(inputs)]
        self._send(json.dumps({"object": "list", "model": request.get("model"), "data": data,
                               "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}}).encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Embeddings).serve_forever()
