"""Payload parsing: every protocol shape, every rejection reason, and agreement across protocols."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.capture import ModelSchema, Rejected, parse_payload, sniff_protocol
from monitor.core.config import ModelConfig


def schema(protocol: str = "auto", features: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None) -> ModelSchema:
    model = ModelConfig.model_validate(
        {
            "name": "m",
            "protocol": protocol,
            "features": features or [{"name": "a", "type": "numeric", "source": {"index": 0}}, {"name": "b", "type": "categorical", "source": {"index": 1}}],
            "outputs": outputs if outputs is not None else [{"name": "p", "type": "numeric", "source": {"key": "p"}}],
            "reference": {"path": "ref.csv"},
        }
    )
    return ModelSchema.from_config(model)


def reason(s: ModelSchema, request: Any, response: Any = None) -> str:
    with pytest.raises(Rejected) as info:
        parse_payload(s, request, response)
    return info.value.reason


KEYED = [{"name": "a", "type": "numeric"}, {"name": "b", "type": "categorical"}]


class TestKServeV1:
    def test_list_instances_by_index_with_object_predictions(self) -> None:
        out = parse_payload(schema("kserve_v1"), {"instances": [[1, "x", 9], [2.5, "y", 9]]}, {"predictions": [{"p": 0.1}, {"p": 0.9}]})
        assert out == [{"a": 1.0, "b": "x", "p": 0.1}, {"a": 2.5, "b": "y", "p": 0.9}]

    def test_object_instances_by_key_and_missing_key_is_missing(self) -> None:
        out = parse_payload(schema("kserve_v1", KEYED), {"instances": [{"a": 1, "b": "x"}, {"a": 2}]}, {"predictions": [0.3, 0.4]})
        assert out == [{"a": 1, "b": "x", "p": 0.3}, {"a": 2, "b": None, "p": 0.4}]

    def test_inputs_alias_and_scalar_prediction_fills_first_output_only(self) -> None:
        s = schema("kserve_v1", outputs=[{"name": "p", "type": "numeric"}, {"name": "q", "type": "numeric"}])
        assert parse_payload(s, {"inputs": [[1, "x"]]}, {"predictions": [7]}) == [{"a": 1, "b": "x", "p": 7, "q": None}]

    def test_list_predictions_by_index(self) -> None:
        s = schema("kserve_v1", outputs=[{"name": "p0", "type": "numeric", "source": {"index": 0}}, {"name": "p1", "type": "numeric", "source": {"index": 1}}])
        assert parse_payload(s, {"instances": [[1, "x"]]}, {"predictions": [[0.2, 0.8]]}) == [{"a": 1, "b": "x", "p0": 0.2, "p1": 0.8}]

    def test_no_response_leaves_outputs_missing(self) -> None:
        assert parse_payload(schema("kserve_v1"), {"instances": [[1, "x"]]}, None) == [{"a": 1, "b": "x", "p": None}]

    def test_nan_is_missing_and_infinity_is_kept_for_the_engine(self) -> None:
        out = parse_payload(schema("kserve_v1"), {"instances": [[math.nan, "x"], [math.inf, "y"]]}, None)
        assert out[0]["a"] is None
        assert out[1]["a"] == math.inf

    @pytest.mark.parametrize(
        ("request_body", "response", "expected"),
        [
            ({"instances": [[1]]}, None, "schema_mismatch"),  # row too short for index 1
            ({"instances": [[1, "x"]]}, {"predictions": [{"p": 1}, {"p": 2}]}, "schema_mismatch"),  # 2 predictions, 1 instance
            ({"instances": [[[1, 2], "x"]]}, None, "type_mismatch"),  # a nested tensor where a scalar belongs
            ({"instances": [[1, {"k": 1}]]}, None, "type_mismatch"),
            ({"instances": []}, None, "empty_payload"),
            ({"instances": "nope"}, None, "schema_mismatch"),
            ({"rows": [[1, "x"]]}, None, "schema_mismatch"),
            ([[1, "x"]], None, "schema_mismatch"),
            ({"instances": [[1, "x"]]}, {"outputs": []}, "schema_mismatch"),
            ({"instances": [{"a": 1}]}, None, "schema_mismatch"),  # object rows but index sources
            ({"instances": [3.0]}, None, "schema_mismatch"),
        ],
    )
    def test_misfits_are_rejected_with_a_reason(self, request_body: Any, response: Any, expected: str) -> None:
        assert reason(schema("kserve_v1"), request_body, response) == expected


def v2_tensor(name: str, shape: list[int], data: list[Any], datatype: str = "FP32") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


class TestOpenInferenceV2:
    def test_one_2d_tensor_by_index_flat_or_nested(self) -> None:
        s = schema("v2", [{"name": "a", "type": "numeric", "source": {"index": 0}}, {"name": "c", "type": "numeric", "source": {"index": 2}}], outputs=[])
        flat = parse_payload(s, {"inputs": [v2_tensor("x", [2, 3], [1, 2, 3, 4, 5, 6])]}, None)
        nested = parse_payload(s, {"inputs": [v2_tensor("x", [2, 3], [[1, 2, 3], [4, 5, 6]])]}, None)
        assert flat == nested == [{"a": 1, "c": 3}, {"a": 4, "c": 6}]

    def test_several_named_inputs_bytes_and_outputs(self) -> None:
        s = schema(
            "v2",
            [
                {"name": "age", "type": "numeric", "source": {"input": "age"}},
                {"name": "city", "type": "categorical", "source": {"input": "city"}},
                {"name": "z", "type": "numeric", "source": {"input": "vec", "index": 1}},
            ],
            outputs=[{"name": "prob", "type": "numeric", "source": {"input": "prob"}}],
        )
        request = {"id": "r", "inputs": [
            v2_tensor("age", [2], [30, 40], "INT64"),
            v2_tensor("city", [2, 1], ["Paris", "Oslo"], "BYTES"),
            v2_tensor("vec", [2, 2], [[0, 1], [2, 3]]),
        ]}
        response = {"model_name": "m", "outputs": [v2_tensor("prob", [2], [0.25, 0.75], "FP64")]}
        assert parse_payload(s, request, response) == [
            {"age": 30, "city": "Paris", "z": 1, "prob": 0.25},
            {"age": 40, "city": "Oslo", "z": 3, "prob": 0.75},
        ]

    def test_default_source_is_the_tensor_named_like_the_column(self) -> None:
        s = schema("v2", KEYED, outputs=[])
        assert parse_payload(s, {"inputs": [v2_tensor("a", [1], [1.5]), v2_tensor("b", [1], ["q"], "BYTES")]}, None) == [{"a": 1.5, "b": "q"}]

    @pytest.mark.parametrize(
        ("inputs", "expected"),
        [
            ([v2_tensor("x", [2, 3], [1, 2, 3, 4, 5])], "schema_mismatch"),  # 5 values for 6
            ([v2_tensor("x", [1, 1], [1])], "schema_mismatch"),  # index 2 out of a 1-wide tensor
            ([v2_tensor("x", [1, 2, 3], [0] * 6)], "schema_mismatch"),  # rank 3
            ([v2_tensor("x", [0, 3], [])], "empty_payload"),
            ([{"name": "x", "shape": [1, 3]}], "schema_mismatch"),
            ([{"shape": [1, 3], "data": [1, 2, 3]}], "schema_mismatch"),
        ],
    )
    def test_misfits(self, inputs: list[Any], expected: str) -> None:
        s = schema("v2", [{"name": "a", "type": "numeric", "source": {"index": 0}}, {"name": "c", "type": "numeric", "source": {"index": 2}}], outputs=[])
        assert reason(s, {"inputs": inputs}) == expected

    def test_missing_tensor_and_disagreeing_rows(self) -> None:
        s = schema("v2", KEYED, outputs=[])
        assert reason(s, {"inputs": [v2_tensor("a", [1], [1])]}) == "schema_mismatch"
        assert reason(s, {"inputs": [v2_tensor("a", [1], [1]), v2_tensor("b", [2], ["x", "y"], "BYTES")]}) == "schema_mismatch"

    def test_output_rows_must_match_input_rows(self) -> None:
        s = schema("v2", [{"name": "a", "type": "numeric", "source": {"input": "a"}}], outputs=[{"name": "p", "type": "numeric"}])
        assert reason(s, {"inputs": [v2_tensor("a", [2], [1, 2])]}, {"outputs": [v2_tensor("p", [1], [0.5])]}) == "schema_mismatch"

    def test_index_only_sources_need_a_single_tensor(self) -> None:
        s = schema("v2", outputs=[])
        assert reason(s, {"inputs": [v2_tensor("x", [1, 2], [1, "a"]), v2_tensor("y", [1], [1])]}) == "schema_mismatch"


class TestPlainJson:
    def test_list_single_object_and_records_wrapper(self) -> None:
        s = schema("json", KEYED, outputs=[{"name": "p", "type": "numeric"}])
        assert parse_payload(s, [{"a": 1, "b": "x", "p": 0.5}], None) == [{"a": 1, "b": "x", "p": 0.5}]
        assert parse_payload(s, {"a": 1, "b": "x"}, None) == [{"a": 1, "b": "x", "p": None}]
        assert parse_payload(s, {"records": [{"a": 1}, {"a": 2}]}, [0.1, 0.2]) == [{"a": 1, "b": None, "p": 0.1}, {"a": 2, "b": None, "p": 0.2}]

    def test_outputs_from_response_records_and_wrapped_predictions(self) -> None:
        s = schema("json", KEYED, outputs=[{"name": "p", "type": "numeric"}])
        assert parse_payload(s, [{"a": 1}], [{"p": 0.9}])[0]["p"] == 0.9
        assert parse_payload(s, [{"a": 1}], {"predictions": [0.7]})[0]["p"] == 0.7
        assert reason(s, [{"a": 1}], [0.1, 0.2]) == "schema_mismatch"

    def test_scalars_are_rejected_as_rows(self) -> None:
        assert reason(schema("json", KEYED), [1, 2]) == "schema_mismatch"
        assert reason(schema("json", KEYED), "text") == "schema_mismatch"
        assert reason(schema("json", KEYED), []) == "empty_payload"


def test_sniffing() -> None:
    assert sniff_protocol({"inputs": [v2_tensor("a", [1], [1])]}) == "v2"
    assert sniff_protocol({"instances": [[1]]}) == "kserve_v1"
    assert sniff_protocol({"inputs": [[1, 2]]}) == "kserve_v1"
    assert sniff_protocol([{"a": 1}]) == "json"
    assert sniff_protocol({"a": 1}) == "json"


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda w: st.lists(st.lists(finite, min_size=w, max_size=w), min_size=1, max_size=8)))
def test_v1_and_v2_flat_and_nested_agree(rows: list[list[float]]) -> None:
    """The same matrix sent as v1 instances, v2 flat data and v2 nested data gives the same records."""
    width = len(rows[0])
    s = schema("auto", [{"name": f"c{i}", "type": "numeric", "source": {"index": i}} for i in range(width)], outputs=[])
    v1 = parse_payload(s, {"instances": rows}, None)
    shape = [len(rows), width]
    flat = parse_payload(s, {"inputs": [v2_tensor("x", shape, [v for r in rows for v in r])]}, None)
    nested = parse_payload(s, {"inputs": [v2_tensor("x", shape, rows)]}, None)
    assert v1 == flat == nested == [{f"c{i}": r[i] for i in range(width)} for r in rows]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([2**70, -(10**400)]) | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["instances", "inputs", "predictions", "outputs", "records", "a", "b", "name", "shape", "data", "p"]), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values, st.sampled_from(["auto", "kserve_v1", "v2", "json"]))
def test_arbitrary_json_is_parsed_or_rejected_never_crashes(request_body: Any, response: Any, protocol: str) -> None:
    try:
        records = parse_payload(schema(protocol, KEYED), request_body, response)
    except Rejected as exc:
        assert exc.reason in {"schema_mismatch", "type_mismatch", "empty_payload"}
        return
    assert records
    assert all(set(r) == {"a", "b", "p"} for r in records)
    assert all(not isinstance(v, (list, dict)) for r in records for v in r.values())
    assert all(abs(v) < 2**1024 for r in records for v in r.values() if type(v) is int)  # pandas can read them


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([1.5, 10**400, 3.0], [1.5, math.inf, 3.0]),  # beside a float: sum() would overflow
        ([1, 2**70, -(10**400)], [1, 2**70, -math.inf]),  # all ints; 2**70 fits a double (pandas reads it)
        ([10**400, -(10**400), 0.5], [math.inf, -math.inf, 0.5]),  # cancelling in an int sum, still huge
        ([1.0, float("nan"), 2], [1.0, None, 2]),
    ],
)
def test_integers_beyond_a_double_become_infinite_never_errors(row: list[Any], expected: list[Any]) -> None:
    """What a JSON parser producing doubles reads for the same literals: a 400-digit integer is an
    infinite (out-of-range) value for data quality, not an error that stops ingest or evaluation."""
    cols = [{"name": n, "type": "numeric", "source": {"index": i}} for i, n in enumerate("xyz")]
    (record,) = parse_payload(schema("kserve_v1", cols, outputs=[]), {"instances": [row]}, None)
    assert list(record.values()) == expected
    assert [type(v) for v in record.values()] == [type(v) for v in expected]
    v2 = {"inputs": [{"name": "t", "shape": [1, 3], "datatype": "FP64", "data": row}]}
    cols_v2 = [{"name": n, "type": "numeric", "source": {"input": "t", "index": i}} for i, n in enumerate("xyz")]
    assert list(parse_payload(schema("v2", cols_v2, outputs=[]), v2, None)[0].values()) == expected
