"""The chart rendered by real helm: every combination lints, and every object is one a cluster accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import by_kind, one, validate
from conftest import CHART, Render

from alerts.inhibition import alertmanager_config_inhibit_rules
from monitor.app.inject import CAPTURE_LABEL, PORT_NAME, InjectOptions, sidecar_container, sidecar_volumes
from monitor.core.config import parse_config

OPERATOR_V1 = ("--api-versions", "monitoring.coreos.com/v1")
OPERATOR_API = (*OPERATOR_V1, "--api-versions", "monitoring.coreos.com/v1alpha1")
OPERATOR_VALUES = ("serviceMonitor", "podMonitor", "prometheusRule", "alertmanagerConfig")
FORCED_ON = {k: {"enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}} for k in OPERATOR_VALUES}
FORCED_OFF = {k: {"enabled": False} for k in OPERATOR_VALUES}
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "AlertmanagerConfig"}

COMBINATIONS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "defaults": ({}, ()),
    "persistence": ({"persistence": {"enabled": True, "storageClass": "fast", "size": "20Gi"}}, ()),
    "operator-forced-on": (FORCED_ON, ()),
    "operator-forced-off": (FORCED_OFF, OPERATOR_API),
    "operator-auto-available": ({}, OPERATOR_API),
    "existing-secret": ({"auth": {"existingSecret": "team-token", "secretKey": "bearer"}}, ()),
    "namespaces": ({"rbac": {"namespaces": ["ml", "serving"]}}, ()),
    "cluster-wide": ({"rbac": {"clusterWide": True}}, OPERATOR_API),
    "no-auth-existing-claim": ({"auth": {"enabled": False}, "persistence": {"enabled": True, "existingClaim": "old-store"}}, ()),
    "read-token-protected-metrics-tls": (
        {**FORCED_ON, "auth": {"protectMetrics": True, "readToken": {"enabled": True}},
         "tls": {"enabled": True, "existingSecret": "dw-tls", "serviceMonitor": {"ca": {"secret": {"name": "dw-ca", "key": "ca.crt"}}}}},
        (),
    ),
    "protected-metrics-existing-secrets": (
        {"auth": {"existingSecret": "team-token", "secretKey": "bearer", "protectMetrics": True,
                  "readToken": {"enabled": True, "existingSecret": "team-read", "secretKey": "reader"}}},
        OPERATOR_API,
    ),
}


def embedded_config(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(one(objs, "ConfigMap", "dw-driftwatch")["data"]["config.yaml"])


def monitor_container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_every_combination_lints_strict_and_renders_valid_objects(name: str, render: Render, helm, tmp_path: Path) -> None:
    values, flags = COMBINATIONS[name]
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    lint = helm("lint", "--strict", str(CHART), "--values", str(values_file))  # lint has no --api-versions
    assert "0 chart(s) failed" in lint.stdout
    objs = render(values, *flags)
    for obj in objs:
        validate(obj)
    cfg = parse_config(embedded_config(objs), "rendered ConfigMap", base_dir=Path("/etc/driftwatch"))
    assert cfg.server.host == "0.0.0.0"
    assert cfg.server.port == 8080
    # Local retraining logs land on the data volume, not beside the config on its read-only mount.
    data_mount = next(m["mountPath"] for c in one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
                      for m in c["volumeMounts"] if m["name"] == "data")
    for model in cfg.models:
        rc = cfg.retrain_for(model)
        if rc is not None and rc.local is not None:
            assert cfg.local_log_dir(rc.local).is_relative_to(data_mount), model.name


def test_defaults_render_the_monitor_without_operator_objects(render: Render) -> None:
    objs = render()
    kinds = sorted(o["kind"] for o in objs)
    assert not OPERATOR_KINDS & set(kinds), "auto must not render CRs the cluster does not serve"
    assert kinds.count("Deployment") == 1
    assert kinds.count("Service") == 1
    assert kinds.count("Secret") == 1
    rbac = ("Role", "RoleBinding")  # also in `default`, where the example config's model pods run
    assert {o["metadata"]["namespace"] for o in objs if o["kind"] not in rbac} == {"driftwatch"}
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]
    assert not by_kind(objs, "PersistentVolumeClaim")


def test_monitor_pod_is_locked_down_and_probed(render: Render) -> None:
    objs = render()
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    container = monitor_container(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/tmp"] == "tmp"
    assert mounts["/var/lib/driftwatch"] == "data"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["args"][:3] == ["serve", "--config", "/etc/driftwatch/config.yaml"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    service = one(objs, "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= pod_labels(objs).items()


def pod_labels(objs: list[dict[str, Any]]) -> dict[str, str]:
    return one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]


def test_embedded_config_points_the_monitor_at_its_volumes_token_and_service(render: Render) -> None:
    objs = render({"persistence": {"enabled": True, "mountPath": "/data"}})
    raw = embedded_config(objs)
    cfg = parse_config(raw, "rendered ConfigMap")
    assert str(cfg.server.store.path) == "/data/driftwatch.db"
    assert cfg.server.public_url == "http://dw-driftwatch.driftwatch.svc:8080"
    assert cfg.server.auth.token_files == [Path("/etc/driftwatch/auth/write/token")]
    assert monitor_container(objs)["workingDir"] == "/data"
    # The reference datasets the config names are the files the mounted ConfigMap holds.
    mount = next(m for m in monitor_container(objs)["volumeMounts"] if m["name"] == "reference")["mountPath"]
    shipped = one(objs, "ConfigMap", "dw-driftwatch-reference")["data"]
    for model in cfg.models:
        assert model.reference.path.parent == Path(mount)
        header = shipped[model.reference.path.name].splitlines()[0].split(",")
        assert {c.name for c in model.features} <= set(header)


def test_persistence_uses_a_claim_and_recreate(render: Render) -> None:
    objs = render({"persistence": {"enabled": True, "storageClass": "fast", "size": "20Gi"}})
    pvc = one(objs, "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    data = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}}

    existing = render({"persistence": {"enabled": True, "existingClaim": "old-store"}})
    assert not by_kind(existing, "PersistentVolumeClaim")
    data = next(v for v in one(existing, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == "old-store"


@pytest.mark.parametrize(
    ("values", "flags", "expected"),
    [
        ({}, (), set()),
        ({}, OPERATOR_API, OPERATOR_KINDS),
        (FORCED_ON, (), OPERATOR_KINDS),
        (FORCED_OFF, OPERATOR_API, set()),
        ({"podMonitor": {"enabled": False}, "alertmanagerConfig": {"enabled": False}}, OPERATOR_API, {"ServiceMonitor", "PrometheusRule"}),
        ({}, OPERATOR_V1, OPERATOR_KINDS - {"AlertmanagerConfig"}),
    ],
    ids=["auto-unavailable", "auto-available", "forced-on", "forced-off", "mixed", "v1alpha1-unavailable"],
)
def test_operator_objects_follow_enabled_and_capabilities(render: Render, values: dict[str, Any], flags: tuple[str, ...], expected: set[str]) -> None:
    kinds = {o["kind"] for o in render(values, *flags)} & OPERATOR_KINDS
    assert kinds == expected


def test_operator_objects_scrape_what_the_monitor_and_sidecars_serve(render: Render) -> None:
    objs = render(FORCED_ON)
    for kind in OPERATOR_KINDS:
        assert one(objs, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service_monitor = one(objs, "ServiceMonitor")
    service = one(objs, "Service")
    endpoint = service_monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    # The generated alerts match up{job=<job_label>}: the scrape must carry that job name.
    job_label = parse_config(embedded_config(objs)).defaults.alerts.job_label
    assert {"action": "replace", "targetLabel": "job", "replacement": job_label} in endpoint["relabelings"]
    # driftwatch_model_cpu_usage_cores{model,pod} names the model's pod: the monitor pod's target label
    # must not rename it to exported_pod (dashboards sum by (pod)).
    assert endpoint["honorLabels"] is True

    pod_monitor = one(objs, "PodMonitor")
    sidecar = sidecar_container(InjectOptions(monitor="http://m:8080", model="wine"), "wine", 8000)
    endpoint = pod_monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == PORT_NAME == sidecar["ports"][0]["name"]
    assert endpoint["path"] == "/driftwatch/metrics"
    assert endpoint["honorLabels"] is False  # a sidecar's series keep the identity (pod, namespace) of its pod
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {CAPTURE_LABEL[0]: CAPTURE_LABEL[1]}
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}


def test_prometheus_rule_carries_the_generated_rules_with_the_release_url(render: Render) -> None:
    objs = render({**FORCED_ON, "config": {**default_config(), "server": {"public_url": "https://dw.example.com/"}}})
    rule = one(objs, "PrometheusRule")
    shipped = yaml.safe_load((CHART / "files" / "rules.yaml").read_text())
    assert [g["name"] for g in rule["spec"]["groups"]] == [g["name"] for g in shipped["groups"]]
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(alerts) == sum(len(g["rules"]) for g in shipped["groups"]) > 0
    links = [r["annotations"]["report_url"] for r in alerts if "report_url" in r["annotations"]]
    assert links
    assert all(link.startswith("https://dw.example.com/reports/") for link in links)
    assert "invalid" not in yaml.safe_dump(rule)


def test_alertmanager_config_ships_the_inhibition_rules(render: Render) -> None:
    """A critical alert mutes its warning twin in the operator's Alertmanager too (alerts/inhibition.py)."""
    config = one(render({}, *OPERATOR_API), "AlertmanagerConfig")
    assert config["spec"] == {"inhibitRules": alertmanager_config_inhibit_rules()}


