"""Regenerate the example datasets in examples/data (deterministic: fixed seeds).

- wine_reference.csv: scikit-learn's bundled wine data with a logistic-regression model's outputs,
  the reference for the `wine` model of examples/config.yaml (KServe v1, list instances).
- churn_reference.csv / churn_current.csv: a synthetic churn dataset with numeric and categorical
  features; the current file has shifted tenure, charges and contract mix (for `driftwatch drift`).
- ../embeddings/data/vectors_reference.csv / vectors_current.csv: 32-dimension vectors as JSON lists
  with their query texts, the reference of examples/embeddings/config.yaml; the current file moves
  three dimensions by half a standard deviation (for `driftwatch drift` and `driftwatch report`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.app.demo.wine import reference, train

OUT = Path(__file__).parent / "data"


def wine() -> pd.DataFrame:
    return reference(train())


def churn(n: int, seed: int, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 14.0 if not drifted else 8.0, n).clip(0, 72).round()
    monthly = rng.normal(65 if not drifted else 78, 20, n).clip(18, 120).round(2)
    contract_p = [0.55, 0.25, 0.20] if not drifted else [0.75, 0.15, 0.10]
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=contract_p)
    payment = rng.choice(["card", "bank-transfer", "e-check", "mail"], n, p=[0.3, 0.25, 0.3, 0.15])
    internet = rng.choice(["dsl", "fiber", "none"], n, p=[0.35, 0.45, 0.20])
    senior = rng.choice(["no", "yes"], n, p=[0.84, 0.16])
    logit = -1.0 - 0.04 * tenure + 0.02 * (monthly - 65) + 1.2 * (contract == "month-to-month") + 0.4 * (senior == "yes")
    prob = 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": (tenure * monthly).round(2),
            "contract": contract,
            "payment_method": payment,
            "internet_service": internet,
            "senior": senior,
            "churn_probability": prob.round(6),
        }
    )


def vectors(n: int, seed: int, drifted: bool) -> pd.DataFrame:
    """Correlated 32-dimension vectors (a fixed mixing of Gaussian rows, rounded to 4 decimals)."""
    mixing = np.eye(32) + 0.2 * np.random.default_rng(0).standard_normal((32, 32))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 32)) @ mixing
    if drifted:
        x[:, [2, 9, 21]] += 0.5 * x[:, [2, 9, 21]].std(axis=0)
    topics = ["weather", "train times", "opening hours", "recipes"]
    queries = [f"{topics[i % 4]} question {int(rng.integers(50))}" for i in range(n)]
    return pd.DataFrame({"query": queries, "vec": [json.dumps([round(float(v), 4) for v in row]) for row in x]})


def main() -> None:
    OUT.mkdir(exist_ok=True)
    wine().to_csv(OUT / "wine_reference.csv", index=False)
    churn(5000, seed=1, drifted=False).to_csv(OUT / "churn_reference.csv", index=False)
    churn(2000, seed=2, drifted=True).to_csv(OUT / "churn_current.csv", index=False)
    vec_out = Path(__file__).parent / "embeddings" / "data"
    vec_out.mkdir(parents=True, exist_ok=True)
    vectors(600, seed=1, drifted=False).to_csv(vec_out / "vectors_reference.csv", index=False)
    vectors(300, seed=2, drifted=True).to_csv(vec_out / "vectors_current.csv", index=False)


if __name__ == "__main__":
    main()
