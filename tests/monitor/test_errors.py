"""The shared error vocabulary: paths a user can find in their payload, details that leak nothing."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from monitor.core.errors import ApiError, loc_path, validation_detail


class Item(BaseModel):
    value: int


class Batch(BaseModel):
    items: list[Item]
    name: str


@pytest.mark.parametrize(("loc", "path"), [
    (("items", 3, "value"), "items[3].value"),
    ((0, "name"), "[0].name"),
    ((), "(body)"),
])
def test_loc_path_reads_like_the_payload(loc: tuple[object, ...], path: str) -> None:
    assert loc_path(loc) == path


def test_validation_detail_lists_fields_without_values() -> None:
    with pytest.raises(ValidationError) as info:
        Batch.model_validate({"items": [{"value": "secret-card-4111"}] * 80})
    detail = validation_detail(info.value.errors())
    assert len(detail) == 50
    assert detail[0] == {"loc": "items[0].value", "msg": detail[0]["msg"], "type": "int_parsing"}
    assert "secret-card-4111" not in json.dumps(detail)


def test_api_error_renders_the_project_body() -> None:
    r = ApiError(401, "unauthorized", "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"}).response()
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert json.loads(bytes(r.body)) == {"error": "unauthorized", "detail": "missing or invalid bearer token"}
