from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from monitor.reports import create_router
from tests.golden import assert_golden
from tests.monitor.ingest_helpers import serve_in_thread
from tests.reports.memory_source import MemorySource

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def source() -> MemorySource:
    return MemorySource()


def check_golden(name: str, text: str) -> None:
    assert_golden(GOLDEN / name, text)


@pytest.fixture(scope="session")
def reports_url(source: MemorySource) -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_router(source))
    with serve_in_thread(app) as url:
        yield url
