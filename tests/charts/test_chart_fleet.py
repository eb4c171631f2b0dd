"""Fleet mode of the chart (`fleet.enabled`): N replicas on Kafka and PostgreSQL, rendered by real helm.

Every fleet render is validated against the Kubernetes 1.33 schemas and its embedded config against
driftwatch's own config model; with fleet mode off the render is the single-process chart unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import by_kind, one, validate
from conftest import CHART, Render
from test_chart_render import FORCED_ON, OPERATOR_API, embedded_config, monitor_container, mounted_secret_file

from monitor.core.config import Config, parse_config

PLAIN = {
    "enabled": True,
    "kafka": {"bootstrapServers": "kafka.data.svc:9092"},
    "postgres": {"existingSecret": "dw-postgres"},
}
SASL_SSL = {
    "enabled": True,
    "replicas": 4,
    "kafka": {
        "bootstrapServers": ["kafka-0.kafka:9093", "kafka-1.kafka:9093"],
        "topic": "ml-events",
        "partitions": 24,
        "groupId": "dw-prod",
        "replicationFactor": 3,
        "security": {"protocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512"},
        "sasl": {"existingSecret": "dw-kafka", "usernameKey": "user", "passwordKey": "pass"},
        "tls": {"existingSecret": "dw-kafka-tls", "caKey": "ca.pem", "certKey": "tls.crt", "keyKey": "tls.key"},
    },
    "postgres": {"existingSecret": "dw-postgres", "dsnKey": "uri", "leaseSeconds": "30s"},
}

FLEET_COMBINATIONS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "plaintext": ({"fleet": PLAIN}, ()),
    "sasl-ssl-mtls-operator": ({"fleet": SASL_SSL, **FORCED_ON}, ()),
    "ssl-system-ca-hard": (
        {"fleet": {**PLAIN, "antiAffinity": "hard", "kafka": {**PLAIN["kafka"], "security": {"protocol": "SSL"}}}},
        OPERATOR_API,
    ),
    "sasl-plaintext-tls-no-auth": (
        {"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "security": {"protocol": "SASL_PLAINTEXT", "saslMechanism": "PLAIN"},
                                      "sasl": {"existingSecret": "dw-kafka"}}},
         "auth": {"enabled": False}, "tls": {"enabled": True, "existingSecret": "dw-tls"}},
        (),
    ),
    "egress-restricted-own-affinity": (
        {"fleet": PLAIN, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ml"]}]}]}}},
         "networkPolicy": {"egress": {"restrict": True, "apiServer": {"cidrs": ["10.0.0.10/32"]},
                                      "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}],
                                                       "ports": [{"port": 9092}, {"port": 5432}]}]}}},
        (),
    ),
}


def fleet_config(objs: list[dict[str, Any]]) -> Config:
    return parse_config(embedded_config(objs), "rendered ConfigMap", base_dir=Path("/etc/driftwatch"))


def env(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in monitor_container(objs)["env"]}


def secret_env(objs: list[dict[str, Any]], name: str) -> tuple[str, str]:
    """(Secret, key) an environment variable of the monitor container comes from."""
    ref = env(objs)[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


@pytest.mark.parametrize("name", list(FLEET_COMBINATIONS))
def test_fleet_combinations_lint_strict_and_render_valid_objects(name: str, render: Render, helm, tmp_path: Path) -> None:
    values, flags = FLEET_COMBINATIONS[name]
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    lint = helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert "0 chart(s) failed" in lint.stdout
    objs = render(values, *flags)
    for obj in objs:
        validate(obj)
    cfg = fleet_config(objs)
    assert cfg.fleet is not None
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == values["fleet"].get("replicas", 3)
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not by_kind(objs, "PersistentVolumeClaim")
    # Every environment variable the config names is set from a Secret.
    names = [cfg.fleet.postgres.dsn_env, cfg.fleet.kafka.security.username_env, cfg.fleet.kafka.security.password_env]
    for var in filter(None, names):
        assert "secretKeyRef" in env(objs)[var]["valueFrom"], var
    # Every file the config names is a key of a mounted Secret.
    sec = cfg.fleet.kafka.security
    for path in filter(None, (sec.ca_file, sec.cert_file, sec.key_file)):
        assert mounted_secret_file(objs, path)[0] == values["fleet"]["kafka"]["tls"]["existingSecret"]


def test_defaults_render_no_fleet(render: Render) -> None:
    objs = render()
    assert fleet_config(objs).fleet is None
    assert not by_kind(objs, "PodDisruptionBudget")
    assert one(objs, "Deployment")["spec"]["replicas"] == 1
    assert not [e for e in monitor_container(objs)["env"] if "valueFrom" in e]
    assert "affinity" not in one(objs, "Deployment")["spec"]["template"]["spec"]


def without_generated_secret(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The render without the random token of the generated Secret (a new one every render)."""
    return [{**o, "data": "…"} if o["kind"] == "Secret" else o for o in objs]


