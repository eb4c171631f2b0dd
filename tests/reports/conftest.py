from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from monitor.reports import create_router
from tests.golden import assert_golden
from tests.reports.memory_source import MemorySource

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def source() -> MemorySource:
    return MemorySource()


def check_golden(name: str, text: str) -> None:
    assert_golden(GOLDEN / name, text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="session")
def reports_url(source: MemorySource) -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_router(source))
    yield from serve(app)
