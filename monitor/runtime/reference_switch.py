"""A model's reference changed while the monitor runs: checked, profiled, stored, and swapped in at once.

`ReferenceSwitch.set` takes a reference's bytes (an upload, or an MLflow model version's artifact:
`mlflow_artifact`), reads and checks them against the model's columns (`ReferenceRejected`, with a
reason per column), builds the drift profile, the calibrated detector and the performance profile
from them on the evaluator's thread (off the event loop, and never beside an evaluation that still
uses the old ones), stores the object (`monitor.core.referencestore`) and then, on the writer
thread holding the runtime's lock, makes it current and swaps the profiles in one step. Every
record committed so far is in the old window; the model's window starts empty after the newest of
them (`from_rec`), so no window is judged half against the old reference, and a restart rebuilds
the same cut from the stored `from_rec`.

A reference for a model `version` is checked and profiled the same way, stored and made that
version's current one: it judges that version's track (monitor.runtime.tracks) from the track's first
window (`version_engine`), or from the next record on when the track is already judged
(docs/references.md).
"""

from __future__ import annotations

import io
import logging
import math
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from monitor.core.config import Config, MlflowReference, ModelConfig, ReferenceConfig
from monitor.core.referencestore import Current, ReferenceStore, StoredReference
from monitor.runtime.mlflow_reference import MlflowReferenceError, fetch_reference
from monitor.runtime.reference import profile_frame, sampled
from monitor.runtime.state import RuntimeState
from monitor.runtime.tracks import Engine, track_key
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ReferenceRejected", "ReferenceSwitch", "SetResult", "check_frame", "mlflow_artifact", "read_frame", "stored_model"]

log = logging.getLogger("driftwatch.monitor")

Format = Literal["csv", "parquet"]


class ReferenceRejected(ValueError):
    """The reference cannot be used: `status` (422, or 503 while MLflow cannot be asked), `error`,
    and `detail` (a message, or `[{column, reason}]`)."""

    def __init__(self, status: int, error: str, detail: Any) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class SetResult:
    reference: StoredReference
    created: bool
    """A new object was stored (False: the same content was stored before)."""
    switched: bool
    """It became current by this call (False: it already was)."""


def read_frame(data: bytes, fmt: Format) -> pd.DataFrame:
    """The reference rows of a CSV or Parquet body; `ReferenceRejected` when it is neither."""
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(data)) if fmt == "parquet" else pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # pandas and pyarrow raise many types for a body that is not what it says
        raise ReferenceRejected(422, "unreadable_reference", f"cannot read the body as {fmt}: {type(exc).__name__}") from None


def check_frame(model: ModelConfig, frame: pd.DataFrame) -> list[dict[str, str | None]]:
    """What makes `frame` unusable as `model`'s reference, a reason per column (empty: usable)."""
    import pandas as pd

    from monitor.text.columns import record_columns

    if len(frame) == 0:
        return [{"column": None, "reason": "the reference has no rows"}]
    types = {c.name: c for c in model.columns}
    problems: list[dict[str, str | None]] = []
    for name in record_columns(model):
        if name not in frame.columns:
            problems.append({"column": name, "reason": "missing"})
            continue
        values = frame[name]
        present = int(values.notna().sum())
        if present == 0:
            problems.append({"column": name, "reason": "has no values (every row is empty or NaN)"})
            continue
        col = types.get(name)
        if col is not None and col.type == "numeric" and not col.datetime:
            numbers = pd.to_numeric(values, errors="coerce")
            bad = present - int(numbers.notna().sum())
            if bad:
                problems.append({"column": name, "reason": f"{bad} value(s) are not numbers"})
            elif not numbers.dropna().map(math.isfinite).any():
                problems.append({"column": name, "reason": "has no finite values"})
    return problems


def stored_model(model: ModelConfig, ref: StoredReference) -> ModelConfig:
    """`model` with the stored reference as its reference file (sampled as the config says)."""
    return model.model_copy(update={"reference": ReferenceConfig(path=ref.path, format=ref.format, max_rows=model.reference.max_rows)})


