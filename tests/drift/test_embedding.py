"""Embedding drift: the always-on test (monitor.drift.embedding.test) and the on-demand MMD test.

Statistics are checked against scipy on small inputs; the false-alarm rate on unchanged data against
a binomial bound with enough repetitions to fail at twice the stated rate; power on shifts confined
to 3 of 768 dimensions, a variance change and a rotation that leaves every marginal unchanged.
Sizes are small except where the power claim is about 768 dimensions; the logic is the same code.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from scipy import stats

from monitor.drift import embedding
from monitor.drift.embedding import detector, moments

F32 = np.float32


def _correlated(rng: np.random.Generator, rows: int, mixing: np.ndarray) -> np.ndarray:
    """Gaussian rows through a fixed mixing matrix, plus skewed (exponential) and bounded (uniform)
    dimensions: the per-dimension tests must hold their level on more than normal data."""
    d = mixing.shape[1]
    x = rng.standard_normal((rows, mixing.shape[0])) @ mixing
    x[:, : d // 4] += rng.exponential(1.0, (rows, d // 4))
    x[:, d // 4 : d // 2] += rng.uniform(-2, 2, (rows, d // 2 - d // 4))
    return x.astype(F32)


# --- statistics against scipy -------------------------------------------------------------------

@pytest.fixture(scope="module")
def small() -> tuple[embedding.EmbeddingProfile, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    mixing = rng.standard_normal((6, 6))
    ref = _correlated(rng, 400, mixing)
    win = _correlated(rng, 250, mixing)
    win[:, 1] += 0.3
    return embedding.profile(ref, components=4), ref, win


def _dims(prof: embedding.EmbeddingProfile, win: np.ndarray) -> detector.DimensionTests:
    sums = moments.window_sums(win, prof.center, prof.axes)
    return detector.dimension_tests(prof, sums.s1, sums.s2, sums.rows)


def test_welch_t_matches_scipy(small):
    prof, ref, win = small
    expected = stats.ttest_ind(win.astype(float), ref.astype(float), equal_var=False)
    np.testing.assert_allclose(_dims(prof, win).mean_t, expected.statistic, rtol=1e-5)


def test_welch_p_matches_scipy(small):
    prof, ref, win = small
    expected = stats.ttest_ind(win.astype(float), ref.astype(float), equal_var=False)
    np.testing.assert_allclose(_dims(prof, win).mean_p, expected.pvalue, rtol=1e-4)


def test_profile_moments_match_numpy_and_scipy(small):
    prof, ref, _ = small
    np.testing.assert_allclose(
        np.concatenate([prof.mean, prof.var, prof.kurtosis]),
        np.concatenate([ref.astype(float).mean(0), ref.astype(float).var(0, ddof=1),
                        stats.kurtosis(ref.astype(float), fisher=False, bias=True)]),
        rtol=1e-5,
    )


def test_log_variance_z_is_the_documented_formula(small):
    prof, ref, win = small
    n, m = ref.shape[0], win.shape[0]
    kappa = stats.kurtosis(ref.astype(float), fisher=False, bias=True)
    vn = kappa / n - (n - 3) / (n * (n - 1))
    vm = kappa / m - (m - 3) / (m * (m - 1))
    log_ratio = np.log(win.astype(float).var(0, ddof=1)) + vm / 2 - np.log(ref.astype(float).var(0, ddof=1)) - vn / 2
    np.testing.assert_allclose(_dims(prof, win).log_variance_z, log_ratio / np.sqrt(vn + vm), rtol=1e-4)


def test_pooled_kurtosis_is_layards_estimate(small):
    prof, ref, win = small
    r, w = ref.astype(float), win.astype(float)
    m4 = (((r - r.mean(0)) ** 4).sum(0) + ((w - w.mean(0)) ** 4).sum(0)) / (len(r) + len(w))
    m2 = (((r - r.mean(0)) ** 2).sum(0) + ((w - w.mean(0)) ** 2).sum(0)) / (len(r) + len(w))
    sums = moments.window_sums(win, prof.center, prof.axes)
    np.testing.assert_allclose(detector.pooled_kurtosis(prof, sums.s1, sums.s2, sums.s3, sums.s4, sums.rows), m4 / m2**2, rtol=1e-4)


def test_ks_per_component_matches_scipy_asymptotic(small):
    """With fewer held-out rows than the grid, the grid is every held-out value: D and p are scipy's."""
    prof, _, win = small
    proj = (win - prof.center) @ prof.axes
    d, p = detector.component_tests(prof, moments.window_sums(win, prof.center, prof.axes).projections)
    expected = [stats.ks_2samp(prof.edges[j], proj[:, j].astype(float), method="asymp") for j in range(prof.components)]
    np.testing.assert_allclose(np.c_[d[:-1], p[:-1]], [[e.statistic, e.pvalue] for e in expected], rtol=1e-6, atol=1e-12)


