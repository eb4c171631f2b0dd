"""A toy KServe v1 model server for the demo and the tests: the wine classifier over HTTP.

`GET /v1/models/wine` answers readiness like KServe; `POST /v1/models/wine:predict` takes
`{"instances": [[13 numbers], ...]}` and answers `{"predictions": [{"predicted_class", "confidence"}]}`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from monitor.app.demo import wine


def create_app(name: str = "wine") -> Starlette:
    model = wine.train()

    async def ready(_: Request) -> JSONResponse:
        return JSONResponse({"name": name, "ready": True})

    async def predict(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
            instances = body["instances"]
            if not isinstance(instances, list) or not all(
                isinstance(r, list) and len(r) == len(wine.FEATURES) for r in instances
            ):
                raise ValueError(f"instances must be lists of {len(wine.FEATURES)} numbers")
            return JSONResponse({"predictions": wine.predict(model, instances)})
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)

    return Starlette(
        routes=[
            Route(f"/v1/models/{name}", ready, methods=["GET"]),
            Route(f"/v1/models/{name}:predict", predict, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--name", default="wine")
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args()
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    uvicorn.run(create_app(args.name), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
