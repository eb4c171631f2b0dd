"""Grafana dashboards generated from the driftwatch config, like a monitoring mixin.

`generate(config)` gives every dashboard's JSON model by filename; `configmaps(config, ...)` wraps
them for the Grafana sidecar; `write(...)` puts either on disk. Output is deterministic so a
regeneration diff is empty unless the config changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dashboards import overview, per_model
from dashboards.configmaps import SidecarConvention
from dashboards.configmaps import build as _build_configmaps
from dashboards.grafana import dumps
from monitor.core.config import Config

__all__ = ["SidecarConvention", "configmaps", "generate", "write"]

CONFIGMAPS_FILE = "configmaps.yaml"


def generate(config: Config) -> dict[str, dict[str, Any]]:
    """Filename -> dashboard JSON model: the overview and one dashboard per configured model."""
    out = {"driftwatch-overview.json": overview.build(config)}
    for model in config.models:
        out[f"driftwatch-model-{model.slug}.json"] = per_model.build(config, model, overview.UID)
    return out


def configmaps(config: Config, convention: SidecarConvention | None = None) -> list[dict[str, Any]]:
    """The dashboards as ConfigMaps labelled for the Grafana sidecar."""
    return _build_configmaps(generate(config), convention or SidecarConvention())


def write(config: Config, out_dir: Path, convention: SidecarConvention | None = None) -> list[Path]:
    """Write the dashboards (and, given a sidecar convention, `configmaps.yaml`); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    boards = generate(config)
    written = []
    for filename, model in sorted(boards.items()):
        path = out_dir / filename
        path.write_text(dumps(model), encoding="utf-8")
        written.append(path)
    if convention is not None:
        path = out_dir / CONFIGMAPS_FILE
        docs = _build_configmaps(boards, convention)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=True, width=1_000_000), encoding="utf-8")
        written.append(path)
    return written