def default_config() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())["config"]


WITHOUT_GENERATED: dict[str, Any] = {"dashboards": {"enabled": False}, "prometheusRule": {"enabled": False}}
"""Values for a `config` other than the default: the shipped rules and dashboards refuse to render with it."""


@pytest.mark.parametrize(
    ("values", "flags", "what"),
    [
        ({"config": {"defaults": {"alerts": {"job_label": "dw-monitor"}}}, "dashboards": {"enabled": False}}, OPERATOR_API, "alert rules"),
        ({"config": {"defaults": {"alerts": {"job_label": "dw-monitor"}}}}, (), "dashboards"),
        ({"config": {"models": [{**default_config()["models"][0], "name": "vino"}]}, "prometheusRule": {"enabled": True}}, (), "config.models"),
    ],
    ids=["rules-job-label", "dashboards-job-label", "rules-models"],
)
def test_shipped_rules_and_dashboards_refuse_a_config_they_were_not_generated_from(
    helm, tmp_path: Path, values: dict[str, Any], flags: tuple[str, ...], what: str
) -> None:
    """Rules for job="driftwatch" beside a ServiceMonitor relabelling to dw-monitor: DriftwatchMonitorDown forever."""
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm("template", "dw", str(CHART), "--values", str(values_file), *flags, check=False)
    assert proc.returncode != 0, "rendered rules/dashboards that do not match the config"
    assert what in proc.stderr
    assert "python -m monitor.app.chartgen --config my-config.yaml --values-out my-values.yaml" in proc.stderr


