"""`driftwatch reference set|show`: a model's reference as a versioned object on a running monitor
(`PUT`/`GET /v1/models/{model}/reference`, docs/references.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.app.cli.base import _App, _Group, app, console, fail
from monitor.app.cli.http import auth_headers, request

reference_app = _App(name="reference", cls=_Group, help="A model's reference data on a running monitor: set a new one, show the current one.",
                     no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(reference_app, name="reference")

MonitorUrl = Annotated[str, typer.Option(help="The monitor's base URL.")]
Namespace = Annotated[str | None, typer.Option(help="The model's namespace, when models of this name run in several.")]
Version = Annotated[str | None, typer.Option(help="The serving model version the reference is for (default: the model as a whole).")]
TokenEnv = Annotated[str | None, typer.Option(help="Environment variable holding a token (a write token to set).")]
TokenFile = Annotated[Path | None, typer.Option(help="File holding a token (a write token to set).")]


@reference_app.command("set")
def set_reference(
    model: Annotated[str, typer.Argument(help="The model whose reference this is.")],
    file: Annotated[Path | None, typer.Argument(help="CSV or Parquet file (by its suffix) with a column per feature and output.",
                                                exists=True, dir_okay=False)] = None,
    mlflow: Annotated[str | None, typer.Option(help="NAME:VERSION of an MLflow model version whose run logged the reference.")] = None,
    artifact: Annotated[str | None, typer.Option(help="The reference's artifact path in that run (default: the one the model's config names).")] = None,
    monitor: MonitorUrl = "http://127.0.0.1:8080",
    namespace: Namespace = None,
    version: Version = None,
    token_env: TokenEnv = None,
    token_file: TokenFile = None,
) -> None:
    """Make a new reference current: the monitor checks it against the model's columns, profiles it, and judges every window after it against it.

    Sending the same content again changes nothing. Exits 1 when the monitor refuses it (with its reasons, column by column).
    """
    import httpx

    if (file is None) == (mlflow is None):
        fail("give exactly one of FILE and --mlflow NAME:VERSION")
    if mlflow is not None:
        name, _, number = mlflow.rpartition(":")
        if not name or not number.isdigit() or int(number) < 1:
            fail(f"--mlflow {mlflow!r}: expected NAME:VERSION, a registered model's name and a version number")
        source: dict[str, Any] = {"model": name, "version": int(number), **({"artifact": artifact} if artifact else {})}
        body, media = json.dumps({"mlflow": source}).encode(), "application/json"
    else:
        assert file is not None
        if artifact is not None:
            fail("--artifact goes with --mlflow")
        body = file.read_bytes()
        media = "application/vnd.apache.parquet" if file.suffix.lower() in (".parquet", ".pq") else "text/csv"
    params = {k: v for k, v in (("namespace", namespace), ("version", version)) if v is not None}
    with httpx.Client(base_url=monitor.rstrip("/"), timeout=300.0) as client:
        resp = request(client, "PUT", f"/v1/models/{model}/reference", what="the reference", ok=(200, 201), content=body,
                       params=params, headers={"content-type": media, **auth_headers(token_env, token_file)})
    answer = resp.json()
    ref = answer["reference"]
    if not answer["switched"]:
        console.print(f"{model}: {ref['label']} is already current (same content, sha256 {ref['sha256'][:12]}); nothing changed")
    else:
        stored = "stored" if answer["created"] else "stored before"
        when = f" for version {version}, used when it serves" if version else "; windows from now on are judged against it"
        console.print(f"{model}: {ref['label']} ({stored}, {ref['rows']} rows, sha256 {ref['sha256'][:12]}) is current{when}")


@reference_app.command("show")
def show_reference(
    model: Annotated[str, typer.Argument(help="The model.")],
    monitor: MonitorUrl = "http://127.0.0.1:8080",
    namespace: Namespace = None,
    version: Version = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the monitor's answer as JSON.")] = False,
    token_env: TokenEnv = None,
    token_file: TokenFile = None,
) -> None:
    """Show the reference the model's windows are judged against now."""
    import httpx

    params = {k: v for k, v in (("namespace", namespace), ("version", version)) if v is not None}
    with httpx.Client(base_url=monitor.rstrip("/"), timeout=60.0) as client:
        resp = request(client, "GET", f"/v1/models/{model}/reference", what="the request", params=params,
                       headers=auth_headers(token_env, token_file))
    answer = resp.json()
    if as_json:
        console.print_json(data=answer)
        return
    ref = answer["reference"]
    if ref["id"] is None:
        console.print(f"{model}: judged against {ref['label']}")
        return
    console.print(f"{model}: judged against {ref['label']}: {ref['origin']}, {ref['rows']} rows, sha256 {ref['sha256'][:12]}, "
                  f"from record {ref['from_record']} on")
