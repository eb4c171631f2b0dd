"""The demo's ground truth: labels sent late, and what the monitor made of them.

The labels of the unchanged traffic arrive while the drifted traffic flows; those of the drifted
traffic only after its windows were evaluated. So the summary shows the estimate (from the
model's calibrated probabilities) falling before any label of the drifted traffic existed, and
the realized accuracy confirming it once they landed.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
from rich.table import Table

from monitor.app.console import OutputConsole
from monitor.core.config import PerformanceAlert
from monitor.core.units import format_duration

__all__ = ["post_labels", "print_performance", "wait_for_labels"]

_BATCH = 5000


def post_labels(monitor: str, model: str, labels: dict[str, list[str]]) -> tuple[Counter[str], list[str]]:
    """Send `labels` (request id → the true class of each of its instances); outcomes by count, and
    the ids the monitor did not know yet (the sidecar ships asynchronously: send those again later)."""
    items: list[dict[str, Any]] = [{"id": rid, "labels": values} if len(values) > 1 else {"id": rid, "label": values[0]}
                                   for rid, values in labels.items()]
    totals: Counter[str] = Counter()
    unknown: list[str] = []
    for start in range(0, len(items), _BATCH):
        chunk = items[start : start + _BATCH]
        resp = httpx.post(f"{monitor}/v1/labels", json={"model": model, "labels": chunk}, timeout=30.0)
        resp.raise_for_status()
        body = resp.json()
        totals.update(body["outcomes"])
        if body["outcomes"]["unknown_id"] > len(body["unknown_ids"]):  # more than the reply lists: resend them all
            unknown += [item["id"] for item in chunk]
        else:
            unknown += body["unknown_ids"]
    return totals, unknown


def performance(monitor: str, model: str, version: str | None = None) -> list[dict[str, Any]]:
    """The windows' performance of `model` (of its `version`'s track, when given)."""
    params: dict[str, Any] = {"limit": 1000} if version is None else {"limit": 1000, "version": version}
    resp = httpx.get(f"{monitor}/v1/models/{model}/performance", params=params, timeout=10.0)
    resp.raise_for_status()
    windows: list[dict[str, Any]] = resp.json()["windows"]
    return windows


def wait_for_labels(monitor: str, model: str, version: str | None = None, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The windows once every joined label is in them (none waits for a refresh)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        windows = performance(monitor, model, version)
        if windows and not any(w["pending_refresh"] for w in windows) and windows[-1]["n_labelled"] >= windows[-1]["n_records"]:
            return windows
        time.sleep(0.5)
    raise RuntimeError(f"the monitor did not judge the labelled windows within {timeout:.0f}s")


def _value(result: dict[str, Any], kind: str) -> float | None:
    values = result.get(kind) or {}
    v = values.get(result["metric"])
    return None if v is None else float(v)


def print_performance(console: OutputConsole, before: list[dict[str, Any]], after: list[dict[str, Any]], drifted_from: int,
                      *, alert: PerformanceAlert) -> None:
    """The per-window table (estimate as computed before labels, realized after) and what it shows."""
    if not after:
        console.print("[yellow]no window's performance was evaluated[/]")
        return
    metric = after[-1]["result"]["metric"]
    reference = after[-1]["result"]["reference"].get(metric)
    table = Table(title=f"{metric} per window: estimated before labels, realized after", title_justify="left")
    for col in ("#", "records", "estimated (95% band)", "realized", "labelled"):
        table.add_column(col)
    for i, w in enumerate(after, 1):
        r = w["result"]
        est, real = _value(r, "estimated"), _value(r, "realized")
        band = r.get("band")
        est_cell = "—" if est is None else f"{est:.3f}" + (f" ({band[0]:.2f}–{band[1]:.2f})" if band else "")
        if r.get("estimated_degraded"):
            est_cell = f"[red]{est_cell} ↓[/]"
        real_cell = "—" if real is None else f"{real:.3f}"
        if r.get("realized_degraded"):
            real_cell = f"[red]{real_cell} ↓[/]"
        table.add_row(str(i), f"{w['first_rec']}–{w['window_id']}", est_cell, real_cell, f"{w['n_labelled']}/{w['n_records']}")
    console.print(table)
    if reference is not None:
        console.print(f"reference {metric}: {reference:.3f}; ↓ marks a window below its threshold "
                      "(a drop that unchanged data shows in at most 1% of windows)")
    first_estimated = next(((i, w) for i, w in enumerate(before, 1) if w["result"].get("estimated_degraded")), None)
    if first_estimated is not None:
        i, w = first_estimated
        unlabelled = w["window_id"] > drifted_from and w["n_labelled"] < w["n_records"]
        console.print(f"estimated {metric} fell to {_value(w['result'], 'estimated'):.3f} in window {i}"
                      + (" before any label of its drifted records had arrived" if unlabelled else ""))
    first_realized = next(((i, w) for i, w in enumerate(after, 1) if w["result"].get("realized_degraded")), None)
    if first_realized is not None:
        i, w = first_realized
        console.print(f"realized {metric} confirms it once the labels landed: {_value(w['result'], 'realized'):.3f} "
                      f"in window {i} ({w['n_labelled']} labels)")
    latest = after[-1]["result"]
    for kind, severity in (("estimated", alert.estimated_severity), ("realized", alert.realized_severity)):
        if alert.enabled and latest.get(f"{kind}_degraded"):
            bound = latest.get(f"threshold_{kind}")
            console.print(f"alert [bold]DriftwatchPerformanceDegraded[/] ({severity}) would fire after {format_duration(alert.for_)}: "
                          f"{kind} {metric} {_value(latest, kind):.3f}" + (f" below {bound:.3f}" if bound is not None else ""))