def mlflow_artifact(config: Config, model: ModelConfig, name: str, version: int, artifact: str | None) -> tuple[bytes, Format, str]:
    """The bytes, format and origin (`models:/name/version#artifact`) of an MLflow model version's
    reference artifact (`artifact`, or the one the model's config names); `ReferenceRejected`."""
    if config.mlflow is None:
        raise ReferenceRejected(422, "mlflow_not_configured", "the config has no `mlflow` section: the monitor cannot reach MLflow")
    configured = model.reference.mlflow
    artifact = artifact or (configured.artifact if configured is not None else None)
    if artifact is None:
        raise ReferenceRejected(422, "validation_failed", "name the reference's artifact (`mlflow.artifact`): the model's config names none")
    try:
        ref = MlflowReference(model=name, version=version, artifact=artifact)
    except ValueError as exc:
        raise ReferenceRejected(422, "validation_failed", str(exc)) from None
    wanted = model.model_copy(update={"reference": ReferenceConfig(mlflow=ref, format=model.reference.format)})
    try:
        prov = fetch_reference(config, wanted)
    except MlflowReferenceError as exc:
        if exc.transient:
            raise ReferenceRejected(503, "mlflow_unavailable", str(exc)) from None
        raise ReferenceRejected(422, "mlflow_reference_not_found", str(exc)) from None
    fmt = model.reference.file_format(artifact)
    return Path(prov.path).read_bytes(), fmt, f"models:/{name}/{prov.version}#{artifact}"


