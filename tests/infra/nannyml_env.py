"""NannyML's CBPE in a virtual environment of its own, for the cross-check test and the benchmark.

NannyML conflicts with driftwatch's dependencies (python-dateutil via kubernetes), so it never
enters our environment: `nannyml_python()` creates `$XDG_CACHE_HOME/driftwatch-tests/nannyml-<version>`
(or ~/.cache/...) with `python -m venv` and pip, once; a `.complete` marker written last makes an
interrupted install start over instead of being reused. A cold install took 64 s here (2 cores,
`pip install --no-cache-dir nannyml==0.13.1`, plus 4 s for statsmodels). `run_cbpe` runs NannyML in
a subprocess and returns its estimates for the analysis chunks as JSON.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from tests.infra import venvs

NANNYML_VERSION = "0.13.1"
REQUIREMENTS = (f"nannyml=={NANNYML_VERSION}", "statsmodels")
"""nannyml 0.13.1 imports statsmodels (its joy plots) without declaring it."""

RUNNER = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import nannyml as nml
spec = json.load(open(sys.argv[1]))
reference, analysis = pd.DataFrame(spec["reference"]), pd.DataFrame(spec["analysis"])
start = time.perf_counter()
estimator = nml.CBPE(y_pred_proba=spec["y_pred_proba"], y_pred="pred", y_true="label",
                     problem_type=spec["problem_type"], metrics=spec["metrics"], chunk_size=spec["chunk_size"])
estimator.fit(reference)
frame = estimator.estimate(analysis).filter(period="analysis").to_df()
seconds = time.perf_counter() - start
out = {m: frame[(m, "value")].tolist() for m in spec["metrics"]}
out["seconds"] = seconds
out["version"] = nml.__version__
json.dump(out, open(sys.argv[2], "w"))
'''


def env_dir() -> Path:
    return venvs.env_dir(f"nannyml-{NANNYML_VERSION}")


def nannyml_python() -> Path:
    """The venv's python, creating it once (tests/infra/venvs.py)."""
    return venvs.isolated_python(f"nannyml-{NANNYML_VERSION}", REQUIREMENTS)


def run_cbpe(reference: pd.DataFrame, analysis: pd.DataFrame, *, y_pred_proba: str | dict[str, str],
             problem_type: str, metrics: list[str], chunk_size: int) -> dict[str, Any]:
    """NannyML's CBPE fitted on `reference` (columns pred, label and the probabilities), its
    estimates per chunk of `analysis` (labels dropped), and the seconds fit + estimate took."""
    python = nannyml_python()
    with tempfile.TemporaryDirectory() as tmp:
        spec, out, script = Path(tmp, "in.json"), Path(tmp, "out.json"), Path(tmp, "run.py")
        script.write_text(RUNNER)
        spec.write_text(json.dumps({"reference": reference.to_dict("list"),
                                    "analysis": analysis.drop(columns=["label"], errors="ignore").to_dict("list"),
                                    "y_pred_proba": y_pred_proba, "problem_type": problem_type, "metrics": metrics,
                                    "chunk_size": chunk_size}))
        done = subprocess.run([str(python), str(script), str(spec), str(out)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"NannyML's CBPE failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result
