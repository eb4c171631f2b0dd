"""`driftwatch demo`: a model server, a sidecar, the monitor and a local retraining run, end to end.

Traffic flows client → sidecar → model server; the sidecar ships captured pairs to the monitor,
which evaluates sliding windows against the reference data. The first half of the traffic is
unchanged, the second half drifted, so the summary shows when drift was caught, which features
moved, which alert rules would fire and the retraining run it launched. The true classes are sent
as labels: the unchanged traffic's soon, the drifted traffic's late, so the estimated accuracy falls
before they arrive and the realized accuracy confirms it after. The model server names the version
that answered (`x-model-version`), so the monitor judges each version on its own track. The
retraining run fits version 2 to drifted traffic and writes its reference; the demo sets it as
version 2's reference (`PUT /v1/models/wine/reference?version=2`), the model server then serves
version 2, and more traffic like the drifted one shows version 2's windows quiet: the loop closed.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from monitor.app.console import OutputConsole
from monitor.app.demo import wine
from monitor.app.demo.config import RETRAINED_VERSION, WINDOW_RECORDS, WINDOW_STEP, write_demo_config
from monitor.app.demo.model_server import VERSION_HEADER
from monitor.app.demo.performance import performance, post_labels, print_performance, wait_for_labels
from monitor.app.demo.processes import Supervisor, free_port, run_guarded
from monitor.core.config import Config
from monitor.drift import P_VALUE_METHODS

console = OutputConsole()  # never wrapped off a terminal: the summary stays greppable in CI logs
AFTER_SWITCH_RECORDS = WINDOW_RECORDS
"""Traffic the retrained version serves: two windows judged against its reference (a step, then a full window)."""
FIRST_VERSION = "1"
"""The version the model server serves at start-up (its `x-model-version`)."""


@dataclass(frozen=True)
class Endpoints:
    model: str
    sidecar: str
    monitor: str


@contextmanager
def _stack(workdir: Path) -> Iterator[tuple[Supervisor, Endpoints, Config]]:
    """Start model server, monitor and sidecar; stop them all on exit, Ctrl-C included."""
    sup = Supervisor(workdir)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        model_port, monitor_port, sidecar_port = free_port(), free_port(), free_port()
        config_path, config = write_demo_config(workdir, monitor_port)
        ep = Endpoints(
            model=f"http://127.0.0.1:{model_port}",
            sidecar=f"http://127.0.0.1:{sidecar_port}",
            monitor=f"http://127.0.0.1:{monitor_port}",
        )
        with console.status("starting the model server, the monitor and the sidecar…"):
            model = sup.python(
                "model-server", "monitor.app.demo.model_server",
                "--port", str(model_port), "--pid-file", str(workdir / "model.pid"), "--model-dir", str(workdir),
            )
            monitor = sup.python(
                "monitor", "monitor.app.cli", "serve", "--config", str(config_path), "--port", str(monitor_port)
            )
            sidecar = sup.python(
                "sidecar", "monitor.app.cli", "sidecar",
                "--upstream", ep.model, "--monitor", ep.monitor, "--model", "wine",
                "--port", str(sidecar_port), "--spool-dir", str(workdir / "spool"),
            )
            sup.wait_http(model, f"{ep.model}/v1/models/wine")
            sup.wait_http(monitor, f"{ep.monitor}/readyz")
            sup.wait_http(sidecar, f"{ep.sidecar}/driftwatch/readyz")
        yield sup, ep, config
    finally:
        with console.status("stopping every process the demo started…"):
            sup.stop_all()
        signal.signal(signal.SIGTERM, previous)


def _send_traffic(ep: Endpoints, unchanged: int, drifted: int, batch: int, rate: float) -> tuple[int, dict[str, list[str]]]:
    """Send the two phases through the sidecar at `rate` records/s; return inference errors seen
    and the true classes of the drifted phase's requests (by `x-request-id`), whose labels come late.

    The unchanged phase's labels are sent as soon as it ends. Pacing lets the monitor evaluate every
    window step as it passes, as it would in production, instead of seeing the whole stream at once.
    """
    errors = 0
    phases = [("unchanged traffic", wine.labelled_traffic(unchanged, drifted=False, seed=11)),
              ("drifted traffic", wine.labelled_traffic(drifted, drifted=True, seed=12))]
    truth: list[dict[str, list[str]]] = []
    not_yet: dict[str, list[str]] = {}
    with _client(ep) as client, _progress() as progress:
        paced = _Pace(rate)
        for label, (rows, classes) in phases:
            if truth:  # the unchanged phase's labels arrive early; those of requests not shipped yet go again later
                _, unknown = post_labels(ep.monitor, "wine", truth[-1])
                not_yet = {rid: truth[-1][rid] for rid in unknown}
            truth.append({})
            for request_id, start, resp in _predict(client, rows, batch, progress, label, paced, "demo"):
                errors += resp.status_code != 200
                truth[-1][request_id] = classes[start : start + batch]
    return errors, {**not_yet, **truth[-1]}


class _Pace:
    """Holds requests to `rate` records/s over everything sent through it."""

    def __init__(self, rate: float) -> None:
        self.rate, self.started, self.sent = rate, time.monotonic(), 0

    def __call__(self, n: int) -> None:
        self.sent += n
        time.sleep(max(0.0, self.started + self.sent / self.rate - time.monotonic()))


def _client(ep: Endpoints) -> httpx.Client:
    return httpx.Client(base_url=ep.sidecar, timeout=10.0)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)


def _predict(client: httpx.Client, rows: Any, batch: int, progress: Progress, label: str, pace: _Pace,
             prefix: str) -> Iterator[tuple[str, int, httpx.Response]]:
    """Send `rows` in requests of `batch` instances through the sidecar: (request id, first row, answer) of each."""
    task = progress.add_task(label, total=len(rows))
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch].tolist()
        request_id = f"{prefix}-{pace.sent}"
        yield request_id, start, client.post("/v1/models/wine:predict", json={"instances": chunk}, headers={"x-request-id": request_id})
        progress.advance(task, len(chunk))
        pace(len(chunk))


@dataclass(frozen=True)
class Switch:
    """The retrained version serving, with its reference, and the windows judged against it."""

    version: str
    reference: dict[str, Any]
    served: dict[str, int]
    """Answers of the traffic after the switch by their `x-model-version`."""
    windows: list[dict[str, Any]]


def _serve_retrained(ep: Endpoints, workdir: Path, records: int, batch: int, rate: float) -> Switch:
    """Set the retrained version's reference, serve that version, and send it traffic like the drifted
    traffic (the new normal) until `records` records were judged on its track against its reference."""
    version = str(RETRAINED_VERSION)
    with console.status(f"version {version}'s reference is set on the monitor; the model server loads version {version}…"):
        body = (workdir / f"wine_reference_v{version}.csv").read_bytes()
        httpx.put(f"{ep.monitor}/v1/models/wine/reference", params={"version": version}, content=body,
                  headers={"content-type": "text/csv"}, timeout=120.0).raise_for_status()
        reference = _get(ep, "/v1/models/wine/reference", version=version)["reference"]
        httpx.post(f"{ep.model}/v1/models/wine/versions/{version}:load", timeout=60.0).raise_for_status()
    served: Counter[str] = Counter()
    rows = wine.traffic(records, drifted=True, seed=13)
    with _client(ep) as client, _progress() as progress:
        for _, _, resp in _predict(client, rows, batch, progress, f"served by v{version}", _Pace(rate), "demo-v2"):
            served[resp.headers.get(VERSION_HEADER, "none") if resp.status_code == 200 else "error"] += 1
    last = reference["from_record"] + records  # every request after the load is served by the new version
    history = _wait_for_windows(ep, -(-records // batch), last - last % WINDOW_STEP, version)
    windows = [e for e in history["evaluations"] if e["reference_id"] == reference["id"]]
    return Switch(version, reference, dict(served), windows)


def _get(ep: Endpoints, path: str, version: str | None = None) -> Any:
    resp = httpx.get(f"{ep.monitor}{path}", params={} if version is None else {"version": version}, timeout=10.0)
    resp.raise_for_status()
    return resp.json()


def _wait_for_windows(ep: Endpoints, events_sent: int, last_due_window: int, version: str,
                      timeout: float = 60.0) -> dict[str, Any]:
    """Wait until the monitor has stored every event of `version` and evaluated its last due window."""
    deadline = time.monotonic() + timeout
    history: dict[str, Any] = {"evaluations": []}
    while time.monotonic() < deadline:
        try:
            state = _get(ep, "/v1/models/wine/drift", version)
        except httpx.HTTPStatusError as exc:  # 404 until the version's first event is stored
            if exc.response.status_code != 404:
                raise
            time.sleep(0.5)
            continue
        history = _get(ep, "/v1/models/wine/evaluations", version)
        evaluations = history["evaluations"]
        if state["ingested"] >= events_sent and evaluations and evaluations[-1]["window_id"] >= last_due_window:
            return history
        time.sleep(0.5)
    raise RuntimeError(f"the monitor did not evaluate window {last_due_window} within {timeout:.0f}s")


def run_demo(
    *, keep_running: bool = False, records: int = 1200, batch: int = 4, rate: float = 200.0, workdir: Path | None = None
) -> int:
    """Run the demo; returns the process exit code."""

    def body(root: Path) -> int:
        with _stack(root) as (_, ep, config):
            console.print(
                f"[bold]driftwatch demo[/]: model {ep.model}  ←  sidecar {ep.sidecar}  →  monitor {ep.monitor}"
            )
            errors, late_labels = _send_traffic(ep, records, records, batch, rate)
            total = 2 * records
            events = 2 * -(-records // batch)
            history = _wait_for_windows(ep, events, total - total % WINDOW_STEP, FIRST_VERSION)
            before = performance(ep.monitor, "wine", FIRST_VERSION)  # every window judged, the drifted ones without labels
            with console.status("the drifted traffic's labels arrive, late…"):
                post_labels(ep.monitor, "wine", late_labels)
                after = wait_for_labels(ep.monitor, "wine", FIRST_VERSION)
            retraining = _wait_for_retraining(ep)
            switch = None
            if any(j["state"] == "succeeded" for j in retraining) and (root / f"model-v{RETRAINED_VERSION}.pkl").exists():
                switch = _serve_retrained(ep, root, AFTER_SWITCH_RECORDS, batch, rate)
            _print_summary(ep, config, history, retraining, errors, keep_running=keep_running,
                           performance=(before, after, records), switch=switch)
            if keep_running:
                console.print("\n[bold]still running[/] — press Ctrl-C to stop everything.")
                while True:
                    time.sleep(3600)
        return 0

    return run_guarded(console, workdir, "driftwatch-demo-", body)


def _wait_for_retraining(ep: Endpoints, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Retraining runs of the demo model, once none is pending or running any more."""
    deadline = time.monotonic() + timeout
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = _get(ep, "/v1/models/wine/retraining")["jobs"]
        if jobs and all(j["state"] not in ("pending", "running") for j in jobs):
            break
        time.sleep(0.5)
    return jobs


