"""`driftwatch inject`: wire a model's manifest to driftwatch.

- apps/v1 Deployment: the capture sidecar container is added to the pod template on its own port,
  named `driftwatch-capture`, with probes, resources, a locked-down securityContext, emptyDir volumes
  for its spool and /tmp, and the bearer token from a Secret mounted as a file (`--token-file`: the
  sidecar re-reads it when the kubelet refreshes it, so a rotated token needs no restart). The pod template is labelled
  `driftwatch.io/capture: "true"` for the chart's PodMonitor. The model container keeps its port, so
  nothing breaks on apply; requests go through the sidecar once the model's Service `targetPort`
  points at `driftwatch-capture` (a note says which Service, when one is in the input).
- serving.kserve.io/v1beta1 InferenceService: `spec.predictor.logger` sends every request and
  response to the monitor's `/v1/cloudevents`; no sidecar, the KServe agent does the capture.

Pure text → text: documents other than the target pass through byte for byte, and injecting twice
changes nothing (driftwatch's own container, volumes and logger are replaced, never duplicated).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from monitor import __version__
from monitor.core.names import DNS1123_SUBDOMAIN_RE, LABEL_NAME_RE, MODEL_NAME_RE

__all__ = ["CAPTURE_LABEL", "InjectError", "InjectOptions", "InjectResult", "inject", "sidecar_container", "sidecar_volumes"]

CONTAINER_NAME = "driftwatch-sidecar"
PORT_NAME = "driftwatch-capture"
SPOOL_VOLUME = "driftwatch-spool"
TMP_VOLUME = "driftwatch-tmp"
TOKEN_VOLUME = "driftwatch-token"
SPOOL_DIR = "/var/spool/driftwatch"
TOKEN_DIR = "/var/run/secrets/driftwatch"
CAPTURE_LABEL = ("driftwatch.io/capture", "true")
DEFAULT_IMAGE = f"ghcr.io/driftwatch/driftwatch:{__version__}"
DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
MAX_INPUT_BYTES = 10 * 1024**2

_DEPLOYMENT = ("apps/v1", "Deployment")
_ISVC = ("serving.kserve.io/v1beta1", "InferenceService")
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob", "InferenceService"}
_SEPARATOR = re.compile(r"^---[ \t]*(#.*)?$")
_DOC_END = re.compile(r"^\.\.\.[ \t]*$")


class InjectError(ValueError):
    """Input that cannot be injected into; the message says what to change."""


@dataclass(frozen=True)
class InjectOptions:
    monitor: str
    model: str | None = None
    """Required for a Deployment; an InferenceService's events are named by its own name."""
    image: str = DEFAULT_IMAGE
    upstream_port: int | None = None
    """The model server's port; default: the first container's first TCP port."""
    port: int = 8081
    token_secret: str | None = None
    token_key: str = "token"
    name: str | None = None
    """Inject only into the object with this metadata.name (when the input holds several)."""
    resources: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_RESOURCES))
    version_label: str | None = None
    """The pod label holding the model version (e.g. `app.kubernetes.io/version`): the sidecar stamps it on
    every event whose response names no version (docs/versions.md), read through the downward API."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.monitor)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise InjectError(f"--monitor {self.monitor!r}: expected http(s)://HOST[:PORT], e.g. http://driftwatch.driftwatch.svc:8080")
        if self.model is not None and not MODEL_NAME_RE.match(self.model):
            raise InjectError(f"--model {self.model!r}: lowercase letters, digits and '-' (a DNS label, max 63), as in the config")
        for flag, port in (("--port", self.port), ("--upstream-port", self.upstream_port)):
            if port is not None and not 1 <= port <= 65535:
                raise InjectError(f"{flag} {port}: must be 1..65535")
        if self.upstream_port is not None and self.upstream_port == self.port:
            raise InjectError(f"--port {self.port} is the model's own port; the sidecar needs a port of its own")
        if self.version_label is not None:
            prefix, _, name = self.version_label.rpartition("/")
            if not LABEL_NAME_RE.match(name) or (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN_RE.match(prefix))):
                raise InjectError(f"--version-label {self.version_label!r}: not a Kubernetes label key ([prefix/]name, "
                                  "name: 1-63 alphanumerics, '-', '_' or '.')")
        if not self.image.strip() or any(c.isspace() for c in self.image):
            raise InjectError(f"--image {self.image!r}: not an image reference")


@dataclass(frozen=True)
class InjectResult:
    text: str
    notes: list[str]
    """What the user still has to do or should know (printed on stderr by the CLI)."""


def sidecar_container(opts: InjectOptions, model: str, upstream_port: int) -> dict[str, Any]:
    """The capture sidecar container (the chart's NOTES print the same one)."""
    args = [
        "sidecar",
        "--upstream", f"http://127.0.0.1:{upstream_port}",
        "--monitor", opts.monitor.rstrip("/"),
        "--model", model,
        "--port", str(opts.port),
        "--spool-dir", SPOOL_DIR,
    ]
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": opts.image, "imagePullPolicy": "IfNotPresent", "args": args,
                                 # the pod's namespace goes with every event: same-named models in two namespaces stay two
                                 "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]}
    if opts.version_label is not None:  # the pod's version label, through the downward API (empty when unset: no version)
        container["env"].append({"name": "DRIFTWATCH_MODEL_VERSION",
                                 "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{opts.version_label}']"}}})
    mounts: list[dict[str, Any]] = [{"name": SPOOL_VOLUME, "mountPath": SPOOL_DIR}, {"name": TMP_VOLUME, "mountPath": "/tmp"}]
    if opts.token_secret:
        # A whole-Secret volume, never subPath (the kubelet does not refresh subPath mounts).
        args += ["--token-file", f"{TOKEN_DIR}/{opts.token_key}"]
        mounts.append({"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True})
    container.update({
        "ports": [{"name": PORT_NAME, "containerPort": opts.port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/driftwatch/readyz", "port": PORT_NAME}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/driftwatch/healthz", "port": PORT_NAME}, "periodSeconds": 10},
        "resources": copy.deepcopy(opts.resources),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    })
    return container


def sidecar_volumes(opts: InjectOptions | None = None) -> list[dict[str, Any]]:
    """The sidecar's volumes: spool, /tmp and, with `opts.token_secret`, the token Secret."""
    # The spool outlives monitor outages up to the sidecar's --spool-max-bytes (256MiB by default).
    volumes: list[dict[str, Any]] = [
        {"name": SPOOL_VOLUME, "emptyDir": {"sizeLimit": "512Mi"}},
        {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if opts is not None and opts.token_secret:
        # 0444: the sidecar's user (10001) reads it whatever the model pod's fsGroup.
        volumes.append({"name": TOKEN_VOLUME, "secret": {"secretName": opts.token_secret, "defaultMode": 0o444}})
    return volumes


def _mapping(node: Any, path: str, where: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise InjectError(f"{where}: `{path}` must be a mapping")
    return node


def _own(parent: dict[str, Any], key: str, path: str, where: str, optional: bool = False) -> dict[str, Any]:
    """A fresh copy of the mapping `parent[key]` (with `optional`, an absent or null one is empty), stored back.

    Injecting writes only through copies made along its path: a YAML alias (`labels: &l {...}` reused
    as `matchLabels: *l`) makes one dict appear at several places, and writing into it would also
    change the others, e.g. the Deployment's immutable selector. Copying only this path (rather than
    unaliasing the whole document) keeps an alias-heavy input from being expanded.
    """
    node = parent.get(key)
    owned = dict(_mapping({} if node is None and optional else node, path, where))
    parent[key] = owned
    return owned


def _replace_named(items: list[Any], new: dict[str, Any]) -> list[Any]:
    """Items with `new` in place of the one with the same name (appended when absent)."""
    out = [new if isinstance(i, dict) and i.get("name") == new["name"] else i for i in items]
    return out if new in out else [*out, new]


def _model_port(containers: list[dict[str, Any]], where: str) -> int:
    for container in containers:
        for port in container.get("ports") or []:
            if not isinstance(port, dict) or port.get("protocol", "TCP") != "TCP":
                continue
            number = port.get("containerPort")
            if type(number) is int and 1 <= number <= 65535:  # `true` is an int to isinstance
                return number
        break  # only the first (model) container is a safe guess
    raise InjectError(f"{where}: the first container declares no TCP containerPort; pass --upstream-port (the model server's port)")


def _inject_deployment(doc: dict[str, Any], opts: InjectOptions, where: str) -> tuple[dict[str, Any], int]:
    """The injected copy of `doc` and the model port the sidecar forwards to."""
    if opts.model is None:
        raise InjectError(f"{where}: --model is required for a Deployment (the model's name in the driftwatch config)")
    doc = dict(doc)
    spec = _own(doc, "spec", "spec", where)
    template = _own(spec, "template", "spec.template", where)
    pod = _own(template, "spec", "spec.template.spec", where)
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise InjectError(f"{where}: `spec.template.spec.containers` must be a non-empty list of containers")
    for n, container in enumerate(containers):
        if not isinstance(container.get("name"), str) or not container["name"]:
            raise InjectError(f"{where}: `spec.template.spec.containers[{n}]` has no name")
        if not isinstance(container.get("ports") or [], list):
            raise InjectError(f"{where}: `spec.template.spec.containers[{n}].ports` must be a list")
    others = [c for c in containers if c.get("name") != CONTAINER_NAME]
    if not others:
        raise InjectError(f"{where}: no model container besides {CONTAINER_NAME}")
    upstream = opts.upstream_port if opts.upstream_port is not None else _model_port(others, where)
    if upstream == opts.port:
        raise InjectError(f"{where}: the model listens on {upstream}; choose another --port for the sidecar")
    for container in others:
        for port in container.get("ports") or []:
            if isinstance(port, dict) and (port.get("containerPort") == opts.port or port.get("name") == PORT_NAME):
                raise InjectError(
                    f"{where}: container {container.get('name')!r} already uses port {port.get('containerPort')} "
                    f"({port.get('name') or 'unnamed'}); choose another --port"
                )
    pod["containers"] = _replace_named(containers, sidecar_container(opts, opts.model, upstream))
    volumes = pod.get("volumes") or []
    if not isinstance(volumes, list):
        raise InjectError(f"{where}: `spec.template.spec.volumes` must be a list")
    if not opts.token_secret:  # injected before with a token: its Secret volume goes with the mount
        volumes = [v for v in volumes if not (isinstance(v, dict) and v.get("name") == TOKEN_VOLUME)]
    for volume in sidecar_volumes(opts):
        volumes = _replace_named(volumes, volume)
    pod["volumes"] = volumes
    metadata = _own(template, "metadata", "spec.template.metadata", where, optional=True)
    labels = _own(metadata, "labels", "spec.template.metadata.labels", where, optional=True)
    labels[CAPTURE_LABEL[0]] = CAPTURE_LABEL[1]
    return doc, upstream


def _inject_isvc(doc: dict[str, Any], opts: InjectOptions, where: str, notes: list[str]) -> dict[str, Any]:
    name = _name(doc)
    if opts.model is not None and name != opts.model:
        raise InjectError(
            f"{where}: the monitor names KServe events by the InferenceService's name ({name!r}), "
            f"not --model {opts.model!r}; use --model {name} (and that name in the config) or leave --model out"
        )
    doc = copy.deepcopy(doc)
    spec = _mapping(doc.get("spec"), "spec", where)
    predictor = _mapping(spec.get("predictor"), "spec.predictor", where)
    url = opts.monitor.rstrip("/") + "/v1/cloudevents"
    old = predictor.get("logger")
    if isinstance(old, dict) and old.get("url") not in (None, url):
        notes.append(f"{where}: replaced the predictor's logger (was {old.get('url')!r})")
    predictor["logger"] = {"mode": "all", "url": url}
    if opts.version_label is not None:
        notes.append(f"{where}: --version-label is not used: KServe's logger names the revision that served each call "
                     "(serverless mode; docs/versions.md)")
    if opts.token_secret:
        notes.append(
            f"{where}: the KServe logger sends no Authorization header; with auth on, enable server.auth.cloudevents_path_token "
            f"and put a write token in the logger URL ({url}/<token>), see docs/deploy.md"
        )
    return doc


def _split(text: str) -> list[tuple[str, int]]:
    """The stream cut at its `---` / `...` lines: (document text, number of its first line)."""
    chunks: list[tuple[list[str], int]] = [([], 1)]
    for n, line in enumerate(text.splitlines(keepends=True), start=1):
        bare = line.rstrip("\r\n")
        if _SEPARATOR.match(bare) or _DOC_END.match(bare):
            chunks.append(([], n + 1))
        else:
            chunks[-1][0].append(line)
    return [("".join(lines), start) for lines, start in chunks]


def _load(text: str, first_line: int = 1) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.composer.ComposerError as exc:
        if "single document" in str(exc):
            raise _NotSplittable from None
        raise InjectError(_yaml_message(exc, first_line)) from None
    except yaml.YAMLError as exc:
        raise InjectError(_yaml_message(exc, first_line)) from None
    except RecursionError:  # PyYAML's composer recurses per nesting level: stdin may be hostile
        raise InjectError(f"invalid YAML in the document at line {first_line}: nested too deeply") from None


class _NotSplittable(Exception):
    """A document separator the line-based split did not recognise (e.g. `--- {a: 1}`)."""


def _yaml_message(exc: yaml.YAMLError, first_line: int) -> str:
    mark = getattr(exc, "problem_mark", None)
    at = f" at line {mark.line + first_line}, column {mark.column + 1}" if mark else ""
    return f"invalid YAML{at}: {getattr(exc, 'problem', None) or exc}"


def _documents(text: str) -> tuple[list[str | None], list[Any]]:
    """Document texts (None: must be re-emitted) and parsed documents, whitespace-only ones dropped."""
    try:
        pairs = [(chunk, _load(chunk, start)) for chunk, start in _split(text) if chunk.strip()]
        return [c for c, _ in pairs], [d for _, d in pairs]
    except _NotSplittable:
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise InjectError(_yaml_message(exc, 1)) from None
        except RecursionError:
            raise InjectError("invalid YAML: nested too deeply") from None
        return [None] * len(docs), docs


def _kind(doc: Any) -> tuple[str, str]:
    if not isinstance(doc, dict):
        return ("", "")
    return (str(doc.get("apiVersion", "")), str(doc.get("kind", "")))


def _name(doc: dict[str, Any]) -> Any:
    metadata = doc.get("metadata")
    return metadata.get("name") if isinstance(metadata, dict) else None


def _describe(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')} {_name(doc) or '?'}"


def _service_notes(docs: list[Any], pod_labels: dict[str, Any], model_container: dict[str, Any], model_port: int) -> list[str]:
    """Services in the input that select the model's pods but still target the model's own port."""
    port_names = [p.get("name") for p in model_container.get("ports") or [] if isinstance(p, dict) and p.get("containerPort") == model_port]
    notes = []
    for doc in docs:
        spec = doc.get("spec") if _kind(doc) == ("v1", "Service") else None
        if not isinstance(spec, dict) or not isinstance(spec.get("selector"), dict) or not spec["selector"]:
            continue
        if any(pod_labels.get(k) != v for k, v in spec["selector"].items()):
            continue
        for port in spec.get("ports") or []:
            if not isinstance(port, dict):
                continue
            target_port = port.get("targetPort", port.get("port"))
            if isinstance(target_port, (int, str)) and (target_port == model_port or target_port in port_names):
                notes.append(
                    f"Service {_name(doc)}: set targetPort of port {port.get('name') or port.get('port')} "
                    f"to {PORT_NAME} so requests pass through the sidecar"
                )
    return notes


def inject(text: str, opts: InjectOptions) -> InjectResult:
    """Inject driftwatch into the one Deployment or InferenceService of a YAML stream."""
    if len(text.encode("utf-8", errors="replace")) > MAX_INPUT_BYTES:
        raise InjectError(f"input is larger than {MAX_INPUT_BYTES // 1024**2} MiB; pass one manifest")
    chunks, docs = _documents(text)
    targets: list[tuple[int, int | None]] = []  # (document index, index inside a List or None)
    notes: list[str] = []
    for i, doc in enumerate(docs):
        items = doc.get("items") if _kind(doc)[1] == "List" and isinstance(doc.get("items"), list) else None
        for j, item in enumerate(items if items is not None else [doc]):
            api_kind = _kind(item)
            if api_kind[1] not in _WORKLOADS:
                continue
            if opts.name is not None and _name(item) != opts.name:
                continue
            if api_kind in (_DEPLOYMENT, _ISVC):
                targets.append((i, j if items is not None else None))
            elif api_kind[1] in ("Deployment", "InferenceService"):
                raise InjectError(
                    f"document {i + 1}: {api_kind[0]} {api_kind[1]} is not supported; "
                    f"use {_DEPLOYMENT[0]} Deployment or {_ISVC[0]} InferenceService"
                )
            else:
                notes.append(f"document {i + 1}: {_describe(item)} left unchanged (only Deployments and InferenceServices are injected)")
    if not targets:
        found = sorted({f"{k[0]} {k[1]}".strip() for k in map(_kind, docs) if k != ("", "")}) or ["no Kubernetes objects"]
        scope = f" named {opts.name!r}" if opts.name else ""
        raise InjectError(
            f"nothing to inject into: no apps/v1 Deployment or serving.kserve.io/v1beta1 InferenceService{scope} "
            f"in the input (found: {', '.join(found)})"
        )
    if len(targets) > 1:
        raise InjectError(f"{len(targets)} Deployments/InferenceServices in the input; pick one with --name")
    doc_i, item_j = targets[0]
    where = f"document {doc_i + 1}"
    item = docs[doc_i] if item_j is None else docs[doc_i]["items"][item_j]
    if _kind(item) == _DEPLOYMENT:
        new, upstream = _inject_deployment(item, opts, where)
        template = new["spec"]["template"]
        model = next(c for c in template["spec"]["containers"] if c.get("name") != CONTAINER_NAME)
        notes += _service_notes(docs, template["metadata"]["labels"], model, upstream)
    else:
        new = _inject_isvc(item, opts, where, notes)
    if item_j is None:
        docs[doc_i] = new
    else:
        docs[doc_i]["items"][item_j] = new
    chunks[doc_i] = None
    texts = [c if c is not None else _dump(d) for c, d in zip(chunks, docs, strict=True)]
    return InjectResult("---\n".join(t if t.endswith("\n") else t + "\n" for t in texts), notes)


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
