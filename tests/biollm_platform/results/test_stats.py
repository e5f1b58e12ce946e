"""Paired statistics against values worked out by hand, and against scipy (a dev dependency)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from biollm_platform.results.stats import (
    bootstrap_percentile_ci,
    effect_size_dz,
    mean,
    paired_deltas,
    regularized_incomplete_beta,
    sample_sd,
    sign_flip_p_value,
    student_t_cdf,
    student_t_ppf,
    summarize_paired,
    t_confidence_interval,
)

DELTAS = np.array([0.1, 0.3, 0.2])  # mean 0.2; squared deviations 0.01 + 0.01 + 0 -> sd sqrt(0.02/2) = 0.1


def test_paired_deltas_are_treatment_minus_control() -> None:
    np.testing.assert_allclose(paired_deltas(np.array([0.9, 0.5]), np.array([0.4, 0.7])), [0.5, -0.2])
    with pytest.raises(ValueError, match="equal in length"):
        paired_deltas(np.array([1.0, 2.0]), np.array([1.0]))


def test_mean_sd_by_hand() -> None:
    assert mean(DELTAS) == pytest.approx(0.2)
    assert sample_sd(DELTAS) == pytest.approx(0.1)


def test_t_interval_by_hand() -> None:
    # t_{0.975, 2} = 4.302653 (printed tables); half width = 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert student_t_ppf(0.975, 2) == pytest.approx(4.302653, abs=1e-6)
    low, high = t_confidence_interval(DELTAS)
    assert low == pytest.approx(0.2 - 0.248414, abs=1e-6)
    assert high == pytest.approx(0.2 + 0.248414, abs=1e-6)


def test_t_quantiles_with_closed_forms() -> None:
    # df = 1 is Cauchy: t_p = tan(pi (p - 1/2)); df = 2: t_p = (2p - 1) sqrt(2 / (4 p (1 - p)))
    for p in (0.6, 0.9, 0.975, 0.995):
        assert student_t_ppf(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)
        assert student_t_ppf(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-12)
    assert student_t_ppf(0.5, 7) == 0.0
    assert student_t_ppf(0.025, 7) == -student_t_ppf(0.975, 7)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 15, 29, 100, 1000, 2.5])
@pytest.mark.parametrize("p", [0.001, 0.025, 0.05, 0.3, 0.7, 0.95, 0.975, 0.995, 0.9995])
def test_t_quantile_matches_scipy(df: float, p: float) -> None:
    assert student_t_ppf(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("a,b,x", [(0.5, 0.5, 0.3), (2.0, 3.0, 0.6), (10.0, 0.5, 0.95), (1.5, 50.0, 0.01)])
def test_incomplete_beta_matches_scipy(a: float, b: float, x: float) -> None:
    from scipy.special import betainc

    assert regularized_incomplete_beta(a, b, x) == pytest.approx(betainc(a, b, x), rel=1e-12)
    assert student_t_cdf(1.7, 4) == pytest.approx(scipy_stats.t.cdf(1.7, 4), rel=1e-12)


def test_t_interval_matches_scipy() -> None:
    deltas = np.random.default_rng(3).normal(0.1, 0.05, size=7)
    expected = scipy_stats.t.interval(0.9, len(deltas) - 1, loc=deltas.mean(), scale=scipy_stats.sem(deltas))
    np.testing.assert_allclose(t_confidence_interval(deltas, level=0.9), expected, rtol=1e-10)


def test_sign_flip_exact_by_hand() -> None:
    # all three positive: only the identity and the all-flipped pattern reach |mean| 0.2 -> 2/8
    assert sign_flip_p_value(DELTAS) == (0.25, "exact (8 sign flips)")
    # d = (0.5, -0.1, 0.2): signed sums are ±0.5 ±0.1 ±0.2 = ±0.8, ±0.6, ±0.4, ±0.2; |sum| >= 0.6 in 4 of 8
    assert sign_flip_p_value(np.array([0.5, -0.1, 0.2]))[0] == 0.5
    assert sign_flip_p_value(np.array([0.3]))[0] == 1.0  # n = 1: both signs give |mean| 0.3
    assert sign_flip_p_value(np.zeros(4))[0] == 1.0
    assert sign_flip_p_value(np.array([]))[0] is None


def test_sign_flip_exact_matches_scipy_permutation_test() -> None:
    deltas = np.random.default_rng(5).normal(0.3, 1.0, size=10)
    expected = scipy_stats.permutation_test(
        (deltas,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    ).pvalue
    assert sign_flip_p_value(deltas)[0] == pytest.approx(expected, rel=1e-12)


def test_sign_flip_monte_carlo_beyond_sixteen_pairs() -> None:
    deltas = np.random.default_rng(1).normal(0.05, 1.0, size=17)
    p_value, method = sign_flip_p_value(deltas, n_permutations=20_000, seed=4)
    exact, _ = sign_flip_p_value(deltas, max_exact_n=17)  # 2^17 patterns: still quick here
    assert method == "monte carlo (20000 random sign flips, seed 4)"
    assert p_value == pytest.approx(exact, abs=0.02)  # 4 sd of the Monte Carlo error at p ~ 0.5
    assert sign_flip_p_value(deltas, n_permutations=20_000, seed=4)[0] == p_value  # seeded


def test_bootstrap_interval_seeded_and_bracketing_the_mean() -> None:
    deltas = np.array([0.6, 0.8, 0.7, 0.2, 0.9])
    low, high = bootstrap_percentile_ci(deltas, seed=0)
    assert low < deltas.mean() < high
    assert (low, high) == bootstrap_percentile_ci(deltas, seed=0)
    assert deltas.min() <= low and high <= deltas.max()
    # the percentile interval of resampled means, recomputed independently with the same draws
    rng = np.random.default_rng(0)
    means = deltas[rng.integers(0, 5, size=(10_000, 5))].mean(axis=1)
    np.testing.assert_allclose((low, high), np.quantile(means, [0.025, 0.975]))


def test_bootstrap_close_to_scipy_percentile_bootstrap() -> None:
    deltas = np.random.default_rng(2).normal(0.2, 0.1, size=12)
    ours = bootstrap_percentile_ci(deltas, n_resamples=20_000, seed=0)
    theirs = scipy_stats.bootstrap((deltas,), np.mean, n_resamples=20_000, method="percentile", rng=0)
    # Different random draws: agreement within Monte Carlo error (about 3% of the interval width)
    width = theirs.confidence_interval.high - theirs.confidence_interval.low
    assert ours[0] == pytest.approx(theirs.confidence_interval.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(theirs.confidence_interval.high, abs=0.05 * width)


def test_effect_size_dz_by_hand() -> None:
    assert effect_size_dz(DELTAS) == pytest.approx(2.0)  # 0.2 / 0.1


def test_one_pair_reports_none_not_nan() -> None:
    stats = summarize_paired(np.array([0.9]), np.array([0.4]))
    assert stats.n == 1 and stats.mean == pytest.approx(0.5)
    assert stats.sd is None and stats.t_ci is None and stats.bootstrap_ci is None and stats.d_z is None
    assert stats.p_value == 1.0


def test_zero_spread_gives_infinite_effect_and_zero_width_intervals() -> None:
    stats = summarize_paired(np.array([0.75, 0.625, 0.5]), np.array([0.5, 0.375, 0.25]))  # deltas all 0.25
    assert stats.sd == 0.0 and stats.d_z == math.inf
    assert stats.t_ci == (0.25, 0.25) and stats.bootstrap_ci == (0.25, 0.25)
    assert effect_size_dz(np.array([-0.5, -0.5])) == -math.inf
    assert effect_size_dz(np.zeros(3)) is None  # 0/0


def test_no_pairs_reports_none() -> None:
    stats = summarize_paired(np.array([]), np.array([]))
    assert stats.n == 0
    assert (stats.mean, stats.sd, stats.t_ci, stats.bootstrap_ci, stats.p_value, stats.d_z) == (None,) * 6
