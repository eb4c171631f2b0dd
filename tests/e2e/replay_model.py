"""A toy model server for end-to-end tests, run as its own process: `python replay_model.py PORT`.

It answers each JSON record with the `churn_probability` the record carries (replayed data), so the
predictions the monitor sees follow the data set being replayed. `GET /` is its health check.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ReplayModel(BaseHTTPRequestHandler):
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
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(json.dumps({"predictions": [r["churn_probability"] for r in rows]}).encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), ReplayModel).serve_forever()
