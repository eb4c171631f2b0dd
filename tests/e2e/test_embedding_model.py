"""An embedding model monitored end to end, on real processes (issue 17): a toy OpenAI-compatible
`/v1/embeddings` server, `driftwatch sidecar` in front of it and `driftwatch serve` with a
`type: embedding` column read from the answers (`source: {field: embedding}`). Unchanged traffic
leaves the column quiet; traffic whose vectors move in 3 of 32 dimensions makes it drift in
`/metrics` and in the model's drift JSON; a vector of the wrong length is counted as a rejection
while the client still gets its answer; the served report page shows the column's scatter and MMD check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from promstack import wait_for

from monitor.app.demo.processes import Supervisor
from tests.e2e.embedding_model import DIMS, vector_of
from tests.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WINDOW = 200


@dataclass
class Stack:
    sidecar: str
    monitor: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    pd.DataFrame({"vec": [json.dumps(vector_of(f"reference {i}")) for i in range(3000)]}).to_csv(tmp_path / "ref.csv", index=False)
    model_port, monitor_port, sidecar_port = free_port(), free_port(), free_port()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"evaluation_interval": "100ms", "store": {"path": str(tmp_path / "driftwatch.db")}},
        "models": [{"name": "emb", "protocol": "openai", "reference": {"path": "ref.csv"},
                    "features": [{"name": "vec", "type": "embedding", "embedding": {"dimensions": DIMS},
                                  "source": {"field": "embedding"}}],
                    "window": {"records": WINDOW, "step": WINDOW, "min_records": WINDOW}}],
    }))
    sup = Supervisor(tmp_path)
    try:
        model = sup.python("embeddings", "tests.e2e.embedding_model", str(model_port))
        monitor = sup.python("monitor", "monitor.app.cli", "serve", "--config", str(config), "--port", str(monitor_port))
        sidecar = sup.python(
            "sidecar", "monitor.app.cli", "sidecar", "--upstream", f"http://127.0.0.1:{model_port}",
            "--monitor", f"http://127.0.0.1:{monitor_port}", "--model", "emb", "--host", "127.0.0.1",
            "--port", str(sidecar_port), "--spool-dir", str(tmp_path / "spool"), "--linger", "100ms",
        )
        sup.wait_http(model, f"http://127.0.0.1:{model_port}/")
        sup.wait_http(monitor, f"http://127.0.0.1:{monitor_port}/readyz")
        sup.wait_http(sidecar, f"http://127.0.0.1:{sidecar_port}/driftwatch/readyz")
        yield Stack(f"http://127.0.0.1:{sidecar_port}", f"http://127.0.0.1:{monitor_port}")
    finally:
        sup.stop_all()


def embed(stack: Stack, texts: list[str]) -> httpx.Response:
    return httpx.post(f"{stack.sidecar}/v1/embeddings", json={"model": "toy", "input": texts}, timeout=10)


def send(stack: Stack, prefix: str, start: int) -> None:
    for call in range(WINDOW // 20):
        assert embed(stack, [f"{prefix} {start + call * 20 + j}" for j in range(20)]).status_code == 200


def sample(stack: Stack, name: str, **labels: str) -> float | None:
    text = httpx.get(f"{stack.monitor}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_an_embedding_model_drifts_only_when_its_vectors_move(stack: Stack) -> None:
    send(stack, "live", 0)
    quiet = wait_for("the first window's verdict", lambda: sample(stack, "driftwatch_feature_drift_p_value", model="emb", feature="vec", method="embedding"), 60)
    assert (quiet > 0.01, sample(stack, "driftwatch_feature_drift_detected", model="emb", feature="vec")) == (True, 0.0)
    send(stack, "shifted", 10_000)
    wait_for("the shifted window's drift", lambda: sample(stack, "driftwatch_feature_drift_detected", model="emb", feature="vec") == 1.0, 60)
    drift = httpx.get(f"{stack.monitor}/v1/models/emb/drift", timeout=10).json()
    top = {d["dimension"] for d in drift["result"]["features"]["vec"]["details"]["top_dimensions"][:3]}
    assert top == {3, 7, 20}


def test_the_served_report_shows_the_scatter_and_the_mmd_check(stack: Stack) -> None:
    send(stack, "shifted", 20_000)
    wait_for("the window's drift", lambda: sample(stack, "driftwatch_feature_drift_detected", model="emb", feature="vec") == 1.0, 60)
    page = httpx.get(f"{stack.monitor}/reports/emb", timeout=120, follow_redirects=True)
    assert (page.status_code, 'aria-label="principal-component scatter of vec' in page.text,
            "MMD check: the distributions differ" in page.text) == (200, True, True)


def test_a_vector_of_the_wrong_length_is_rejected_and_the_client_still_gets_its_answer(stack: Stack) -> None:
    answer = embed(stack, ["broken"])
    assert (answer.status_code, len(answer.json()["data"][0]["embedding"])) == (200, DIMS - 2)
    wait_for("the rejection", lambda: sample(stack, "driftwatch_events_rejected_total", model="emb", reason="vector_dimensions") == 1.0, 60)
