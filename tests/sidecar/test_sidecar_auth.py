"""401/403 from the monitor are "retry later", end to end: a real sidecar process, a real stand-in
monitor on 127.0.0.1 that accepts only some tokens, and a token file laid out as the kubelet mounts
a Secret (a `..data` symlink swapped atomically on rotation)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sidecar_servers import Collector, ModelServer, Sidecar, metric, wait_for
from test_sidecar_shipping import dropped, predict, scrape, settled

from monitor.sidecar.metrics import DROP_REASONS

Start = Callable[..., Sidecar]
OLD, NEW = "tok-old-5c1f9a", "tok-new-e73b02"


class SecretMount:
    """A directory as the kubelet writes a Secret volume: `token -> ..data/token`, `..data -> ..<n>`."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.versions = 0
        root.mkdir()
        self.rotate(token)
        (root / "token").symlink_to("..data/token")

    @property
    def path(self) -> Path:
        return self.root / "token"

    def rotate(self, token: str) -> None:
        self.versions += 1
        version = self.root / f"..v{self.versions}"
        version.mkdir()
        (version / "token").write_text(token + "\n")
        (self.root / "..data_tmp").symlink_to(version.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")


def auth_rejected(text: str, status: int) -> float:
    return metric(text, "driftwatch_sidecar_auth_rejected_total", model="wine", status=str(status))


def captured(sidecar: Sidecar) -> float:
    return metric(scrape(sidecar), "driftwatch_sidecar_events_captured_total", model="wine")


@pytest.mark.parametrize("status", [401, 403])
def test_rotated_token_spools_until_the_file_changes_then_delivers_each_event_once(
    status: int, model_server: ModelServer, collector: Collector, start_sidecar: Start, tmp_path: Path
) -> None:
    collector.tokens, collector.deny_status = {NEW}, status  # the monitor was rotated first
    mount = SecretMount(tmp_path / "secret", OLD)
    sidecar = start_sidecar(model_server.url, collector.url, "--token-file", str(mount.path), "--linger", "50ms", "--batch-max", "20")
    ids = [f"a-{i}" for i in range(60)]
    with httpx.Client(base_url=sidecar.url) as c:
        for rid in ids:
            predict(c, rid)
    wait_for(lambda: metric(scrape(sidecar), "driftwatch_sidecar_spool_events") == 60)  # kept on disk, as in an outage
    wait_for(lambda: auth_rejected(scrape(sidecar), status) >= 3)
    assert collector.events() == []
    assert sum(dropped(scrape(sidecar), r) for r in DROP_REASONS) == 0

    mount.rotate(NEW)
    wait_for(lambda: len(collector.events()) >= 60)
    wait_for(lambda: settled(sidecar))  # so a duplicate would have arrived by now
    text = scrape(sidecar)
    assert [e["id"] for e in collector.events()] == ids  # each once, in order
    assert set(collector.auth) == {f"Bearer {NEW}"}
    assert sum(dropped(text, r) for r in DROP_REASONS) == 0
    assert auth_rejected(text, status) == collector.denied  # every refusal counted, under its status
    assert auth_rejected(text, 401 if status == 403 else 403) == 0
    log = sidecar.log()
    assert "ship_auth_rejected events=" in log and f"status={status}" in log
    assert log.count("ship_auth_rejected") == 1  # loud once, then at most once a minute
    assert "token_reloaded" in log
    assert OLD not in log and NEW not in log  # tokens are never logged
    assert "instances" not in log  # nor payloads


def test_with_a_tiny_spool_the_overflow_during_401_is_dropped_as_spool_full_and_the_rest_arrives(
    model_server: ModelServer, collector: Collector, start_sidecar: Start, tmp_path: Path
) -> None:
    collector.tokens = {NEW}
    mount = SecretMount(tmp_path / "secret", OLD)
    sidecar = start_sidecar(
        model_server.url, collector.url, "--token-file", str(mount.path), "--linger", "50ms", "--spool-max-bytes", "16KiB"
    )
    body = json.dumps({"instances": [[1.5] * 50]}).encode()
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(100):
            predict(c, f"f-{i}", body)
    wait_for(lambda: captured(sidecar) == 100)
    wait_for(lambda: auth_rejected(scrape(sidecar), 401) >= 1)
    full = dropped(scrape(sidecar), "spool_full")
    assert full > 0

    mount.rotate(NEW)
    wait_for(lambda: settled(sidecar))
    received = [e["id"] for e in collector.events()]
    text = scrape(sidecar)
    assert len(received) + full == 100  # captured = received + dropped: nothing lost silently
    assert len(set(received)) == len(received)  # none twice
    assert dropped(text, "spool_full") == full  # nothing dropped after the token was fixed
    assert sum(dropped(text, r) for r in DROP_REASONS if r != "spool_full") == 0


def test_env_token_is_kept_and_retried_until_the_monitor_accepts_it(
    model_server: ModelServer, collector: Collector, start_sidecar: Start
) -> None:
    collector.tokens = {NEW}  # the monitor does not know the sidecar's token yet
    sidecar = start_sidecar(model_server.url, collector.url, "--token-env", "DW_TEST_TOKEN", "--linger", "50ms", env={"DW_TEST_TOKEN": OLD})
    with httpx.Client(base_url=sidecar.url) as c:
        for i in range(5):
            predict(c, f"e-{i}")
    wait_for(lambda: auth_rejected(scrape(sidecar), 401) >= 2)
    collector.tokens = {NEW, OLD}  # the monitor accepts both during a rotation
    wait_for(lambda: settled(sidecar))
    assert [e["id"] for e in collector.events()] == [f"e-{i}" for i in range(5)]
    assert sum(dropped(scrape(sidecar), r) for r in DROP_REASONS) == 0
