"""Inference payloads → feature records, for KServe v1, Open Inference Protocol v2 and plain JSON.

Pure (no I/O). A payload either fits the model's schema completely or is rejected with a reason;
nothing is guessed, so a misconfigured source never turns into silently wrong drift numbers.

Value rules: a column's value must be a JSON scalar (number, string, boolean or null); NaN is
missing. Scalars are passed on as they are: whether "3.5" or "abc" fits a numeric column, and how
1, 1.0 and "1" compare as categories, is the drift engine's data-quality business
(monitor/drift/values.py), so it is decided once. A list or object where a scalar belongs means the
configured source points at the wrong place (say a nested tensor): `type_mismatch`. A list row
too short for a column's `index`, an absent tensor, or a prediction count that differs from the
instance count is `schema_mismatch`. A missing key in an object row is a missing value.
An embedding column (`type: embedding`) takes a list of its `dimensions` finite numbers per row
(or one row of a [rows, dimensions] v2 tensor): another length is `vector_dimensions`, a NaN or
infinite entry `vector_non_finite` (`vector`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from monitor.core.config import FeatureConfig, ModelConfig

__all__ = ["ModelSchema", "Record", "Rejected", "TextColumn", "parse_payload", "sniff_protocol", "vector"]

Record = dict[str, Any]
Protocol = Literal["kserve_v1", "v2", "json"]
"""The tabular protocols; `openai` calls are read by `monitor.capture.generative`."""


class Rejected(Exception):
    """A payload that does not fit the model's schema; `reason` is a metric label, `detail` for humans."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def vector(value: Any, column: str, dimensions: int) -> NDArray[np.float32]:
    """An embedding column's value as a float32 array of `dimensions` finite numbers (what the drift
    engine computes in; a window of them holds a tenth of the memory of lists of Python floats).

    `Rejected` with `vector_dimensions` for another length and `vector_non_finite` for a NaN or
    infinite entry, or one beyond float32's range, each naming the column: a model answering vectors
    of the wrong size is a misconfigured column or a changed model, never drift numbers."""
    if not isinstance(value, list) or not all(type(v) in _NUMBERS for v in value):
        raise Rejected("type_mismatch", f"column {column!r} expects a list of {dimensions} numbers, got {type(value).__name__}")
    if len(value) != dimensions:
        raise Rejected("vector_dimensions", f"column {column!r} expects {dimensions} dimensions, got a vector of {len(value)}")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            array = np.asarray(value, dtype=np.float32)
    except OverflowError:  # an integer beyond any float
        array = np.array([np.inf], dtype=np.float32)
    if not np.isfinite(array).all():
        raise Rejected("vector_non_finite", f"column {column!r}: the vector holds NaN or infinite values (or values beyond float32)")
    return array


@dataclass(frozen=True, slots=True)
class Column:
    """A config column compiled for fast lookups: where its value sits (and, for an embedding column,
    its vectors' length)."""

    name: str
    key: str | None
    index: int | None
    tensor: str | None
    dimensions: int | None = None

    @classmethod
    def from_config(cls, col: FeatureConfig) -> Column:
        src = col.resolved_source()
        # With no source the column's name doubles as a v2 tensor name (see FeatureSource).
        tensor = src.input if src.input is not None else src.key
        return cls(col.name, src.key, src.index, tensor, col.embedding.dimensions if col.embedding is not None else None)

    def value(self, cell: Any) -> Any:
        """A cell as this column's value: a checked vector, or a scalar (see `_scalar`)."""
        if self.dimensions is not None:
            return None if cell is None else vector(cell, self.name, self.dimensions)
        return _scalar(cell, self.name)


