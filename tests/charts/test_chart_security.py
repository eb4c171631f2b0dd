"""Who the chart lets in and whose rights it grants: the NetworkPolicy in front of the monitor and the
RBAC subjects, rendered by real helm for several value combinations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import by_kind, one
from conftest import CHART, Render

BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")

RBAC_COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cluster-wide": {"rbac": {"clusterWide": True}},
    "namespaces": {"rbac": {"namespaces": ["ml", "serving"]}},
    "cluster-wide-named-sa": {"rbac": {"clusterWide": True}, "serviceAccount": {"name": "dw-monitor"}},
    "own-sa-not-created": {"rbac": {"clusterWide": True}, "serviceAccount": {"create": False, "name": "team-sa"}},
    "namespaced-own-sa-not-created": {"rbac": {"namespaces": ["ml"]}, "serviceAccount": {"create": False, "name": "team-sa"}},
    # No Role to bind: nothing is granted, so nothing is refused either.
    "nothing-granted-default-sa": {"rbac": {"namespacesFromConfig": False}, "serviceAccount": {"create": False}},
}


def subjects(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for kind in BINDING_KINDS for b in by_kind(objs, kind) for s in b["subjects"]]


@pytest.mark.parametrize("name", list(RBAC_COMBINATIONS))
def test_no_binding_ever_names_the_default_service_account(render: Render, name: str) -> None:
    objs = render(RBAC_COMBINATIONS[name])
    for subject in subjects(objs):
        assert subject["name"] != "default", f"{name}: {subject}"


@pytest.mark.parametrize("name", [n for n in RBAC_COMBINATIONS if n != "nothing-granted-default-sa"])
def test_every_binding_names_the_pod_service_account(render: Render, name: str) -> None:
    objs = render(RBAC_COMBINATIONS[name])
    pod_sa = one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    expected = {"kind": "ServiceAccount", "name": pod_sa, "namespace": "driftwatch"}
    assert subjects(objs)
    for subject in subjects(objs):
        assert subject == expected


def test_cluster_wide_binds_the_service_account_the_chart_creates(render: Render) -> None:
    objs = render({"rbac": {"clusterWide": True}})
    created = one(objs, "ServiceAccount")["metadata"]["name"]
    (subject,) = one(objs, "ClusterRoleBinding")["subjects"]
    assert subject["name"] == created


@pytest.mark.parametrize(
    ("values", "detail"),
    [
        ({"rbac": {"clusterWide": True}, "serviceAccount": {"create": False}}, "in every namespace: rbac.clusterWide=true"),
        ({"rbac": {"clusterWide": True}, "serviceAccount": {"create": False, "name": "default"}}, "serviceAccount.name=\"default\""),
        ({"rbac": {"clusterWide": True}, "serviceAccount": {"create": True, "name": "default"}}, "serviceAccount.create=true"),
        ({"serviceAccount": {"create": False}}, "serviceAccount.create=false"),
    ],
    ids=["cluster-wide-no-name", "cluster-wide-named-default", "created-as-default", "namespaced-roles"],
)
def test_binding_the_default_service_account_fails_the_render(helm, tmp_path: Path, values: dict[str, Any], detail: str) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm("template", "dw", str(CHART), "--namespace", "driftwatch", "--values", str(values_file), check=False)
    assert proc.returncode != 0, "rendered a binding to the default ServiceAccount"
    assert "it would be the namespace's `default` one" in proc.stderr
    assert detail in proc.stderr
    assert "Give the monitor its own ServiceAccount" in proc.stderr
