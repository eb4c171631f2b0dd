"""Fixtures shared by the resource tests."""

from collections.abc import Iterator

import pytest
from metrics_api_server import SilentServer


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()