@dataclass(frozen=True, slots=True)
class Columns:
    """Columns plus the lookups of the common cases (all by index, all by key) for the fast path."""

    columns: tuple[Column, ...]
    names: tuple[str, ...]
    indices: tuple[int, ...] | None
    keys: tuple[str, ...] | None
    width: int
    """Length a list row needs for `indices` (0 when they are not all set)."""
    pick: Callable[[list[Any]], Sequence[Any]] | None
    """`indices`' values of a list row, as a tuple, in one C call."""

    @classmethod
    def of(cls, columns: Sequence[Column]) -> Columns:
        indices = tuple(c.index for c in columns if c.index is not None)
        keys = tuple(c.key for c in columns if c.key is not None)
        if any(c.dimensions is not None for c in columns):  # vectors: every cell goes through `Column.value`
            return cls(tuple(columns), tuple(c.name for c in columns), None, None, 0, None)
        by_index = bool(columns) and len(indices) == len(columns)
        pick = None
        if by_index:
            pick = operator.itemgetter(*indices) if len(indices) > 1 else lambda row, i=indices[0]: (row[i],)
        return cls(
            tuple(columns),
            tuple(c.name for c in columns),
            indices if by_index else None,
            keys if len(keys) == len(columns) else None,
            max(indices) + 1 if by_index else 0,
            pick,
        )

    def __bool__(self) -> bool:
        return bool(self.columns)

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def record(self, row: Any) -> Record:
        """One row's values (see `_cell` for the rules; this is its fast path for whole rows)."""
        t = type(row)
        if t is list and self.pick is not None and len(row) >= self.width:
            values = self.pick(row)
        elif t is dict and self.keys is not None:
            values = [row.get(k) for k in self.keys]
        else:
            return {c.name: c.value(_cell(row, c)) for c in self.columns}
        if _NUMBERS.issuperset(map(type, values)) and _plain_numbers(values):
            return dict(zip(self.names, values, strict=True))  # all numbers, none NaN or beyond a double (the common case)
        if not _NESTED.isdisjoint(map(type, values)):
            for c, v in zip(self.columns, values, strict=True):
                _scalar(v, c.name)
        return dict(zip(self.names, [_number(v) for v in values], strict=True))


@dataclass(frozen=True, slots=True)
class TextColumn:
    """A column of a `protocol: openai` model: its name, the part of the call it reads, the record key
    of its token count (None without one) and, for `field: embedding`, its vectors' length."""

    name: str
    field: Literal["prompt", "completion", "embedding"]
    tokens: str | None
    dimensions: int | None = None

    @classmethod
    def from_config(cls, col: FeatureConfig) -> TextColumn:
        assert col.source is not None and col.source.field is not None  # the config requires it for `protocol: openai`
        token = col.token_descriptor
        dims = col.embedding.dimensions if col.embedding is not None else None
        return cls(col.name, col.source.field, None if token is None else f"{col.name}.{token}", dims)


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """A model's columns compiled once at start-up (parsing runs per event on the ingest path)."""

    protocol: Literal["auto", "kserve_v1", "v2", "json", "openai"]
    features: Columns
    outputs: Columns
    texts: tuple[TextColumn, ...] = ()
    """`protocol: openai`: its columns (then `features` and `outputs` are not read)."""

    @classmethod
    def from_config(cls, model: ModelConfig) -> ModelSchema:
        if model.protocol == "openai":
            texts = tuple(TextColumn.from_config(c) for c in (*model.features, *model.outputs))
            return cls(model.protocol, Columns.of([]), Columns.of([]), texts)
        return cls(
            model.protocol,
            Columns.of([Column.from_config(c) for c in model.features]),
            Columns.of([Column.from_config(c) for c in model.outputs]),
        )


_NESTED = frozenset({list, dict})
_NUMBERS = frozenset({float, int})


def _plain_numbers(values: Sequence[Any]) -> bool:
    """True when these ints and floats need no rewriting: no NaN, no int beyond a double's range.

    Summing from 0.0 turns every int into a double as it goes, so one beyond a double's range
    raises OverflowError (summing ints alone would not, and huge ints could cancel out).
    """
    try:
        total = sum(values, 0.0)
    except OverflowError:
        return False
    return total == total


def _number(value: Any) -> Any:
    """NaN → missing; an int beyond a double's range → ±inf.

    That is what a JSON parser producing doubles reads for the same literal, so a 400-digit integer
    is an out-of-range value for data quality, never an error (pandas cannot hold such an int)."""
    if type(value) is int:
        try:
            float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    elif type(value) is float and math.isnan(value):
        return None
    return value


def _scalar(value: Any, column: str) -> Any:
    if isinstance(value, (list, dict)):
        raise Rejected("type_mismatch", f"column {column!r} expects a scalar, got {'a list' if isinstance(value, list) else 'an object'}")
    return _number(value)


