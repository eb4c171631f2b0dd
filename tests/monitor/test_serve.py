"""`driftwatch serve` refuses what it cannot use with one clear line and exit code 2; serves HTTPS from `server.tls`."""

from __future__ import annotations

import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ingest_helpers import RETRAIN_DRY_RUN, load, write_config

from retrain.history import History
from tests.ports import free_port


def test_a_store_from_a_newer_driftwatch_is_refused_without_a_traceback(tmp_path: Path) -> None:
    """What a rollback to an older image meets after a newer one upgraded the file."""
    config = write_config(tmp_path, retrain=RETRAIN_DRY_RUN)
    store = load(tmp_path, retrain=RETRAIN_DRY_RUN).server.store.path
    store.parent.mkdir(parents=True, exist_ok=True)
    History(store).close()
    with sqlite3.connect(store) as db:
        db.execute("UPDATE schema_version SET version = 99")
    res = subprocess.run(
        [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config), "--port", str(free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert "schema version 99" in res.stderr and "Traceback" not in res.stderr


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as a Secret of type kubernetes.io/tls would hold them."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "driftwatch-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    with open(config.parent / "monitor.log", "wb") as log:  # a file, not a pipe nobody drains
        return subprocess.Popen([sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config), "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)


def test_tls_and_a_token_file_on_a_real_listener(tmp_path: Path) -> None:
    """HTTPS with the configured certificate, the token from a file; plain HTTP gets nowhere."""
    cert, _ = _self_signed(tmp_path)
    (tmp_path / "tokens").write_text("tls-test-token-0123456789\n")
    config = write_config(tmp_path, server={"tls": {"cert_file": "tls.crt", "key_file": "tls.key"},
                                            "auth": {"token_files": ["tokens"]}})
    port = free_port()
    proc = _serve(config, port)
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(cert)), timeout=5) as client:
            while True:
                assert proc.poll() is None, (tmp_path / "monitor.log").read_text()[-3000:]
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the monitor did not come up over HTTPS"
                time.sleep(0.2)
            assert client.get("/v1/models").status_code == 401
            r = client.get("/v1/models", headers={"authorization": "Bearer tls-test-token-0123456789"})
            assert r.status_code == 200 and r.json()["models"]
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
            httpx.get(f"{url}/readyz", timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert "tls-test-token" not in (tmp_path / "monitor.log").read_text()


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"auth_token_env": "DW_SERVE_TEST_UNSET"}, "no write token"),
        ({"auth": {"token_files": ["no-such-tokens"]}}, "no-such-tokens"),
        ({"tls": {"cert_file": "no-such.crt", "key_file": "no-such.key"}}, "cannot use server.tls"),
    ],
)
def test_auth_or_tls_that_cannot_be_used_refuses_to_start(tmp_path: Path, server: dict[str, object], message: str) -> None:
    """Fail closed: never serve without the protection the config asks for."""
    config = write_config(tmp_path, server=server)
    env = {k: v for k, v in os.environ.items() if k != "DW_SERVE_TEST_UNSET"}
    res = subprocess.run(
        [sys.executable, "-m", "monitor.app.cli", "serve", "--config", str(config), "--port", str(free_port())],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert message in res.stderr and "Traceback" not in res.stderr
