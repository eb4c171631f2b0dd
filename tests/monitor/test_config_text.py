"""`type: text` columns and `protocol: openai` in the config: the descriptor columns they expand
into, and a precise error for each shape that cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.core.config import ConfigError, load_config, parse_config
from monitor.core.descriptors import TEXT_DESCRIPTORS

LLM_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm" / "config.yaml"
PROMPT = {"name": "prompt", "type": "text", "source": {"field": "prompt"}}
COMPLETION = {"name": "completion", "type": "text", "source": {"field": "completion"}}


def chat(features: list[Any] | None = None, outputs: list[Any] | None = None, **model: Any) -> dict[str, Any]:
    return {"models": [{"name": "chat", "protocol": "openai", "features": features or [PROMPT],
                        "outputs": [COMPLETION] if outputs is None else outputs, "reference": {"path": "r.csv"}, **model}]}


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return dict(exc.value.errors)


def test_a_prompt_column_is_its_descriptors_and_its_input_tokens() -> None:
    model = parse_config(chat()).models[0]
    assert [c.name for c in model.drift_features] == [*(f"prompt.{d}" for d in TEXT_DESCRIPTORS), "prompt.gen_ai.usage.input_tokens"]


def test_a_completion_counts_output_tokens() -> None:
    model = parse_config(chat()).models[0]
    assert model.drift_outputs[-1].name == "completion.gen_ai.usage.output_tokens"


def test_descriptors_take_their_kind() -> None:
    kinds = {c.name: c.type for c in parse_config(chat()).models[0].columns}
    assert (kinds["prompt.script"], kinds["prompt.chars"]) == ("categorical", "numeric")


def test_a_critical_text_column_makes_every_descriptor_critical() -> None:
    model = parse_config(chat(features=[{**PROMPT, "critical": True}])).models[0]
    assert all(c.critical for c in model.drift_features)


def test_json_expected_adds_json_validity_and_tokens_can_be_turned_off() -> None:
    out = {**COMPLETION, "text": {"json_expected": True, "tokens": False}}
    names = [c.name for c in parse_config(chat(outputs=[out])).models[0].drift_outputs]
    assert names[-1] == "completion.json_valid"


def test_a_text_column_of_a_json_payload_has_no_tokens() -> None:
    data = {"models": [{"name": "m", "features": [{"name": "review", "type": "text", "source": {"key": "review"}}],
                        "reference": {"path": "r.csv"}}]}
    assert "review.gen_ai.usage.input_tokens" not in [c.name for c in parse_config(data).models[0].columns]


@pytest.mark.parametrize(("features", "path", "message"), [
    ([{**PROMPT, "type": "numeric"}], "models[0:chat].features[0:prompt]", "the column needs `type: text`, not 'numeric'"),
    ([{**PROMPT, "drift": {"method": "psi"}}], "models[0:chat].features[0:prompt]", "a text column has no `drift` of its own"),
    ([{**PROMPT, "min_value": 0}], "models[0:chat].features[0:prompt]", "`min_value`/`max_value` are for numeric columns"),
    ([{"name": "x", "type": "numeric", "text": {"tokens": False}, "source": {"key": "x"}}], "models[0:chat].features[0:x]",
     "`text` options are for `type: text` columns"),
    ([{**PROMPT, "source": {"field": "prompt", "key": "p"}}], "models[0:chat].features[0:prompt].source",
     "`field` names a part of an OpenAI-compatible call: use it alone"),
    ([{**PROMPT, "source": {"field": "answer"}}], "models[0:chat].features[0:prompt].source.field", "'prompt', 'completion' or 'embedding'"),
    ([{"name": "x", "type": "numeric", "source": {"key": "x"}}], "models[0:chat]", "a `protocol: openai` model reads `source: {field: prompt}`"),
])
def test_a_misfit_text_column_is_refused_precisely(features: list[Any], path: str, message: str) -> None:
    assert message in errors_of(chat(features=features)).get(path, "")


def test_field_sources_need_the_openai_protocol() -> None:
    errs = errors_of(chat(protocol="json"))
    assert "`source.field` needs `protocol: openai`, not 'json'" in errs["models[0:chat]"]


def test_tokens_need_an_openai_answer() -> None:
    data = {"models": [{"name": "m", "reference": {"path": "r.csv"},
                        "features": [{"name": "review", "type": "text", "source": {"key": "review"}, "text": {"tokens": True}}]}]}
    assert "`text.tokens: true` needs `source.field`" in errors_of(data)["models[0:m].features[0:review]"]


def test_a_column_named_like_a_descriptor_is_refused() -> None:
    data = {"models": [{"name": "m", "reference": {"path": "r.csv"}, "features": [
        {"name": "review", "type": "text", "source": {"key": "review"}}, {"name": "review.chars", "type": "numeric"}]}]}
    assert "also a descriptor of text column 'review'" in errors_of(data)["models[0:m]"]


def test_the_llm_example_loads() -> None:
    model = load_config(LLM_EXAMPLE).models[0]
    assert (model.protocol, len(model.columns), model.reference.path.exists()) == ("openai", 20, True)


def test_a_text_column_shows_five_examples_by_default() -> None:
    assert parse_config(chat()).models[0].features[0].options.examples == 5


def test_zero_examples_turns_them_off() -> None:
    prompt = {**PROMPT, "text": {"examples": 0}}
    assert parse_config(chat(features=[prompt])).models[0].features[0].options.examples == 0


@pytest.mark.parametrize("value", [21, -1])
def test_examples_outside_0_to_20_are_refused_with_the_range(value: int) -> None:
    prompt = {**PROMPT, "text": {"examples": value}}
    assert errors_of(chat(features=[prompt])) == {
        "models[0:chat].features[0:prompt].text.examples": f"examples must be between 0 (off) and 20, got {value}"}


def test_examples_must_be_a_whole_number_not_a_flag() -> None:
    prompt = {**PROMPT, "text": {"examples": True}}
    assert errors_of(chat(features=[prompt])) == {"models[0:chat].features[0:prompt].text.examples": "Input should be a valid integer"}
