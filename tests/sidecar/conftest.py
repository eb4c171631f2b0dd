"""Fixtures: a toy model server, a collector standing in for the monitor, sidecar processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sidecar_servers import Collector, ModelServer, Sidecar


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector().start()
    yield c
    c.stop()


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    started: list[Sidecar] = []

    def start(upstream: str, monitor: str, *extra: str, spool_dir: Path | None = None, env: dict[str, str] | None = None) -> Sidecar:
        # A spool directory has one owner: each sidecar of a test gets its own unless told to share.
        default = tmp_path / ("spool" if not started else f"spool-{len(started)}")
        sidecar = Sidecar(upstream, monitor, spool_dir or default, *extra)
        started.append(sidecar)
        return sidecar.start(env)

    yield start
    for sidecar in started:
        sidecar.stop()
