"""Auth as an attacker probes it, on a real uvicorn server: every route the app serves (listed from
`app.routes`, so a route added later is probed too) refuses a missing, wrong, misplaced or
under-scoped token; the right one gets through; tokens rotate through a mounted Secret without a
restart and without refusing a valid token; KServe's logger can carry its token in the path."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from ingest_helpers import RETRAIN_DRY_RUN, event, load, serve_in_thread

from monitor.app.api import create_app
from monitor.app.auth import AuthConfigError, Tokens, parse_tokens
from monitor.core.store import EventStore

WRITE = "w-7f3a9c1e5b2d4086a1c3e5f7091b3d5f"
WRITE_2 = "w-second-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
READ = "r-5e1d2c3b4a5968778695a4b3c2d1e0f1"
ENV = "e-env-token-1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e"
ALL = (WRITE, WRITE_2, READ, ENV)
OPEN = {"/healthz", "/readyz"}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("driftwatch", "uvicorn", "retrain", "monitor")):
            return  # the test's own HTTP client logs its URLs
        self.lines.append(record.getMessage() + (self.format(record) if record.exc_info else ""))


def kserve_headers(kind: str, ce_id: str, model: str = "toy") -> dict[str, str]:
    """What KServe's agent sends (binary-mode CloudEvent, the payload as the body); no Authorization."""
    return {
        "Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": ce_id,
        "Ce-Type": f"org.kubeflow.serving.inference.{kind}", "Ce-Source": "http://localhost:9081/",
        "Ce-Time": "2026-12-04T11:57:01.123456789Z", "Ce-Inferenceservicename": model, "Ce-Namespace": "ml",
        "Ce-Component": "predictor", "Ce-Endpoint": "default", "Ce-Metadata": json.dumps({"X-Request-Id": [ce_id]}),
    }


def write_tokens(path: Path, *tokens: str) -> None:
    """Replace the file atomically, as the kubelet does (a new file, then a rename)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("# rotated\n\n" + "".join(f"{t}\n" for t in tokens))
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, httpx.Client, _Records, Path]]:
    from retrain.controller import RetrainController

    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "write").write_text(f"# the writers\n{WRITE}\n\n  {WRITE_2}  \n")
    (tmp / "read").write_text(f"{READ}\n")
    mp = pytest.MonkeyPatch()
    mp.setenv("DW_AUTH_TEST_ENV", ENV)
    records = _Records()
    logging.getLogger().addHandler(records)
    previous = logging.getLogger("driftwatch").level
    logging.getLogger("driftwatch").setLevel(logging.DEBUG)
    cfg = load(tmp, retrain=RETRAIN_DRY_RUN, server={"auth_token_env": "DW_AUTH_TEST_ENV", "auth": {
        "token_files": ["write"], "read_token_files": ["read"], "protect_metrics": True, "cloudevents_path_token": True}})
    cfg.server.store.path.parent.mkdir(parents=True)
    controller = RetrainController(cfg, cfg.server.store.path)
    try:
        app = create_app(cfg, controller=controller)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield app, client, records, cfg.server.store.path
    finally:
        controller.stop()
        logging.getLogger().removeHandler(records)
        logging.getLogger("driftwatch").setLevel(previous)
        mp.undo()


def _concrete(path: str) -> str:
    values = {"model": "toy", "window": "1", "token": WRITE}
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: values.get(m.group(1), "x"), path)


def _routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, template, concrete path) of every route the app serves, from the app itself
    (included routers too: FastAPI >= 0.16x keeps them as one entry holding the router)."""
    out = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                walk(included.routes, prefix + getattr(getattr(route, "include_context", None), "prefix", ""))
                continue
            methods, path = getattr(route, "methods", None), getattr(route, "path", None)
            assert methods and path is not None, f"a route the probe cannot list: {route!r}"
            out.extend((method, prefix + path, _concrete(prefix + path)) for method in sorted(methods))

    walk(app.routes, "")
    return out


def _is_write(method: str) -> bool:
    return method not in ("GET", "HEAD", "OPTIONS")


def _unauthorized(r: httpx.Response, what: str) -> None:
    assert r.status_code == 401, f"{what}: {r.status_code} {r.text[:200]}"
    assert r.headers["www-authenticate"].startswith("Bearer")
    if r.request.method != "HEAD":
        assert r.json()["error"] == "unauthorized"