def test_fleet_values_are_inert_while_fleet_mode_is_off(render: Render) -> None:
    off = {**SASL_SSL, "enabled": False, "antiAffinity": "hard", "maxUnavailable": 2}
    assert without_generated_secret(render({"fleet": off})) == without_generated_secret(render())
    assert without_generated_secret(render({"fleet": off}, *OPERATOR_API)) == without_generated_secret(render({}, *OPERATOR_API))


def test_the_config_gets_the_fleet_section_from_the_values(render: Render) -> None:
    fleet = fleet_config(render({"fleet": SASL_SSL})).fleet
    assert fleet is not None
    kafka, sec = fleet.kafka, fleet.kafka.security
    assert kafka.bootstrap_servers == "kafka-0.kafka:9093,kafka-1.kafka:9093"
    assert (kafka.topic, kafka.partitions, kafka.group_id, kafka.replication_factor) == ("ml-events", 24, "dw-prod", 3)
    assert kafka.produce_timeout == 10.0
    assert (sec.protocol, sec.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (sec.username_env, sec.password_env) == ("DRIFTWATCH_KAFKA_USERNAME", "DRIFTWATCH_KAFKA_PASSWORD")
    assert (sec.ca_file, sec.cert_file, sec.key_file) == (
        Path("/etc/driftwatch/kafka-tls/ca.pem"), Path("/etc/driftwatch/kafka-tls/tls.crt"), Path("/etc/driftwatch/kafka-tls/tls.key"))
    assert fleet.postgres.dsn_env == "DRIFTWATCH_POSTGRES_DSN"
    assert fleet.postgres.lease_seconds == 30.0


def test_plaintext_fleet_needs_no_kafka_secret(render: Render) -> None:
    objs = render({"fleet": PLAIN})
    sec = fleet_config(objs).fleet.kafka.security  # type: ignore[union-attr]
    assert (sec.protocol, sec.sasl_mechanism, sec.username_env, sec.ca_file) == ("PLAINTEXT", None, None, None)
    assert set(env(objs)) == {"TMPDIR", "DRIFTWATCH_POSTGRES_DSN"}
    assert secret_env(objs, "DRIFTWATCH_POSTGRES_DSN") == ("dw-postgres", "dsn")
    assert "kafka-tls" not in {v["name"] for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]}


def test_credentials_come_from_the_existing_secrets(render: Render) -> None:
    objs = render({"fleet": SASL_SSL})
    assert secret_env(objs, "DRIFTWATCH_POSTGRES_DSN") == ("dw-postgres", "uri")
    assert secret_env(objs, "DRIFTWATCH_KAFKA_USERNAME") == ("dw-kafka", "user")
    assert secret_env(objs, "DRIFTWATCH_KAFKA_PASSWORD") == ("dw-kafka", "pass")
    sec = fleet_config(objs).fleet.kafka.security  # type: ignore[union-attr]
    assert mounted_secret_file(objs, sec.ca_file) == ("dw-kafka-tls", "ca.pem")  # type: ignore[arg-type]
    assert mounted_secret_file(objs, sec.cert_file) == ("dw-kafka-tls", "tls.crt")  # type: ignore[arg-type]
    assert mounted_secret_file(objs, sec.key_file) == ("dw-kafka-tls", "tls.key")  # type: ignore[arg-type]
    assert not [s for s in by_kind(objs, "Secret") if s["metadata"]["name"].startswith(("dw-kafka", "dw-postgres"))]


def test_fleet_replicas_roll_without_a_store_lock(render: Render) -> None:
    objs = render({"fleet": {**PLAIN, "replicas": 5}})
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 5
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    # The SQLite path the config still carries points into the pod's own emptyDir, never a shared volume.
    assert fleet_config(objs).server.store.path == Path("/var/lib/driftwatch/driftwatch.db")
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def pod_anti_affinity(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objs, "Deployment")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]


