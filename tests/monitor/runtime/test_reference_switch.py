"""`monitor.runtime.reference_switch` on a real store: a model version's reference waits for that
version and takes over when it serves; every verdict names the reference that judged its window."""

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
    """Drifted traffic, then version 2 serves (its reference like that traffic, when it has one), then more of it."""
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
            for start in (0, 50):
                await mon.ingest(events(range(start, start + 50), shift=3.0))
                mon.evaluate_due()
            switched = await asyncio.to_thread(mon.switch_to_version, "toy", "2")
            for start in (100, 150):
                await mon.ingest(events(range(start, start + 50), shift=3.0))
                mon.evaluate_due()
            return {"stored": stored, "before": before, "switched": switched, "after": mon.current_reference("toy")}
        finally:
            await mon.stop()

    return {**asyncio.run(run()), "verdicts": heard.calls}


def test_a_versions_reference_waits_for_that_version(tmp_path: Path) -> None:
    assert scenario(tmp_path, version_reference=True)["before"] is None


def test_when_the_version_serves_its_reference_takes_over(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=True)
    assert (run["switched"].id, run["after"].reference.id) == (run["stored"].id, run["stored"].id)


def test_verdicts_name_the_reference_that_judged_them(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=True)
    assert [v.reference_id for v in run["verdicts"]] == [None, None, run["stored"].id, run["stored"].id]


def test_windows_after_the_version_switch_are_judged_against_its_reference(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=True)
    assert [v.result.dataset.drifted for v in run["verdicts"]] == [True, True, False, False]


def test_a_version_without_a_stored_reference_changes_nothing(tmp_path: Path) -> None:
    run = scenario(tmp_path, version_reference=False)
    assert (run["switched"], run["after"], [v.reference_id for v in run["verdicts"]]) == (None, None, [None] * 4)


def test_a_version_registered_in_mlflow_brings_its_logged_reference(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    """The config reads version 1's reference from MLflow; version 2 logged its own: it takes over when 2 serves."""
    name = f"toy-{secrets.token_hex(4)}"
    log_reference(mlflow_server, name, reference_csv(tmp_path / "ref"))
    log_reference(mlflow_server, name, csv_of(shifted_reference(3.0)))
    cfg = mlflow_config(tmp_path, mlflow_server, {"model": name, "version": 1, "artifact": "reference/train.csv"})
    heard = Recorder()

    async def run() -> tuple[Any, Any]:
        mon = Monitor(cfg, listeners=[heard])
        await mon.start(background=False)
        try:
            unknown = await asyncio.to_thread(mon.switch_to_version, "toy", "9")
            ref = await asyncio.to_thread(mon.switch_to_version, "toy", "2")
            for start in (0, 50):
                await mon.ingest(events(range(start, start + 50), shift=3.0))
                mon.evaluate_due()
            return unknown, ref
        finally:
            await mon.stop()

    unknown, ref = asyncio.run(run())
    assert (unknown, ref.source, ref.origin, [v.result.dataset.drifted for v in heard.calls]) == (
        None, "mlflow", f"models:/{name}/2#reference/train.csv", [False, False])
