"""`driftwatch labels upload`: delayed ground truth from a CSV or Parquet file to `POST /v1/labels`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.app.cli.base import _App, _Group, app, console, fail
from monitor.app.cli.http import auth_headers, request

labels_app = _App(name="labels", cls=_Group, help="Delayed ground truth (labels) for models with a `performance` section.",
                  no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(labels_app, name="labels")


@labels_app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file: one row per labelled record.", exists=True, dir_okay=False)],
    model: Annotated[str, typer.Option(help="The model the labels are for.")],
    monitor: Annotated[str, typer.Option(help="The monitor's base URL.")] = "http://127.0.0.1:8080",
    id_column: Annotated[str, typer.Option(help="Column with the captured event's id (x-request-id, ce-id).")] = "id",
    label_column: Annotated[str, typer.Option(help="Column with the true label.")] = "label",
    timestamp_column: Annotated[str | None, typer.Option(help="Column with when the label became known (unix seconds or RFC 3339).")] = None,
    batch: Annotated[int, typer.Option(help="Labels per request (at most 10000).", min=1, max=10_000)] = 5000,
    token_env: Annotated[str | None, typer.Option(help="Environment variable holding a write token.")] = None,
    token_file: Annotated[Path | None, typer.Option(help="File holding a write token.")] = None,
) -> None:
    """Send labels to the monitor, which joins them to their predictions and re-evaluates the windows they belong to.

    Rows sharing an id are the labels of one event's records, in file order (an event of several instances).
    Prints how many labels joined and why the others did not; exits 1 when the monitor refused a batch.
    """
    import httpx
    import pandas as pd

    try:
        frame = pd.read_parquet(file) if file.suffix.lower() in (".parquet", ".pq") else pd.read_csv(file)
    except Exception as exc:
        fail(f"{file}: cannot read it as {'Parquet' if file.suffix.lower() in ('.parquet', '.pq') else 'CSV'}: {exc}")
    missing = [c for c in (id_column, label_column, timestamp_column) if c is not None and c not in frame.columns]
    if missing:
        fail(f"{file}: no column {', '.join(repr(c) for c in missing)} (columns: {', '.join(map(str, frame.columns))})")
    items = _items(frame, id_column, label_column, timestamp_column)
    headers = {"content-type": "application/json", **auth_headers(token_env, token_file)}
    from monitor.capture.labels import encode_labels

    totals: Counter[str] = Counter()
    with httpx.Client(base_url=monitor.rstrip("/"), timeout=60.0) as client:
        for start in range(0, len(items), batch):
            body = encode_labels(model, items[start : start + batch])
            answer = _post(client, body, headers)
            totals.update(answer.get("outcomes", {}))
    _print(totals, len(items))


def _items(frame: Any, id_column: str, label_column: str, timestamp_column: str | None) -> list[dict[str, Any]]:
    """One item per event id: `label`, or `labels` when several rows share the id."""
    import pandas as pd

    grouped: dict[str, dict[str, Any]] = {}
    for row_id, value, stamp in zip(
        frame[id_column].astype(str), frame[label_column],
        frame[timestamp_column] if timestamp_column else [None] * len(frame), strict=True,
    ):
        if pd.isna(value):
            fail(f"label of id {row_id!r} is empty: every row needs a label")
        value = value.item() if hasattr(value, "item") else value
        item = grouped.setdefault(row_id, {"id": row_id, "labels": []})
        item["labels"].append(value)
        if stamp is not None and not pd.isna(stamp):
            item["timestamp"] = stamp.item() if hasattr(stamp, "item") else str(stamp)
    out = []
    for item in grouped.values():
        if len(item["labels"]) == 1:
            item["label"] = item.pop("labels")[0]
        out.append(item)
    return out


def _post(client: Any, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """One batch, retried while the monitor is unavailable (monitor.app.cli.http)."""
    result: dict[str, Any] = request(client, "POST", "/v1/labels", what="the labels", content=body, headers=headers).json()
    return result


def _print(totals: Counter[str], n: int) -> None:
    from rich.table import Table

    table = Table(title=f"{n} labels sent", title_justify="left")
    table.add_column("outcome")
    table.add_column("labels", justify="right")
    for outcome, count in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
        if count:
            table.add_row(outcome, str(count))
    console.print(table)