class ReferenceSwitch:
    """Each model's current stored reference: loaded at start-up, changed by `set`."""

    def __init__(self, state: RuntimeState, evaluator: Executor) -> None:
        self._state = state
        self._evaluator = evaluator
        self.store: ReferenceStore | None = None

    def open(self) -> None:
        """Open the objects' tables and judge each model and version track against its current stored
        reference (on the writer thread, after the tracks are restored and before the windows are
        rebuilt: they start after its `from_rec`)."""
        self.store = ReferenceStore(self._state.config.server.store.path)
        for model in self._state.models.values():
            current = self.store.current(model.config.key, model.version)
            if current is not None:
                model.config = stored_model(model.config, current.reference)
                model.reference_id, model.reference_from = current.reference.id, current.from_rec
                log.info("reference_current model=%s reference_id=%d from_rec=%d", model.key,
                         current.reference.id, current.from_rec)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def current(self, key: str, version: str | None = None) -> Current | None:
        """The model version's current stored reference; read from the file when the monitor is not
        running (its API can still answer while it starts or after it stopped)."""
        if self.store is not None:
            return self.store.current(key, version)
        store = ReferenceStore(self._state.config.server.store.path)
        try:
            return store.current(key, version)
        finally:
            store.close()

    def _require(self) -> ReferenceStore:
        if self.store is None:
            raise RuntimeError("the monitor is not started")
        return self.store

    def set(self, key: str, version: str | None, source: Literal["file", "mlflow"], origin: str, fmt: Format,
            data: bytes) -> SetResult:
        """Check, profile, store and swap in a reference (blocking: call it off the event loop; the work
        runs on the evaluator's thread, the swap on the writer's)."""
        return self._evaluator.submit(self._set, key, version, source, origin, fmt, data).result()

    def _set(self, key: str, version: str | None, source: Literal["file", "mlflow"], origin: str, fmt: Format,
             data: bytes) -> SetResult:
        store, state = self._require(), self._state
        frame = read_frame(data, fmt)
        engines = self._engines(state.models[key].config, frame)  # a version's reference too: refused now, not when it serves
        ref, created = store.add(key, version, source, origin, fmt, data, len(frame))
        current = store.current(key, version)
        if current is not None and current.reference.id == ref.id:
            return SetResult(ref, created, False)
        track = state.models.get(track_key(key, version))
        if version is not None and (track is None or not track.profiled):  # taken when that version serves
            store.set_current(key, version, ref, 0)
        else:
            state.writer.submit(self._swap, key, version, ref, *engines).result()
        return SetResult(ref, created, True)

    def version_engine(self, key: str, version: str) -> Engine | None:
        """The engine of model `version`'s own reference (`tracks.reference_engine`, on the evaluator's
        thread when the version's track meets its first due window): the one set for it, or else, for a
        model whose config reads its reference from an MLflow model version, the same artifact of
        MLflow's version `version`. None when neither is known, or MLflow does not answer now (the
        version is then judged against the model's reference, and the next start asks again)."""
        store = self._require()
        try:
            if store.current(key, version) is None and not self._from_mlflow(key, version):
                return None
        except ReferenceRejected as exc:
            log.warning("version_reference_unavailable model=%s version=%s reason=%s", key, version, exc.error)
            return None
        wanted = store.current(key, version)
        assert wanted is not None
        ref = wanted.reference
        try:
            profile, detector, performance = self._engines(self._state.models[key].config, read_frame(ref.path.read_bytes(), ref.format))
        except (OSError, ReferenceRejected) as exc:
            log.error("version_reference_unusable model=%s version=%s reference_id=%d error=%s", key, version, ref.id, exc)
            return None
        log.info("version_reference model=%s version=%s reference_id=%d source=%s", key, version, ref.id, ref.source)
        return Engine(profile, detector, performance, ref.id)

    def _from_mlflow(self, key: str, version: str) -> bool:
        """Store the reference MLflow's model `version` logged, when the model's config reads its reference
        from MLflow (the same registered model and artifact); whether there was one. MLflow not answering
        is `ReferenceRejected` (503): the version's reference may exist."""
        configured = self._state.config.model(key)
        ref = configured.reference.mlflow
        if ref is None or not version.isdigit() or int(version) < 1:
            return False
        try:
            data, fmt, origin = mlflow_artifact(self._state.config, configured, ref.model, int(version), None)
        except ReferenceRejected as exc:
            if exc.status == 503:
                raise
            log.info("version_reference_unknown model=%s version=%s reason=%s", key, version, exc.error)
            return False
        self._set(key, version, "mlflow", origin, fmt, data)
        return True

    def _engines(self, model: ModelConfig, frame: pd.DataFrame) -> tuple[Any, Any, Any]:
        """(drift profile, calibrated detector, performance profile) of the reference rows `frame`;
        `ReferenceRejected` with a reason per column, or why it cannot be profiled."""
        problems = check_frame(model, frame)
        if problems:
            raise ReferenceRejected(422, "invalid_reference", problems)
        raw = sampled(model, frame)
        try:
            profile, detector = profile_frame(self._state.config, model, raw)
            return profile, detector, _performance_profile(model, raw)
        except Exception as exc:
            raise ReferenceRejected(422, "invalid_reference", f"the reference cannot be profiled: {type(exc).__name__}: {exc}") from None

    def _swap(self, key: str, version: str | None, ref: StoredReference, profile: Any, detector: Any, performance: Any) -> None:
        """Make `ref` current for the model (or its `version`'s track) and use it from the next record on
        (on the writer thread: every record committed so far has been fed to the old window, and no
        commit runs meanwhile)."""
        state, store = self._state, self._require()
        model = state.models[track_key(key, version)]
        with state.lock:
            from_rec = state.require_store().record_total(model.key)
            now = state.clock()
            store.set_current(key, version, ref, from_rec, now=now)
            model.config = stored_model(model.config, ref)
            model.profile, model.detector, model.packed = profile, detector, None
            if performance is not None:
                model.performance_profile, model.packed_performance = performance, None
            model.reference_id, model.reference_from = ref.id, from_rec
            model.window = SlidingWindow(model.config.window, last_rec=from_rec, last_end=now, now=now)
        log.info("reference_switched model=%s reference_id=%d source=%s from_rec=%d", model.key, ref.id, ref.source, from_rec)


def _performance_profile(model: ModelConfig, raw: pd.DataFrame) -> Any:
    if model.performance is None:
        return None
    from monitor.performance.profile import PerformanceProfile

    return PerformanceProfile.from_reference(raw, model.performance)