def test_the_app_serves_what_the_probe_expects(guarded: Any) -> None:
    """The probe below covers these routes and any added later; this list just shows what it covers."""
    app = guarded[0]
    templates = {t for _, t, _ in _routes(app)}
    assert {"/v1/events", "/v1/cloudevents", "/v1/cloudevents/{token}", "/v1/alertmanager", "/v1/models",
            "/v1/models/{model}/drift", "/reports/", "/reports/{model}", "/reports/{model}/{window}/evidently",
            "/openapi.json", "/metrics", "/healthz", "/readyz"} <= templates


def test_every_route_refuses_a_missing_wrong_misplaced_or_underscoped_token(guarded: Any) -> None:
    app, client, _, _ = guarded
    probed = 0
    for method, template, path in _routes(app):
        if template in OPEN:
            assert client.request(method, path).status_code == 200
            continue
        if template == "/v1/cloudevents/{token}":
            continue  # its credential is the path: test_cloudevents_path_token
        what = f"{method} {template}"
        body = {"content": b"{}", "headers": {"content-type": "application/json"}} if _is_write(method) else {}
        hdrs: dict[str, str] = body.pop("headers", {})  # type: ignore[assignment]

        def send(extra: dict[str, str], url: str = path, hdrs: dict[str, str] = hdrs, method: str = method,
                 body: dict[str, Any] = body) -> httpx.Response:
            return client.request(method, url, headers={**hdrs, **extra}, **body)

        _unauthorized(send({}), f"{what} without a token")
        _unauthorized(send({"authorization": "Bearer not-a-token"}), f"{what} with a wrong token")
        _unauthorized(send({"authorization": f"Bearer {WRITE[:-1]}"}), f"{what} with a token's prefix")
        _unauthorized(send({"authorization": f"Bearer {WRITE}x"}), f"{what} with a token plus a byte")
        _unauthorized(send({"authorization": "Bearer"}), f"{what} with an empty bearer")
        query = f"{path}?token={WRITE}&access_token={WRITE}&auth={WRITE}&authorization=Bearer%20{WRITE}"
        _unauthorized(send({}, url=query), f"{what} with the token in the query string")
        basic = base64.b64encode(f"driftwatch:{WRITE}".encode()).decode()
        for wrong_scheme in (f"Basic {basic}", f"Token {WRITE}", WRITE, f"Bearer{WRITE}", f"Bearer {READ} {WRITE}"):
            _unauthorized(send({"authorization": wrong_scheme}), f"{what} with {wrong_scheme.split()[0][:6]!r}")
        _unauthorized(send({"x-api-key": WRITE, "cookie": f"token={WRITE}"}), f"{what} with the token in another header")
        if _is_write(method):
            r = send({"authorization": f"Bearer {READ}"})
            assert r.status_code == 403 and r.json()["error"] == "forbidden", f"{what} with a read token: {r.text}"
            good = (WRITE, WRITE_2, ENV)
        else:
            good = (READ, WRITE, WRITE_2, ENV)
        for token in good:
            r = send({"authorization": f"Bearer {token}"})
            assert r.status_code not in (401, 403), f"{what} refused a good token: {r.status_code} {r.text[:200]}"
        r = send({"authorization": f"bearer {good[0]}"})  # the scheme is case-insensitive (RFC 7235)
        assert r.status_code not in (401, 403), what
        probed += 1
    assert probed >= 12
    for path in ("/docs", "/redoc", "/no/such/route", "/v1/models/toy/drift/../../../metrics"):
        _unauthorized(client.get(path), f"GET {path}")  # unknown paths are not told apart from known ones


def test_reads_answer_with_a_read_token(guarded: Any) -> None:
    _, client, _, _ = guarded
    read = {"authorization": f"Bearer {READ}"}
    assert [m["model"] for m in client.get("/v1/models", headers=read).json()["models"]] == ["toy", "plain"]
    assert client.get("/reports.json", headers=read).status_code == 200
    assert client.get("/openapi.json", headers=read).json()["info"]["title"] == "driftwatch monitor"
    assert "driftwatch_events_ingested_total" in client.get("/metrics", headers=read).text
    _unauthorized(client.get("/metrics"), "protected /metrics without a token")
    r = client.post("/v1/events", json={"events": [event(1)]}, headers=read)
    assert r.status_code == 403 and r.headers["www-authenticate"].startswith("Bearer")


