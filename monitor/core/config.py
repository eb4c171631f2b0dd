"""The typed driftwatch config: the single source of truth.

Everything driftwatch generates (metrics, dashboards, alert rules, chart files) and everything it
does at run time (windows, drift methods, retraining) is derived from one YAML file validated here.
Unknown keys are errors so a typo never silently falls back to a default.

One module on purpose, though long: the schema's classes refer to one another and are read
together. The grammars it applies live beside it: units in `units.py`, names in `names.py`, drift
methods in `methods.py`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.core import methods as drift_methods
from monitor.core import performance_metrics
from monitor.core.descriptors import INPUT_TOKENS, KINDS, OUTPUT_TOKENS, SEMANTIC, SEMANTIC_DIMENSIONS, TEXT_DESCRIPTORS
from monitor.core.methods import AutoMode
from monitor.core.names import DNS1123_LABEL_RE, DNS1123_SUBDOMAIN_RE, LABEL_NAME_RE, MODEL_NAME_RE
from monitor.core.units import parse_duration, parse_size

__all__ = [
    "AlertsConfig",
    "Config",
    "ConfigError",
    "DriftPolicy",
    "EmbeddingOptions",
    "FeatureConfig",
    "ModelConfig",
    "PerformanceConfig",
    "RetrainConfig",
    "TextOptions",
    "load_config",
    "parse_config",
]

# Method names come from the one drift-method registry; "auto" lets the engine choose.
NUMERIC_METHODS = ("auto", *drift_methods.names_for("numeric"))
CATEGORICAL_METHODS = ("auto", *drift_methods.names_for("categorical"))
EMBEDDING_METHODS = ("auto", *drift_methods.names_for("embedding"))
MAX_EMBEDDING_DIMENSIONS = 8192
"""Longest vector an embedding column may declare (the widest common embedding models give 3072 or
4096; a window of 100k such vectors is already 1.6 GB of float32)."""
P_VALUE_METHODS = drift_methods.P_VALUE_METHODS

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


class ConfigError(ValueError):
    """A config that cannot be used; `errors` holds (field path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]], source: str = "config") -> None:
        self.errors = errors
        self.source = source
        lines = "\n".join(f"  {path}: {msg}" for path, msg in errors)
        super().__init__(f"{source}: {len(errors)} error(s)\n{lines}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]
Severity = Literal["info", "warning", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FeatureSource(_Strict):
    """Where a feature's value sits in a payload.

    - `key`: field of an object instance (KServe v1 `{"instances": [{...}]}`) or plain JSON record.
    - `index`: position in a list instance (`{"instances": [[...]]}`) or column of a v2 tensor.
    - `input`: name of an Open Inference Protocol v2 input (or output) tensor; with `index` for a
      column of a 2-D tensor, without it for a 1-D tensor of one value per row.
    - `field`: a part of an OpenAI-compatible call (`protocol: openai`): `prompt` (the user's text)
      or `completion` (the model's answer), both `type: text` columns (docs/text.md); or
      `embedding` (an `/v1/embeddings` answer's vector, one record per input), a `type: embedding` column.
    With no source the feature is looked up by its name as `key`, and as `input` in v2 payloads.
    """

    key: str | None = None
    index: int | None = Field(default=None, ge=0)
    input: str | None = None
    field: Literal["prompt", "completion", "embedding"] | None = None

    @model_validator(mode="after")
    def _one_place(self) -> FeatureSource:
        if self.field is not None and (self.key is not None or self.index is not None or self.input is not None):
            raise ValueError("`field` names a part of an OpenAI-compatible call: use it alone")
        if self.key is not None and (self.index is not None or self.input is not None):
            raise ValueError("use either `key`, or `index` and/or `input`, not both")
        if self.key is None and self.index is None and self.input is None and self.field is None:
            raise ValueError("a source needs `key`, `index`, `input` or `field`")
        return self


class DriftMethodConfig(_Strict):
    """A drift method and its threshold; `auto` follows the policy's mode (see monitor.drift)."""

    method: str = "auto"
    threshold: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _p_value_below_one(self) -> DriftMethodConfig:
        """A test's threshold is a p-value: 5 (meaning 5%) would flag every window. `auto` may pick a test."""
        if self.threshold is not None and self.threshold >= 1 and (self.method in P_VALUE_METHODS or self.method == "auto"):
            which = "may resolve to a p-value test" if self.method == "auto" else "is a p-value test"
            raise ValueError(f"threshold {self.threshold:g} must be below 1: method {self.method!r} {which} (write 0.05 for 5%)")
        return self


MAX_TEXT_EXAMPLES = 20
"""A report shows at most this many example texts per text column: a page, not a data export."""


class TextOptions(_Strict):
    """How a `type: text` column is described (docs/text.md)."""

    tokens: bool | None = None
    """Add the token count the server reported in `usage` (`<column>.gen_ai.usage.input_tokens` for the
    prompt, `...output_tokens` for the completion); the reference file then holds that column too.
    Unset: on for a `field` source, off otherwise (other payloads carry no usage)."""
    json_expected: bool = False
    """The texts should be JSON: adds `<column>.json_valid`."""
    json_schema: dict[str, Any] | None = None
    """...and satisfy this JSON Schema (implies `json`; needs the `text` extra's jsonschema)."""
    max_vocabulary: int = Field(default=50_000, ge=1)
    """Words of the reference vocabulary the out-of-vocabulary share is measured against."""
    semantic: bool = False
    """Add `<column>.semantic`, the texts' sentence vectors (all-MiniLM-L6-v2, offline), an embedding
    column: semantic drift. Needs the offline model package (docs/text.md, "Semantic drift")."""
    examples: int = Field(default=5, strict=True)
    """Texts of a drifted window a report shows (PII masked), those furthest along its drifted
    descriptors; 0 turns them off, at most `MAX_TEXT_EXAMPLES` (docs/reports.md)."""

    @field_validator("examples")
    @classmethod
    def _examples(cls, v: int) -> int:
        if not 0 <= v <= MAX_TEXT_EXAMPLES:
            raise ValueError(f"examples must be between 0 (off) and {MAX_TEXT_EXAMPLES}, got {v}")
        return v


class EmbeddingOptions(_Strict):
    """A `type: embedding` column: every value is one vector of `dimensions` finite numbers."""

    dimensions: int = Field(ge=1, le=MAX_EMBEDDING_DIMENSIONS)


class FeatureConfig(_Strict):
    """A monitored column. `type: datetime` is a numeric column of date/times (ISO 8601 text or
    datetimes, compared as epoch seconds in UTC): it is stored as `type: numeric` with `datetime: true`,
    so the numeric drift policy and methods apply to it. `type: text` is a column of texts that the
    drift engine sees as its descriptor columns, `<name>.<descriptor>` (`descriptors()`, docs/text.md)."""

    name: str
    type: Literal["numeric", "categorical", "datetime", "text", "embedding"]
    text: TextOptions | None = None
    """Only for `type: text`; unset: the defaults of `TextOptions`."""
    embedding: EmbeddingOptions | None = None
    """Required for `type: embedding` (its vectors' length), refused elsewhere."""
    datetime: bool = False
    """Parse text values as ISO 8601 date/times; set by `type: datetime`."""
    source: FeatureSource | None = None
    drift: DriftMethodConfig | None = None
    critical: bool = False
    """Drift of a critical feature alone may trigger retraining."""
    min_value: float | None = None
    max_value: float | None = None
    """Valid range for data quality; defaults to the reference's range."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"invalid feature name {v!r}: letters, digits, _ . - (max 128), not starting with a digit")
        return v

    @model_validator(mode="before")
    @classmethod
    def _datetime_is_numeric(cls, data: Any) -> Any:
        """`type: datetime` means a numeric column whose text values are date/times."""
        if isinstance(data, dict) and data.get("type") == "datetime":
            if data.get("datetime") is False:
                raise ValueError("`type: datetime` contradicts `datetime: false`")
            return {**data, "type": "numeric", "datetime": True}
        return data

    @model_validator(mode="after")
    def _datetime_needs_numeric(self) -> FeatureConfig:
        if self.datetime and self.type != "numeric":
            raise ValueError(f"`datetime: true` needs `type: numeric` (or write `type: datetime`), not {self.type!r}")
        return self

    @model_validator(mode="after")
    def _text_fits(self) -> FeatureConfig:
        field = self.source.field if self.source is not None else None
        if self.type != "text":
            if self.text is not None:
                raise ValueError(f"`text` options are for `type: text` columns, not {self.type!r}")
            if field in ("prompt", "completion"):
                raise ValueError(f"`source.field: {field}` is a text: the column needs `type: text`, not {self.type!r}")
            return self
        if field == "embedding":
            raise ValueError("`source.field: embedding` is a vector: the column needs `type: embedding`, not 'text'")
        if self.drift is not None:
            raise ValueError("a text column has no `drift` of its own: its descriptors follow the model's numeric and categorical policies")
        if self.min_value is not None or self.max_value is not None:
            raise ValueError("`min_value`/`max_value` are for numeric columns, not `type: text`")
        if self.options.tokens and field is None:
            raise ValueError("`text.tokens: true` needs `source.field` (token counts come from an OpenAI-compatible answer's `usage`)")
        return self

    @model_validator(mode="after")
    def _embedding_fits(self) -> FeatureConfig:
        if self.type != "embedding":
            if self.embedding is not None:
                raise ValueError(f"`embedding` options are for `type: embedding` columns, not {self.type!r}")
            if self.source is not None and self.source.field == "embedding":
                raise ValueError(f"`source.field: embedding` is a vector: the column needs `type: embedding`, not {self.type!r}")
            return self
        if self.embedding is None:
            raise ValueError(f"a `type: embedding` column needs `embedding: {{dimensions: N}}`, the length of its vectors (1 to {MAX_EMBEDDING_DIMENSIONS})")
        if self.min_value is not None or self.max_value is not None:
            raise ValueError("`min_value`/`max_value` are for numeric columns, not `type: embedding`")
        if self.source is not None and self.source.key is None and self.source.index is not None:
            raise ValueError("an embedding column's vector is a whole value: `source.index` picks one number; "
                             "use `key`, an `input` tensor of shape [rows, dimensions], or `field: embedding`")
        return self

    @property
    def options(self) -> TextOptions:
        """The text options with their defaults resolved (`tokens` on for a `field` source)."""
        opts = self.text or TextOptions()
        if opts.tokens is None:
            opts = opts.model_copy(update={"tokens": self.source is not None and self.source.field is not None})
        return opts

    @property
    def token_descriptor(self) -> str | None:
        """The token-count descriptor of a text column that has one (prompt: input, completion: output)."""
        if self.type != "text" or not self.options.tokens or self.source is None:
            return None
        return INPUT_TOKENS if self.source.field == "prompt" else OUTPUT_TOKENS

    def descriptors(self) -> list[FeatureConfig]:
        """The columns the drift engine evaluates for this one: itself, or a text column's descriptors."""
        return [self] if self.type != "text" else list(self._text_descriptors)

    @functools.cached_property
    def _text_descriptors(self) -> tuple[FeatureConfig, ...]:
        """Built once per (frozen) column: `ModelConfig.columns` is read on every scrape and evaluation."""
        opts = self.options
        names = [*TEXT_DESCRIPTORS]
        if opts.json_expected or opts.json_schema is not None:
            names.append("json_valid")
        if self.token_descriptor is not None:
            names.append(self.token_descriptor)
        columns = [FeatureConfig(name=f"{self.name}.{d}", type=KINDS[d], critical=self.critical) for d in names]
        if opts.semantic:
            columns.append(FeatureConfig(name=f"{self.name}.{SEMANTIC}", type="embedding", critical=self.critical,
                                         embedding=EmbeddingOptions(dimensions=SEMANTIC_DIMENSIONS)))
        return tuple(columns)

    @model_validator(mode="after")
    def _range_ordered(self) -> FeatureConfig:
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError(f"min_value ({self.min_value:g}) must not exceed max_value ({self.max_value:g})")
        return self

    @model_validator(mode="after")
    def _method_fits_type(self) -> FeatureConfig:
        if self.drift is not None:
            allowed = {"numeric": NUMERIC_METHODS, "embedding": EMBEDDING_METHODS}.get(self.type, CATEGORICAL_METHODS)
            if self.drift.method not in allowed:
                raise ValueError(f"method {self.drift.method!r} is not available for {self.type} features; choose one of {', '.join(allowed)}")
        return self

    def resolved_source(self) -> FeatureSource:
        return self.source or FeatureSource(key=self.name)


class MlflowReference(_Strict):
    """A reference logged as an artifact of the run behind an MLflow model version (docs/mlflow.md)."""

    model: str = Field(min_length=1)
    """The registered model's name in MLflow."""
    version: int | None = Field(default=None, ge=1)
    alias: str | None = Field(default=None, min_length=1)
    artifact: str = Field(min_length=1)
    """The artifact's path inside the run (`reference/train.csv`): a CSV or Parquet file."""

    @model_validator(mode="after")
    def _one_selector(self) -> MlflowReference:
        if (self.version is None) == (self.alias is None):
            raise ValueError("set exactly one of `version` and `alias` (which model version holds the reference?)")
        if self.artifact.startswith("/") or ".." in self.artifact.split("/"):
            raise ValueError(f"`artifact` {self.artifact!r} must be a relative path inside the run's artifacts")
        return self

    @property
    def selector(self) -> str:
        """`version 3` or `alias champion`, for messages."""
        return f"version {self.version}" if self.version is not None else f"alias {self.alias}"


class ReferenceConfig(_Strict):
    """The reference dataset: a CSV or Parquet file with a column per feature and output, given as a
    `path` or as an artifact of an MLflow model version (`mlflow`, with the top-level `mlflow` section)."""

    path: Path | None = None
    mlflow: MlflowReference | None = None
    format: Literal["auto", "csv", "parquet"] = "auto"
    max_rows: int | None = Field(default=None, gt=0)
    """Sample this many rows (seeded) from a larger reference."""

    @model_validator(mode="after")
    def _one_source(self) -> ReferenceConfig:
        if (self.path is None) == (self.mlflow is None):
            raise ValueError("set exactly one of `path` (a file) and `mlflow` (a model version's artifact)")
        return self

    @property
    def source(self) -> str:
        """The file's path, or the MLflow model URI with the artifact (`models:/churn@champion#reference.csv`)."""
        if self.mlflow is not None:
            m = self.mlflow
            at = f"/{m.version}" if m.version is not None else f"@{m.alias}"
            return f"models:/{m.model}{at}#{m.artifact}"
        return str(self.path)

    def file_format(self, name: str) -> Literal["csv", "parquet"]:
        """The format of the file `name` (`format`, or its suffix when `auto`)."""
        if self.format != "auto":
            return self.format
        return "parquet" if name.lower().endswith((".parquet", ".pq")) else "csv"


class WindowConfig(_Strict):
    """A sliding window: the last `records` records and/or those of the last `duration`, every `step`."""

    records: int | None = Field(default=1000, gt=0)
    duration: Duration | None = None
    step: int | None = Field(default=None, gt=0)
    """Evaluate every `step` new records (default: records // 2)."""
    step_duration: Duration | None = None
    min_records: int = Field(default=100, ge=1)
    """Windows with fewer records are not evaluated."""

    @model_validator(mode="after")
    def _bounded(self) -> WindowConfig:
        if self.records is None and self.duration is None:
            raise ValueError("a window needs `records` and/or `duration`")
        if self.records is not None and self.step is not None and self.step > self.records:
            raise ValueError(f"step ({self.step}) must not exceed records ({self.records})")
        if self.records is not None and self.min_records > self.records:
            raise ValueError(f"min_records ({self.min_records}) must not exceed records ({self.records})")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be > 0")
        return self

    @property
    def effective_step(self) -> int:
        if self.step is not None:
            return self.step
        return max(1, (self.records or 1000) // 2)


class DriftPolicy(_Strict):
    """How drift is decided for a model's features (docs/drift-methods.md: the defaults and their rates)."""

    numeric: DriftMethodConfig = DriftMethodConfig()
    categorical: DriftMethodConfig = DriftMethodConfig()
    auto: AutoMode = "driftwatch"
    """`driftwatch`: permutation tests at the window's size, level 0.01, with an effect-size gate (on
    unchanged data at most 1% of windows flag any feature); `evidently`: Evidently's
    DataDriftPreset choice exactly (KS/chi-square/z up to `large_reference_rows`, fixed distances above)."""
    dataset_drift_share: Ratio = 0.5
    alpha: float | None = Field(default=None, gt=0, lt=1)
    """The tests' level (BH-adjusted p-values below it drift); unset: 0.01 in driftwatch mode, 0.05 in evidently mode."""
    min_effect_numeric: float = Field(default=0.1, ge=0)
    """driftwatch mode and calibration: smallest numeric shift worth flagging, in normed Wasserstein."""
    min_effect_categorical: float = Field(default=0.03, ge=0)
    """driftwatch mode and calibration: smallest shift of category shares worth flagging (total variation)."""
    multiple_testing: Literal["bh", "none"] = "bh"
    """Benjamini-Hochberg across the features of a window where p-values decide."""
    large_reference_rows: int = Field(default=1000, ge=1)
    """evidently mode: `auto` uses p-value tests up to this many reference rows, distances above."""
    psi_bins: int = Field(default=10, ge=2, le=1000)

    @model_validator(mode="after")
    def _methods(self) -> DriftPolicy:
        if self.numeric.method not in NUMERIC_METHODS:
            raise ValueError(f"numeric.method {self.numeric.method!r} unknown; choose one of {', '.join(NUMERIC_METHODS)}")
        if self.categorical.method not in CATEGORICAL_METHODS:
            raise ValueError(f"categorical.method {self.categorical.method!r} unknown; choose one of {', '.join(CATEGORICAL_METHODS)}")
        return self


class FalseAlarmBudget(_Strict):
    """At most `alarms` false alerts per `period` (e.g. 1 per 30d) for one model."""

    alarms: float = Field(default=1.0, gt=0)
    period: Duration = 30 * 86400.0
    min_effect_numeric: float | None = Field(default=None, ge=0)
    """Smallest shift worth an alert, in normed Wasserstein (W1 / reference std); unset: the drift policy's."""
    min_effect_categorical: float | None = Field(default=None, ge=0)
    """Smallest shift worth an alert, in total variation distance of category shares; unset: the drift policy's."""
    resamples: int = Field(default=500, ge=50, le=100_000)
    seed: int = 0
    expected_records_per_second: float | None = Field(default=None, gt=0)
    """Typical traffic; needed when how often (or how large) windows are depends on it: a `records`
    window without `step_duration`, or a time-only window (docs/calibration.md)."""


class DatasetDriftAlert(_Strict):
    warning: Ratio = 0.3
    critical: Ratio = 0.5
    for_: Duration = Field(default=900.0, alias="for")

    @model_validator(mode="after")
    def _ordered(self) -> DatasetDriftAlert:
        if self.warning > self.critical:
            raise ValueError(f"warning ({self.warning}) must not exceed critical ({self.critical})")
        return self


class SimpleAlert(_Strict):
    enabled: bool = True
    severity: Severity = "warning"
    for_: Duration = Field(default=900.0, alias="for")


class DataQualityAlert(SimpleAlert):
    missing_ratio: Ratio = 0.1
    out_of_range_ratio: Ratio = 0.05
    new_category_ratio: Ratio = 0.05


class PerformanceAlert(_Strict):
    """DriftwatchPerformanceDegraded: the estimated value warns first, the realized one confirms."""

    enabled: bool = True
    for_: Duration = Field(default=1800.0, alias="for")
    estimated_severity: Severity = "warning"
    realized_severity: Severity = "critical"


class StaleAlert(SimpleAlert):
    max_age: Duration = 1800.0


class AlertsConfig(_Strict):
    dataset_drift: DatasetDriftAlert = DatasetDriftAlert()
    feature_drift: SimpleAlert = SimpleAlert.model_validate({"for": 1800.0})
    prediction_drift: SimpleAlert = SimpleAlert.model_validate({"for": 1800.0})
    data_quality: DataQualityAlert = DataQualityAlert()
    performance_degraded: PerformanceAlert = PerformanceAlert()
    no_traffic: SimpleAlert = SimpleAlert.model_validate({"for": 900.0})
    sidecar_dropping: SimpleAlert = SimpleAlert.model_validate({"for": 300.0})
    evaluation_stale: StaleAlert = StaleAlert.model_validate({"for": 300.0})
    retrain_failed: SimpleAlert = SimpleAlert.model_validate({"for": 0.0})
    monitor_down: SimpleAlert = SimpleAlert.model_validate({"severity": "critical", "for": 300.0})
    retrain_on_critical: bool = True
    """Label the critical dataset-drift alert `driftwatch_action="retrain"` (Alertmanager path)."""
    runbook_url: str = "https://github.com/driftwatch/driftwatch/blob/main/docs/runbooks.md"
    job_label: str = "driftwatch"
    """The `job` label Prometheus gives the monitor's scrape target."""


class LocalLauncher(_Strict):
    command: list[str] = Field(min_length=1)
    cwd: Path | None = None
    timeout: Duration = 3600.0
    log_dir: Path | None = None
    """Unset: `retrain-logs` beside the store (`Config.local_log_dir`), which is writable wherever
    the store is, e.g. the chart's data volume; the config file's folder may be read-only."""


class KubernetesLauncher(_Strict):
    namespace: str = "default"
    template: dict[str, Any]
    """A batch/v1 Job manifest; driftwatch adds labels, annotations, env and safe defaults."""
    backoff_limit: int = Field(default=2, ge=0)
    active_deadline: Duration = 6 * 3600.0
    ttl_after_finished: Duration = 7 * 86400.0

    @field_validator("template")
    @classmethod
    def _is_job(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("kind", "Job") != "Job" or v.get("apiVersion", "batch/v1") != "batch/v1":
            raise ValueError("template must be a batch/v1 Job")
        containers = (((v.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("template needs spec.template.spec.containers with at least one container")
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not all(isinstance(c.get(k), str) and c.get(k) for k in ("name", "image")):
                raise ValueError(f"template container {i} needs a `name` and an `image` (strings)")
        return v


class HttpAuth(_Strict):
    """Credentials for a pipeline API, read at each request (so rotated tokens are picked up).

    A bearer token from `token_file` or `token_env`, or basic auth with `username` and a password
    from `password_file` or `password_env`; nothing set means no Authorization header."""

    token_file: Path | None = None
    token_env: str | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> HttpAuth:
        bearer = self.token_file is not None or self.token_env is not None
        basic = self.username is not None or self.password_file is not None or self.password_env is not None
        if bearer and basic:
            raise ValueError("use either a bearer token (`token_file`/`token_env`) or basic auth (`username` + password), not both")
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("set one of `token_file` and `token_env`")
        if basic and (self.username is None or (self.password_file is None) == (self.password_env is None)):
            raise ValueError("basic auth needs `username` and exactly one of `password_file` and `password_env`")
        return self


def _http_url(v: str) -> str:
    if not re.match(r"^https?://[^/\s]+", v):
        raise ValueError(f"{v!r} is not an http(s) URL")
    return v.rstrip("/")


HttpUrl = Annotated[str, BeforeValidator(_http_url)]


class ArgoLauncher(_Strict):
    """A Workflow submitted from a WorkflowTemplate through the Kubernetes API (docs/retraining.md)."""

    namespace: str = "default"
    workflow_template: str
    """The WorkflowTemplate's name (or a ClusterWorkflowTemplate's, with `cluster_scope`)."""
    cluster_scope: bool = False
    service_account: str | None = None
    poll_interval: Duration = Field(default=30.0, gt=0)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not DNS1123_LABEL_RE.match(v):
            raise ValueError(f"namespace {v!r} is not a Kubernetes namespace name")
        return v

    @field_validator("workflow_template")
    @classmethod
    def _template(cls, v: str) -> str:
        if not DNS1123_SUBDOMAIN_RE.match(v):
            raise ValueError(f"workflow_template {v!r} is not a Kubernetes object name (DNS-1123 subdomain)")
        return v


class KubeflowLauncher(_Strict):
    """A run of a pipeline version through the Kubeflow Pipelines v2beta1 REST API."""

    host: HttpUrl
    """The KFP API server, e.g. http://ml-pipeline.kubeflow:8888 (the path prefix `/apis/v2beta1` is added)."""
    pipeline_id: str = Field(min_length=1)
    pipeline_version_id: str = Field(min_length=1)
    experiment_id: str | None = None
    namespace: str | None = None
    """Multi-user KFP: the profile namespace the runs list is scoped to."""
    service_account: str | None = None
    auth: HttpAuth = HttpAuth()
    poll_interval: Duration = Field(default=30.0, gt=0)


class AirflowLauncher(_Strict):
    """A DAG run through Airflow's stable REST API (v1: Airflow 2; v2: Airflow 3)."""

    host: HttpUrl
    """The Airflow webserver / API server base URL, e.g. http://airflow-webserver.airflow:8080."""
    dag_id: str = Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.\-]+$")
    api_version: Literal["v1", "v2"] = "v1"
    auth: HttpAuth = HttpAuth()
    poll_interval: Duration = Field(default=30.0, gt=0)


class WebhookLauncher(_Strict):
    """A signed JSON POST for any other system (docs/retraining.md, "The webhook launcher")."""

    url: HttpUrl
    secret_file: Path | None = None
    secret_env: str | None = None
    """The HMAC-SHA256 key; exactly one of `secret_file` and `secret_env`."""
    status_url: str | None = None
    """Optional: a URL with `{name}` (the run name) answering `{"state": ...}`, to follow completion."""
    auth: HttpAuth = HttpAuth()
    poll_interval: Duration = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _secret(self) -> WebhookLauncher:
        if (self.secret_file is None) == (self.secret_env is None):
            raise ValueError("set exactly one of `secret_file` and `secret_env` (the HMAC key)")
        if self.status_url is not None:
            _http_url(self.status_url)
            if "{name}" not in self.status_url:
                raise ValueError("status_url must contain `{name}` (replaced by the run name)")
        return self


PIPELINE_LAUNCHERS = ("argo", "kubeflow", "airflow", "webhook")


class RetrainBudget(_Strict):
    count: int = Field(default=3, ge=1)
    period: Duration = 7 * 86400.0


class RetrainConfig(_Strict):
    enabled: bool = True
    dry_run: bool = False
    launcher: Literal["local", "kubernetes", "argo", "kubeflow", "airflow", "webhook"] = "local"
    consecutive_windows: int = Field(default=3, ge=1)
    min_records: int = Field(default=100, ge=1)
    enter_share: Ratio = 0.5
    """Dataset drift share that counts a window as drifted."""
    exit_share: Ratio = 0.3
    """Share below which a drifted streak ends (hysteresis)."""
    on_performance: Literal["none", "estimated", "realized", "either"] = "none"
    """Count a window whose performance degraded (estimated before labels, realized after, or
    either) as drifted, so degradation alone can build the streak (needs the model's `performance`)."""
    cooldown: Duration = 6 * 3600.0
    max_active: int = Field(default=1, ge=1)
    budget: RetrainBudget = RetrainBudget()
    local: LocalLauncher | None = None
    kubernetes: KubernetesLauncher | None = None
    argo: ArgoLauncher | None = None
    kubeflow: KubeflowLauncher | None = None
    airflow: AirflowLauncher | None = None
    webhook: WebhookLauncher | None = None

    def pipeline(self) -> ArgoLauncher | KubeflowLauncher | AirflowLauncher | WebhookLauncher | None:
        """The section of the chosen pipeline launcher (None for `local` and `kubernetes`)."""
        return getattr(self, self.launcher) if self.launcher in PIPELINE_LAUNCHERS else None

    @model_validator(mode="after")
    def _launcher_configured(self) -> RetrainConfig:
        if self.exit_share > self.enter_share:
            raise ValueError(f"exit_share ({self.exit_share}) must not exceed enter_share ({self.enter_share})")
        if self.enabled and self.launcher == "local" and self.local is None:
            raise ValueError("launcher is `local` but no `local.command` is configured")
        if self.enabled and self.launcher == "kubernetes" and self.kubernetes is None:
            raise ValueError("launcher is `kubernetes` but no `kubernetes.template` is configured")
        if self.enabled and self.launcher in PIPELINE_LAUNCHERS and getattr(self, self.launcher) is None:
            raise ValueError(f"launcher is `{self.launcher}` but no `{self.launcher}` section is configured")
        return self


class ResourcesConfig(_Strict):
    """Which pods run the model, for CPU, memory and GPU beside drift."""

    namespace: str = "default"
    selector: dict[str, str] = Field(default_factory=dict)
    """Pod label selector, e.g. {app: iris}."""
    pid_file: Path | None = None
    """Locally: a file holding the model server's PID (psutil)."""

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not DNS1123_LABEL_RE.match(v):
            raise ValueError(f"namespace {v!r} is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)")
        return v

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: dict[str, str]) -> dict[str, str]:
        """Checked here because the selector is sent as `key=value,...`: a comma in a value would add requirements."""
        for key, value in v.items():
            prefix, slash, name = key.rpartition("/")
            if slash and not (len(prefix) <= 253 and DNS1123_SUBDOMAIN_RE.match(prefix)):
                raise ValueError(f"label key {key!r}: prefix {prefix!r} is not a DNS subdomain (lowercase alphanumerics, '-' and '.', at most 253)")
            if not LABEL_NAME_RE.match(name):
                raise ValueError(f"label key {key!r}: name {name!r} must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric")
            if value and not LABEL_NAME_RE.match(value):
                raise ValueError(f"label {key!r}: value {value!r} must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric")
        return v


class PerformanceConfig(_Strict):
    """Model performance from delayed labels, and estimated before they arrive (docs/performance.md).

    The prediction and the class probabilities are output columns; the reference file carries the
    true label of each row in `label_column`, from which the reference performance, the thresholds
    and the estimator's calibration are computed."""

    task: performance_metrics.Task
    prediction: str
    """The output column holding the predicted class (classification) or value (regression)."""
    probabilities: dict[str, str] = Field(default_factory=dict)
    """Class label → numeric output column with its predicted probability. Binary models may name
    only the positive class (its complement is the other class's); empty: no ROC AUC, log loss,
    calibration error or estimation before labels."""
    label_column: str = "label"
    """The reference file's column of true labels."""
    metric: str | None = None
    """The headline metric that decides degradation (alerts, retraining); unset: roc_auc with
    probabilities, accuracy without, mae for regression."""
    label_delay: Duration = 14 * 86400.0
    """Labels for predictions older than this are not joined (counted `too_late`); events are kept
    at least this long for the join, whatever `server.store.max_age` says."""
    false_alarm_rate: float = Field(default=0.01, gt=0, lt=0.5)
    """Share of windows of unchanged data allowed to flag degradation (one-sided, per window)."""
    min_labels: int = Field(default=50, ge=10)
    """A window's realized performance is judged only with at least this many labelled records."""
    resamples: int = Field(default=1000, ge=100, le=100_000)
    """Bootstrap resamples of the reference behind each threshold."""
    seed: int = 0

    @field_validator("probabilities")
    @classmethod
    def _classes(cls, v: dict[str, str]) -> dict[str, str]:
        if len(set(v.values())) != len(v):
            raise ValueError("two classes name the same probability column")
        return v

    @model_validator(mode="after")
    def _metric_fits(self) -> PerformanceConfig:
        if self.task == "regression" and self.probabilities:
            raise ValueError("`probabilities` are for classification, not regression")
        allowed = performance_metrics.names_for(self.task, probabilities=bool(self.probabilities))
        if self.metric is not None and self.metric not in allowed:
            extra = ""
            known = performance_metrics.METRICS.get(self.metric)
            if known is not None and known.task == self.task and known.needs_probabilities:
                extra = " (it needs `probabilities`)"
            raise ValueError(f"metric {self.metric!r} is not available for this {self.task} model{extra}; choose one of {', '.join(allowed)}")
        return self

    @property
    def headline(self) -> str:
        """The metric that decides degradation."""
        return self.metric or performance_metrics.default_metric(self.task, probabilities=bool(self.probabilities))


class VersionsConfig(_Strict):
    """Model versions judged apart (docs/versions.md): each version the traffic names gets its own
    windows, results and series; at most `max_tracked` at once (the least recently seen is retired
    when another appears), which bounds the `version` label's values."""

    max_tracked: int = Field(default=4, ge=1, le=32)
    idle_after: Duration = 3600.0
    """A version without events for this long no longer serves: it cannot supersede an older one."""

    @field_validator("idle_after")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("idle_after must be > 0")
        return v


class UnknownModel(KeyError):
    """Traffic or a request naming no configured model (`args[0]`: what it named), or a name several
    namespaces share without saying which (`reason`)."""

    def __init__(self, named: str, reason: str | None = None) -> None:
        super().__init__(named)
        self.named = named
        self.reason = reason or f"no model {named!r} is configured"


class ModelConfig(_Strict):
    name: str
    namespace: str | None = None
    """The Kubernetes namespace the model serves in. Unset, the model is known by its name alone (traffic
    from any namespace); set, its identity is (namespace, name), so two InferenceServices of one name in two
    namespaces are two models (docs/metrics.md#namespaces): their events, windows, series, reports and
    retraining never mix. Required for every model whose name another model shares."""
    protocol: Literal["auto", "kserve_v1", "v2", "json", "openai"] = "auto"
    """`openai`: OpenAI-compatible chat and completions calls (vLLM, TGI, KServe's Hugging Face
    runtime); its columns are `type: text` with `source.field` (docs/text.md)."""
    features: list[FeatureConfig] = Field(min_length=1)
    outputs: list[FeatureConfig] = Field(default_factory=list)
    reference: ReferenceConfig
    window: WindowConfig = WindowConfig()
    drift: DriftPolicy | None = None
    false_alarm_budget: FalseAlarmBudget | None = None
    alerts: AlertsConfig | None = None
    retrain: RetrainConfig | None = None
    resources: ResourcesConfig = ResourcesConfig()
    report_features: list[str] | None = None
    performance: PerformanceConfig | None = None
    """Performance from delayed labels (`POST /v1/labels`) and estimated before they arrive."""
    versions: VersionsConfig = VersionsConfig()
    """How many versions of the model are judged side by side (docs/versions.md)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not MODEL_NAME_RE.match(v):
            raise ValueError(f"invalid model name {v!r}: lowercase letters, digits and '-' (a DNS label, max 63)")
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str | None) -> str | None:
        if v is not None and not DNS1123_LABEL_RE.match(v):
            raise ValueError(f"invalid namespace {v!r}: a Kubernetes namespace is a DNS label "
                             "(lowercase letters, digits and '-', max 63)")
        return v

    @model_validator(mode="before")
    @classmethod
    def _pods_in_its_namespace(cls, data: Any) -> Any:
        """A model with a namespace has its pods there unless `resources.namespace` says otherwise."""
        if isinstance(data, dict) and isinstance(data.get("namespace"), str):
            resources = data.get("resources")
            if resources is None or (isinstance(resources, dict) and "namespace" not in resources):
                data = {**data, "resources": {**(resources or {}), "namespace": data["namespace"]}}
        return data

    @property
    def key(self) -> str:
        """The model's identity inside driftwatch (store rows, windows, Kafka keys): its name, or
        `namespace/name` when it has a namespace (neither may contain '/', so keys never collide)."""
        return self.name if self.namespace is None else f"{self.namespace}/{self.name}"

    @property
    def matcher(self) -> str:
        """PromQL label matchers selecting the model's series: `model="x"`, after `namespace="ns"` when it
        has one (its series carry that label; a model without one has the scrape target's)."""
        own = f'model="{self.name}"'
        return own if self.namespace is None else f'namespace="{self.namespace}",{own}'

    @property
    def slug(self) -> str:
        """The key as one file-name or uid part: `name`, or `namespace.name` (neither a namespace nor a
        name may hold a '.', so slugs never collide)."""
        return self.name if self.namespace is None else f"{self.namespace}.{self.name}"

    @property
    def display(self) -> str:
        """How people read the model's name: `name`, or `name (namespace)`."""
        return self.name if self.namespace is None else f"{self.name} ({self.namespace})"

    @model_validator(mode="after")
    def _unique_columns(self) -> ModelConfig:
        seen: set[str] = set()
        for col in (*self.features, *self.outputs):
            if col.name in seen:
                raise ValueError(f"column {col.name!r} is defined twice (features and outputs share one namespace)")
            seen.add(col.name)
        for col in (*self.features, *self.outputs):
            if col.type == "text":
                for d in col.descriptors():
                    if d.name in seen:
                        raise ValueError(f"column {d.name!r} is defined twice: it is also a descriptor of text column {col.name!r}")
                    seen.add(d.name)
        return self

    @model_validator(mode="after")
    def _openai_fields(self) -> ModelConfig:
        """An OpenAI-compatible call has a prompt and a completion, no keys or tensors; `field` means nothing elsewhere."""
        for col in (*self.features, *self.outputs):
            field = col.source.field if col.source is not None else None
            if self.protocol == "openai" and field is None:
                raise ValueError(f"column {col.name!r}: a `protocol: openai` model reads `source: {{field: prompt}}` "
                                 "or `{field: completion}` (`type: text`), or `{field: embedding}` (`type: embedding`)")
            if self.protocol != "openai" and field is not None:
                raise ValueError(f"column {col.name!r}: `source.field` needs `protocol: openai`, not {self.protocol!r}")
        return self

    @model_validator(mode="after")
    def _performance_columns(self) -> ModelConfig:
        perf = self.performance
        if perf is None:
            return self
        outputs = {o.name: o for o in self.outputs}
        prediction = outputs.get(perf.prediction)
        if prediction is None:
            raise ValueError(f"performance.prediction {perf.prediction!r} is not an output column (outputs: {', '.join(outputs) or 'none'})")
        if prediction.type in ("embedding", "text"):
            kind = "an embedding" if prediction.type == "embedding" else "a text"
            raise ValueError(f"performance.prediction {perf.prediction!r} is {kind} column: a prediction is a class or a number")
        if perf.task == "regression" and prediction.type != "numeric":
            raise ValueError(f"performance.prediction {perf.prediction!r} must be a numeric output for regression")
        for cls_name, column in perf.probabilities.items():
            out = outputs.get(column)
            if out is None or out.type != "numeric":
                raise ValueError(f"performance.probabilities[{cls_name!r}]: {column!r} is not a numeric output column")
        if perf.label_column in {c.name for c in self.columns}:
            raise ValueError(f"performance.label_column {perf.label_column!r} is also a feature or output column")
        return self

    @model_validator(mode="after")
    def _budget_knows_its_pace(self) -> ModelConfig:
        """A budget per period needs the number of windows per period (and their size), which the
        traffic rate sets unless the window has `records`, `step` and `step_duration` all fixed."""
        budget, w = self.false_alarm_budget, self.window
        vectors = [c.name for c in self.columns if c.type == "embedding"]
        if budget is not None and vectors:
            raise ValueError(
                f"false_alarm_budget calibrates numeric and categorical columns; embedding column(s) {', '.join(vectors)} "
                "are decided by their test's level (drift.alpha), which already holds their false-alarm rate: drop the budget"
            )
        timed = w.records is not None and w.step is not None and w.step_duration is not None
        if budget is not None and budget.expected_records_per_second is None and not timed:
            raise ValueError(
                "false_alarm_budget needs expected_records_per_second (the model's typical traffic), "
                "or a window with records, step and step_duration: how many windows a period holds depends on it"
            )
        return self

    @property
    def columns(self) -> list[FeatureConfig]:
        """Features then outputs, text columns as their descriptors: everything the drift engine evaluates."""
        return [*self.drift_features, *self.drift_outputs]

    @property
    def drift_features(self) -> list[FeatureConfig]:
        """The features as the drift engine sees them (a text column as its descriptor columns)."""
        return [d for c in self.features for d in c.descriptors()]

    @property
    def drift_outputs(self) -> list[FeatureConfig]:
        return [d for c in self.outputs for d in c.descriptors()]

    @property
    def text_columns(self) -> list[FeatureConfig]:
        """The `type: text` features and outputs (the reference file holds their raw texts)."""
        return [c for c in (*self.features, *self.outputs) if c.type == "text"]


class StoreConfig(_Strict):
    path: Path = Path("driftwatch.db")
    max_age: Duration = 7 * 86400.0
    """Events, evaluations and retraining decisions older than this are deleted (every 60 s)."""
    max_bytes: Size = 1024**3
    """The store's file plus its WAL stay within this plus a slack of twice the larger of
    `max_bytes/16` (between 64 KiB and 4 MiB) and the largest ingest batch, oldest events deleted
    first, at every ingest commit (docs/deploy.md, "Disk"). Keep it below the volume's size minus that slack."""
    synchronous: Literal["full", "normal"] = "full"
    """`full` fsyncs every ingest commit before the ack; `normal` (WAL) survives process crashes but
    may lose the last acknowledged batches on power loss (benchmarks/ingest.py measures both)."""


class AuthConfig(_Strict):
    """Bearer tokens from files (a mounted Secret): one or more per file, one a line, `#` comments.

    Files are re-read when they change (checked at most once a second), so a rotated Secret takes
    effect without a restart and old and new tokens both work while both are in the file."""

    token_files: list[Path] = Field(default_factory=list)
    """Write tokens (ingest, CloudEvents, Alertmanager; they allow reads too)."""
    read_token_files: list[Path] = Field(default_factory=list)
    """Read-only tokens (JSON API, reports, OpenAPI; `/metrics` when `protect_metrics`)."""
    protect_metrics: bool = False
    """`/metrics` needs a read (or write) token too; the ServiceMonitor must then carry one."""
    cloudevents_path_token: bool = False
    """Accept a write token as the last path segment, `POST /v1/cloudevents/<token>`, for KServe's
    payload logger, which cannot send headers (the token is then in the logger URL: see docs/deploy.md)."""


class TlsConfig(_Strict):
    cert_file: Path
    """PEM certificate (chain) of the listener."""
    key_file: Path
    """PEM private key of `cert_file`."""


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    """Base URL users reach the monitor at, for report links in alerts and Jobs."""
    auth_token_env: str | None = None
    """Name of the environment variable holding a write token (beside `auth.token_files`); unset and
    no token files means no auth. Set but empty (and no token files) refuses to start."""
    auth: AuthConfig = AuthConfig()
    tls: TlsConfig | None = None
    """Serve HTTPS with this certificate and key (e.g. from a Secret); none serves plain HTTP."""
    max_body_bytes: Size = 10 * 1024**2
    max_reference_bytes: Size = 64 * 1024**2
    """Largest reference body `PUT /v1/models/{model}/reference` takes (CSV or Parquet; docs/references.md)."""
    cloudevents_join_timeout: Duration = 60.0
    evaluation_interval: Duration = 5.0
    store: StoreConfig = StoreConfig()


class MetricsConfig(_Strict):
    max_features_per_model: int = Field(default=200, ge=1, le=10_000)
    """Cardinality cap on the `feature` label; features beyond it are evaluated but not exported."""
    feature_allowlist: list[str] | None = None
    """If set, only these features get per-feature series (applied before the cap)."""


class KafkaSecurity(_Strict):
    """SASL and TLS for the Kafka clients; secrets come from files or the environment (a mounted Secret)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username_env: str | None = None
    """Environment variable holding the SASL user name."""
    password_env: str | None = None
    """Environment variable holding the SASL password."""
    ca_file: Path | None = None
    """PEM CA bundle the brokers' certificates are checked against (the system's without one)."""
    cert_file: Path | None = None
    """Client certificate for mutual TLS."""
    key_file: Path | None = None

    def client_settings(self, username: str | None = None, password: str | None = None) -> dict[str, object]:
        """librdkafka's security settings; the SASL credentials given, else read from `username_env` and
        `password_env`. Secrets are in it: never log it."""
        out: dict[str, object] = {"security.protocol": self.protocol}
        if self.sasl_mechanism is not None:
            assert self.username_env and self.password_env  # checked below
            out |= {"sasl.mechanism": self.sasl_mechanism,
                    "sasl.username": username if username is not None else os.environ.get(self.username_env, ""),
                    "sasl.password": password if password is not None else os.environ.get(self.password_env, "")}
        for key, path in (("ssl.ca.location", self.ca_file), ("ssl.certificate.location", self.cert_file),
                          ("ssl.key.location", self.key_file)):
            if path is not None:
                out[key] = str(path)
        return out

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSecurity:
        sasl = self.protocol.startswith("SASL")
        if sasl and not (self.sasl_mechanism and self.username_env and self.password_env):
            raise ValueError(f"protocol {self.protocol} needs sasl_mechanism, username_env and password_env")
        if not sasl and self.sasl_mechanism:
            raise ValueError(f"sasl_mechanism is set but protocol {self.protocol} does not use SASL")
        return self


class KafkaConfig(_Strict):
    """The event log of fleet mode: one topic, keyed by model (one model's events in one partition)."""

    bootstrap_servers: str = Field(min_length=1)
    topic: str = Field(default="driftwatch-events", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int = Field(default=12, ge=1)
    """The topic's partition count, the fleet's most replicas: create the topic with it (docs/scale-out.md)."""
    group_id: str = Field(default="driftwatch", min_length=1)
    replication_factor: int = Field(default=3, ge=1)
    """What the topic is expected to be created with (`min.insync.replicas` one less), checked at start-up."""
    security: KafkaSecurity = KafkaSecurity()
    produce_timeout: Duration = 10.0
    """An ingest request waits this long for the brokers' acknowledgement (`acks=all`) before a 503."""


class PostgresConfig(_Strict):
    """Shared state of fleet mode (evaluations, checkpoints, retraining, leases)."""

    dsn_env: str = "DRIFTWATCH_POSTGRES_DSN"
    """Environment variable holding the libpq connection string (from a Secret): never in the config file."""
    lease_seconds: Duration = 15.0
    """How long the retraining controller's lease lasts without renewal before another replica takes it."""


class FleetConfig(_Strict):
    """Fleet mode: replicas as one Kafka consumer group over shared PostgreSQL (docs/scale-out.md).
    Without this section driftwatch is one process on one SQLite file."""

    kafka: KafkaConfig
    postgres: PostgresConfig = PostgresConfig()


class Defaults(_Strict):
    drift: DriftPolicy = DriftPolicy()
    alerts: AlertsConfig = AlertsConfig()
    retrain: RetrainConfig | None = None
    max_active_jobs_total: int = Field(default=4, ge=1)


class ModelRouter:
    """Traffic's (name, namespace) to the key of the configured model it belongs to, in O(1).

    A model with a namespace takes traffic naming its namespace, or naming none when no other model
    shares its name; a model without one takes its name from any namespace. Anything else is
    `UnknownModel`: no such model, or a name several namespaces share without saying which.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        """`keys`: the models' `ModelConfig.key`s (`name`, or `namespace/name`)."""
        parts = [(key, *key.rpartition("/")[::2]) for key in keys]  # (key, namespace or "", name)
        self._exact = {(ns, name): key for key, ns, name in parts if ns}
        self._bare = {name: key for key, ns, name in parts if not ns}
        names = [name for _, _, name in parts]
        self._only = {name: key for key, _, name in parts if names.count(name) == 1}
        self._shared = {n: sorted(ns for _, ns, name in parts if name == n) for n in set(names) if names.count(n) > 1}

    def key(self, name: str, namespace: str | None = None) -> str:
        if namespace is not None:
            key = self._exact.get((namespace, name)) or self._bare.get(name)
            if key is not None:
                return key
            raise UnknownModel(f"{namespace}/{name}", f"no model {name!r} is configured in namespace {namespace!r}")
        key = self._only.get(name)
        if key is not None:
            return key
        if name in self._shared:
            raise UnknownModel(name, f"model {name!r} runs in several namespaces ({', '.join(self._shared[name])}): "
                                     "name the namespace")
        raise UnknownModel(name)


class MlflowConfig(_Strict):
    """The MLflow tracking server driftwatch reads references from and tags model versions on (docs/mlflow.md)."""

    tracking_uri: HttpUrl
    auth: HttpAuth = HttpAuth()
    timeout: Duration = Field(default=10.0, gt=0)
    """Seconds for one request to the tracking server."""
    tag_versions: bool = True
    """Tag the watched model version with its drift status after evaluations (when the status changes,
    and at most every `tag_interval` otherwise)."""
    tag_interval: Duration = Field(default=600.0, ge=0)
    link_runs: bool = True
    """Find the MLflow run tagged `driftwatch.trigger=<fingerprint>` of each retraining run and the model
    versions registered from it."""
    poll_interval: Duration = Field(default=60.0, gt=0)
    """Seconds between looks for retraining runs not yet linked (bounded: the newest runs of each model)."""


class Config(_Strict):
    version: Literal[1] = 1
    server: ServerConfig = ServerConfig()
    metrics: MetricsConfig = MetricsConfig()
    defaults: Defaults = Defaults()
    fleet: FleetConfig | None = None
    """Replicas on Kafka and PostgreSQL; unset (the default) is the embedded single process."""
    mlflow: MlflowConfig | None = None
    """An MLflow tracking server: references from model versions, drift tags, retraining links (docs/mlflow.md)."""
    models: list[ModelConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_models(self) -> Config:
        keys = [m.key for m in self.models]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"models must be unique by namespace and name; duplicated: {', '.join(dupes)}")
        names = [m.name for m in self.models]
        shared = sorted({m.name for m in self.models if m.namespace is None and names.count(m.name) > 1})
        if shared:
            raise ValueError(f"models sharing a name must each set `namespace` (which one would traffic naming "
                             f"only the name belong to?): {', '.join(shared)}")
        mixed = sorted({m.name for m in self.models if names.count(m.name) > 1
                        and len({o.alerts is None for o in self.models if o.name == m.name}) > 1})
        if mixed:
            raise ValueError(f"models sharing a name across namespaces set `alerts` all or none (alert rules "
                             f"select the default settings' models by name): {', '.join(mixed)}")
        from_mlflow = [m.key for m in self.models if m.reference.mlflow is not None]
        if from_mlflow and self.mlflow is None:
            raise ValueError(f"models {', '.join(from_mlflow)} read their reference from MLflow: set the top-level "
                             "`mlflow` section (tracking_uri)")
        return self

    def model(self, key: str) -> ModelConfig:
        """The model whose `key` (name, or namespace/name) this is; KeyError if none."""
        for m in self.models:
            if m.key == key:
                return m
        raise KeyError(key)

    def named(self, ref: str) -> ModelConfig:
        """The model a person names on a command line: its key (`namespace/name`) or, when no other
        namespace shares it, its name. `UnknownModel` naming the choices otherwise."""
        namespace, _, name = ref.rpartition("/")
        try:
            return self.resolve(name, namespace or None)
        except UnknownModel as exc:
            raise UnknownModel(ref, f"{exc.reason}; models: {', '.join(m.key for m in self.models)}") from None

    def resolve(self, name: str, namespace: str | None = None) -> ModelConfig:
        """The model traffic naming `name` (and `namespace`, when it says) belongs to (`ModelRouter`)."""
        return self.model(ModelRouter(m.key for m in self.models).key(name, namespace))

    def drift_policy(self, model: ModelConfig) -> DriftPolicy:
        return model.drift or self.defaults.drift

    def alerts_for(self, model: ModelConfig) -> AlertsConfig:
        return model.alerts or self.defaults.alerts

    def retrain_for(self, model: ModelConfig) -> RetrainConfig | None:
        return model.retrain or self.defaults.retrain

    def retrain_named(self, key: str) -> RetrainConfig | None:
        """The retraining config of the model `key`; None when it has none or is not configured."""
        try:
            return self.retrain_for(self.model(key))
        except KeyError:
            return None

    def has_model(self, key: str) -> bool:
        return any(m.key == key for m in self.models)

    def local_log_dir(self, local: LocalLauncher) -> Path:
        """Where a local run's log goes: `local.log_dir`, else `retrain-logs` beside the store."""
        return local.log_dir if local.log_dir is not None else self.server.store.path.parent / "retrain-logs"

    def exported_features(self, model: ModelConfig) -> list[str]:
        """Columns that get per-feature metric series: allowlist first, then the cap."""
        names = [c.name for c in model.columns]
        if self.metrics.feature_allowlist is not None:
            allowed = set(self.metrics.feature_allowlist)
            names = [n for n in names if n in allowed]
        return names[: self.metrics.max_features_per_model]


def _error_path(loc: tuple[Any, ...], data: Any) -> str:
    """`models[0].features[2].type`, naming models by their `name` where the YAML has one."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict):
                name = node[item].get("name")
                if isinstance(name, str):
                    label = f"{item}:{name}"
            parts.append(f"[{label}]")
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(root)"


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (not part of the config schema)"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def parse_config(data: Any, source: str = "config", base_dir: Path | None = None) -> Config:
    """Validate a parsed YAML document; relative paths resolve against `base_dir`."""
    if not isinstance(data, dict):
        got = "an empty document" if data is None else f"a {type(data).__name__}"
        raise ConfigError([("(root)", f"expected a mapping at the top level, got {got}")], source)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        # Pydantic reports unions and nested models under synthetic location parts; drop them.
        errors = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "constrained-"))))
            errors.append((_error_path(loc, data), _message(err)))
        raise ConfigError(errors, source) from None
    return _resolve_paths(cfg, base_dir) if base_dir is not None else cfg


def _resolve_paths(cfg: Config, base: Path) -> Config:
    """Relative paths in a config file mean "next to this file", wherever the process runs."""

    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    def fix_auth(a: HttpAuth) -> HttpAuth:
        return a.model_copy(update={"token_file": a.token_file and fix(a.token_file),
                                    "password_file": a.password_file and fix(a.password_file)})

    def fix_retrain(r: RetrainConfig | None) -> RetrainConfig | None:
        if r is None:
            return r
        update: dict[str, Any] = {}
        if r.local is not None:
            update["local"] = r.local.model_copy(
                update={"log_dir": fix(r.local.log_dir) if r.local.log_dir else None,
                        "cwd": fix(r.local.cwd) if r.local.cwd else None}
            )
        for name in ("kubeflow", "airflow"):
            section = getattr(r, name)
            if section is not None:
                update[name] = section.model_copy(update={"auth": fix_auth(section.auth)})
        if r.webhook is not None:
            update["webhook"] = r.webhook.model_copy(update={
                "auth": fix_auth(r.webhook.auth), "secret_file": r.webhook.secret_file and fix(r.webhook.secret_file)})
        return r.model_copy(update=update) if update else r

    def fix_model(m: ModelConfig) -> ModelConfig:
        update: dict[str, Any] = {
            "reference": m.reference.model_copy(update={"path": m.reference.path and fix(m.reference.path)}),
            "retrain": fix_retrain(m.retrain),
        }
        if m.resources.pid_file is not None:
            update["resources"] = m.resources.model_copy(update={"pid_file": fix(m.resources.pid_file)})
        return m.model_copy(update=update)

    store = cfg.server.store.model_copy(update={"path": fix(cfg.server.store.path)})
    auth = cfg.server.auth.model_copy(update={
        "token_files": [fix(f) for f in cfg.server.auth.token_files],
        "read_token_files": [fix(f) for f in cfg.server.auth.read_token_files],
    })
    tls = cfg.server.tls and cfg.server.tls.model_copy(
        update={"cert_file": fix(cfg.server.tls.cert_file), "key_file": fix(cfg.server.tls.key_file)})
    mlflow = cfg.mlflow and cfg.mlflow.model_copy(update={"auth": fix_auth(cfg.mlflow.auth)})
    return cfg.model_copy(
        update={
            "mlflow": mlflow,
            "models": [fix_model(m) for m in cfg.models],
            "server": cfg.server.model_copy(update={"store": store, "auth": auth, "tls": tls}),
            "defaults": cfg.defaults.model_copy(update={"retrain": fix_retrain(cfg.defaults.retrain)}),
        }
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file, with every error reported by field path."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([("(file)", f"no such file: {p}")], str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([("(file)", f"cannot read: {exc}")], str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError([(where, f"invalid YAML: {getattr(exc, 'problem', exc)}")], str(p)) from None
    except RecursionError:  # PyYAML's composer recurses per nesting level
        raise ConfigError([("(file)", "invalid YAML: nested too deeply")], str(p)) from None
    return parse_config(data, str(p), base_dir=p.resolve().parent)
