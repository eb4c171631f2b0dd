"""`monitor.runtime.reference_switch` with version tracks on a real store: a model version's reference
waits for that version and judges its track when it serves (or from the next record, when set while
it serves); every verdict names the reference that judged its window."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

from monitor.runtime import Monitor
from tests.infra.mlflow_server import MlflowServer
from tests.mlflow_helpers import log_reference, mlflow_config, reference_csv
from tests.monitor.ingest_helpers import csv_of, load, shifted_reference
from tests.monitor.runtime.runtime_helpers import Recorder, events


def scenario(tmp_path: Path, *, version_reference: bool) -> dict[str, Any]:
    """Version 1 serves drifted traffic; then version 2 serves the same traffic (its reference like
    that traffic, when it has one)."""
    cfg = load(tmp_path)
    heard = Recorder()

    async def run() -> dict[str, Any]:
        mon = Monitor(cfg, listeners=[heard])
        await mon.start(background=False)
        try:
            stored = None
            if version_reference:
                stored = (await asyncio.to_thread(mon.set_reference, "toy", "2", "file", "text/csv", "csv",
                                                  csv_of(shifted_reference(3.0)))).reference
            before = mon.current_reference("toy")
            for start, version in ((0, "1"), (50, "1"), (100, "2"), (150, "2")):
                await mon.ingest(events(range(start, start + 50), shift=3.0, version=version))
                await asyncio.to_thread(mon.evaluate_due)
            return {"stored": stored, "before": before, "model": mon.current_reference("toy"),
                    "version": mon.current_reference("toy", "2")}
        finally:
            await mon.stop()

    return {**asyncio.run(run()), "verdicts": heard.calls}


def test_a_versions_reference_leaves_the_models_reference_alone(tmp_path: Path) -> None:
    assert scenario(tmp_path, version_reference=True)["model"] is None


def test_a_versions_reference_is_current_for_that_version(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=True)
    assert run["version"].reference.id == run["stored"].id


def test_verdicts_name_the_reference_that_judged_them(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=True)
    assert [(v.version, v.reference_id) for v in run["verdicts"]] == [("1", None), ("1", None), ("2", run["stored"].id),
                                                                       ("2", run["stored"].id)]


def test_the_new_versions_windows_are_judged_against_its_reference(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=True)
    assert [v.result.dataset.drifted for v in run["verdicts"]] == [True, True, False, False]


def test_a_version_without_a_stored_reference_is_judged_against_the_models(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=False)
    assert [(v.reference_id, v.result.dataset.drifted) for v in run["verdicts"]] == [(None, True)] * 4


def test_a_reference_set_while_its_version_serves_judges_the_next_window(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    heard = Recorder()

    async def run() -> int:
        mon = Monitor(cfg, listeners=[heard])
        await mon.start(background=False)
        try:
            for start in (0, 50):
                await mon.ingest(events(range(start, start + 50), shift=3.0, version="2"))
                await asyncio.to_thread(mon.evaluate_due)
            stored = await asyncio.to_thread(mon.set_reference, "toy", "2", "file", "text/csv", "csv",
                                             csv_of(shifted_reference(3.0)))
            for start in (100, 150):
                await mon.ingest(events(range(start, start + 50), shift=3.0, version="2"))
                await asyncio.to_thread(mon.evaluate_due)
            return stored.reference.id
        finally:
            await mon.stop()

    ref_id = asyncio.run(run())
    assert [(v.reference_id, v.result.dataset.drifted) for v in heard.calls] == [(None, True), (None, True),
                                                                                  (ref_id, False), (ref_id, False)]


def test_a_restart_judges_a_version_against_its_reference(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    heard = Recorder()

    async def first() -> int:
        mon = Monitor(cfg)
        await mon.start(background=False)
        try:
            stored = await asyncio.to_thread(mon.set_reference, "toy", "2", "file", "text/csv", "csv",
                                             csv_of(shifted_reference(3.0)))
            await mon.ingest(events(range(0, 30), shift=3.0, version="2"))
            return stored.reference.id
        finally:
            await mon.stop()

    async def second() -> None:
        mon = Monitor(cfg, listeners=[heard])
        await mon.start(background=False)
        try:
            await mon.ingest(events(range(30, 100), shift=3.0, version="2"))
            await asyncio.to_thread(mon.evaluate_due)
        finally:
            await mon.stop()

    ref_id = asyncio.run(first())
    asyncio.run(second())
    assert [(v.version, v.reference_id, v.result.dataset.drifted) for v in heard.calls] == [("2", ref_id, False)]


def test_a_version_registered_in_mlflow_brings_its_logged_reference(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    """The config reads version 1's reference from MLflow; version 2 logged its own: it judges version 2's
    traffic, and a version MLflow does not know is judged against the configured reference."""
    name = f"toy-{secrets.token_hex(4)}"
    log_reference(mlflow_server, name, reference_csv(tmp_path / "ref"))
    log_reference(mlflow_server, name, csv_of(shifted_reference(3.0)))
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": name, "version": 1, "artifact": "reference/train.csv"})
    heard = Recorder()

    async def run() -> Any:
        mon = Monitor(cfg, listeners=[heard])
        await mon.start(background=False)
        try:
            for start, version in ((0, "9"), (50, "2")):
                await mon.ingest(events(range(start, start + 50), shift=3.0, version=version))
                await asyncio.to_thread(mon.evaluate_due)
            return mon.current_reference("toy", "2")
        finally:
            await mon.stop()

    current = asyncio.run(run())
    assert (current.reference.source, current.reference.origin, [(v.version, v.result.dataset.drifted) for v in heard.calls]) == (
        "mlflow", f"models:/{name}/2#reference/train.csv", [("9", True), ("2", False)])
