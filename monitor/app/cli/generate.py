"""Commands that generate files from the config: dashboards, alerts, inject."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

if TYPE_CHECKING:

    pass


from monitor.app.cli.base import app, console, err_console, fail, load_config_or_exit


def write_files_or_exit(generate: Callable[[], list[Path]], out: Path) -> None:
    """Run a generator that writes files under `out` and list them; a rejected option (ValueError)
    or an unwritable `out` is a user error (exit 2), not a traceback."""
    try:
        paths = generate()
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")
    for path in paths:
        console.print(f"wrote {escape(str(path))}", highlight=False)


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

    def generate() -> list[Path]:
        # Validated even without --configmaps: a bad flag is an error whichever flags come with it.
        convention = SidecarConvention(label_key, label_value, folder_annotation_key, folder, namespace)
        return write(cfg, out, convention if configmaps else None)

    write_files_or_exit(generate, out)


@app.command("alerts")
def alerts_cmd(
    config: Annotated[Path, typer.Option("--config", help="The YAML config.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for rules.yaml, rules.test.yaml and alertmanager-inhibit.yaml (created if missing).")],
    crd: Annotated[bool, typer.Option("--crd", help="Also write prometheusrule.yaml (Prometheus Operator).")] = False,
    name: Annotated[str, typer.Option(help="metadata.name of the PrometheusRule.")] = "driftwatch",
    namespace: Annotated[str, typer.Option(help="metadata.namespace of the PrometheusRule.")] = "monitoring",
    label: Annotated[list[str] | None, typer.Option(help="KEY=VALUE label of the PrometheusRule, repeatable (e.g. release=kube-prometheus-stack).")] = None,
) -> None:
    """Prometheus alert rules, their promtool unit tests, Alertmanager inhibit rules and optionally a PrometheusRule, from the config."""
    cfg = load_config_or_exit(config)
    from alerts import write

    labels: dict[str, str] = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--label expects KEY=VALUE, got {item!r}")
        labels[key] = value
    write_files_or_exit(lambda: write(cfg, out, {"name": name, "namespace": namespace, "labels": labels} if crd else None), out)


@app.command()
def inject(
    monitor: Annotated[str, typer.Option(help="The monitor's URL as seen from the model pod, e.g. http://driftwatch.driftwatch.svc:8080.")],
    model: Annotated[str | None, typer.Option(help="Model name in the config (required for a Deployment; an InferenceService uses its own name).")] = None,
    image: Annotated[str | None, typer.Option(help="Sidecar image (default: ghcr.io/driftwatch/driftwatch:<this version>).")] = None,
    upstream_port: Annotated[int | None, typer.Option(help="The model server's port (default: the first container's first TCP port).")] = None,
    port: Annotated[int, typer.Option(help="Port the sidecar listens on (named driftwatch-capture).")] = 8081,
    token_secret: Annotated[str | None, typer.Option(help="Secret with the monitor's bearer token (key: --token-key), mounted as a file and passed as --token-file: a rotated Secret is picked up without a restart.")] = None,
    token_key: Annotated[str, typer.Option(help="Key of the token in --token-secret.")] = "token",
    name: Annotated[str | None, typer.Option(help="Only the object with this metadata.name (when the input holds several).")] = None,
    version_label: Annotated[str | None, typer.Option(help="Pod label holding the model version (e.g. app.kubernetes.io/version): "
                                                      "stamped on every captured event (docs/versions.md).")] = None,
) -> None:
    """Add driftwatch to a Deployment (capture sidecar) or KServe InferenceService (logger): YAML stdin → stdout."""
    from monitor.app.inject import DEFAULT_IMAGE, MAX_INPUT_BYTES, InjectError, InjectOptions
    from monitor.app.inject import inject as run_inject

    try:
        opts = InjectOptions(
            monitor=monitor, model=model, image=image or DEFAULT_IMAGE, upstream_port=upstream_port,
            port=port, token_secret=token_secret, token_key=token_key, name=name, version_label=version_label,
        )
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            fail(f"input is not UTF-8 text (byte {exc.start})")
        result = run_inject(text, opts)
    except InjectError as exc:
        fail(str(exc))
    sys.stdout.write(result.text)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
