"""Scrape cost of the exporter at the cardinality cap, beside the conventional prometheus-client way.

    python3 benchmarks/metrics_scrape.py [--models 20] [--features 200] [--repeats 15]

Ours: `monitor.exporter.collector` renders pulled snapshots on every scrape (custom collector). Baseline: the
same series held in labelled `Gauge`s, set once per evaluation, so a scrape only formats them.
Prints medians side by side and their ratio; the difference is the cost of building the families
per scrape, the price of never racing an evaluation and of series vanishing with their subject.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from monitor.core.config import parse_config
from monitor.drift import DriftResult, detect
from monitor.exporter.collector import build_registry, render
from monitor.runtime import ModelSnapshot


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _baseline(models: list[str], result: DriftResult) -> CollectorRegistry:
    registry = CollectorRegistry()
    per_feature = {
        "driftwatch_feature_drift_severity": ["model", "feature", "method"],
        "driftwatch_feature_drift_statistic": ["model", "feature", "method"],
        "driftwatch_feature_drift_threshold": ["model", "feature", "method"],
        "driftwatch_feature_drift_detected": ["model", "feature"],
        "driftwatch_feature_missing_ratio": ["model", "feature"],
        "driftwatch_feature_out_of_range_ratio": ["model", "feature"],
        "driftwatch_feature_new_category_ratio": ["model", "feature"],
    }
    gauges = {name: Gauge(name, name, labels, registry=registry) for name, labels in per_feature.items()}
    for model in models:
        for name, fr in result.features.items():
            gauges["driftwatch_feature_drift_severity"].labels(model, name, fr.method).set(fr.excess)
            gauges["driftwatch_feature_drift_statistic"].labels(model, name, fr.method).set(fr.score)
            gauges["driftwatch_feature_drift_threshold"].labels(model, name, fr.method).set(fr.threshold)
            gauges["driftwatch_feature_drift_detected"].labels(model, name).set(int(fr.drifted))
            gauges["driftwatch_feature_missing_ratio"].labels(model, name).set(fr.quality.missing_ratio)
            gauges["driftwatch_feature_out_of_range_ratio"].labels(model, name).set(fr.quality.out_of_range_ratio)
            gauges["driftwatch_feature_new_category_ratio"].labels(model, name).set(fr.quality.new_category_ratio)
    return registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    columns = [f"f{i}" for i in range(args.features)]
    reference = pd.DataFrame(rng.normal(size=(2000, args.features)), columns=columns)
    current = pd.DataFrame(rng.normal(0.2, size=(1000, args.features)), columns=columns)
    with tempfile.TemporaryDirectory() as tmp:
        ref_path = Path(tmp) / "reference.csv"
        reference.to_csv(ref_path, index=False)
        names = [f"model-{i}" for i in range(args.models)]
        config = parse_config(
            {
                "metrics": {"max_features_per_model": max(1, args.features)},
                "models": [
                    {"name": n, "features": [{"name": c, "type": "numeric"} for c in columns], "reference": {"path": str(ref_path)}}
                    for n in names
                ],
            }
        )
        result = detect(reference, current, config, names[0])
    snapshots = {n: ModelSnapshot(model=n, result=result, last_evaluation=time.time()) for n in names}
    ours = build_registry(config, lambda: snapshots)
    baseline = _baseline(names, result)

    body = render(ours)[0]
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    t_ours = _median_seconds(lambda: render(ours), args.repeats)
    t_base = _median_seconds(lambda: generate_latest(baseline), args.repeats)
    print(f"{args.models} models x {args.features} features: {series} series, {len(body) / 1e6:.2f} MB per scrape")
    print(f"{'':56}{'median':>10}")
    print(f"{'baseline (labelled Gauges, per-feature families only)':<56}{t_base * 1000:>8.1f}ms")
    print(f"{'driftwatch (custom collector over snapshots, all)':<56}{t_ours * 1000:>8.1f}ms")
    print(f"ratio driftwatch / baseline: {t_ours / t_base:.2f}")


if __name__ == "__main__":
    main()
