"""The sidecar stamps the model version on every captured event (docs/versions.md): the model server's
response header (`--version-header`), else a fixed version (`--model-version`, `$DRIFTWATCH_MODEL_VERSION`)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sidecar_servers import Collector, ModelServer, Sidecar, wait_for

from monitor.sidecar import SettingsError, build_settings

Start = Callable[..., Sidecar]


def _captured(sidecar: Sidecar, collector: Collector, path: str) -> dict:
    with httpx.Client(base_url=sidecar.url) as c:
        assert c.post(path, content=b'{"instances": [[1.0]]}', headers={"x-request-id": "one"}).status_code == 200
    wait_for(lambda: len(collector.events()) == 1)
    return collector.events()[0]


def test_the_response_header_names_the_version(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    # the toy model server answers every :predict with `x-model: toy`
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "50ms", "--version-header", "X-Model",
                            env={"DRIFTWATCH_MODEL_VERSION": "fixed-1"})
    assert _captured(sidecar, collector, "/v1/models/wine:predict")["version"] == "toy"


def test_the_pod_label_version_stamps_calls_whose_response_names_none(
    model_server: ModelServer, collector: Collector, start_sidecar: Start
) -> None:
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "50ms", env={"DRIFTWATCH_MODEL_VERSION": "2.1.0+build.7"})
    assert _captured(sidecar, collector, "/v1/models/wine:predict")["version"] == "2.1.0+build.7"


def test_no_version_anywhere_sends_none(model_server: ModelServer, collector: Collector, start_sidecar: Start) -> None:
    sidecar = start_sidecar(model_server.url, collector.url, "--linger", "50ms")
    assert "version" not in _captured(sidecar, collector, "/v1/models/wine:predict")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model_version": "a" * 65}, "--model-version / $DRIFTWATCH_MODEL_VERSION: the version is 65 characters long, more than 64"),
    ({"model_version": "v1\x07"}, "--model-version / $DRIFTWATCH_MODEL_VERSION: the version contains a control character"),
    ({"environ": {"DRIFTWATCH_MODEL_VERSION": "v 1"}}, "--model-version / $DRIFTWATCH_MODEL_VERSION: the version may hold only"),
    ({"version_header": "x model"}, "--version-header 'x model': not a valid header name"),
])
def test_a_bad_version_flag_is_refused_with_its_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        build_settings(upstream="http://127.0.0.1:8080", monitor="http://127.0.0.1:9000", model="wine", **kwargs)
    assert str(err.value).startswith(message)
