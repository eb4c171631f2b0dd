"""Generate the Helm chart's derived files from one driftwatch config.

Helm cannot run Python, so the rules and dashboards the chart ships (charts/driftwatch/files/) are
produced here by the same code as `driftwatch alerts` / `driftwatch dashboards`, from the config the
chart's default values embed. A test regenerates everything and fails when the committed chart is
stale. For a custom config, `--values-out` writes a values overlay carrying the config, its rules and
its dashboards, so the chart needs no vendoring.

    python -m monitor.chartgen                                  # refresh charts/driftwatch from examples/config.yaml
    python -m monitor.chartgen --config my.yaml --values-out my-values.yaml
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from monitor.config import ConfigError, load_config, parse_config

__all__ = [
    "generated_files",
    "incluster_config",
    "render_values",
    "values_overlay",
    "values_table",
    "write_chart_files",
]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "examples" / "config.yaml"
DEFAULT_CHART = REPO / "charts" / "driftwatch"
REFERENCE_MOUNT = "/etc/driftwatch/reference"
"""Must equal `reference.mountPath` in the chart's values.yaml (a test checks it)."""
PUBLIC_URL_PLACEHOLDER = "http://driftwatch-public-url.invalid"
"""Stands for `server.public_url` in generated report links; the chart's templates replace it with
the release's URL (`config.server.public_url`, else the Service's), unknown until install time."""

_CONFIG_KEY = re.compile(r"^config:.*$", re.MULTILINE)
_TABLE_START = "<!-- values-table:start -->"
_TABLE_END = "<!-- values-table:end -->"


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)


def incluster_config(config_path: Path, reference_mount: str = REFERENCE_MOUNT) -> tuple[dict[str, Any], list[Path]]:
    """The config as the chart embeds it, and the reference files it needs mounted.

    Works on the raw YAML (durations stay `15m`, not 900.0) after validating it, moves the reference
    datasets under the mount and drops `server.public_url`: a local URL means nothing in the
    cluster, and the chart fills in the server fields it owns.
    """
    typed = load_config(config_path)
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    sources: list[Path] = []
    for raw_model, model in zip(raw["models"], typed.models, strict=True):
        src = model.reference.path
        if src.name in {p.name for p in sources if p.resolve() != src.resolve()}:  # one file shared by models is fine
            raise ConfigError([(f"models[{model.name}].reference.path", f"two reference files are named {src.name}")])
        if all(p.resolve() != src.resolve() for p in sources):
            sources.append(src)
        raw_model["reference"]["path"] = f"{reference_mount.rstrip('/')}/{src.name}"
    (raw.get("server") or {}).pop("public_url", None)
    return raw, sources


def generated_files(config: dict[str, Any]) -> dict[str, str]:
    """Chart-relative path → text of every file generated from `config` (rules and dashboards)."""
    from alerts.rules import groups
    from dashboards import generate
    from dashboards.grafana import dumps

    typed = parse_config(config, "chart config")
    if not typed.server.public_url:
        typed = typed.model_copy(update={"server": typed.server.model_copy(update={"public_url": PUBLIC_URL_PLACEHOLDER})})
    files = {"files/rules.yaml": _dump(groups(typed))}
    for name, dashboard in sorted(generate(typed).items()):
        files[f"files/dashboards/{name}"] = dumps(dashboard)
    return files


def render_values(values_text: str, config: dict[str, Any]) -> str:
    """values.yaml with its last key, `config:`, replaced by `config` (comments above it kept)."""
    match = _CONFIG_KEY.search(values_text)
    if match is None:
        raise ValueError("values.yaml has no top-level `config:` key")
    body = "".join(f"  {line}\n" if line else "\n" for line in _dump(config).splitlines())
    return values_text[: match.start()] + "config:\n" + body


def values_table(values_text: str) -> str:
    """Markdown table of every `# -- `-documented key (helm-docs conventions, `# @default --` too)."""
    data = yaml.safe_load(values_text)
    rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    stack: list[tuple[int, str]] = []
    doc: list[str] = []
    default_note: str | None = None
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# -- "):
            doc, default_note = [stripped[5:]], None
            continue
        if stripped.startswith("# @default -- "):
            default_note = stripped[14:]
            continue
        if stripped.startswith("#") or not stripped or stripped.startswith("- "):
            continue
        key_match = re.match(r"^( *)([A-Za-z0-9_.\-]+):", line)
        if key_match is None:
            continue
        indent = len(key_match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key_match.group(2)))
        if doc:
            path = [k for _, k in stack]
            value: Any = data
            for k in path:
                value = value[k]
            shown = default_note if default_note is not None else f"`{json.dumps(value)}`"
            text = " ".join(doc).replace("|", r"\|")
            rows.append(f"| {'.'.join(path)} | {_type_name(value)} | {shown} | {text} |")
            doc, default_note = [], None
    return "\n".join(rows) + "\n"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string"


def render_readme(readme_text: str, values_text: str) -> str:
    """The chart README with its values table (between the marker comments) regenerated."""
    start, end = readme_text.index(_TABLE_START) + len(_TABLE_START), readme_text.index(_TABLE_END)
    return readme_text[:start] + "\n" + values_table(values_text) + readme_text[end:]


def chart_outputs(config_path: Path, chart_dir: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """What the chart should contain: generated texts by relative path, and reference files to copy."""
    config, references = incluster_config(config_path)
    texts = generated_files(config)
    values = render_values((chart_dir / "values.yaml").read_text(encoding="utf-8"), config)
    texts["values.yaml"] = values
    texts["README.md"] = render_readme((chart_dir / "README.md").read_text(encoding="utf-8"), values)
    copies = {f"files/reference/{src.name}": src for src in references}
    return texts, copies


def write_chart_files(config_path: str | Path, chart_dir: str | Path = DEFAULT_CHART) -> list[Path]:
    """Regenerate the chart's derived files from `config_path`; stale generated files are removed."""
    chart = Path(chart_dir)
    texts, copies = chart_outputs(Path(config_path), chart)
    for folder in ("files/dashboards", "files/reference"):
        for old in (chart / folder).glob("*"):
            if old.relative_to(chart).as_posix() not in texts and old.relative_to(chart).as_posix() not in copies:
                old.unlink()
    written = []
    for rel, text in texts.items():
        target = chart / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    for rel, src in copies.items():
        target = chart / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        written.append(target)
    return sorted(written)


def values_overlay(config_path: str | Path) -> dict[str, Any]:
    """A values file installing the chart with your own config, with rules and dashboards to match.

    Reference paths are left as written: mount your data with `reference.volume` and use absolute paths.
    """
    load_config(config_path)  # validate first, with path-precise errors
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    files = generated_files(config)
    rules = yaml.safe_load(files.pop("files/rules.yaml"))
    return {
        "config": config,
        "reference": {"bundled": False},
        "prometheusRule": {"groups": rules["groups"]},
        "dashboards": {"json": {Path(rel).name: text for rel, text in files.items()}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.chartgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="driftwatch config (default: examples/config.yaml)")
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART, help="chart folder to refresh (default: charts/driftwatch)")
    parser.add_argument("--values-out", type=Path, help="write a values overlay for --config instead of refreshing the chart")
    args = parser.parse_args(argv)
    try:
        if args.values_out:
            args.values_out.write_text(_dump(values_overlay(args.config)), encoding="utf-8")
            print(f"wrote {args.values_out}")
        else:
            for path in write_chart_files(args.config, args.chart):
                print(f"wrote {path}")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