def test_server_settings_and_the_public_url_keep_the_shipped_files(render: Render) -> None:
    # Generators read nothing from `server` but public_url, which the templates fill in.
    server = {"public_url": "https://dw.example.com", "evaluation_interval": "10s", "store": {"max_age": "3d"}}
    objs = render({**FORCED_ON, "config": {"server": server}})
    assert one(objs, "PrometheusRule")
    assert [o for o in by_kind(objs, "ConfigMap") if "grafana_dashboard" in o["metadata"]["labels"]]


def mounted_secret_file(objs: list[dict[str, Any]], path: Path) -> tuple[str, str]:
    """(Secret name, key) whose mounted file is `path` in the monitor container: a whole-Secret volume
    mounted without subPath (the kubelet never refreshes a subPath mount, so rotation would need a restart)."""
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in monitor_container(objs)["volumeMounts"] if path.parent == Path(m["mountPath"])]
    assert "subPath" not in mount
    return volumes[mount["name"]]["secret"]["secretName"], path.name


def test_the_token_secret_is_mounted_where_the_config_reads_it(render: Render) -> None:
    objs = render()
    (token_file,) = parse_config(embedded_config(objs)).server.auth.token_files
    assert mounted_secret_file(objs, token_file) == ("dw-driftwatch", "token")