def _print_summary(
    ep: Endpoints,
    config: Config,
    history: dict[str, Any],
    retraining: list[dict[str, Any]],
    inference_errors: int,
    *,
    keep_running: bool,
    performance: tuple[list[dict[str, Any]], list[dict[str, Any]], int] | None = None,
    switch: Switch | None = None,
) -> None:
    evaluations = history["evaluations"]
    latest = evaluations[-1]
    table = Table(title="windows evaluated", title_justify="left")
    for col in ("#", "records", "drift share", "dataset drift", "drifted input features (+ outputs)"):
        table.add_column(col)
    first_drift = None
    for i, ev in enumerate(evaluations, 1):
        result = ev["result"]
        if result["dataset"]["drifted"] and first_drift is None:
            first_drift = (i, ev)
        table.add_row(
            str(i),
            f"{ev['window_id'] - ev['n_records'] + 1}–{ev['window_id']}",
            f"{result['dataset']['drift_share']:.2f}",
            "[red]yes[/]" if result["dataset"]["drifted"] else "[green]no[/]",
            drifted_columns_cell(result),
        )
    console.print(table)
    console.print(f"inference errors seen by the client: {inference_errors}")

    if first_drift is None:
        console.print("[yellow]no dataset drift detected[/]")
    else:
        i, ev = first_drift
        console.print(
            f"dataset drift first detected in window {i} (records {ev['window_id'] - ev['n_records'] + 1}–{ev['window_id']}), "
            f"drift share {ev['result']['dataset']['drift_share']:.2f}"
        )
        feats = Table(title="columns flagged in the latest window", title_justify="left")
        for col in ("column", "method", "score", "score is", "drifted when"):
            feats.add_column(col)
        for f in latest["result"]["features"].values():
            if f["drifted"]:
                feats.add_row(*flagged_row(f))
        console.print(feats)

    _print_alerts(config, latest)
    if performance is not None:
        before, after, drifted_from = performance
        print_performance(console, before, after, drifted_from, alert=config.alerts_for(config.model("wine")).performance_degraded)
    for job in retraining:
        console.print(
            f"retraining run {job['name']}: [bold]{job['state']}[/], exit status {job['exit_code']}, "
            f"{job['duration_seconds'] or 0:.1f}s; its log:"
        )
        log = Path(job["log_path"]) if job["log_path"] else None
        for line in (log.read_text(errors="replace").splitlines() if log and log.exists() else [])[-5:]:
            console.print(f"  │ {line}", highlight=False, markup=False)
    if not retraining:
        console.print("[yellow]no retraining run was launched[/]")
    if switch is not None:
        _print_switch(switch)
    if keep_running:
        console.print(
            f"report of the latest window: {ep.monitor}/reports/wine@{FIRST_VERSION}/{latest['window_id']}\n"
            f"all reports: {ep.monitor}/reports/   metrics: {ep.monitor}/metrics"
        )
    else:  # the monitor stops when the demo returns: its links would be dead by the time they are read
        console.print("to browse the drift reports and metrics, run [bold]driftwatch demo --keep-running[/]")