def test_replicas_prefer_different_nodes(render: Render) -> None:
    objs = render({"fleet": PLAIN})
    (term,) = pod_anti_affinity(objs)["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["weight"] == 100
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod_anti_affinity(objs)


def test_hard_anti_affinity_requires_different_nodes(render: Render) -> None:
    objs = render({"fleet": {**PLAIN, "antiAffinity": "hard"}})
    (term,) = pod_anti_affinity(objs)["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in pod_anti_affinity(objs)


def test_own_affinity_is_kept_and_own_anti_affinity_wins(render: Render) -> None:
    node = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ml"]}]}]}}}
    affinity = one(render({"fleet": PLAIN, "affinity": node}), "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert affinity["nodeAffinity"] == node["nodeAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in affinity["podAntiAffinity"]
    own = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"a": "b"}}}}]}}
    affinity = one(render({"fleet": PLAIN, "affinity": own}), "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert affinity == own


def test_fleet_settings_roll_the_pods(render: Render) -> None:
    def checksum(values: dict[str, Any]) -> str:
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum({"fleet": PLAIN})
    assert base != checksum({})
    assert checksum({"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "topic": "other"}}}) != base


def test_notes_describe_the_fleet(helm, tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump({"fleet": PLAIN}))
    proc = helm("install", "dw", str(CHART), "--namespace", "ml", "--dry-run=client", "--values", str(values_file))
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "Fleet mode: 3 replicas in Kafka consumer group driftwatch on topic driftwatch-events" in notes
    assert "persistence is off" not in notes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fleet": {"enabled": True, "postgres": {"existingSecret": "pg"}}}, "/fleet/kafka/bootstrapServers"),
        ({"fleet": {"enabled": True, "kafka": {"bootstrapServers": "k:9092"}}}, "/fleet/postgres/existingSecret"),
        ({"fleet": {**PLAIN, "antiAffinity": "strict"}}, "/fleet/antiAffinity"),
        ({"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "security": {"protocol": "TLS"}}}}, "/fleet/kafka/security/protocol"),
        ({"fleet": {**PLAIN, "replicas": 0}}, "/fleet/replicas"),
        ({"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "topic": "bad topic"}}}, "/fleet/kafka/topic"),
        ({"fleet": {**PLAIN, "kafak": {}}}, "kafak"),
        ({"fleet": PLAIN, "persistence": {"enabled": True}}, "set persistence.enabled=false with fleet.enabled"),
        ({"fleet": {**PLAIN, "replicas": 13}}, "fleet.replicas (13) exceeds fleet.kafka.partitions (12)"),
        ({"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "security": {"protocol": "SASL_SSL", "saslMechanism": "PLAIN"}}}},
         "protocol SASL_SSL needs fleet.kafka.security.saslMechanism and fleet.kafka.sasl.existingSecret"),
        ({"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "security": {"saslMechanism": "PLAIN"}}}},
         "protocol PLAINTEXT does not use SASL"),
        ({"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "tls": {"existingSecret": "ca"}}}}, "protocol PLAINTEXT does not use TLS"),
        ({"fleet": {**PLAIN, "kafka": {**PLAIN["kafka"], "security": {"protocol": "SSL"},
                                       "tls": {"existingSecret": "ca", "certKey": "tls.crt"}}}}, "go together"),
        ({"config": {"fleet": {"kafka": {"bootstrap_servers": "k:9092"}}}}, "config.fleet is rendered by the chart"),
        ({"fleet": PLAIN, "networkPolicy": {"egress": {"restrict": True, "apiServer": {"cidrs": ["10.0.0.10/32"]}}}},
         "the Kafka brokers and PostgreSQL would be unreachable"),
    ],
    ids=["no-brokers", "no-dsn-secret", "anti-affinity", "protocol", "replicas", "topic", "typo", "persistence",
         "more-replicas-than-partitions", "sasl-without-secret", "sasl-on-plaintext", "tls-on-plaintext",
         "cert-without-key", "config-fleet", "egress-restricted"],
)
def test_bad_fleet_values_fail_the_render_with_the_field(helm, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    values_file = tmp_path / "bad.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm("template", "dw", str(CHART), "--values", str(values_file), check=False)
    assert proc.returncode != 0, "rendered an invalid fleet"
    assert message in proc.stderr, proc.stderr
