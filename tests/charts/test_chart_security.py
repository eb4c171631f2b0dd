"""Who the chart lets in and whose rights it grants: the NetworkPolicy in front of the monitor and the
RBAC subjects, rendered by real helm for several value combinations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import by_kind, one, validate
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


# --- NetworkPolicy -------------------------------------------------------------------------------

MODELS_PEER = {"namespaceSelector": {"matchLabels": {"driftwatch.io/monitored": "true"}}, "podSelector": {}}
PROMETHEUS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
ALERTMANAGER_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}},
}
HTTP_ONLY = [{"port": 8080, "protocol": "TCP"}]
API_CIDRS = ["10.0.0.10/32", "10.0.0.11/32"]

NETPOL_COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "custom-sources": {
        "networkPolicy": {
            # Helm merges maps into the defaults: `matchLabels: null` drops the default label.
            "models": {"namespaceSelector": {"matchLabels": None, "matchExpressions": [{"key": "team", "operator": "In", "values": ["ml"]}]},
                       "podSelector": {"matchLabels": {"driftwatch.io/capture": "true"}}},
            "prometheus": {"enabled": True, "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prom"}},
                           "podSelector": {"matchLabels": {"app.kubernetes.io/name": None, "app": "prometheus"}}},
            "alertmanager": {"enabled": False, "namespaceSelector": {}, "podSelector": {}},
            "extraIngress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
                              "ports": [{"port": 8080, "protocol": "TCP"}]}],
        }
    },
    "egress-restricted": {
        "networkPolicy": {"egress": {"restrict": True, "apiServer": {"cidrs": API_CIDRS},
                                     "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}], "ports": [{"port": 5432}]}]}}
    },
    "disabled": {"networkPolicy": {"enabled": False}},
}


def network_policy(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objs, "NetworkPolicy")["spec"]


@pytest.mark.parametrize("name", list(NETPOL_COMBINATIONS))
def test_network_policy_combinations_lint_strict_and_validate(name: str, render: Render, helm, tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(NETPOL_COMBINATIONS[name]))
    lint = helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert "0 chart(s) failed" in lint.stdout
    for policy in by_kind(render(NETPOL_COMBINATIONS[name]), "NetworkPolicy"):
        validate(policy)


def test_network_policy_is_on_by_default(render: Render) -> None:
    policy = one(render(), "NetworkPolicy")
    assert policy["apiVersion"] == "networking.k8s.io/v1"


def test_network_policy_selects_the_monitor_pods(render: Render) -> None:
    objs = render()
    deployment = one(objs, "Deployment")["spec"]
    assert network_policy(objs)["podSelector"] == deployment["selector"]


def test_network_policy_leaves_egress_open_by_default(render: Render) -> None:
    assert network_policy(render())["policyTypes"] == ["Ingress"]


def test_network_policy_has_one_ingress_rule_by_default(render: Render) -> None:
    assert len(network_policy(render())["ingress"]) == 1


def test_network_policy_admits_only_the_http_port(render: Render) -> None:
    objs = render()
    (rule,) = network_policy(objs)["ingress"]
    assert rule["ports"] == HTTP_ONLY


def test_network_policy_port_is_the_monitor_container_port(render: Render) -> None:
    objs = render()
    container = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    http = next(p for p in container["ports"] if p["name"] == "http")
    (rule,) = network_policy(objs)["ingress"]
    assert [p["port"] for p in rule["ports"]] == [http["containerPort"]]


def test_network_policy_admits_exactly_models_prometheus_and_alertmanager_by_default(render: Render) -> None:
    (rule,) = network_policy(render())["ingress"]
    assert rule["from"] == [MODELS_PEER, PROMETHEUS_PEER, ALERTMANAGER_PEER]


def test_network_policy_admits_exactly_the_configured_sources(render: Render) -> None:
    values = NETPOL_COMBINATIONS["custom-sources"]["networkPolicy"]
    first, extra = network_policy(render(NETPOL_COMBINATIONS["custom-sources"]))["ingress"]
    assert first["from"] == [
        {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["ml"]}]},
         "podSelector": {"matchLabels": {"driftwatch.io/capture": "true"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prom"}},
         "podSelector": {"matchLabels": {"app": "prometheus"}}},
    ]
    assert first["ports"] == HTTP_ONLY
    assert extra == values["extraIngress"][0]


def test_network_policy_without_prometheus_and_alertmanager_admits_model_traffic_only(render: Render) -> None:
    off = {"enabled": False, "namespaceSelector": {}, "podSelector": {}}
    (rule,) = network_policy(render({"networkPolicy": {"prometheus": off, "alertmanager": off}}))["ingress"]
    assert rule["from"] == [MODELS_PEER]


def test_network_policy_can_be_disabled(render: Render) -> None:
    assert not by_kind(render(NETPOL_COMBINATIONS["disabled"]), "NetworkPolicy")


def test_restricted_egress_is_a_policy_type(render: Render) -> None:
    assert network_policy(render(NETPOL_COMBINATIONS["egress-restricted"]))["policyTypes"] == ["Ingress", "Egress"]


def test_restricted_egress_allows_dns_to_the_cluster_dns(render: Render) -> None:
    dns = network_policy(render(NETPOL_COMBINATIONS["egress-restricted"]))["egress"][0]
    assert dns == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }


def test_restricted_egress_allows_the_api_server_endpoints(render: Render) -> None:
    api = network_policy(render(NETPOL_COMBINATIONS["egress-restricted"]))["egress"][1]
    assert api == {"to": [{"ipBlock": {"cidr": c}} for c in API_CIDRS],
                   "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}


def test_restricted_egress_appends_the_extra_rules(render: Render) -> None:
    values = NETPOL_COMBINATIONS["egress-restricted"]
    assert network_policy(render(values))["egress"][2:] == values["networkPolicy"]["egress"]["extraEgress"]


def test_restricted_egress_without_api_addresses_needs_no_api_rule_when_nothing_calls_it(render: Render) -> None:
    values = {"rbac": {"namespacesFromConfig": False}, "networkPolicy": {"egress": {"restrict": True}}}
    assert len(network_policy(render(values))["egress"]) == 1  # DNS only


def test_restricted_egress_without_api_addresses_fails_when_the_monitor_calls_the_api(helm, tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"networkPolicy": {"egress": {"restrict": True}}}))
    proc = helm("template", "dw", str(CHART), "--values", str(values_file), check=False)
    assert proc.returncode != 0, "rendered a policy that cuts the monitor off the Kubernetes API"
    assert "networkPolicy.egress.apiServer.cidrs is empty" in proc.stderr


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"networkPolicy": {"models": {"namespaceSelector": {"matchLabel": {"a": "b"}}}}}, "/networkPolicy/models/namespaceSelector"),
        ({"networkPolicy": {"prometheus": {"enabled": "yes"}}}, "/networkPolicy/prometheus/enabled"),
        ({"networkPolicy": {"egress": {"apiServer": {"cidrs": ["10.0.0.1"]}}}}, "/networkPolicy/egress/apiServer/cidrs"),
    ],
    ids=["selector-typo", "enabled-string", "cidr-without-prefix"],
)
def test_schema_rejects_bad_network_policy_values(helm, tmp_path: Path, values: dict[str, Any], field: str) -> None:
    values_file = tmp_path / "bad.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm("template", "dw", str(CHART), "--values", str(values_file), check=False)
    assert proc.returncode != 0, proc.stderr
    assert field in proc.stderr, proc.stderr


def test_install_notes_say_how_to_label_model_namespaces(helm) -> None:
    proc = helm("install", "dw", str(CHART), "--namespace", "ml", "--dry-run=client")
    assert "kubectl label namespace MODEL-NAMESPACE driftwatch.io/monitored=true" in proc.stdout.split("NOTES:", 1)[1]