def test_residual_norm_ks_matches_scipy(small):
    prof, _, win = small
    y = (win - prof.center).astype(float)
    proj = y @ prof.axes.astype(float)
    residual = (y * y).sum(1) - (proj * proj).sum(1)
    d, _ = detector.component_tests(prof, moments.window_sums(win, prof.center, prof.axes).projections)
    assert d[-1] == pytest.approx(stats.ks_2samp(prof.edges[-1], residual).statistic, abs=1e-6)


def test_ks_on_a_coarse_grid_never_exceeds_the_full_statistic():
    """Above GRID held-out rows D is taken on quantile grid points only: never above scipy's D, so the
    p-value is conservative."""
    rng = np.random.default_rng(3)
    ref, win = np.sort(rng.standard_normal(20_000)), rng.standard_normal(3000) + 0.05
    ranks = (np.arange(1, 257) * ref.size) // 256 - 1
    edges = ref[ranks]
    d_grid = detector.ks_on_grid(edges, np.searchsorted(ref, edges, "right") / ref.size,
                                 np.searchsorted(ref, edges, "left") / ref.size, win)
    assert d_grid <= stats.ks_2samp(ref, win).statistic + 1e-12


# --- false alarms on unchanged data -------------------------------------------------------------

AA_REPS = 1000


@pytest.fixture(scope="module")
def aa_p_values() -> np.ndarray:
    """p-values of AA_REPS windows against their own reference, all from one distribution
    (32 dims: correlated, skewed and bounded ones), 600 reference and 500 window rows."""
    rng = np.random.default_rng(11)
    mixing = rng.standard_normal((32, 32)) / 4
    out = []
    for _ in range(AA_REPS):
        prof = embedding.profile(_correlated(rng, 600, mixing), components=8, seed=int(rng.integers(1 << 30)))
        out.append(embedding.test(prof, _correlated(rng, 500, mixing), alpha=0.05).p_value)
    return np.array(out)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_false_alarm_rate_is_at_most_alpha(aa_p_values, alpha):
    """At alpha = 0.05 the bound (72 of 1000 at the 0.999 level) fails with probability 0.998 if the
    real rate were 0.10; at 0.01 it bounds the default level less tightly."""
    limit = stats.binom.ppf(0.999, AA_REPS, alpha)
    assert np.count_nonzero(aa_p_values <= alpha) <= limit


def test_false_alarm_rate_is_not_far_below_alpha(aa_p_values):
    """Bonferroni across correlated dimensions is conservative, but not so much that it would be
    deaf: at least a quarter of the stated rate is used (else the power tests below would be luck)."""
    assert np.count_nonzero(aa_p_values <= 0.05) >= stats.binom.ppf(0.001, AA_REPS, 0.05 / 4)


# --- power -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wide() -> tuple[embedding.EmbeddingProfile, np.ndarray, np.random.Generator]:
    """768 dimensions with a decaying spectrum (like sentence embeddings), 10k reference rows."""
    rng = np.random.default_rng(21)
    scales = (1.0 / np.sqrt(np.arange(1, 769))).astype(F32)
    basis = np.linalg.qr(rng.standard_normal((768, 768)))[0].astype(F32)
    mixing = scales[:, None] * basis

    def draw(rows: int) -> np.ndarray:
        return rng.standard_normal((rows, 768), dtype=F32) @ mixing

    return embedding.profile(draw(10_000)), draw(10_000), rng


def test_unchanged_wide_window_is_not_flagged(wide):
    prof, win, _ = wide
    assert not embedding.test(prof, win).drifted


def test_mean_shift_in_3_of_768_dims_is_caught(wide):
    prof, win, _ = wide
    shifted = win.copy()
    shifted[:, [7, 300, 701]] += (0.1 * np.sqrt(prof.var[[7, 300, 701]])).astype(F32)
    assert embedding.test(prof, shifted).drifted


def test_mean_shift_names_the_shifted_dimensions(wide):
    prof, win, _ = wide
    shifted = win.copy()
    shifted[:, [7, 300, 701]] += (0.15 * np.sqrt(prof.var[[7, 300, 701]])).astype(F32)
    top = embedding.test(prof, shifted).top_dimensions
    assert {s.dimension for s in top[:3]} == {7, 300, 701}


def test_variance_change_in_3_dims_is_caught_by_the_variance_family(wide):
    prof, win, _ = wide
    scaled = win.copy()
    dims = [10, 400, 650]
    mean = prof.mean[dims].astype(F32)
    scaled[:, dims] = mean + (scaled[:, dims] - mean) * F32(1.1)
    assert embedding.test(prof, scaled).family_p["variance"] <= 0.01


