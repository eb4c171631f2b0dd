"""`driftwatch inject`: the injected Deployment is one Kubernetes accepts, the InferenceService gets
the logger, other documents are untouched, and every bad input is a clear exit-2 message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.app.inject import CAPTURE_LABEL, CONTAINER_NAME, PORT_NAME, InjectError, InjectOptions, inject

MONITOR = "http://dw-driftwatch.driftwatch.svc:8080"
SERVICE = """\
# the model's Service (comments and flow style must survive)
apiVersion: v1
kind: Service
metadata: {name: wine}
spec:
  selector: {app: wine}
  ports:
    - {name: http, port: 80, targetPort: http}
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wine
  namespace: ml
spec:
  replicas: 2
  selector:
    matchLabels: {app: wine}
  template:
    metadata:
      labels: {app: wine}
    spec:
      containers:
        - name: model
          image: ghcr.io/example/wine:1.4.2
          ports:
            - {name: http, containerPort: 8000}
          readinessProbe:
            httpGet: {path: /v1/models/wine, port: http}
      volumes:
        - name: cache
          emptyDir: {}
"""
ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: wine
spec:
  predictor:
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://models/wine
"""


def run(text: str, **kw: Any) -> tuple[list[dict[str, Any]], list[str], str]:
    result = inject(text, InjectOptions(monitor=MONITOR, **kw))
    return [d for d in yaml.safe_load_all(result.text) if d], result.notes, result.text


def cli(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.app.cli", "inject", *args], input=stdin, capture_output=True, timeout=60
    )


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def test_deployment_gets_a_valid_sidecar_on_its_own_port() -> None:
    docs, notes, _ = run(DEPLOYMENT, model="wine", token_secret="dw-driftwatch")
    (deployment,) = docs
    kubernetes_validate.validate(deployment, "1.33", strict=True)
    containers = {c["name"]: c for c in pod(deployment)["containers"]}
    assert list(containers) == ["model", CONTAINER_NAME]
    sidecar = containers[CONTAINER_NAME]
    assert sidecar["args"] == [
        "sidecar", "--upstream", "http://127.0.0.1:8000", "--monitor", MONITOR, "--model", "wine",
        "--port", "8081", "--spool-dir", "/var/spool/driftwatch", "--token-file", "/var/run/secrets/driftwatch/token",
    ]
    assert sidecar["ports"] == [{"name": PORT_NAME, "containerPort": 8081, "protocol": "TCP"}]
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/driftwatch/readyz", "port": PORT_NAME}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/driftwatch/healthz", "port": PORT_NAME}
    assert sidecar["env"] == [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    security = sidecar["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"] and security["capabilities"] == {"drop": ["ALL"]}
    assert sidecar["resources"]["limits"]["memory"]
    volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
    assert set(volumes) == {"cache", "driftwatch-spool", "driftwatch-tmp", "driftwatch-token"} and "emptyDir" in volumes["driftwatch-spool"]
    assert {m["name"] for m in sidecar["volumeMounts"]} <= set(volumes)
    # The model container, its probes, the selector and replicas are as they were.
    original = yaml.safe_load(DEPLOYMENT)
    assert containers["model"] == pod(original)["containers"][0]
    assert deployment["spec"]["selector"] == original["spec"]["selector"] and deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "wine", CAPTURE_LABEL[0]: CAPTURE_LABEL[1]}
    assert notes == []


def test_sidecar_args_are_accepted_by_driftwatch_sidecar() -> None:
    from typer.main import get_command

    from monitor.app.cli import app
    from monitor.sidecar.settings import build_settings

    docs, _, _ = run(DEPLOYMENT, model="wine", token_secret="tok")
    args = pod(docs[0])["containers"][1]["args"]
    ctx = get_command(app).commands[args[0]].make_context(args[0], args[1:])  # type: ignore[attr-defined]
    params = {k: ctx.params[k] for k in ("upstream", "monitor", "model", "port", "token_env", "token_file", "spool_dir")}
    settings = build_settings(**params, environ={})
    assert (settings.upstream.port, settings.port) == (8000, 8081)
    assert settings.token_file == Path("/var/run/secrets/driftwatch/token")
    assert str(settings.spool_dir) == pod(docs[0])["containers"][1]["volumeMounts"][0]["mountPath"]


