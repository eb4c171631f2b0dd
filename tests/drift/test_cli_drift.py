"""`driftwatch drift REFERENCE CURRENT`: table, JSON (golden), and clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.app.cli import app
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
    assert data["features"]["tenure_months"]["method"] == "wasserstein_test" and data["prediction"] is None


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t: [str(REF), str(t / "missing.csv")], "no such file"),
        (lambda t: [str(REF), str(_write(t / "bad.parquet", b"not parquet at all"))], "not a readable Parquet file"),
        (lambda t: [str(REF), str(_write(t / "other.csv", b"a,b\n1,2\n"))], "no column in common"),
        (lambda t: [str(REF), str(_write(t / "other.csv", b"a,b\n1,2\n")), "--config", str(CONFIG), "--model", "churn"], "none of the columns of model 'churn'"),
        (lambda t: [str(REF), str(CUR), "--model", "churn"], "--model needs --config"),
        (lambda t: [str(REF), str(CUR), "--config", str(CONFIG)], "name one"),
        (lambda t: [str(REF), str(CUR), "--config", str(CONFIG), "--model", "nope"], "no model 'nope' is configured"),
        (lambda t: [str(ROOT / "examples" / "data" / "wine_reference.csv"), str(CUR), "--config", str(CONFIG), "--model", "churn"], "missing column(s) of model 'churn'"),
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


def _timestamps(seed: int, n: int = 2000) -> pd.Series:
    """ISO 8601 strings drawn from one month: two draws have the same distribution."""
    rng = np.random.default_rng(seed)
    seconds = rng.uniform(0, 30 * 86400, n)
    return pd.Series(pd.Timestamp("2024-03-01") + pd.to_timedelta(seconds, unit="s")).dt.strftime("%Y-%m-%dT%H:%M:%S")


def _timestamp_files(tmp_path: Path) -> tuple[Path, Path]:
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    pd.DataFrame({"ts": _timestamps(1), "x": np.arange(2000) % 7}).to_csv(ref, index=False)
    pd.DataFrame({"ts": _timestamps(2), "x": np.arange(2000) % 7}).to_csv(cur, index=False)
    return ref, cur


def test_csv_timestamps_with_the_same_distribution_are_not_drift(tmp_path: Path) -> None:
    """Each ISO timestamp used to be a category of its own (jensenshannon 0.83, always drifted)."""
    ref, cur = _timestamp_files(tmp_path)
    code, out, _ = _run(str(ref), str(cur), "--json")
    ts = json.loads(out)["features"]["ts"]
    assert code == 0
    assert ts["kind"] == "numeric"
    assert ts["drifted"] is False


def test_csv_timestamps_score_as_the_same_data_in_parquet(tmp_path: Path) -> None:
    ref, cur = _timestamp_files(tmp_path)
    for path in (ref, cur):
        frame = pd.read_csv(path)
        frame["ts"] = pd.to_datetime(frame["ts"])
        frame.to_parquet(path.with_suffix(".parquet"))
    from_csv = json.loads(_run(str(ref), str(cur), "--json")[1])["features"]["ts"]
    from_parquet = json.loads(_run(str(ref.with_suffix(".parquet")), str(cur.with_suffix(".parquet")), "--json")[1])["features"]["ts"]
    assert from_csv["score"] == pytest.approx(from_parquet["score"], rel=1e-12)


def test_a_column_declared_datetime_in_the_config_is_parsed(tmp_path: Path) -> None:
    ref, cur = _timestamp_files(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(f"models:\n  - name: m\n    features: [{{name: ts, type: datetime}}]\n    reference: {{path: {ref}}}\n")
    code, out, err = _run(str(ref), str(cur), "--config", str(config), "--json")
    ts = json.loads(out)["features"]["ts"]
    assert code == 0, err
    assert ts["method"] == "wasserstein_test"
    assert ts["drifted"] is False


def test_columns_in_only_one_file_are_named(tmp_path: Path) -> None:
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    pd.DataFrame({"x": range(50), "old_feature": range(50)}).to_csv(ref, index=False)
    pd.DataFrame({"x": range(50), "new_feature": range(50)}).to_csv(cur, index=False)
    code, out, err = _run(str(ref), str(cur), "--json")
    doc = json.loads(out)
    assert code == 0
    assert f"only {ref} has old_feature: not compared" in err
    assert f"only {cur} has new_feature: not compared" in err
    assert doc["columns_only_in_reference"] == ["old_feature"]
    assert doc["columns_only_in_current"] == ["new_feature"]


def test_numbers_that_became_text_are_type_drift(tmp_path: Path) -> None:
    """A changed type is counted (wrong_type), flagged and counts toward the dataset share."""
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    pd.DataFrame({"amount": np.arange(200) % 10, "region": ["north", "south"] * 100}).to_csv(ref, index=False)
    pd.DataFrame({"amount": ["ten", "eleven"] * 100, "region": ["north", "south"] * 100}).to_csv(cur, index=False)
    code, out, _ = _run(str(ref), str(cur), "--json")
    doc = json.loads(out)
    amount = doc["features"]["amount"]
    assert code == 0
    assert amount["quality"]["wrong_type_ratio"] == 1.0
    assert amount["drifted"] is True
    assert amount["untested"] is None
    assert doc["dataset"]["n_drifted"] == 1
    assert doc["dataset"]["drifted"] is True  # 1 of 2 features reaches the 50% share


def test_the_table_says_the_type_changed(tmp_path: Path) -> None:
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    pd.DataFrame({"amount": np.arange(200) % 10}).to_csv(ref, index=False)
    pd.DataFrame({"amount": ["ten"] * 200}).to_csv(cur, index=False)
    _, out, _ = _run(str(ref), str(cur))
    assert "Type changed — amount: 100% of current values are not numbers" in out


def test_a_numeric_column_without_reference_values_is_never_given_the_z_test(tmp_path: Path) -> None:
    pd.DataFrame({"x": [float("nan")] * 20, "y": range(20)}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"x": range(20), "y": range(20)}).to_csv(tmp_path / "cur.csv", index=False)
    _, out, _ = _run(str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), "--json")
    assert json.loads(out)["features"]["x"]["method"] == "wasserstein_test"  # numeric, as with a reference


def test_drift_config_rejects_what_check_config_rejects(tmp_path: Path) -> None:
    """One rule: a configured column without a usable reference value could never drift."""
    pd.DataFrame({"x": ["abc", "def", "ghi"], "y": [1, 2, 3]}).to_csv(tmp_path / "ref.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  - name: m\n    features: [{name: x, type: numeric}, {name: y, type: numeric}]\n    reference: {path: ref.csv}\n")
    drift = runner.invoke(app, ["drift", str(tmp_path / "ref.csv"), str(tmp_path / "ref.csv"), "--config", str(config)])
    check = runner.invoke(app, ["check-config", str(config)])
    assert drift.exit_code == 2
    assert check.exit_code == 2
    assert "column x of the reference has no finite number: it could never drift" in drift.stderr
    assert "column x of" in check.stderr and "has no finite number: it could never drift" in check.stderr


@pytest.mark.parametrize(("current", "expected"), [(CUR, 1), (REF, 0), (ROOT / "missing.csv", 2)])
def test_fail_on_drift_exit_codes(current: Path, expected: int) -> None:
    """1 on dataset drift (a CI gate), 0 without, 2 for errors."""
    code, _, _ = _run(str(REF), str(current), "--fail-on-drift")
    assert code == expected


def test_fail_on_drift_with_json_output() -> None:
    code, out, _ = _run(str(REF), str(CUR), "--fail-on-drift", "--json")
    assert code == 1
    assert json.loads(out)["dataset"]["drifted"] is True