def sniff_protocol(request: Any) -> Protocol:
    """The protocol a request body speaks: v2 tensors, KServe v1 instances, else plain records."""
    if isinstance(request, dict):
        inputs = request.get("inputs")
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict) and "data" in inputs[0] and "name" in inputs[0]:
            return "v2"
        if "instances" in request or "inputs" in request:
            return "kserve_v1"
    return "json"


def parse_payload(schema: ModelSchema, request: Any, response: Any | None) -> list[Record]:
    """Records (column → value) from a decoded request and, when outputs are configured, response.

    `response` is None when there is none (e.g. a KServe request whose response never arrived);
    outputs are then missing, except for plain JSON records, which may carry their own outputs.
    Raises `Rejected` when the payload does not fit the schema.
    """
    if schema.protocol == "openai":
        raise ValueError("an OpenAI-compatible call is parsed by monitor.capture.generative (it needs the path)")
    protocol = sniff_protocol(request) if schema.protocol == "auto" else schema.protocol
    if protocol == "v2":
        return _parse_v2(schema, request, response)
    rows = _v1_rows(request) if protocol == "kserve_v1" else _json_rows(request, "request")
    records = [schema.features.record(row) for row in rows]
    if schema.outputs:
        if response is not None:
            preds = _v1_predictions(response) if protocol == "kserve_v1" else _json_rows(response, "response")
            _fill_outputs(schema.outputs, records, preds)
        elif protocol == "json":
            for record, row in zip(records, rows, strict=True):
                for c in schema.outputs:
                    record[c.name] = c.value(_cell(row, c, missing_ok=True))
        else:
            for record in records:
                record.update(dict.fromkeys(c.name for c in schema.outputs))
    return records


def _nonempty(rows: Any, what: str) -> list[Any]:
    if not isinstance(rows, list):
        raise Rejected("schema_mismatch", f"{what} must be a list, got {type(rows).__name__}")
    if not rows:
        raise Rejected("empty_payload", f"{what} is empty")
    return rows


def _v1_rows(request: Any) -> list[Any]:
    if not isinstance(request, dict):
        raise Rejected("schema_mismatch", f"a KServe v1 request is an object, got {type(request).__name__}")
    if "instances" in request:
        return _nonempty(request["instances"], "`instances`")
    if "inputs" in request:
        return _nonempty(request["inputs"], "`inputs`")
    raise Rejected("schema_mismatch", "a KServe v1 request needs `instances` or `inputs`")


def _v1_predictions(response: Any) -> list[Any]:
    if not isinstance(response, dict) or "predictions" not in response:
        raise Rejected("schema_mismatch", "a KServe v1 response needs `predictions`")
    return _nonempty(response["predictions"], "`predictions`")


def _json_rows(body: Any, what: str) -> list[Any]:
    if isinstance(body, list):
        return _nonempty(body, f"the {what}")
    if isinstance(body, dict):
        if len(body) == 1 and isinstance(body.get("records"), list):
            return _nonempty(body["records"], f"the {what}'s `records`")
        if len(body) == 1 and isinstance(body.get("predictions"), list):
            return _nonempty(body["predictions"], f"the {what}'s `predictions`")
        return [body]
    raise Rejected("schema_mismatch", f"the {what} must be a record or a list of records, got {type(body).__name__}")


def _cell(row: Any, col: Column, *, missing_ok: bool = False) -> Any:
    """A column's value in one row: object rows by key, list rows by index, a scalar row alone."""
    if isinstance(row, dict):
        if col.key is None:
            raise Rejected("schema_mismatch", f"column {col.name!r} has no `key` for object rows")
        return row.get(col.key)
    if isinstance(row, list):
        if col.index is None:
            if missing_ok:
                return None
            raise Rejected("schema_mismatch", f"column {col.name!r} has no `index` for list rows")
        if col.index >= len(row):
            raise Rejected("schema_mismatch", f"column {col.name!r} wants index {col.index}, row has {len(row)} values")
        return row[col.index]
    raise Rejected("schema_mismatch", f"a row must be an object or a list, got {type(row).__name__}")