def test_injecting_twice_changes_nothing_and_other_documents_pass_through_verbatim() -> None:
    stream = SERVICE + "---\n" + DEPLOYMENT + "---\n" + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: v}  # keep\n"
    _, notes, once = run(stream, model="wine")
    _, _, twice = run(once, model="wine")
    assert once == twice
    assert once.startswith(SERVICE)
    assert once.endswith("data: {k: v}  # keep\n")
    assert [c["name"] for c in pod(list(yaml.safe_load_all(twice))[1])["containers"]] == ["model", CONTAINER_NAME]
    assert notes == ["Service wine: set targetPort of port http to driftwatch-capture so requests pass through the sidecar"]


def token_mount(deployment: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sidecar's mount of the token volume and that volume."""
    sidecar = next(c for c in pod(deployment)["containers"] if c["name"] == CONTAINER_NAME)
    (mount,) = [m for m in sidecar["volumeMounts"] if m["name"] == "driftwatch-token"]
    (volume,) = [v for v in pod(deployment)["volumes"] if v["name"] == "driftwatch-token"]
    return mount, volume


def test_the_token_file_is_in_the_mounted_secret() -> None:
    docs, _, _ = run(DEPLOYMENT, model="wine", token_secret="dw-driftwatch", token_key="bearer")
    args = next(c for c in pod(docs[0])["containers"] if c["name"] == CONTAINER_NAME)["args"]
    mount, _ = token_mount(docs[0])
    assert Path(args[args.index("--token-file") + 1]) == Path(mount["mountPath"]) / "bearer"


def test_the_token_secret_is_a_whole_volume_the_sidecar_user_can_read() -> None:
    """No subPath (the kubelet would never refresh the file); readable without an fsGroup in the model pod."""
    docs, _, _ = run(DEPLOYMENT, model="wine", token_secret="dw-driftwatch")
    mount, volume = token_mount(docs[0])
    assert "subPath" not in mount
    assert volume["secret"] == {"secretName": "dw-driftwatch", "defaultMode": 0o444}


def test_reinjecting_without_a_token_drops_the_token_volume() -> None:
    _, _, first = run(DEPLOYMENT, model="wine", token_secret="dw-driftwatch")
    docs, _, _ = run(first, model="wine")
    assert "driftwatch-token" not in [v["name"] for v in pod(docs[0])["volumes"]]


def test_reinjecting_with_new_flags_updates_the_sidecar_in_place() -> None:
    _, _, first = run(DEPLOYMENT, model="wine", port=9001)
    docs, _, _ = run(first, model="wine", port=9002, image="registry.local/driftwatch:2")
    sidecars = [c for c in pod(docs[0])["containers"] if c["name"] == CONTAINER_NAME]
    assert len(sidecars) == 1
    assert sidecars[0]["ports"][0]["containerPort"] == 9002 and sidecars[0]["image"] == "registry.local/driftwatch:2"
    assert [v["name"] for v in pod(docs[0])["volumes"]].count("driftwatch-spool") == 1


def test_upstream_port_is_explicit_when_the_model_declares_none() -> None:
    bare = DEPLOYMENT.replace("          ports:\n            - {name: http, containerPort: 8000}\n", "").replace("port: http}", "port: 8000}")
    with pytest.raises(InjectError, match="--upstream-port"):
        run(bare, model="wine")
    docs, _, _ = run(bare, model="wine", upstream_port=8000)
    kubernetes_validate.validate(docs[0], "1.33", strict=True)
    assert "http://127.0.0.1:8000" in pod(docs[0])["containers"][1]["args"]


def test_kubectl_list_output_is_injected_item_by_name() -> None:
    other = DEPLOYMENT.replace("name: wine\n  namespace", "name: churn\n  namespace")
    items = [yaml.safe_load(DEPLOYMENT), yaml.safe_load(other)]
    listing = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
    with pytest.raises(InjectError, match="pick one with --name"):
        run(listing, model="wine")
    docs, _, _ = run(listing, model="churn", name="churn")
    wine, churn = docs[0]["items"]
    assert [c["name"] for c in pod(wine)["containers"]] == ["model"]
    assert [c["name"] for c in pod(churn)["containers"]] == ["model", CONTAINER_NAME]
    kubernetes_validate.validate(churn, "1.33", strict=True)


def test_inference_service_gets_the_logger_instead_of_a_sidecar() -> None:
    docs, notes, once = run(ISVC)
    (isvc,) = docs
    assert isvc["spec"]["predictor"]["logger"] == {"mode": "all", "url": MONITOR + "/v1/cloudevents"}
    assert isvc["spec"]["predictor"]["model"] == yaml.safe_load(ISVC)["spec"]["predictor"]["model"]
    assert "containers" not in isvc["spec"]["predictor"]
    assert run(once)[2] == once
    assert notes == []
    _, notes, _ = run(ISVC.replace("    model:", "    logger: {mode: request, url: http://old/}\n    model:"), model="wine")
    assert notes == ["document 1: replaced the predictor's logger (was 'http://old/')"]


def test_inference_service_is_named_by_its_own_name() -> None:
    with pytest.raises(InjectError, match="InferenceService's name \\('wine'\\)"):
        run(ISVC, model="vino")


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"kind: [\n", "invalid YAML at line 2"),
        (SERVICE.encode() + b"---\nkind: Deployment\n  bad: indent\n", "invalid YAML at line 11"),
        (b"apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: x}\n", "apps/v1beta1 Deployment is not supported"),
        (b"apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceService\n", "v1alpha1 InferenceService is not supported"),
        (SERVICE.encode(), "nothing to inject into"),
        (b"", "nothing to inject into"),
        (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: []}}}\n", "non-empty list of containers"),
        (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: 3\n", "`spec` must be a mapping"),
        (DEPLOYMENT.encode(), "the model listens on 8000; choose another --port"),  # given --port 8000 below
        (b"\xff\xfe\x00junk", "not UTF-8"),
    ],
    ids=["yaml", "yaml-line-in-stream", "old-deployment", "old-isvc", "no-target", "empty", "no-containers", "spec-type", "port-clash", "binary"],
)
def test_bad_input_is_a_clear_exit_2_without_traceback(stdin: bytes, message: str) -> None:
    port = ["--port", "8000"] if "listens on 8000" in message else []
    proc = cli(stdin, "--monitor", MONITOR, "--model", "wine", *port)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert proc.stdout == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--monitor", "dw:8080", "--model", "wine"], "--monitor 'dw:8080'"),
        (["--monitor", MONITOR, "--model", "Wine_1"], "--model 'Wine_1'"),
        (["--monitor", MONITOR], "--model is required for a Deployment"),
        (["--monitor", MONITOR, "--model", "wine", "--port", "0"], "--port 0"),
        (["--monitor", MONITOR, "--model", "wine", "--image", "bad image"], "--image"),
    ],
    ids=["monitor-url", "model-name", "model-missing", "port-range", "image"],
)
def test_bad_flags_are_named(args: list[str], message: str) -> None:
    proc = cli(DEPLOYMENT.encode(), *args)
    assert proc.returncode == 2 and message in " ".join(proc.stderr.decode().split()), proc.stderr.decode()


