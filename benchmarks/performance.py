"""Performance estimation side by side: driftwatch's CBPE and NannyML's, then false alarms and power.

    python3 benchmarks/performance.py              # the full run (about 2 minutes on 2 cores, plus
                                                   # NannyML's venv the first time, ~70 s)
    python3 benchmarks/performance.py --quick      # fewer A/A references (wider error bars)

1. **Estimates per chunk.** One binary model with perfectly calibrated scores (tests/infra/
   performance_data.py): reference 5,000 labelled rows, analysis 10 chunks of 500 whose second half
   has a covariate shift (x + 0.8: fewer records near the decision boundary, higher accuracy).
   Realized accuracy and ROC AUC from the labels, driftwatch's estimate, NannyML 0.13.1's estimate
   (its own virtual environment, tests/infra/nannyml_env.py), the mean absolute differences, and the
   median time of fit + estimate over `--repeats` runs (NannyML timed inside its process, imports
   excluded).
2. **A/A.** Fresh references and fresh windows from the same process at 50, 200 and 1,000 labels,
   false_alarm_rate 0.05: the share of windows flagged (realized and estimated ROC AUC).
3. **Power** at 500 labels: 20% label noise, and a concept shift (the label's true probability
   s(1.4x) while the model says s(2x)).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.performance.profile import PerformanceProfile
from tests.infra.nannyml_env import run_cbpe
from tests.infra.performance_data import binary, binary_config, flag_rates, labelled

CHUNK = 500
METRICS = ("accuracy", "roc_auc")


def side_by_side(repeats: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    reference = binary(rng, 5000)
    analysis = binary(rng, 10 * CHUNK, covariate_shift=np.repeat([0.0, 0.8], 5 * CHUNK))
    config = binary_config()
    chunks = [analysis.iloc[i:i + CHUNK] for i in range(0, len(analysis), CHUNK)]
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        profile = PerformanceProfile.from_reference(reference, config)
        ours = [profile.cbpe.estimate(*profile._window_scores(c)) for c in chunks]  # type: ignore[union-attr]
        ours_times.append(time.perf_counter() - start)
        theirs = run_cbpe(reference, analysis, y_pred_proba="score", problem_type="classification_binary",
                          metrics=list(METRICS), chunk_size=CHUNK)
        theirs_times.append(theirs["seconds"])
    realized = [profile.evaluate(c, labelled(c, config)).realized for c in chunks]
    lines = ["chunk  shift | " + " | ".join(f"{m:>8} realized  driftwatch  NannyML" for m in METRICS)]
    for i in range(len(chunks)):
        shift = "0.8" if i >= 5 else "0"
        cells = [f"{realized[i][m]:>17.4f}  {ours[i][m]:>10.4f}  {theirs[m][i]:>7.4f}" for m in METRICS]  # type: ignore[index]
        lines.append(f"{i:>5}  {shift:>5} | " + " | ".join(cells))
    for m in METRICS:
        diff = np.abs(np.array([o[m] for o in ours]) - np.array(theirs[m]))
        err_ours = np.abs(np.array([o[m] for o in ours]) - np.array([r[m] for r in realized]))  # type: ignore[index]
        err_theirs = np.abs(np.array(theirs[m]) - np.array([r[m] for r in realized]))  # type: ignore[index]
        lines.append(f"{m}: mean |driftwatch - NannyML| {diff.mean():.4f} (max {diff.max():.4f}); "
                     f"mean |estimate - realized| driftwatch {err_ours.mean():.4f}, NannyML {err_theirs.mean():.4f}")
    lines.append(f"fit + estimate, median of {repeats}: driftwatch {statistics.median(ours_times):.3f} s "
                 f"(includes the threshold bootstraps), NannyML {statistics.median(theirs_times):.3f} s")
    return "\n".join(lines)


def rates(references: int, windows: int, seed: int) -> str:
    config = binary_config(false_alarm_rate=0.05, resamples=400)
    lines = ["A/A (false_alarm_rate 0.05), flagged share of windows:"]
    aa = flag_rates(binary, config, (50, 200, 1000), references=references, windows=windows, reference_size=2000, seed=seed)
    for n, c in aa.items():
        lines.append(f"  n={n:>5}: realized {c['realized'] / c['windows']:.3f}, estimated {c['estimated'] / c['windows']:.3f} "
                     f"({c['windows']} windows, {references} references)")
    lines.append("power at 500 labels:")
    for name, change in (("label noise 20%", {"label_noise": 0.2}), ("concept shift 0.3", {"concept_shift": 0.3})):
        c = flag_rates(binary, config, (500,), references=5, windows=40, reference_size=2000, seed=seed + 1, **change)[500]
        lines.append(f"  {name}: realized {c['realized'] / c['windows']:.3f}, estimated {c['estimated'] / c['windows']:.3f} "
                     f"({c['windows']} windows)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each estimator (median)")
    parser.add_argument("--quick", action="store_true", help="10 A/A references instead of 60")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(side_by_side(args.repeats, args.seed))
    print(rates(10 if args.quick else 60, 20, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