def _print_switch(switch: Switch) -> None:
    """The loop closed: the retrained version serves, its reference judges, and the windows since are quiet."""
    ref = switch.reference
    served = ", ".join(f"{n} by version {v}" for v, n in sorted(switch.served.items()))
    console.print(f"model version {switch.version} serves now (requests answered: {served}); "
                  f"its own reference, {ref['label']} ({ref['rows']} rows), judges its windows from its first record")
    drifted = [e for e in switch.windows if e["result"]["dataset"]["drifted"]]
    shares = ", ".join(f"{e['result']['dataset']['drift_share']:.2f}" for e in switch.windows)
    if not switch.windows:
        console.print("[yellow]no window was judged against the new reference[/]")
    elif drifted:
        console.print(f"[yellow]{len(drifted)} of {len(switch.windows)} windows after the switch drifted[/] (drift shares {shares})")
    else:
        console.print(f"windows after the switch are quiet: {len(switch.windows)} window(s) judged against {ref['label']}, "
                      f"none drifted (drift shares {shares})")


def drifted_columns_cell(result: dict[str, Any]) -> str:
    """The drifted columns of a window as the windows table shows them, e.g.
    `8 of 13: alcohol, malic_acid, total_phenols, … (+ outputs predicted_class, confidence)`.

    The count is of input features, the same count as the drift share beside it; drifted outputs
    (prediction drift) are named apart.
    """
    ds = result["dataset"]
    if not any(f["drifted"] for f in result["features"].values()):
        return ""
    inputs = [n for n, f in result["features"].items() if f["drifted"] and f["role"] != "output"]
    outputs = [n for n, f in result["features"].items() if f["drifted"] and f["role"] == "output"]
    cell = f"{ds['n_drifted']} of {ds['n_features']}"
    if inputs:
        cell += ": " + ", ".join(inputs[:3]) + (", …" if len(inputs) > 3 else "")
    if outputs:
        cell += f" (+ output{'s' if len(outputs) > 1 else ''} {', '.join(outputs)})"
    return cell


