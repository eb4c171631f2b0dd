"""First view of a window's HTML report in the running monitor, now and as it was, side by side.

    .venv/bin/python benchmarks/report_first_view.py            # 5 cold runs of each
    .venv/bin/python benchmarks/report_first_view.py --runs 3

At the demo's size (the wine model: 13 numeric features, 2 outputs, 178 reference rows, windows of 400
records): the demo's traffic (1,200 unchanged, then 1,200 drifted records, 4 per request) is posted
to a real monitor (`POST /v1/events`, SQLite store), which evaluates its windows. Then, per run,
a fresh report server over that store (a cold cache: no cached page, frames or Evidently process)
answers `GET /reports/wine/{window}` for the latest window, timed by the client:

- now: the page as served (our own summary and plots; Evidently starts in the background), then
  the time until its framed Evidently comparison (`/agreement`) is ready, counted from the request;
- before: the page as it was built until this change (Evidently awaited, then the page rendered),
  reproduced through the same worker.

Prints the median, min and max of each, in seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from monitor.app.api import create_app
from monitor.app.demo import wine
from monitor.app.demo.config import write_demo_config
from monitor.core.config import Config
from monitor.reports import StoreReportSource, create_router
from monitor.reports.build import EvidentlySection, render_report
from monitor.reports.worker import ReportWorker

RECORDS_PER_PHASE = 1200
BATCH = 4


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server on a free port in a thread; stops (running the app's lifespan) on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def _events() -> list[dict[str, Any]]:
    """The demo's traffic as the sidecar captures it: KServe v1 requests and responses, 4 records each."""
    model = wine.train()
    rows = [*wine.traffic(RECORDS_PER_PHASE, drifted=False, seed=11).tolist(), *wine.traffic(RECORDS_PER_PHASE, drifted=True, seed=12).tolist()]
    now = time.time()
    out = []
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        out.append({
            "id": str(uuid.uuid4()), "model": "wine", "timestamp": now + i / 1000, "path": "/v1/models/wine:predict",
            "request": {"body": json.dumps({"instances": chunk}), "content_type": "application/json"},
            "response": {"body": json.dumps({"predictions": wine.predict(model, chunk)}), "content_type": "application/json"},
        })
    return out


def ingest(config: Config) -> int:
    """Post the traffic to a real monitor and wait for its last window; returns that window's id."""
    events = _events()
    last = 2 * RECORDS_PER_PHASE
    with serve(create_app(config)) as url, httpx.Client(base_url=url, timeout=60) as client:
        for k in range(0, len(events), 50):
            client.post("/v1/events", json={"events": events[k : k + 50]}).raise_for_status()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            evaluations = client.get("/v1/models/wine/evaluations").json()["evaluations"]
            if evaluations and max(e["window_id"] for e in evaluations) >= last:
                return max(e["window_id"] for e in evaluations)
            time.sleep(0.2)
    raise RuntimeError(f"the monitor did not evaluate window {last} within 120 s")


def _old_route(app: FastAPI, worker: ReportWorker) -> None:
    """The page as it was built before this change: Evidently awaited, then the page rendered."""

    @app.get("/before/{model}/{window}")
    async def before(model: str, window: int) -> HTMLResponse:
        view = await worker.view(model, window)
        outcome = await worker.evidently(view)
        url = f"/reports/{model}/{window}/evidently"
        section = EvidentlySection(scores={}, error=outcome) if isinstance(outcome, str) else EvidentlySection(scores=outcome.scores, url=url)
        return HTMLResponse(render_report(view, "/reports", section))


def one_run(config: Config, window: int, before: bool) -> tuple[float, float | None]:
    """(seconds to the page, seconds to the Evidently comparison or None) on a cold report server."""
    app = FastAPI()
    router = create_router(StoreReportSource(config))
    app.include_router(router)
    _old_route(app, router.worker)  # type: ignore[attr-defined]
    with serve(app) as url, httpx.Client(base_url=url, timeout=300) as client:
        path = f"/before/wine/{window}" if before else f"/reports/wine/{window}"
        t0 = time.perf_counter()
        page = client.get(path)
        first = time.perf_counter() - t0
        page.raise_for_status()
        if before:
            return first, None
        agreement = client.get(f"/reports/wine/{window}/agreement")
        agreement.raise_for_status()
        assert "Evidently could not" not in agreement.text, "Evidently failed"
        return first, time.perf_counter() - t0


def _row(label: str, xs: list[float]) -> str:
    return f"{label:<58} {statistics.median(xs):>8.3f} {min(xs):>8.3f} {max(xs):>8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold runs of each (default 5)")
    args = parser.parse_args()
    logging.getLogger("driftwatch").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-") as tmp:
        _, config = write_demo_config(Path(tmp), 0)
        window = ingest(config)
        print(f"demo size: wine, window {window} of 400 records, {len(config.model('wine').columns)} columns; {args.runs} cold runs each")
        now_first, now_evidently, before = [], [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            first, ready = one_run(config, window, before=False)
            now_first.append(first)
            now_evidently.append(ready or 0.0)
            before.append(one_run(config, window, before=True)[0])
        print(f"{'seconds':<58} {'median':>8} {'min':>8} {'max':>8}")
        print(_row("now: first view (GET /reports/wine/{window})", now_first))
        print(_row("now: Evidently comparison ready (framed, from the request)", now_evidently))
        print(_row("before: first view (page built after Evidently)", before))


if __name__ == "__main__":
    main()
