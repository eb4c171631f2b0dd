"""The `driftwatch` command.

Each command is a thin shell over a module that does the work; heavy imports (evidently, pandas,
uvicorn) happen inside the command so `driftwatch --help` stays instant. User errors print one clear
message and exit 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    name="driftwatch",
    help="Drift monitoring for ML models on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Drift monitoring for ML models on Kubernetes."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error (no traceback) and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_config_or_exit(path: Path):  # type: ignore[no-untyped-def]
    from monitor.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="The YAML config to validate.")]) -> None:
    """Validate a config file; every error is reported with the path of the bad field."""
    cfg = load_config_or_exit(config)
    problems = []
    for model in cfg.models:
        if not model.reference.path.exists():
            problems.append(f"models[{model.name}].reference.path: file not found: {model.reference.path}")
    if problems:
        fail(f"{config}: {len(problems)} error(s)\n" + "\n".join(f"  {p}" for p in problems))
    n_cols = sum(len(m.columns) for m in cfg.models)
    console.print(f"[green]ok[/] {config}: {len(cfg.models)} model(s), {n_cols} monitored column(s)")


# -- commands added by the other modules register below this line ---------------------------------


@app.command("dashboards")
def dashboards_cmd(
    config: Annotated[Path, typer.Option("--config", help="The YAML config.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the dashboard JSON files (created if missing).")],
    configmaps: Annotated[bool, typer.Option("--configmaps", help="Also write configmaps.yaml for the Grafana sidecar.")] = False,
    label_key: Annotated[str, typer.Option(help="ConfigMap label the Grafana sidecar watches.")] = "grafana_dashboard",
    label_value: Annotated[str, typer.Option(help="Value of that label.")] = "1",
    folder_annotation_key: Annotated[str, typer.Option(help="ConfigMap annotation naming the Grafana folder.")] = "grafana_folder",
    folder: Annotated[str, typer.Option(help="Grafana folder for the dashboards.")] = "Driftwatch",
    namespace: Annotated[str | None, typer.Option(help="Namespace of the ConfigMaps (default: none, use kubectl -n).")] = None,
) -> None:
    """Grafana dashboards (overview and one per model) from the config, optionally as ConfigMaps."""
    cfg = load_config_or_exit(config)
    from dashboards import SidecarConvention, write

    try:
        convention = (
            SidecarConvention(label_key, label_value, folder_annotation_key, folder, namespace) if configmaps else None
        )
        paths = write(cfg, out, convention)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")
    for path in paths:
        console.print(f"wrote {path}", highlight=False)


@app.command("alerts")
def alerts_cmd(
    config: Annotated[Path, typer.Option("--config", help="The YAML config.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for rules.yaml and rules.test.yaml (created if missing).")],
    crd: Annotated[bool, typer.Option("--crd", help="Also write prometheusrule.yaml (Prometheus Operator).")] = False,
    name: Annotated[str, typer.Option(help="metadata.name of the PrometheusRule.")] = "driftwatch",
    namespace: Annotated[str, typer.Option(help="metadata.namespace of the PrometheusRule.")] = "monitoring",
    label: Annotated[list[str] | None, typer.Option(help="KEY=VALUE label of the PrometheusRule, repeatable (e.g. release=kube-prometheus-stack).")] = None,
) -> None:
    """Prometheus alert rules, their promtool unit tests and optionally a PrometheusRule, from the config."""
    cfg = load_config_or_exit(config)
    from alerts import write

    labels: dict[str, str] = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--label expects KEY=VALUE, got {item!r}")
        labels[key] = value
    try:
        paths = write(cfg, out, {"name": name, "namespace": namespace, "labels": labels} if crd else None)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")
    for path in paths:
        console.print(f"wrote {path}", highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