def test_the_monitor_reads_no_token_from_the_environment(render: Render) -> None:
    objs = render()
    assert parse_config(embedded_config(objs)).server.auth_token_env is None
    assert all(e["name"] != "DRIFTWATCH_TOKEN" for e in monitor_container(objs)["env"])


def test_existing_secret_replaces_ours(render: Render) -> None:
    objs = render({"auth": {"existingSecret": "team-token", "secretKey": "bearer"}})
    assert not by_kind(objs, "Secret")
    (token_file,) = parse_config(embedded_config(objs)).server.auth.token_files
    assert mounted_secret_file(objs, token_file) == ("team-token", "bearer")


def test_given_token_is_stored(render: Render) -> None:
    secret = one(render({"auth": {"token": "s3cret-one"}}), "Secret")
    assert secret["data"]["token"] == "czNjcmV0LW9uZQ=="  # base64("s3cret-one")


def test_a_new_token_does_not_roll_the_pod(render: Render) -> None:
    """The monitor re-reads the mounted file: rotating must not restart it (and drop in-flight windows)."""
    templates = [one(render({"auth": {"token": t}}), "Deployment")["spec"]["template"] for t in ("s3cret-one", "s3cret-two")]
    assert templates[0] == templates[1]


def test_read_tokens_come_from_their_own_mounted_secret(render: Render) -> None:
    objs = render({"auth": {"readToken": {"enabled": True, "token": "r3ader"}}})
    (read_file,) = parse_config(embedded_config(objs)).server.auth.read_token_files
    assert mounted_secret_file(objs, read_file) == ("dw-driftwatch-read", "token")
    assert one(objs, "Secret", "dw-driftwatch-read")["data"]["token"] == "cjNhZGVy"  # base64("r3ader")


def test_read_tokens_are_off_by_default(render: Render) -> None:
    assert parse_config(embedded_config(render())).server.auth.read_token_files == []