def flagged_row(f: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """One drifted column: its name, method, the number compared with the threshold, what that
    number is and which way it points. A p-value drifts when low (and, where the engine gated it, the
    effect size reached its minimum), a distance when high."""
    name = f["name"] + (" (output)" if f["role"] == "output" else "")
    if (f.get("details") or {}).get("type_changed"):
        return name, f["method"], "—", "values changed type", "always"
    if f["method"] in P_VALUE_METHODS:
        p, raw = f.get("adjusted_p_value"), f["score"]
        adjusted = p is not None and p != raw
        when = f"p < {f['threshold']:.3g}" + (" (BH-adjusted)" if adjusted else "")
        floor = (f.get("details") or {}).get("min_effect")
        if isinstance(floor, (int, float)):  # driftwatch mode: the test flags only a large enough shift
            when += f" and effect ≥ {floor:.3g}"
        return name, f["method"], f"{p if p is not None else raw:.3g}", "p-value ↓ (lower = drift)", when
    return name, f["method"], f"{f['score']:.3g}", "distance ↑ (higher = drift)", f"distance ≥ {f['threshold']:.3g}"


def _print_alerts(config: Config, latest: dict[str, Any]) -> None:
    """Which generated alert rules the latest values satisfy, with their thresholds and `for`.

    Mirrors alerts/rules.py: feature drift covers every exported column (outputs too), prediction
    drift only the model's first output.
    """
    from alerts.rules import prediction_output
    from monitor.core.units import format_duration

    model = config.model("wine")
    rules = config.alerts_for(model)
    result = latest["result"]
    share = result["dataset"]["drift_share"]
    dd = rules.dataset_drift
    for severity, threshold in (("critical", dd.critical), ("warning", dd.warning)):
        if share >= threshold:
            console.print(
                f"alert [bold]DriftwatchDatasetDrift[/] ({severity}) would fire after {format_duration(dd.for_)}: "
                f"drift share {share:.2f} of the input features >= {threshold}"
                + (" and carries driftwatch_action=retrain" if severity == "critical" and rules.retrain_on_critical else "")
            )
            break
    exported = set(config.exported_features(model))
    drifted = [n for n, f in result["features"].items() if f["drifted"] and n in exported]
    if drifted and rules.feature_drift.enabled:
        console.print(
            f"alert [bold]DriftwatchFeatureDrift[/] ({rules.feature_drift.severity}) would fire after "
            f"{format_duration(rules.feature_drift.for_)} for {len(drifted)} column(s)"
            f" ({_inputs_and_outputs(drifted, {o.name for o in model.outputs})})"
        )
    output = prediction_output(config, model)
    if output is not None and output in drifted and rules.prediction_drift.enabled:
        console.print(
            f"alert [bold]DriftwatchPredictionDrift[/] ({rules.prediction_drift.severity}) would fire after "
            f"{format_duration(rules.prediction_drift.for_)}: {output} drifted"
        )


def _inputs_and_outputs(names: list[str], outputs: set[str]) -> str:
    """`8 input features, 2 outputs`: how many of `names` are inputs and how many outputs."""
    n_out = len(set(names) & outputs)
    n_in = len(names) - n_out
    return f"{n_in} input feature{'s' * (n_in != 1)}, {n_out} output{'s' * (n_out != 1)}"