def _fill_outputs(outputs: Columns, records: list[Record], preds: list[Any]) -> None:
    if len(preds) != len(records):
        raise Rejected("schema_mismatch", f"{len(preds)} predictions for {len(records)} instances")
    first, *rest = outputs.columns
    for record, pred in zip(records, preds, strict=True):
        if isinstance(pred, (dict, list)):
            record.update(outputs.record(pred))
        else:  # a scalar prediction is the first output's value
            record[first.name] = first.value(pred)
            for c in rest:
                record[c.name] = None


# -- Open Inference Protocol v2 ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tensor:
    rows: int
    width: int
    data: list[Any]

    def column(self, name: str, index: int | None) -> list[Any]:
        if index is None:
            if self.width != 1:
                raise Rejected("schema_mismatch", f"column {name!r} needs an `index` into a tensor {self.width} wide")
            return self.data
        if index >= self.width:
            raise Rejected("schema_mismatch", f"column {name!r} wants index {index}, tensor is {self.width} wide")
        return self.data[index :: self.width]

    def vectors(self, c: Column) -> list[Any]:
        """An embedding column's rows: a [rows, dimensions] tensor gives one vector per row."""
        assert c.dimensions is not None
        if self.width != c.dimensions:
            raise Rejected("vector_dimensions", f"column {c.name!r} expects {c.dimensions} dimensions, the tensor is {self.width} wide")
        d = self.width
        return [vector(self.data[i * d:(i + 1) * d], c.name, d) for i in range(self.rows)]


def _flatten(data: Any) -> list[Any]:
    """Row-major flat data from flat or nested lists (iterative: hostile nesting cannot recurse)."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _tensors(body: Any, field: str) -> dict[str, _Tensor]:
    if not isinstance(body, dict) or not isinstance(body.get(field), list):
        raise Rejected("schema_mismatch", f"an Open Inference Protocol v2 payload needs `{field}` as a list")
    out: dict[str, _Tensor] = {}
    for i, t in enumerate(body[field]):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise Rejected("schema_mismatch", f"`{field}[{i}]` needs a string `name`")
        shape, data = t.get("shape"), t.get("data")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) or not 1 <= len(shape) <= 2:
            raise Rejected("schema_mismatch", f"`{field}[{i}].shape` must be [rows] or [rows, columns]")
        if not isinstance(data, list):
            raise Rejected("schema_mismatch", f"`{field}[{i}].data` must be a list")
        flat = _flatten(data)
        width = shape[1] if len(shape) == 2 else 1
        if len(flat) != shape[0] * width:
            raise Rejected("schema_mismatch", f"`{field}[{i}]` has {len(flat)} values for shape {shape}")
        out[t["name"]] = _Tensor(shape[0], width, flat)
    return out


def _v2_columns(columns: Iterable[Column], tensors: dict[str, _Tensor], field: str) -> tuple[int, dict[str, list[Any]]]:
    rows: int | None = None
    values: dict[str, list[Any]] = {}
    for c in columns:
        if c.tensor is not None:
            tensor = tensors.get(c.tensor)
            if tensor is None:
                raise Rejected("schema_mismatch", f"column {c.name!r}: no tensor {c.tensor!r} in `{field}`")
        elif len(tensors) == 1:
            tensor = next(iter(tensors.values()))
        else:
            raise Rejected("schema_mismatch", f"column {c.name!r} names no tensor and `{field}` has {len(tensors)}")
        if rows is not None and tensor.rows != rows:
            raise Rejected("schema_mismatch", f"tensors in `{field}` disagree on the number of rows")
        rows = tensor.rows
        values[c.name] = tensor.vectors(c) if c.dimensions is not None else [_scalar(v, c.name) for v in tensor.column(c.name, c.index)]
    return rows or 0, values


def _parse_v2(schema: ModelSchema, request: Any, response: Any | None) -> list[Record]:
    n, columns = _v2_columns(schema.features, _tensors(request, "inputs"), "inputs")
    if n == 0:
        raise Rejected("empty_payload", "the request tensors have no rows")
    if schema.outputs:
        if response is None:
            columns.update({c.name: [None] * n for c in schema.outputs})
        else:
            m, outs = _v2_columns(schema.outputs, _tensors(response, "outputs"), "outputs")
            if m != n:
                raise Rejected("schema_mismatch", f"{m} output rows for {n} input rows")
            columns.update(outs)
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