def _rotated_pair(sign: float, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Dims 0 and 1 with unit variance and correlation 0.9 * sign, 30 further noise dims: flipping
    the sign leaves every marginal distribution unchanged."""
    z = rng.standard_normal((rows, 32))
    x = 0.3 * z.copy()
    x[:, 0] = 3 * z[:, 0]
    x[:, 1] = 3 * (sign * 0.9 * z[:, 0] + np.sqrt(1 - 0.81) * z[:, 1])
    return x.astype(F32)


@pytest.fixture(scope="module")
def rotation() -> embedding.EmbeddingDriftResult:
    rng = np.random.default_rng(8)
    prof = embedding.profile(_rotated_pair(1.0, 5000, rng), components=4)
    return embedding.test(prof, _rotated_pair(-1.0, 5000, rng))


def test_rotation_is_caught_by_the_principal_components(rotation):
    assert rotation.family_p["pca"] <= 0.01


def test_rotation_leaves_the_per_dimension_families_quiet(rotation):
    assert min(rotation.family_p["mean"], rotation.family_p["variance"]) > 0.01


# --- the on-demand MMD test -------------------------------------------------------------------

def test_mmd2_matches_the_full_kernel_matrix():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((30, 3)) + 0.2
    pooled = np.concatenate([x, y])
    sigma = 1.3
    k = np.exp(-((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))
    kxx, kyy, kxy = k[:40, :40], k[40:, 40:], k[:40, 40:]
    expected = ((kxx.sum() - 40) / (40 * 39) + (kyy.sum() - 30) / (30 * 29) - 2 * kxy.mean())
    labels = np.zeros((70, 1))
    labels[:40] = 1
    got = embedding.mmd.mmd2_permutations(pooled, labels, sigma, block=16)[0]
    assert got == pytest.approx(expected, rel=1e-9)


MMD_REPS = 1000


def test_mmd_false_alarm_rate_is_at_most_alpha():
    """Exact permutation test: at 0.05, 1000 A/A repetitions (5 dims, 60 + 50 rows, skewed) stay
    under the binomial 0.999 bound, which a rate of 0.10 would break."""
    rng = np.random.default_rng(4)
    flags = sum(
        embedding.mmd_test(rng.exponential(1.0, (60, 5)), rng.exponential(1.0, (50, 5)), alpha=0.05,
                           permutations=99, seed=i).drifted
        for i in range(MMD_REPS)
    )
    assert flags <= stats.binom.ppf(0.999, MMD_REPS, 0.05)


def test_mmd_catches_a_small_shift_in_every_dimension():
    rng = np.random.default_rng(6)
    ref, win = rng.standard_normal((5000, 64)), rng.standard_normal((5000, 64)) + 0.1
    assert embedding.mmd_test(ref, win, sample=1000, permutations=199).drifted


def test_mmd_subsample_is_bounded():
    rng = np.random.default_rng(6)
    res = embedding.mmd_test(rng.standard_normal((3000, 8)), rng.standard_normal((2500, 8)), sample=500, permutations=99)
    assert (res.n_reference, res.n_window) == (500, 500)


# --- storage and bad input ---------------------------------------------------------------------

def test_profile_round_trips_through_npz(small):
    prof, _, win = small
    buf = io.BytesIO()
    np.savez(buf, **prof.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as loaded:
        restored = embedding.EmbeddingProfile.from_arrays(loaded)
    assert embedding.test(restored, win) == embedding.test(prof, win)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (np.full((5, 6), np.nan, dtype=F32), "NaN values in 5 row"),
        (np.ones((5, 7), dtype=F32), "7 dimensions, the reference has 6"),
        (np.ones((0, 6), dtype=F32), "empty"),
        (np.ones(6, dtype=F32), "2-D"),
        (np.ones((1, 6), dtype=F32), "at least 2"),
        (np.array([["a"] * 6] * 3), "numbers"),
    ],
    ids=["nan", "wrong-dimension", "empty", "1-d", "one-row", "strings"],
)
def test_bad_window_is_a_clear_error(small, window, message):
    prof, _, _ = small
    with pytest.raises(ValueError, match=message):
        embedding.test(prof, window)


def test_infinite_reference_value_names_its_row():
    ref = np.ones((30, 4), dtype=F32)
    ref[17, 2] = np.inf
    with pytest.raises(ValueError, match=r"infinite values in 1 row.*row 17"):
        embedding.profile(ref)


def test_mmd_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="3 dimensions, the reference has 4"):
        embedding.mmd_test(np.ones((10, 4)), np.ones((10, 3)))


def test_principal_axes_match_a_full_eigendecomposition():
    """Block power iteration finds the top eigenpairs of an embedding-like spectrum (1/i decay)."""
    from monitor.drift.embedding.profile import top_eigenpairs

    rng = np.random.default_rng(9)
    basis = np.linalg.qr(rng.standard_normal((200, 200)))[0]
    cov = basis @ np.diag(1.0 / np.arange(1, 201)) @ basis.T
    values, vectors = top_eigenpairs(cov, 8, rng)
    expected_values, expected_vectors = np.linalg.eigh(cov)
    alignment = np.abs(np.sum(vectors * expected_vectors[:, ::-1][:, :8], axis=0))
    np.testing.assert_allclose(np.c_[values, alignment], np.c_[expected_values[::-1][:8], np.ones(8)], rtol=1e-3)


# --- dead and sparse dimensions -------------------------------------------------------------------

DEAD_REPS = 1500


def _with_dead_dimensions(rng: np.random.Generator, rows: int) -> np.ndarray:
    """8 constant dimensions (0.1, not exact in float32), one sparse one (1 in 0.2% of rows, else 0:
    most windows of 200 are all 0 there) and 23 normal ones: what ReLU-style or padded embeddings hold."""
    x = rng.standard_normal((rows, 32)).astype(F32)
    x[:, :8] = 0.1
    x[:, 8] = (rng.random(rows) < 0.002).astype(F32)
    return x


@pytest.fixture(scope="module")
def dead_p_values() -> np.ndarray:
    rng = np.random.default_rng(2)
    prof = embedding.profile(_with_dead_dimensions(rng, 5000))
    return np.array([embedding.test(prof, _with_dead_dimensions(rng, 200)).p_value for _ in range(DEAD_REPS)])


def test_constant_and_sparse_dimensions_keep_the_false_alarm_rate(dead_p_values):
    """An all-zero window in a sparse dimension is what no change looks like there: it was flagged as
    certain drift (a zero window variance, and float32 rounding left ~1e-11 of it), in 68% of windows."""
    assert np.count_nonzero(dead_p_values <= 0.01) <= stats.binom.ppf(0.999, DEAD_REPS, 0.01)


def test_a_window_constant_where_the_reference_varies_is_drift():
    rng = np.random.default_rng(3)
    prof = embedding.profile(rng.standard_normal((2000, 8)).astype(F32))
    window = rng.standard_normal((200, 8)).astype(F32)
    window[:, 2] = 0.0
    assert embedding.test(prof, window).family_p["variance"] < 1e-10


def _sparse_reference_and_window(ones_in_window: int) -> embedding.EmbeddingDriftResult:
    """A 500-row reference in which a rare dimension (1 in 0.5% of rows) happened to be all 0, and a
    window of 100 holding that value `ones_in_window` times."""
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((500, 8)).astype(F32)
    ref[:, 3] = 0.0
    win = rng.standard_normal((100, 8)).astype(F32)
    win[:, 3] = 0.0
    win[:ones_in_window, 3] = 1.0
    return embedding.test(embedding.profile(ref), win)


def test_a_rare_value_a_small_reference_missed_is_not_drift():
    """1 in 200 rows: a 500-row reference misses it 8% of the time, and every window holding it was
    certain drift (a 500-row reference flagged 8-10% of unchanged windows: benchmarks/embedding_aa.py)."""
    assert _sparse_reference_and_window(1).family_p["variance"] > 0.5


def test_a_value_a_reference_never_held_in_many_window_rows_is_drift():
    assert _sparse_reference_and_window(30).drifted


def test_the_largest_share_of_one_value_bounds_a_sparse_dimension():
    x = np.zeros((5000, 2), dtype=F32)
    x[:500, 0] = 1.0  # 90% zeros
    x[:, 1] = np.arange(5000)  # all distinct
    share = embedding.profile(np.column_stack([x, np.random.default_rng(0).standard_normal((5000, 20))]).astype(F32)).mode_share
    assert 0.9 <= share[0] <= 0.92
    assert share[1] < 0.005


def test_dimensions_of_float32_noise_near_zero_are_constant_not_drift():
    """all-MiniLM-L6-v2 has two dimensions holding values ~1e-33: their squares underflow float32, the
    variance came out -8e-82 (NaN p-values, and a NaN overall p-value: no verdict at all), then as
    exactly 0 with means that differ by 1e-33 (certain drift in every window)."""
    rng = np.random.default_rng(4)

    def draw(rows: int) -> np.ndarray:
        x = rng.standard_normal((rows, 16)).astype(F32)
        x[:, 3] = (rng.standard_normal(rows) * 1e-33).astype(F32)
        return x

    prof = embedding.profile(draw(2000))
    p_values = [embedding.test(prof, draw(300)).p_value for _ in range(50)]
    assert (prof.var[3], min(p_values) > 0.001) == (0.0, True)
