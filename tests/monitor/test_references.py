"""`PUT`/`GET /v1/models/{model}/reference` on a real uvicorn server over a real store: every answer
(201, 200, 401, 403, 404, 413, 415, 422, 503), idempotency by content, hostile bodies, and what a
switch does: windows after it are judged against the new reference, and a restart keeps it."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from ingest_helpers import csv_of, event, serve_in_thread, shifted_reference, write_config

from monitor.app.api import create_app
from monitor.core.config import Config, load_config
from monitor.core.store import EventStore
from tests.infra.mlflow_server import MlflowServer
from tests.mlflow_helpers import log_reference
from tests.monitor.runtime.test_fleet_labels import fleet_app  # noqa: F401  (a fleet replica over Kafka and PostgreSQL)
from tests.monitor.test_store_disk_full import fill, small_fs  # noqa: F401  (a 4 MiB tmpfs)

WRITE, READ = "ref-write-token-0123456789", "ref-read-token-0123456789"
AUTH = {"authorization": f"Bearer {WRITE}"}
CSV = {"content-type": "text/csv"}


def config_at(tmp: Path, mlflow: dict[str, Any] | None = None, store: Path | None = None) -> Config:
    (tmp / "read.tokens").write_text(READ + "\n")
    path = write_config(tmp, server={"auth_token_env": "DW_REF_TOKEN", "auth": {"read_token_files": [str(tmp / "read.tokens")]},
                                     "max_reference_bytes": "256KiB", **({"store": {"path": str(store)}} if store else {})})
    if mlflow is not None:
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, "mlflow": mlflow}, sort_keys=False))
    return load_config(path)


@pytest.fixture()
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    with serve_in_thread(create_app(config_at(tmp_path))) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        yield client


def put(client: httpx.Client, body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/models/toy/reference") -> httpx.Response:
    return client.put(path, content=body, headers={**CSV, **(headers or {})})


def error_of(r: httpx.Response, status: int) -> Any:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}
    return body


def test_a_new_reference_is_created_and_becomes_current(server: httpx.Client) -> None:
    r = put(server, csv_of(shifted_reference(3.0)))
    assert r.status_code == 201, r.text
    assert server.get("/v1/models/toy/reference").json()["reference"]["id"] == r.json()["reference"]["id"]


def test_before_any_upload_the_configured_reference_judges(server: httpx.Client) -> None:
    assert server.get("/v1/models/toy/reference").json()["reference"]["source"] == "config"


def test_the_same_content_again_is_200_and_changes_nothing(server: httpx.Client) -> None:
    body = csv_of(shifted_reference(3.0))
    first = put(server, body).json()["reference"]
    again = put(server, body)
    assert (again.status_code, again.json()["reference"]["id"], again.json()["switched"]) == (200, first["id"], False)


def test_switching_back_to_earlier_content_reuses_its_object(server: httpx.Client) -> None:
    a, b = csv_of(shifted_reference(3.0)), csv_of(shifted_reference(1.0))
    first = put(server, a).json()["reference"]["id"]
    put(server, b)
    back = put(server, a)
    assert (back.status_code, back.json()["reference"]["id"], back.json()["switched"]) == (200, first, True)


def test_parquet_is_taken_by_its_media_type(server: httpx.Client) -> None:
    buf = io.BytesIO()
    shifted_reference(2.0).to_parquet(buf)
    r = put(server, buf.getvalue(), {"content-type": "application/vnd.apache.parquet"})
    assert (r.status_code, r.json()["reference"]["format"]) == (201, "parquet")


def test_without_a_token_it_is_401(server: httpx.Client) -> None:
    r = httpx.put(f"{server.base_url}/v1/models/toy/reference", content=csv_of(shifted_reference(1.0)), headers=CSV)
    assert error_of(r, 401)["error"] == "unauthorized"


def test_a_read_token_may_look_but_not_set(server: httpx.Client) -> None:
    read = {"authorization": f"Bearer {READ}"}
    assert error_of(put(server, csv_of(shifted_reference(1.0)), read), 403)["error"] == "forbidden"
    assert server.get("/v1/models/toy/reference", headers=read).status_code == 200


def test_an_unknown_model_is_404(server: httpx.Client) -> None:
    assert error_of(put(server, csv_of(shifted_reference(1.0)), path="/v1/models/nope/reference"), 404)["error"] == "unknown_model"


def test_a_body_over_the_limit_is_413(server: httpx.Client) -> None:
    assert error_of(put(server, csv_of(shifted_reference(1.0, n=6000))), 413)["error"] == "too_large"


def test_another_media_type_is_415(server: httpx.Client) -> None:
    assert error_of(put(server, b"f0\n1\n", {"content-type": "text/plain"}), 415)["error"] == "unsupported_media_type"


def test_wrong_columns_are_named_one_by_one(server: httpx.Client) -> None:
    body = csv_of(shifted_reference(1.0).drop(columns=["f1", "color"]))
    detail = error_of(put(server, body), 422)["detail"]
    assert detail == [{"column": "f1", "reason": "missing"}, {"column": "color", "reason": "missing"}]


def test_a_column_of_nan_only_is_refused(server: httpx.Client) -> None:
    frame = shifted_reference(1.0)
    frame["f2"] = np.nan
    assert error_of(put(server, csv_of(frame)), 422)["detail"] == [{"column": "f2", "reason": "has no values (every row is empty or NaN)"}]


def test_text_in_a_numeric_column_is_refused(server: httpx.Client) -> None:
    frame = shifted_reference(1.0)
    frame["f0"] = frame["f0"].astype(object)
    frame.loc[:2, "f0"] = "lots"
    assert error_of(put(server, csv_of(frame)), 422)["detail"] == [{"column": "f0", "reason": "3 value(s) are not numbers"}]


def test_a_body_that_is_not_csv_is_refused(server: httpx.Client) -> None:
    body = bytes(range(256)) * 8
    assert error_of(put(server, body), 422) == {"error": "unreadable_reference", "detail": "cannot read the body as csv: UnicodeDecodeError"}


def test_text_that_is_not_a_table_of_the_models_columns_names_every_missing_one(server: httpx.Client) -> None:
    detail = error_of(put(server, b"<html>\n<body>hello</body>\n</html>\n"), 422)["detail"]
    assert [d["column"] for d in detail] == ["f0", "f1", "f2", "color", "score"]


def test_a_body_that_is_not_parquet_is_unreadable(server: httpx.Client) -> None:
    r = put(server, b"f0,f1\n1,2\n", {"content-type": "application/vnd.apache.parquet"})
    assert error_of(r, 422)["error"] == "unreadable_reference"


def test_an_empty_body_is_refused(server: httpx.Client) -> None:
    assert error_of(put(server, b""), 422)["error"] == "unreadable_reference"


def test_a_refused_reference_leaves_the_current_one(server: httpx.Client) -> None:
    good = put(server, csv_of(shifted_reference(2.0))).json()["reference"]["id"]
    put(server, csv_of(shifted_reference(1.0).drop(columns=["f0"])))
    assert server.get("/v1/models/toy/reference").json()["reference"]["id"] == good


@pytest.mark.parametrize("body", [b"{not json", b'{"mlflow": {"model": "wine"}}', b'{"mlflow": {"model": "w", "version": 1, "x": 1}}'])
def test_a_malformed_mlflow_body_is_422(server: httpx.Client, body: bytes) -> None:
    assert error_of(put(server, body, {"content-type": "application/json"}), 422)["error"] == "validation_failed"


def test_an_mlflow_reference_without_an_mlflow_section_is_422(server: httpx.Client) -> None:
    body = b'{"mlflow": {"model": "wine", "version": 1, "artifact": "reference.csv"}}'
    assert error_of(put(server, body, {"content-type": "application/json"}), 422)["error"] == "mlflow_not_configured"


def test_mlflow_unreachable_is_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.ports import free_port

    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    cfg = config_at(tmp_path, mlflow={"tracking_uri": f"http://127.0.0.1:{free_port()}", "timeout": "1s"})
    body = b'{"mlflow": {"model": "wine", "version": 1, "artifact": "reference.csv"}}'
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        r = put(client, body, {"content-type": "application/json"})
    assert (error_of(r, 503)["error"], r.headers.get("retry-after")) == ("mlflow_unavailable", "10")


# -- what a switch does ------------------------------------------------------------------------------


def post_events(client: httpx.Client, first: int, n: int, shift: float) -> list[dict[str, Any]]:
    """Post `n` events 50 at a time (the window's step), each step's window evaluated before the next; all evaluations."""
    evs = client.get("/v1/models/toy/evaluations").json()["evaluations"]
    for start in range(first, first + n, 50):
        r = client.post("/v1/events", json={"events": [event(i, shift=shift) for i in range(start, start + 50)]})
        assert r.status_code == 200, r.text
        evs = wait_evaluated(client, len(evs) + 1)
    return evs


def wait_evaluated(client: httpx.Client, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        evs: list[dict[str, Any]] = client.get("/v1/models/toy/evaluations").json()["evaluations"]
        if len(evs) >= n:
            return evs
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} evaluations after 60 s")


@pytest.fixture()
def switched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Drifted traffic judged drifted against the configured reference; then a reference like the
    drifted traffic is PUT and more of the same traffic follows."""
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    cfg = config_at(tmp_path)
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        before = post_events(client, 0, 100, shift=3.0)
        ref = put(client, csv_of(shifted_reference(3.0))).json()["reference"]
        after = post_events(client, 100, 100, shift=3.0)
        reports = {e["window_id"]: client.get(f"/reports/toy/{e['window_id']}.json").json()["judged_against"] for e in after}
        drift = client.get("/v1/models/toy/drift").json()
    return {"before": before, "after": after[len(before):], "ref": ref, "config": cfg, "tmp": tmp_path, "reports": reports,
            "drift": drift}


def test_windows_before_the_switch_drifted(switched: dict[str, Any]) -> None:
    assert all(e["result"]["dataset"]["drifted"] for e in switched["before"])


def test_windows_after_the_switch_are_quiet(switched: dict[str, Any]) -> None:
    assert [e["result"]["dataset"]["drifted"] for e in switched["after"]] == [False, False]


def test_no_window_after_the_switch_holds_a_record_from_before_it(switched: dict[str, Any]) -> None:
    assert min(e["window_id"] - e["n_records"] for e in switched["after"]) >= 100


def test_each_evaluation_keeps_the_reference_it_was_judged_against(switched: dict[str, Any]) -> None:
    store = EventStore(switched["config"].server.store.path)
    try:
        ids = [e.reference_id for e in reversed(store.evaluations("toy"))]
    finally:
        store.close()
    assert ids == [None, None, switched["ref"]["id"], switched["ref"]["id"]]


def test_reports_say_which_reference_judged_each_window(switched: dict[str, Any]) -> None:
    assert [switched["reports"][e["window_id"]] for e in (*switched["before"], *switched["after"])] == [
        "the configured reference", "the configured reference", switched["ref"]["label"], switched["ref"]["label"]]


def test_the_drift_view_names_the_reference_judging_now(switched: dict[str, Any]) -> None:
    assert switched["drift"]["reference"]["label"] == switched["ref"]["label"]


def test_the_evaluations_say_which_reference_judged_them(switched: dict[str, Any]) -> None:
    assert [e["reference_id"] for e in switched["after"]] == [switched["ref"]["id"]] * 2


def test_a_restart_keeps_the_current_reference(switched: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    with serve_in_thread(create_app(switched["config"])) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        current = client.get("/v1/models/toy/reference").json()["reference"]
        evs = post_events(client, 200, 50, shift=3.0)
    assert (current["id"], current["from_record"], evs[-1]["result"]["dataset"]["drifted"]) == (switched["ref"]["id"], 100, False)


def test_a_reference_for_a_version_waits_for_that_version(server: httpx.Client) -> None:
    r = put(server, csv_of(shifted_reference(3.0)), path="/v1/models/toy/reference?version=2")
    assert r.status_code == 201
    assert server.get("/v1/models/toy/reference").json()["reference"]["source"] == "config"
    assert server.get("/v1/models/toy/reference?version=2").json()["reference"]["id"] == r.json()["reference"]["id"]



# -- from an MLflow model version (a real MLflow server) ----------------------------------------------


def test_a_model_versions_logged_reference_becomes_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          mlflow_server: MlflowServer) -> None:
    name = f"toy-{secrets.token_hex(4)}"
    body = csv_of(shifted_reference(3.0))
    _, version = log_reference(mlflow_server, name, body, artifact="reference/train.csv")
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    cfg = config_at(tmp_path, mlflow={"tracking_uri": mlflow_server.url, "timeout": "5s"})
    ask = json.dumps({"mlflow": {"model": name, "version": int(version), "artifact": "reference/train.csv"}}).encode()
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        r = put(client, ask, {"content-type": "application/json"})
        again = put(client, ask, {"content-type": "application/json"})
    ref = r.json()["reference"]
    assert (r.status_code, ref["source"], ref["origin"], ref["sha256"], again.status_code) == (
        201, "mlflow", f"models:/{name}/{version}#reference/train.csv", hashlib.sha256(body).hexdigest(), 200)


def test_a_model_version_that_does_not_exist_is_422(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     mlflow_server: MlflowServer) -> None:
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    cfg = config_at(tmp_path, mlflow={"tracking_uri": mlflow_server.url, "timeout": "5s"})
    ask = json.dumps({"mlflow": {"model": f"nope-{secrets.token_hex(4)}", "version": 1, "artifact": "r.csv"}}).encode()
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        r = put(client, ask, {"content-type": "application/json"})
    assert error_of(r, 422)["error"] == "mlflow_reference_not_found"


# -- fleet mode ---------------------------------------------------------------------------------------


def test_fleet_mode_answers_501_and_keeps_the_configured_reference(fleet_app: httpx.Client) -> None:  # noqa: F811
    r = fleet_app.put("/v1/models/clf/reference", content=b"x0\n1\n", headers=CSV)
    current = fleet_app.get("/v1/models/clf/reference").json()["reference"]
    assert (error_of(r, 501)["error"], current["source"]) == ("not_implemented", "config")


def test_a_header_without_rows_is_refused(server: httpx.Client) -> None:
    assert error_of(put(server, b"f0,f1,f2,color,score\n"), 422)["detail"] == [{"column": None, "reason": "the reference has no rows"}]


def test_driftwatch_serve_profiles_the_current_reference_after_a_restart(switched: dict[str, Any]) -> None:
    """`driftwatch serve` profiles in a child process: that child reads the stored reference too."""
    from ingest_helpers import MonitorProcess

    from tests.ports import free_port

    monitor = MonitorProcess(switched["tmp"] / "config.yaml", free_port(), env={"DW_REF_TOKEN": WRITE}).start()
    try:
        with httpx.Client(base_url=monitor.url, timeout=60, headers=AUTH) as client:
            evs = post_events(client, 200, 50, shift=3.0)
    finally:
        monitor.stop()
    assert (evs[-1]["reference_id"], evs[-1]["result"]["dataset"]["drifted"]) == (switched["ref"]["id"], False), \
        monitor.log.read_text()[-3000:]


def test_a_full_disk_answers_503_and_keeps_the_current_reference(tmp_path: Path, small_fs: Path,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    cfg = config_at(tmp_path, store=small_fs / "dw.db")
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        filler = fill(small_fs, leave=16 * 1024)
        full = put(client, csv_of(shifted_reference(3.0)))
        current = client.get("/v1/models/toy/reference").json()["reference"]["source"]
        filler.unlink()
        again = put(client, csv_of(shifted_reference(3.0)))
    assert (error_of(full, 503)["error"], full.headers.get("retry-after"), current, again.status_code) == (
        "storage_full", "10", "config", 201)


def test_a_namespaced_model_keeps_its_references_under_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_REF_TOKEN", WRITE)
    cfg = load_config(write_config(tmp_path, server={"auth_token_env": "DW_REF_TOKEN"}, toy={"namespace": "prod"}))
    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        ref = put(client, csv_of(shifted_reference(3.0)), path="/v1/models/toy/reference?namespace=prod").json()["reference"]
        shown = client.get("/v1/models/toy/reference?namespace=prod").json()
    stored = sorted(p.relative_to(tmp_path / "store" / "references").as_posix() for p in (tmp_path / "store" / "references").rglob("*.csv"))
    assert (shown["namespace"], shown["reference"]["id"], ref["model"], stored) == ("prod", ref["id"], "prod/toy", [f"prod.toy/{ref['sha256']}.csv"])


def test_a_version_the_traffic_may_name_is_accepted_for_a_reference(server: httpx.Client) -> None:
    r = put(server, csv_of(shifted_reference(2.0)), path="/v1/models/toy/reference?version=1.4.0%2Bbuild.7")
    assert r.status_code == 201


def test_a_version_the_traffic_could_never_name_is_a_precise_422(server: httpx.Client) -> None:
    r = put(server, csv_of(shifted_reference(2.0)), path="/v1/models/toy/reference?version=%2Fetc")
    assert (r.status_code, r.json()["error"]) == (422, "invalid_version")