def test_cli_round_trip_writes_yaml_and_notes_on_stderr() -> None:
    proc = cli((SERVICE + "---\n" + DEPLOYMENT).encode(), "--monitor", MONITOR, "--model", "wine", "--token-secret", "tok")
    assert proc.returncode == 0, proc.stderr.decode()
    docs = list(yaml.safe_load_all(proc.stdout))
    kubernetes_validate.validate(docs[1], "1.33", strict=True)
    assert "targetPort" in proc.stderr.decode()


def test_oversized_input_is_refused() -> None:
    huge = "# " + "x" * (10 * 1024**2) + "\n" + DEPLOYMENT
    with pytest.raises(InjectError, match="larger than 10 MiB"):
        run(huge, model="wine")


def test_unusual_separators_fall_back_to_a_full_parse() -> None:
    stream = "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n---\n" + DEPLOYMENT
    docs, _, _ = run(stream, model="wine")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment"]
    assert pod(docs[1])["containers"][1]["name"] == CONTAINER_NAME


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def maybe(value: Any) -> st.SearchStrategy[Any]:
    """The well-formed value, or anything at all in its place."""
    return st.just(value) | json_values


@settings(max_examples=150, deadline=None)
@given(
    metadata=maybe({"name": "wine"}),
    spec=maybe(None),
    template_meta=maybe({"labels": {"app": "wine"}}),
    containers=maybe([{"name": "model", "ports": [{"containerPort": 8000, "name": "http"}]}]),
    ports=maybe([{"name": "http", "containerPort": 8000}])
    | st.lists(st.fixed_dictionaries({"name": maybe("http"), "containerPort": maybe(8000), "protocol": maybe("TCP")}), max_size=2),
    volumes=maybe([]),
    service_spec=maybe({"selector": {"app": "wine"}, "ports": [{"port": 80, "targetPort": "http"}]})
    | st.fixed_dictionaries({"selector": maybe({"app": "wine"}), "ports": st.lists(st.fixed_dictionaries({"port": maybe(80), "targetPort": maybe("http")}), max_size=2)}),
)
def test_hostile_shapes_are_injected_or_refused_never_crash(
    metadata: Any, spec: Any, template_meta: Any, containers: Any, ports: Any, volumes: Any, service_spec: Any
) -> None:
    if isinstance(containers, list) and containers and isinstance(containers[0], dict):
        containers[0]["ports"] = ports
    pod_spec = {"containers": containers, "volumes": volumes}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
                  "spec": spec if spec is not None else {"template": {"metadata": template_meta, "spec": pod_spec}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "wine"}, "spec": service_spec}
    text = yaml.safe_dump_all([service, deployment])
    try:
        result = inject(text, InjectOptions(monitor=MONITOR, model="wine"))
    except InjectError as exc:
        assert str(exc)
        return
    injected = list(yaml.safe_load_all(result.text))[1]
    assert [c["name"] for c in pod(injected)["containers"]].count(CONTAINER_NAME) == 1