def test_cloudevents_path_token(guarded: Any) -> None:
    """KServe's logger posts to the URL it is given and sends no Authorization header."""
    _, client, _, store_path = guarded
    req = json.dumps({"instances": [[0.2, 5.1, 4.0, "blue"]]})
    resp = json.dumps({"predictions": [{"score": 0.3}]})
    r = client.post(f"/v1/cloudevents/{WRITE_2}", content=req, headers=kserve_headers("request", "pt-1"))
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    r = client.post(f"/v1/cloudevents/{WRITE}", content=resp, headers=kserve_headers("response", "pt-1"))
    assert r.json() == {"status": "joined", "rejected": None}
    store = EventStore(store_path)
    try:
        assert any(e.id == "pt-1" for e in store.accepted_since("toy", 0))
    finally:
        store.close()
    for bad, status in ((f"{WRITE}x", 401), (READ, 403), ("", 401), (f"{WRITE}/x", 401), (f"%20{WRITE}", 401)):
        r = client.post(f"/v1/cloudevents/{bad}", content=req, headers=kserve_headers("request", "pt-2"))
        assert r.status_code == status, (bad[:3], r.text)
    # a good header does not rescue a wrong path token, and the bare route still wants the header
    r = client.post("/v1/cloudevents/wrong", content=req, headers={**kserve_headers("request", "pt-3"), "authorization": f"Bearer {WRITE}"})
    assert r.status_code == 401
    _unauthorized(client.post("/v1/cloudevents", content=req, headers=kserve_headers("request", "pt-4")), "bare CloudEvents")
    _unauthorized(client.post(f"/v1/cloudevents?token={WRITE}", content=req, headers=kserve_headers("request", "pt-5")), "query")
    # the path token is for CloudEvents only
    _unauthorized(client.post(f"/v1/events/{WRITE}", json={"events": []}), "path token on /v1/events")


def test_no_token_is_ever_logged(guarded: Any) -> None:
    _, client, records, _ = guarded
    for token in ALL:  # a mix of failures and successes to log about
        client.post(f"/v1/cloudevents/{token}", content=b"{", headers=kserve_headers("request", "log-1"))
        client.get("/v1/models", headers={"authorization": f"Bearer {token}x"})
    assert any("auth_enabled" in line for line in records.lines)
    leaked = [line for line in records.lines if any(t in line for t in ALL)]
    assert not leaked, leaked[:3]


def _kubelet_secret(root: Path, version: int, *tokens: str) -> None:
    """A Secret volume as the kubelet lays it out: `tokens` -> `..data/tokens`, `..data` swapped atomically."""
    data = root / f"..v{version}"
    data.mkdir()
    (data / "tokens").write_text("".join(f"{t}\n" for t in tokens))
    link = root / "..data_tmp"
    link.symlink_to(data.name)
    os.replace(link, root / "..data")
    if not (root / "tokens").is_symlink():
        (root / "tokens").symlink_to("..data/tokens")


