"""Reference data as versioned objects: each stored once by content, one current per model version.

A reference set through the API (`PUT /v1/models/{model}/reference`) or taken from an MLflow model
version is kept as a numbered object: its bytes in a file under `<store's folder>/references/<model>/`
named by its sha256, and a row of `model_references` (schema v7) saying where it came from. The
row of `reference_current` names the object each (model, version) is judged against now, and the
record ordinal it took over at (`from_rec`): a restart rebuilds the windows from there, so no window
mixes traffic judged against two references. No current row means the config's `reference`.

The model is its key (`ModelConfig.key`, `namespace/name` for a namespaced model); `version` is the
serving model version, or None for the model as a whole (stored as ''). The class opens its own
connection to the store's file (WAL and `busy_timeout` let it sit beside the event store's writer),
so the API can use it from any thread; a lock serializes its own use.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from monitor.core import schema
from monitor.core.store import StoreFull

__all__ = ["Current", "ReferenceStore", "StoredReference"]

Source = Literal["file", "mlflow"]
Format = Literal["csv", "parquet"]


@dataclass(frozen=True)
class StoredReference:
    """One stored reference object."""

    id: int
    model: str
    version: str | None
    source: Source
    origin: str
    """Where it came from: the uploaded body's media type, or `models:/name/version#artifact`."""
    sha256: str
    format: Format
    rows: int
    bytes: int
    path: Path
    created_at: float

    @property
    def label(self) -> str:
        """`reference #3 (file, 2026-12-06 18:20 UTC)`: how reports and the CLI name it."""
        created = datetime.fromtimestamp(self.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"reference #{self.id} ({self.source}, {created})"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.model, "version": self.version, "source": self.source,
            "origin": self.origin, "sha256": self.sha256, "format": self.format, "rows": self.rows,
            "bytes": self.bytes, "created_at": self.created_at, "label": self.label,
        }


@dataclass(frozen=True)
class Current:
    """A model version's current reference, the record ordinal it took over after and when."""

    reference: StoredReference
    from_rec: int
    set_at: float


_COLUMNS = "id, model, version, source, origin, sha256, format, rows, bytes, path, created_at"


def _row(row: tuple[Any, ...]) -> StoredReference:
    rid, model, version, source, origin, sha, fmt, rows, size, path, created = row
    return StoredReference(rid, model, version or None, source, origin, sha, fmt, rows, size, Path(path), created)


class ReferenceStore:
    """The reference objects in the store's SQLite file (see the module docstring)."""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.root = self.db_path.parent / "references"
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        schema.migrate(self._db, self.db_path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, model: str, version: str | None, source: Source, origin: str, fmt: Format, data: bytes,
            rows: int, *, now: float | None = None) -> tuple[StoredReference, bool]:
        """Store `data` (already validated) unless the same content is stored for this model version;
        the object and whether it is new. The file is durable before its row exists."""
        sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            found = self._db.execute(f"SELECT {_COLUMNS} FROM model_references WHERE model = ? AND version = ? AND sha256 = ?",
                                     (model, version or "", sha)).fetchone()
            if found is not None:
                return _row(found), False
            path = self._write(model, sha, fmt, data)
            cur = self._db.execute(
                "INSERT INTO model_references (model, version, source, origin, sha256, format, rows, bytes, path, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (model, version or "", source, origin, sha, fmt, rows, len(data), str(path), time.time() if now is None else now),
            )
            row = self._db.execute(f"SELECT {_COLUMNS} FROM model_references WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _row(row), True

    def _write(self, model: str, sha: str, fmt: Format, data: bytes) -> Path:
        folder = self.root / model.replace("/", ".")  # a key holds no '.', so folders never collide
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"{sha}.{fmt}"
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull(dest) from None  # answered 503 like a full event store: nothing was stored
            raise
        return dest

    def set_current(self, model: str, version: str | None, ref: StoredReference, from_rec: int, *, now: float | None = None) -> None:
        """Judge the model version against `ref` from the record after ordinal `from_rec` on."""
        with self._lock:
            self._db.execute(
                "INSERT INTO reference_current (model, version, reference_id, from_rec, set_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (model, version) DO UPDATE SET reference_id = excluded.reference_id,"
                " from_rec = excluded.from_rec, set_at = excluded.set_at",
                (model, version or "", ref.id, from_rec, time.time() if now is None else now),
            )

    def current(self, model: str, version: str | None = None) -> Current | None:
        """The model version's current reference; None: the config's."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join('r.' + c for c in _COLUMNS.split(', '))}, c.from_rec, c.set_at FROM reference_current c"
                " JOIN model_references r ON r.id = c.reference_id WHERE c.model = ? AND c.version = ?",
                (model, version or ""),
            ).fetchone()
        return None if row is None else Current(_row(row[:-2]), int(row[-2]), float(row[-1]))

    def get(self, ref_id: int) -> StoredReference | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM model_references WHERE id = ?", (ref_id,)).fetchone()
        return None if row is None else _row(row)

    def history(self, model: str, limit: int = 100) -> list[StoredReference]:
        """The model's stored references, newest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM model_references WHERE model = ? ORDER BY id DESC LIMIT ?",
                                    (model, limit)).fetchall()
        return [_row(r) for r in rows]
