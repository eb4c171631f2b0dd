"""`driftwatch drift REFERENCE CURRENT`: table, JSON (golden), and clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from tests.golden import assert_golden

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "data" / "churn_reference.csv"
CUR = ROOT / "examples" / "data" / "churn_current.csv"
CONFIG = ROOT / "examples" / "config.yaml"
GOLDEN = Path(__file__).parent / "golden" / "churn_drift.json"

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["drift", *args])
    return result.exit_code, result.stdout, result.stderr


def test_table_lists_drifted_columns_first_and_the_verdict() -> None:
    code, out, _ = _run(str(REF), str(CUR), "--config", str(CONFIG), "--model", "churn")
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines() if line.split() and line.split()[-1] in ("yes", "no")]
    drifted = [line.split()[0] for line in out.splitlines() if line.split() and line.split()[-1] == "yes"]
    assert rows[: len(drifted)] == drifted and set(drifted) >= {"tenure_months", "monthly_charges", "contract"}
    assert "senior" in rows and "z" in out  # per-feature override from the config
    assert "Dataset: DRIFT" in out and "4 of 7 features" in out
    assert "Prediction (churn_probability): drifted" in out


def test_no_drift_still_exits_zero() -> None:
    code, out, _ = _run(str(REF), str(REF))
    assert code == 0 and "no drift" in out and "0 of 8 features" in out


def test_json_output_is_the_golden_result() -> None:
    code, out, _ = _run(str(REF), str(CUR), "--config", str(CONFIG), "--model", "churn", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"dataset", "prediction", "features"} and data["dataset"]["drifted"] is True
    assert_golden(GOLDEN, out)


def test_parquet_input_and_inferred_types(tmp_path: Path) -> None:
    pq = tmp_path / "current.parquet"
    pd.read_csv(CUR).to_parquet(pq)
    code, out, _ = _run(str(REF), str(pq), "--json")
    data = json.loads(out)
    assert code == 0 and data["features"]["contract"]["kind"] == "categorical"
    assert data["features"]["tenure_months"]["method"] == "wasserstein" and data["prediction"] is None


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t: [str(REF), str(t / "missing.csv")], "no such file"),
        (lambda t: [str(REF), str(_write(t / "bad.parquet", b"not parquet at all"))], "not a readable Parquet file"),
        (lambda t: [str(REF), str(_write(t / "other.csv", b"a,b\n1,2\n"))], "no column in common"),
        (lambda t: [str(REF), str(_write(t / "other.csv", b"a,b\n1,2\n")), "--config", str(CONFIG), "--model", "churn"], "none of the model's columns"),
        (lambda t: [str(REF), str(CUR), "--model", "churn"], "--model needs --config"),
        (lambda t: [str(REF), str(CUR), "--config", str(CONFIG)], "name one"),
        (lambda t: [str(REF), str(CUR), "--config", str(CONFIG), "--model", "nope"], "no model named 'nope'"),
        (lambda t: [str(ROOT / "examples" / "data" / "wine_reference.csv"), str(CUR), "--config", str(CONFIG), "--model", "churn"], "reference data has no column(s)"),
    ],
)
def test_user_errors_exit_2_with_a_clear_message(tmp_path: Path, make_args, message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = _run(*make_args(tmp_path))
    assert code == 2, out + err
    assert message in " ".join(err.split()) and "Traceback" not in out + err


def test_missing_columns_in_current_are_noted(tmp_path: Path) -> None:
    cur = tmp_path / "cur.csv"
    pd.read_csv(CUR).drop(columns=["senior"]).to_csv(cur, index=False)
    code, out, err = _run(str(REF), str(cur), "--config", str(CONFIG), "--model", "churn", "--json")
    assert code == 0 and "lacks senior" in err
    assert json.loads(out)["features"]["senior"]["quality"]["missing_ratio"] == 1.0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_timezone_aware_columns_are_compared_not_a_traceback(tmp_path: Path) -> None:
    ts = pd.Series(pd.date_range("2024-01-01", periods=100, freq="h", tz="Europe/Paris"))
    pd.DataFrame({"t": ts, "p": pd.period_range("2024-01", periods=4, freq="M").repeat(25).astype(str)}).to_parquet(tmp_path / "ref.parquet")
    pd.DataFrame({"t": ts + pd.Timedelta(days=60), "p": ["2024-01"] * 100}).to_parquet(tmp_path / "cur.parquet")
    code, out, _ = _run(str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"), "--json")
    assert code == 0, out
    features = json.loads(out)["features"]
    assert features["t"]["kind"] == "numeric" and features["t"]["drifted"] and features["t"]["quality"]["out_of_range_ratio"] == 1.0


def test_says_plainly_when_no_column_could_be_tested(tmp_path: Path) -> None:
    pd.DataFrame({"x": [float("nan")] * 20, "c": [None] * 20}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"x": range(10), "c": ["a"] * 10}).to_csv(tmp_path / "cur.csv", index=False)
    code, out, _ = _run(str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"))
    text = " ".join(out.split())
    assert code == 0 and "no drift" not in text
    assert "Dataset: not tested — no column could be tested (x: the reference has no usable value" in text
    code, out, _ = _run(str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), "--json")
    doc = json.loads(out)
    assert doc["dataset"]["n_tested"] == 0 and doc["dataset"]["n_features"] == 2  # existing keys kept
    assert doc["features"]["x"]["untested"].startswith("the reference has no usable value")
