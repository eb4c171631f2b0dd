"""Assertions shared by the chart and inject tests: objects must be what a cluster would accept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

K8S_VERSION = "1.33"
OPERATOR_SCHEMAS = json.loads((Path(__file__).parent / "prometheus_operator_schemas.json").read_text())


def validate(obj: dict[str, Any]) -> None:
    """Kubernetes objects against the 1.33 schemas (strict); Prometheus Operator CRs against ours."""
    where = f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"
    try:
        if obj.get("apiVersion") in ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1alpha1"):
            jsonschema.validate(obj, OPERATOR_SCHEMAS[obj["kind"]])
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
        pytest.fail(f"{where} is invalid at {'/'.join(map(str, exc.absolute_path)) or '(root)'}: {exc.message}")


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in by_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]