def test_rotation_through_a_mounted_secret_loses_nothing(tmp_path: Path) -> None:
    """A -> A+B -> B through the kubelet's symlink swap, with no restart: while two clients keep
    posting with whichever token is valid, not one of their requests is refused."""
    secret = tmp_path / "secret"
    secret.mkdir()
    a, b = "token-a-0123456789abcdef", "token-b-fedcba9876543210"
    _kubelet_secret(secret, 1, a)
    cfg = load(tmp_path, server={"auth": {"token_files": [str(secret / "tokens")]}})
    seq = itertools.count(50_000)
    valid = [a]  # the token the steady clients use: always one the Secret holds
    refused: list[int] = []
    stop = threading.Event()

    def status(client: httpx.Client, token: str) -> int:
        body = {"events": [event(next(seq))]}
        return client.post("/v1/events", json=body, headers={"authorization": f"Bearer {token}"}).status_code

    def steady(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as own:
            while not stop.is_set():
                if (code := status(own, valid[0])) != 200:
                    refused.append(code)
                time.sleep(0.01)

    with serve_in_thread(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        clients = [threading.Thread(target=steady, args=(url,)) for _ in range(2)]
        for t in clients:
            t.start()
        try:
            assert status(client, a) == 200 and status(client, b) == 401
            _kubelet_secret(secret, 2, a, b)  # the overlap: both
            deadline = time.monotonic() + 10
            while status(client, b) != 200:
                assert status(client, a) == 200, "the old token was refused while still in the Secret"
                assert time.monotonic() < deadline, "the new token was never accepted"
                time.sleep(0.05)
            valid[0] = b  # the clients move to the new token
            time.sleep(0.2)
            _kubelet_secret(secret, 3, b)  # the old one retired
            deadline = time.monotonic() + 10
            while status(client, a) != 401:
                assert status(client, b) == 200, "the new token was refused after it had been accepted"
                assert time.monotonic() < deadline, "the retired token was still accepted"
                time.sleep(0.05)
            assert [status(client, a) for _ in range(3)] == [401] * 3 and status(client, b) == 200
            # the Secret's file vanishing (or unreadable) keeps the last good tokens
            os.unlink(secret / "..data")
            time.sleep(1.2)
            assert status(client, b) == 200 and status(client, a) == 401
        finally:
            stop.set()
            for t in clients:
                t.join(timeout=30)
    assert not refused, f"valid tokens refused during the rotation: {refused[:5]}"
    store = EventStore(cfg.server.store.path)
    try:
        assert sum(1 for _ in store.accepted_since("toy", 0)) > 20  # the steady clients did post throughout
    finally:
        store.close()


def test_token_files_parse_reload_at_most_once_a_second_and_keep_the_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert parse_tokens("# c\n\n a \nb\n#x\na\n") == (b"a", b"b")
    f = tmp_path / "t"
    f.write_text("one\n")
    now = [0.0]
    tokens = Tokens([f], clock=lambda: now[0])
    assert tokens.scope_of(b"one") == "write" and tokens.scope_of(b"on") is None
    write_tokens(f, "two")
    now[0] = 0.5
    assert tokens.scope_of(b"one") == "write"  # not re-checked within the second
    now[0] = 1.6
    assert tokens.scope_of(b"two") == "write" and tokens.scope_of(b"one") is None
    caplog.set_level(logging.INFO, "driftwatch.auth")
    for broken in ("", "# only a comment\n", None):
        if broken is None:
            f.unlink()
        else:
            write_tokens(f, broken) if broken else f.write_text("")
        now[0] += 1.1
        assert tokens.scope_of(b"two") == "write", broken
    assert "auth_token_file_unusable" in caplog.text and "two" not in caplog.text
    write_tokens(f, "three")
    now[0] += 1.1
    assert tokens.scope_of(b"three") == "write" and tokens.scope_of(b"two") is None


@pytest.mark.parametrize(
    ("server", "env", "message"),
    [
        ({"auth_token_env": "DW_AUTH_UNSET_VAR"}, {}, "no write token"),
        ({"auth": {"token_files": ["missing-tokens"]}}, {}, "missing-tokens"),
        ({"auth": {"token_files": ["empty-tokens"]}}, {}, "holds no token"),
        ({"auth": {"read_token_files": ["read-only"]}}, {}, "no write token"),
        ({"auth": {"protect_metrics": True}}, {}, "need tokens"),
        ({"auth": {"cloudevents_path_token": True}}, {}, "need tokens"),
    ],
)
def test_auth_configured_without_a_usable_token_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: dict[str, Any], env: dict[str, str], message: str
) -> None:
    (tmp_path / "empty-tokens").write_text("# nothing yet\n")
    (tmp_path / "read-only").write_text(f"{READ}\n")
    monkeypatch.delenv("DW_AUTH_UNSET_VAR", raising=False)
    with pytest.raises(AuthConfigError, match=message):
        create_app(load(tmp_path, server=server))


def test_without_auth_everything_is_open(tmp_path: Path) -> None:
    app = create_app(load(tmp_path))
    assert app.state.tokens is None
    assert not any(isinstance(r, APIRoute) and r.path == "/v1/cloudevents/{token}" for r in app.routes)
