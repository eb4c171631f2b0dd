"""A toy KServe v1 model server for the demo and the tests: the wine classifier over HTTP.

`GET /v1/models/wine` answers readiness like KServe; `POST /v1/models/wine:predict` takes
`{"instances": [[13 numbers], ...]}` and answers `{"predictions": [{"predicted_class", "confidence"}]}`,
with the serving model version in the `x-model-version` header. Version 1 is trained at start-up;
`POST /v1/models/wine/versions/{n}:load` serves version n from `<model dir>/model-v<n>.pkl`, as
written by the demo's retraining run (a toy: only the demo's own files, on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from monitor.app.demo import wine

VERSION_HEADER = "x-model-version"


def create_app(name: str = "wine", model_dir: Path | None = None) -> Starlette:
    serving: dict[str, Any] = {"version": "1", "model": wine.train()}

    async def ready(_: Request) -> JSONResponse:
        return JSONResponse({"name": name, "ready": True, "version": serving["version"]})

    async def predict(request: Request) -> JSONResponse:
        model, version = serving["model"], serving["version"]  # one version per request, even across a load
        try:
            body = json.loads(await request.body())
            instances = body["instances"]
            if not isinstance(instances, list) or not all(
                isinstance(r, list) and len(r) == len(wine.FEATURES) for r in instances
            ):
                raise ValueError(f"instances must be lists of {len(wine.FEATURES)} numbers")
            return JSONResponse({"predictions": wine.predict(model, instances)}, headers={VERSION_HEADER: version})
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)

    async def load(request: Request) -> JSONResponse:
        version = request.path_params["version"]
        path = model_dir / f"model-v{version}.pkl" if model_dir is not None else None
        if path is None or not path.is_file():
            return JSONResponse({"error": f"no model version {version} to load"}, status_code=404)
        serving.update(model=pickle.loads(path.read_bytes()), version=str(version))  # the demo's own file
        return JSONResponse({"name": name, "version": serving["version"]})

    return Starlette(
        routes=[
            Route(f"/v1/models/{name}", ready, methods=["GET"]),
            Route(f"/v1/models/{name}:predict", predict, methods=["POST"]),
            Route(f"/v1/models/{name}/versions/{{version:int}}:load", load, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--name", default="wine")
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--model-dir", type=Path, help="Where retrained versions (model-v<n>.pkl) are loaded from.")
    args = parser.parse_args()
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    uvicorn.run(create_app(args.name, args.model_dir), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
