"""Embedding columns in captured payloads: an OpenAI `/v1/embeddings` call gives one record per input,
an Open Inference v2 [rows, dimensions] tensor one vector per row, a JSON or KServe v1 row a list
cell; a vector of the wrong length or with non-finite values is rejected with its own reason."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from monitor.capture import CapturedEvent, ModelSchema, Rejected, event_records, parse_payload
from monitor.core.config import parse_config

OPENAI = {"models": [{"name": "emb", "protocol": "openai", "reference": {"path": "r.csv"},
                      "features": [{"name": "text", "type": "text", "source": {"field": "prompt"}},
                                   {"name": "vec", "type": "embedding", "embedding": {"dimensions": 3}, "source": {"field": "embedding"}}]}]}
OPENAI_SCHEMA = ModelSchema.from_config(parse_config(OPENAI).models[0])


def schema(protocol: str, source: dict[str, Any] | None = None) -> ModelSchema:
    feature: dict[str, Any] = {"name": "vec", "type": "embedding", "embedding": {"dimensions": 3}}
    if source is not None:
        feature["source"] = source
    cfg = {"models": [{"name": "m", "protocol": protocol, "reference": {"path": "r.csv"},
                       "features": [{"name": "n", "type": "numeric", "source": {"key": "n"} if protocol != "v2" else {"input": "n"}}, feature]}]}
    return ModelSchema.from_config(parse_config(cfg).models[0])


def event(request: Any, response: Any | None, path: str = "/v1/embeddings") -> CapturedEvent:
    def body(value: Any) -> dict[str, Any]:
        return {"body": json.dumps(value), "encoding": "utf-8", "truncated": False}

    return CapturedEvent.model_validate({"id": "e", "model": "emb", "timestamp": 1.0, "status": 200, "path": path,
                                         "request": body(request), **({"response": body(response)} if response is not None else {})})


def answer(*vectors: Any) -> dict[str, Any]:
    return {"object": "list", "data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)], "usage": {"prompt_tokens": 4}}


def reason(schema_: ModelSchema, ev: CapturedEvent) -> str:
    with pytest.raises(Rejected) as exc:
        event_records(schema_, ev)
    return exc.value.reason


# -- OpenAI embeddings --------------------------------------------------------------------------


def test_an_embeddings_call_is_one_record_per_input_with_its_text_and_vector() -> None:
    records = event_records(OPENAI_SCHEMA, event({"model": "e", "input": ["a", "b"]}, answer([1, 2, 3], [4.5, 5, 6])))
    assert [(r["text"], r["vec"].tolist()) for r in records] == [("a", [1.0, 2.0, 3.0]), ("b", [4.5, 5.0, 6.0])]


def test_a_vector_is_kept_as_float32_the_engines_type() -> None:
    (record,) = event_records(OPENAI_SCHEMA, event({"input": "a"}, answer([1, 2, 3])))
    assert record["vec"].dtype == np.float32


def test_the_calls_token_count_belongs_to_an_input_only_when_it_is_alone() -> None:
    one = event_records(OPENAI_SCHEMA, event({"input": "a"}, answer([1, 2, 3])))
    two = event_records(OPENAI_SCHEMA, event({"input": ["a", "b"]}, answer([1, 2, 3], [1, 2, 3])))
    assert [r["text.gen_ai.usage.input_tokens"] for r in one + two] == [4, None, None]


def test_base64_float32_vectors_are_read_like_float_lists() -> None:
    encoded = base64.b64encode(np.array([0.5, -1.0, 2.0], dtype="<f4").tobytes()).decode()
    (record,) = event_records(OPENAI_SCHEMA, event({"model": "e", "input": "a", "encoding_format": "base64"}, answer(encoded)))
    assert record["vec"].tolist() == [0.5, -1.0, 2.0]


def test_without_the_path_an_input_body_is_an_embeddings_call() -> None:
    (record,) = event_records(OPENAI_SCHEMA, event({"input": "a"}, answer([1, 2, 3]), path=""))
    assert record["vec"].tolist() == [1.0, 2.0, 3.0]


def test_a_chat_call_to_a_model_with_an_embedding_column_leaves_the_vector_missing() -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    reply = {"choices": [{"index": 0, "message": {"content": "yo"}}]}
    (record,) = event_records(OPENAI_SCHEMA, event(chat, reply, "/v1/chat/completions"))
    assert record["vec"] is None


def test_a_vector_of_another_length_is_rejected_as_vector_dimensions() -> None:
    assert reason(OPENAI_SCHEMA, event({"input": "a"}, answer([1, 2]))) == "vector_dimensions"


def test_a_nan_in_a_vector_is_rejected_as_vector_non_finite() -> None:
    encoded = base64.b64encode(np.array([0.5, np.nan, 2.0], dtype="<f4").tobytes()).decode()
    assert reason(OPENAI_SCHEMA, event({"input": "a"}, answer(encoded))) == "vector_non_finite"


def test_an_integer_beyond_a_double_in_a_vector_is_rejected_as_vector_non_finite() -> None:
    assert reason(OPENAI_SCHEMA, event({"input": "a"}, answer([1, 10**400, 3]))) == "vector_non_finite"


def test_fewer_vectors_than_inputs_is_a_schema_mismatch() -> None:
    assert reason(OPENAI_SCHEMA, event({"input": ["a", "b"]}, answer([1, 2, 3]))) == "schema_mismatch"


def test_an_embeddings_call_without_its_answer_is_a_schema_mismatch() -> None:
    assert reason(OPENAI_SCHEMA, event({"input": "a"}, None)) == "schema_mismatch"


def test_an_answer_without_vectors_is_an_empty_payload() -> None:
    assert reason(OPENAI_SCHEMA, event({"input": "a"}, {"data": []})) == "empty_payload"


def test_an_error_answer_is_an_upstream_error() -> None:
    assert reason(OPENAI_SCHEMA, event({"input": "a"}, {"error": {"message": "overloaded"}, "data": [{"embedding": [1, 2, 3]}]})) == "upstream_error"


# -- Open Inference Protocol v2 ----------------------------------------------------------------------


def v2_request(rows: list[list[float]], width: int | None = None) -> dict[str, Any]:
    w = width if width is not None else len(rows[0])
    return {"inputs": [{"name": "n", "shape": [len(rows)], "datatype": "FP32", "data": [float(i) for i in range(len(rows))]},
                       {"name": "emb", "shape": [len(rows), w], "datatype": "FP32", "data": rows}]}


def test_a_v2_tensor_of_rows_by_dimensions_gives_one_vector_per_row() -> None:
    records = parse_payload(schema("v2", {"input": "emb"}), v2_request([[1, 2, 3], [4, 5, 6]]), None)
    assert [r["vec"].tolist() for r in records] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def test_a_v2_tensor_of_another_width_is_rejected_as_vector_dimensions() -> None:
    with pytest.raises(Rejected) as exc:
        parse_payload(schema("v2", {"input": "emb"}), v2_request([[1, 2], [3, 4]]), None)
    assert exc.value.reason == "vector_dimensions"


def test_a_v2_tensor_with_an_infinite_value_is_rejected_as_vector_non_finite() -> None:
    with pytest.raises(Rejected) as exc:
        parse_payload(schema("v2", {"input": "emb"}), v2_request([[1, 2, 3], [4, float("inf"), 6]]), None)
    assert exc.value.reason == "vector_non_finite"


# -- JSON and KServe v1 rows -----------------------------------------------------------------------


def test_a_json_row_holds_its_vector_as_a_list() -> None:
    (record,) = parse_payload(schema("json", {"key": "emb"}), {"n": 1, "emb": [1, 2, 3]}, None)
    assert (record["n"], record["vec"].tolist()) == (1, [1.0, 2.0, 3.0])


def test_a_kserve_v1_instance_holds_its_vector_as_a_list() -> None:
    records = parse_payload(schema("kserve_v1", {"key": "emb"}), {"instances": [{"n": 1, "emb": [1, 2, 3]}, {"n": 2}]}, None)
    assert [None if r["vec"] is None else r["vec"].tolist() for r in records] == [[1.0, 2.0, 3.0], None]


@pytest.mark.parametrize(("value", "why"), [
    ([1, 2, 1e39], "vector_non_finite"),
    (5.0, "type_mismatch"), ({"x": 1}, "type_mismatch"), (["a", "b", "c"], "type_mismatch"), ([True, 1, 2], "type_mismatch"),
    ([1, 2, 3, 4], "vector_dimensions"), ([], "vector_dimensions"),
])
def test_a_cell_that_is_not_a_vector_of_the_columns_length_is_rejected_with_its_reason(value: Any, why: str) -> None:
    with pytest.raises(Rejected) as exc:
        parse_payload(schema("json", {"key": "emb"}), {"n": 1, "emb": value}, None)
    assert exc.value.reason == why


def test_a_rejection_names_the_column_and_both_lengths() -> None:
    with pytest.raises(Rejected) as exc:
        parse_payload(schema("json", {"key": "emb"}), {"n": 1, "emb": [1, 2, 3, 4]}, None)
    assert exc.value.detail == "column 'vec' expects 3 dimensions, got a vector of 4"