def test_a_boolean_container_port_is_not_a_port() -> None:
    # YAML `true` is an int to isinstance(); it once became `--upstream http://127.0.0.1:True`.
    odd = DEPLOYMENT.replace("containerPort: 8000}", "containerPort: true}")
    with pytest.raises(InjectError, match="--upstream-port"):
        run(odd, model="wine")


@pytest.mark.parametrize("depth", [2000])
def test_hostile_nesting_on_stdin_is_a_clear_error(depth: int) -> None:
    res = cli(b"[" * depth + b"]" * depth, "--monitor", "http://m:8080")
    assert res.returncode == 2 and b"nested too deeply" in res.stderr and b"Traceback" not in res.stderr


ALIASED = """\
apiVersion: apps/v1
kind: Deployment
metadata: &meta
  name: wine
  labels: &labels {app: wine}
spec:
  selector:
    matchLabels: *labels
  template:
    metadata: %s
    spec:
      containers:
        - {name: model, image: ghcr.io/example/wine:1.4.2, ports: [{containerPort: 8000}]}
"""


@pytest.mark.parametrize("template_metadata", ["{labels: *labels}", "*meta"])
def test_labels_shared_with_the_selector_through_a_yaml_alias_leave_the_selector_alone(template_metadata: str) -> None:
    # apps/v1 selectors are immutable: a selector that gained the capture label is refused on apply.
    (deployment,), _, text = run(ALIASED % template_metadata, model="wine")
    kubernetes_validate.validate(deployment, "1.33", strict=True)
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "wine"}}
    assert deployment["metadata"] == {"name": "wine", "labels": {"app": "wine"}}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "wine", CAPTURE_LABEL[0]: CAPTURE_LABEL[1]}
    assert run(text, model="wine")[2] == text


def test_the_version_label_reaches_the_sidecar_through_the_downward_api() -> None:
    (deployment,), _, _ = run(DEPLOYMENT, model="wine", version_label="app.kubernetes.io/version")
    kubernetes_validate.validate(deployment, "1.33", strict=True)
    sidecar = {c["name"]: c for c in pod(deployment)["containers"]}[CONTAINER_NAME]
    assert sidecar["env"][1] == {"name": "DRIFTWATCH_MODEL_VERSION",
                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/version']"}}}


def test_an_inference_service_needs_no_version_label() -> None:
    _, notes, _ = run(ISVC, version_label="version")
    assert notes == ["document 1: --version-label is not used: KServe's logger names the revision that served each call "
                     "(serverless mode; docs/versions.md)"]


@pytest.mark.parametrize("label", ["-version", "Example.COM/version", "a" * 64, "ver sion"])
def test_a_version_label_that_is_no_label_key_is_refused(label: str) -> None:
    proc = cli(DEPLOYMENT.encode(), "--monitor", MONITOR, "--model", "wine", "--version-label", label)
    err = " ".join(proc.stderr.decode().split())
    assert (proc.returncode, f"--version-label {label!r}: not a Kubernetes label key" in err) == (2, True), err