def test_without_auth_there_is_no_secret_and_no_token(render: Render) -> None:
    objs = render({"auth": {"enabled": False, "readToken": {"enabled": True}, "protectMetrics": True}})
    assert not by_kind(objs, "Secret")
    assert not [v for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    cfg = parse_config(embedded_config(objs))
    assert cfg.server.auth_token_env is None
    assert cfg.server.auth.token_files == []
    assert cfg.server.auth.protect_metrics is False


# --- /metrics protection and TLS ------------------------------------------------------------------

def service_monitor_endpoint(objs: list[dict[str, Any]]) -> dict[str, Any]:
    service_monitor = one(objs, "ServiceMonitor")
    validate(service_monitor)
    (endpoint,) = service_monitor["spec"]["endpoints"]
    return endpoint


def test_metrics_are_open_by_default(render: Render) -> None:
    objs = render(FORCED_ON)
    assert parse_config(embedded_config(objs)).server.auth.protect_metrics is False
    assert "authorization" not in service_monitor_endpoint(objs)


def test_protected_metrics_are_set_in_the_config(render: Render) -> None:
    objs = render({**FORCED_ON, "auth": {"protectMetrics": True}})
    assert parse_config(embedded_config(objs)).server.auth.protect_metrics is True


def test_protected_metrics_scrape_with_the_write_token_without_a_read_token(render: Render) -> None:
    objs = render({**FORCED_ON, "auth": {"protectMetrics": True}})
    credentials = {"name": "dw-driftwatch", "key": "token"}
    assert service_monitor_endpoint(objs)["authorization"] == {"type": "Bearer", "credentials": credentials}


def test_protected_metrics_scrape_with_the_read_token(render: Render) -> None:
    objs = render({**FORCED_ON, "auth": {"protectMetrics": True, "readToken": {"enabled": True, "existingSecret": "ro", "secretKey": "k"}}})
    assert service_monitor_endpoint(objs)["authorization"] == {"type": "Bearer", "credentials": {"name": "ro", "key": "k"}}


def test_the_scrape_credential_is_a_token_the_monitor_accepts(render: Render) -> None:
    objs = render({**FORCED_ON, "auth": {"protectMetrics": True, "readToken": {"enabled": True}}})
    credentials = service_monitor_endpoint(objs)["authorization"]["credentials"]
    (read_file,) = parse_config(embedded_config(objs)).server.auth.read_token_files
    assert mounted_secret_file(objs, read_file) == (credentials["name"], credentials["key"])


TLS = {"tls": {"enabled": True, "existingSecret": "dw-tls"}}


def test_tls_serves_the_mounted_certificate(render: Render) -> None:
    objs = render(TLS)
    tls = parse_config(embedded_config(objs)).server.tls
    assert tls is not None
    assert mounted_secret_file(objs, tls.cert_file) == ("dw-tls", "tls.crt")
    assert mounted_secret_file(objs, tls.key_file) == ("dw-tls", "tls.key")


@pytest.mark.parametrize("probe", ["startupProbe", "livenessProbe", "readinessProbe"])
def test_tls_probes_use_https(render: Render, probe: str) -> None:
    assert monitor_container(render(TLS))[probe]["httpGet"]["scheme"] == "HTTPS"


def test_without_tls_probes_use_http(render: Render) -> None:
    assert "scheme" not in monitor_container(render())["readinessProbe"]["httpGet"]


def test_tls_service_monitor_scrapes_https(render: Render) -> None:
    assert service_monitor_endpoint(render({**FORCED_ON, **TLS}))["scheme"] == "https"


def test_tls_service_monitor_verifies_the_service_name(render: Render) -> None:
    tls_config = service_monitor_endpoint(render({**FORCED_ON, **TLS}))["tlsConfig"]
    assert tls_config == {"serverName": "dw-driftwatch.driftwatch.svc", "insecureSkipVerify": False}


def test_tls_service_monitor_takes_the_ca(render: Render) -> None:
    ca = {"secret": {"name": "dw-ca", "key": "ca.crt"}}
    objs = render({**FORCED_ON, "tls": {**TLS["tls"], "serviceMonitor": {"ca": ca}}})
    assert service_monitor_endpoint(objs)["tlsConfig"]["ca"] == ca


def test_tls_urls_are_https(render: Render) -> None:
    assert parse_config(embedded_config(render(TLS))).server.public_url == "https://dw-driftwatch.driftwatch.svc:8080"


def test_tls_without_a_secret_fails_the_render(helm, tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"tls": {"enabled": True}}))
    proc = helm("template", "dw", str(CHART), "--values", str(values_file), check=False)
    assert "/tls/existingSecret" in proc.stderr


def test_config_changes_roll_the_pod_and_unrelated_changes_do_not(render: Render) -> None:
    def checksum(values: dict[str, Any]) -> str:
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum({})
    changed = default_config()
    changed["models"][0]["window"]["records"] = 800
    assert checksum({"config": changed, **WITHOUT_GENERATED}) != base
    assert checksum({"service": {"annotations": {"team": "ml"}}}) == base


