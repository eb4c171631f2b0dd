"""An embedding column in the reports: its card holds a scatter of reference and window vectors on the
reference's first two principal components and the on-demand MMD check, from `driftwatch report`
(a real subprocess, Evidently included) down to the pure picture."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from monitor.drift import ColumnSpec, build_profile, embedding, evaluate
from monitor.reports.distributions import MMD_PERMUTATIONS, MMD_SAMPLE, SCATTER_POINTS, Scatter, distribution
from monitor.reports.plots import distribution_svg


def _vectors(seed: int, rows: int, shift: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, 12)).astype(np.float32)
    x[:, :2] *= 3.0  # two leading directions: the principal components the scatter shows
    x[:, 0] += shift
    return x


@pytest.fixture(scope="module")
def picture() -> tuple[Scatter, np.ndarray, np.ndarray]:
    ref, cur = _vectors(0, 3000), _vectors(1, 600, shift=2.0)
    rf, cf = pd.DataFrame({"v": list(ref)}), pd.DataFrame({"v": list(cur)})
    f = evaluate(build_profile(rf, [ColumnSpec("v", "embedding")]), cf).features["v"]
    d = distribution(f, rf["v"], cf["v"])
    assert isinstance(d.shape, Scatter)
    return d.shape, ref, cur


def test_the_scatter_draws_a_bounded_sample_of_each_side(picture: tuple[Scatter, np.ndarray, np.ndarray]) -> None:
    sc, _, _ = picture
    assert (len(sc.reference), len(sc.current)) == (SCATTER_POINTS, SCATTER_POINTS)


def test_the_first_component_is_the_references_widest_direction(picture: tuple[Scatter, np.ndarray, np.ndarray]) -> None:
    """Two leading dimensions of variance 9 among ten of 1: PC1 and PC2 hold about 9/28 each."""
    sc, _, _ = picture
    assert sc.explained[0] + sc.explained[1] == pytest.approx(18 / 28, abs=0.05)


def test_the_mmd_check_is_the_detectors_on_the_same_samples(picture: tuple[Scatter, np.ndarray, np.ndarray]) -> None:
    sc, ref, cur = picture
    direct = embedding.mmd_test(ref, cur, alpha=0.01, sample=MMD_SAMPLE, permutations=MMD_PERMUTATIONS)
    assert (sc.mmd2, sc.mmd_p, sc.mmd_drifted) == (pytest.approx(direct.mmd2, rel=1e-6), pytest.approx(direct.p_value), True)


def test_the_svg_has_a_dot_per_point(picture: tuple[Scatter, np.ndarray, np.ndarray]) -> None:
    sc, _, _ = picture
    from monitor.reports.distributions import Distribution

    svg = distribution_svg(Distribution("v", "embedding", True, sc))
    assert (svg.count('<circle class="ref"'), svg.count('<circle class="cur"')) == (SCATTER_POINTS, SCATTER_POINTS)


def test_a_window_without_its_records_says_so_instead_of_a_picture() -> None:
    rf = pd.DataFrame({"v": list(_vectors(0, 100))})
    f = evaluate(build_profile(rf, [ColumnSpec("v", "embedding")]), rf).features["v"]
    assert distribution(f, None, None).note == "the window's vectors are no longer available: no scatter or MMD check"


def test_driftwatch_report_shows_the_embedding_section(tmp_path: Path) -> None:
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    rng = np.random.default_rng(3)
    pd.DataFrame({"vec": list(_vectors(0, 2000)), "n": rng.normal(size=2000)}).to_parquet(ref)
    pd.DataFrame({"vec": list(_vectors(1, 500, shift=1.0)), "n": rng.normal(size=500)}).to_parquet(cur)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "emb", "reference": {"path": "ref.parquet"}, "features": [
        {"name": "vec", "type": "embedding", "embedding": {"dimensions": 12}}, {"name": "n", "type": "numeric"}]}]}))
    out = tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "monitor.app.cli", "report", "--config", str(cfg), "--model", "emb",
                        "--reference", str(ref), "--current", str(cur), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    card = html[html.index('<div class="card" data-feature="vec">'):]
    card = card[: card.index("</details></div>")]
    found = re.search(r"MMD check: the distributions (differ|do not differ)", card)
    assert (found.group(1) if found else None, 'aria-label="principal-component scatter of vec' in card,
            re.search(r'id="drifted-names">([^<]*)<', html).group(1)) == ("differ", True, "vec")  # type: ignore[union-attr]