def rbac_namespaces(objs: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {kind: {o["metadata"].get("namespace", "") for o in by_kind(objs, kind)} for kind in ("Role", "RoleBinding")}


def role_rules(objs: list[dict[str, Any]]) -> dict[str, dict[tuple[str, str], set[str]]]:
    """Namespace → (apiGroup, resource) → verbs of every Role."""
    return {
        role["metadata"]["namespace"]: {(g, res): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for res in rule["resources"]}
        for role in by_kind(objs, "Role")
    }


JOBS = {("batch", "jobs"): {"create", "get", "list", "watch", "delete"}}  # retrain/kubernetes.py: create, read, list, watch, delete
POD_METRICS = {("metrics.k8s.io", "pods"): {"list"}}  # monitor/resources/kubernetes.py: list_namespaced_custom_object


def test_roles_grant_each_namespace_only_what_the_monitor_does_there(render: Render) -> None:
    config = default_config()
    wine, churn = config["models"]
    wine["retrain"]["launcher"] = "kubernetes"  # its Jobs go to namespace `ml`
    wine["resources"]["namespace"] = "serving"
    churn["retrain"] = {**wine["retrain"], "enabled": False, "kubernetes": {**wine["retrain"]["kubernetes"], "namespace": "off"}}
    churn["resources"] = {"namespace": "local-only", "selector": {"app": "churn"}, "pid_file": "/run/churn.pid"}
    objs = render({"rbac": {"namespaces": ["extra"]}, "config": config, **WITHOUT_GENERATED})
    # No Role where nothing is done: not the release namespace, not a disabled retrain's, not a pid_file model's.
    assert role_rules(objs) == {"extra": JOBS | POD_METRICS, "ml": JOBS, "serving": POD_METRICS}
    assert rbac_namespaces(objs) == {"Role": {"extra", "ml", "serving"}, "RoleBinding": {"extra", "ml", "serving"}}
    assert not by_kind(objs, "ClusterRole")
    assert not by_kind(objs, "ClusterRoleBinding")
    sa = one(objs, "ServiceAccount")["metadata"]
    for binding in by_kind(objs, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]
        assert binding["roleRef"]["kind"] == "Role"

    # `defaults.retrain` counts for the models without a retrain of their own.
    config["defaults"]["retrain"] = {**wine.pop("retrain"), "kubernetes": {**churn["retrain"]["kubernetes"], "namespace": "batch"}}
    assert role_rules(render({"config": config, **WITHOUT_GENERATED})) == {"batch": JOBS, "serving": POD_METRICS}

    only_listed = render({"rbac": {"namespacesFromConfig": False, "namespaces": ["ml"]}, "config": config, **WITHOUT_GENERATED})
    assert role_rules(only_listed) == {"ml": JOBS | POD_METRICS}


WORKFLOWS = {("argoproj.io", "workflows"): {"create", "get"}}  # retrain/argo.py: create and get Workflows


def test_the_argo_launcher_gets_workflow_rights_in_its_namespace_only(render: Render) -> None:
    config = default_config()
    wine = config["models"][0]
    wine["retrain"] = {"launcher": "argo", "argo": {"namespace": "pipelines", "workflow_template": "train-wine"}}
    wine["resources"]["namespace"] = "serving"
    assert role_rules(render({"config": config, **WITHOUT_GENERATED})) == {"pipelines": WORKFLOWS, "serving": POD_METRICS}
    cluster = one(render({"rbac": {"clusterWide": True}, "config": config, **WITHOUT_GENERATED}), "ClusterRole")
    rules = {(g, r): set(rule["verbs"]) for rule in cluster["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == JOBS | POD_METRICS | WORKFLOWS


def test_default_install_only_reads_pod_metrics_where_the_example_model_runs(render: Render) -> None:
    # The example retrains locally: no Job rights anywhere, and core pods are never read.
    assert role_rules(render()) == {"default": POD_METRICS}


def test_cluster_wide_rbac_replaces_roles(render: Render) -> None:
    objs = render({"rbac": {"clusterWide": True, "namespaces": ["ml"]}})
    assert not by_kind(objs, "Role")
    assert not by_kind(objs, "RoleBinding")
    role, binding = one(objs, "ClusterRole"), one(objs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"]}
    assert {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]} == JOBS | POD_METRICS
    assert render({"rbac": {"create": False}})
    assert not by_kind(render({"rbac": {"create": False}}), "Role")


def test_dashboards_are_configmaps_for_the_grafana_sidecar(render: Render) -> None:
    shipped = sorted(p.name for p in (CHART / "files" / "dashboards").glob("*.json"))
    assert shipped
    objs = render({"dashboards": {"labelKey": "grafana_dash", "labelValue": "yes", "folderAnnotationKey": "k8s-sidecar-target-directory", "folder": "/tmp/dashboards/ML", "namespace": "monitoring"}})
    maps = [o for o in by_kind(objs, "ConfigMap") if "grafana_dash" in o["metadata"]["labels"]]
    assert sorted(k for m in maps for k in m["data"]) == shipped
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dash"] == "yes"
        assert cm["metadata"]["annotations"]["k8s-sidecar-target-directory"] == "/tmp/dashboards/ML"
        assert cm["metadata"]["namespace"] == "monitoring"
        (name, text), = cm["data"].items()
        assert json.loads(text) == json.loads((CHART / "files" / "dashboards" / name).read_text())
    assert not [o for o in by_kind(render({"dashboards": {"enabled": False}}), "ConfigMap") if "grafana_dashboard" in o["metadata"]["labels"]]


def test_reference_data_from_your_own_volume(render: Render) -> None:
    objs = render({"reference": {"volume": {"configMap": {"name": "my-reference"}}}})
    assert [c["metadata"]["name"] for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("-reference")] == []
    volume = next(v for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "reference")
    assert volume == {"name": "reference", "configMap": {"name": "my-reference"}}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"serviceMonitor": {"enabled": "yes"}}, "/serviceMonitor/enabled"),
        ({"persistance": {"enabled": True}}, "persistance"),
        ({"persistence": {"mountPath": "data"}}, "/persistence/mountPath"),
        ({"service": {"port": 70000}}, "/service/port"),
        ({"auth": {"envVar": "NOT VALID"}}, "/auth/envVar"),
        ({"config": {"models": []}}, "/config/models"),
    ],
    ids=["tri-state", "typo", "relative-mount", "port", "env-name", "config-without-models"],
)
def test_schema_rejects_bad_values_with_the_field(helm, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    values_file = tmp_path / "bad.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm("template", "dw", str(CHART), "--values", str(values_file), check=False)
    assert proc.returncode != 0, proc.stderr
    assert message in proc.stderr, proc.stderr


def test_notes_print_the_same_sidecar_as_driftwatch_inject(helm) -> None:
    proc = helm("install", "dw", str(CHART), "--namespace", "ml", "--dry-run=client", "--set", "auth.existingSecret=tok")
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n ml port-forward svc/dw-driftwatch 8080:8080" in notes
    assert "url: http://dw-driftwatch.ml.svc:8080/v1/cloudevents" in notes
    snippet = notes.split("this container under containers:", 1)[1].split("and these under volumes:", 1)
    container = yaml.safe_load(snippet[0])[0]
    volumes = yaml.safe_load(snippet[1].split("\n3.", 1)[0])
    opts = InjectOptions(monitor="http://dw-driftwatch.ml.svc:8080", model="x", image="ghcr.io/driftwatch/driftwatch:0.1.0", token_secret="tok")
    expected = sidecar_container(opts, "MODEL-NAME", 1)
    expected["args"][expected["args"].index("http://127.0.0.1:1")] = "http://127.0.0.1:MODEL-PORT"
    assert container == expected
    assert volumes == sidecar_volumes(opts)


def test_container_args_are_accepted_by_the_driftwatch_cli(render: Render) -> None:
    from typer.main import get_command

    from monitor.app.cli import app

    command = get_command(app)
    args = monitor_container(render())["args"]
    ctx = command.commands[args[0]].make_context(args[0], args[1:])  # type: ignore[attr-defined]
    assert ctx.params["config"] == Path("/etc/driftwatch/config.yaml")
    assert ctx.params["port"] == 8080
