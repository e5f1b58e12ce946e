"""Paired statistics against values worked out by hand, and against scipy's own routines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from biollm_platform.results.stats import (
    bootstrap_percentile_ci,
    effect_size_dz,
    holm_adjust,
    paired_deltas,
    paired_t_p_value,
    sample_sd,
    sign_flip_p_value,
    summarize_paired,
    t_confidence_interval,
)

DELTAS = np.array([0.1, 0.3, 0.2])  # mean 0.2; squared deviations 0.01 + 0.01 + 0 -> sd sqrt(0.02/2) = 0.1


def test_paired_deltas_are_treatment_minus_control() -> None:
    np.testing.assert_allclose(paired_deltas(np.array([0.9, 0.5]), np.array([0.4, 0.7])), [0.5, -0.2])
    with pytest.raises(ValueError, match="equal in length"):
        paired_deltas(np.array([1.0, 2.0]), np.array([1.0]))


def test_sd_and_t_interval_by_hand() -> None:
    assert sample_sd(DELTAS) == pytest.approx(0.1)
    # t_{0.975, 2} = 4.302653 (printed tables); half width = 4.302653 * 0.1 / sqrt(3) = 0.248414
    low, high = t_confidence_interval(DELTAS)
    assert low == pytest.approx(0.2 - 0.248414, abs=1e-6) and high == pytest.approx(0.2 + 0.248414, abs=1e-6)
    assert t_confidence_interval(np.array([0.3])) is None


def test_paired_t_test_by_hand() -> None:
    # t = 0.2 / (0.1 / sqrt 3) = 3.4641; df 2: P(|T| > t) = 1 - t / sqrt(2 + t^2) (closed form for df 2)
    t = 0.2 / (0.1 / math.sqrt(3))
    assert paired_t_p_value(DELTAS) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-9)
    assert paired_t_p_value(np.array([0.25, 0.25, 0.25])) == 0.0  # no spread, non-zero mean: t is infinite
    assert paired_t_p_value(np.zeros(3)) == 1.0
    assert paired_t_p_value(np.array([0.4])) is None


def test_sign_flip_exact_by_hand() -> None:
    # all three positive: only the identity and the all-flipped pattern reach |mean| 0.2 -> 2/8
    assert sign_flip_p_value(DELTAS) == (0.25, "exact (8 sign flips)")
    # d = (0.5, -0.1, 0.2): signed sums are ±0.5 ±0.1 ±0.2 = ±0.8, ±0.6, ±0.4, ±0.2; |sum| >= 0.6 in 4 of 8
    assert sign_flip_p_value(np.array([0.5, -0.1, 0.2]))[0] == pytest.approx(0.5)
    assert sign_flip_p_value(np.array([0.3]))[0] == 1.0  # n = 1: both signs give |mean| 0.3
    assert sign_flip_p_value(np.zeros(4))[0] == 1.0
    assert sign_flip_p_value(np.array([]))[0] is None


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
    assert bootstrap_percentile_ci(np.array([0.4])) is None


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.02, 0.04 x (3, 2, 1) = 0.03, 0.04, 0.04 (monotone); None is left out of the family
    assert holm_adjust([0.04, 0.01, None, 0.02]) == pytest.approx([0.04, 0.03, None, 0.04])
    assert holm_adjust([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm_adjust([0.03]) == [0.03]  # one test: unchanged
    assert holm_adjust([]) == []


def test_effect_size_dz_by_hand() -> None:
    assert effect_size_dz(DELTAS) == pytest.approx(2.0)  # 0.2 / 0.1


def test_one_pair_reports_none_not_nan() -> None:
    stats = summarize_paired(np.array([0.9]), np.array([0.4]))
    assert stats.n == 1 and stats.mean == pytest.approx(0.5)
    assert stats.sd is None and stats.t_ci is None and stats.bootstrap_ci is None and stats.d_z is None
    assert stats.p_value == 1.0 and stats.t_p_value is None


def test_zero_spread_gives_infinite_effect_and_zero_width_intervals() -> None:
    stats = summarize_paired(np.array([0.75, 0.625, 0.5]), np.array([0.5, 0.375, 0.25]))  # deltas all 0.25
    assert stats.sd == 0.0 and stats.d_z == math.inf
    assert stats.t_ci == (0.25, 0.25) and stats.bootstrap_ci == (0.25, 0.25)
    assert effect_size_dz(np.array([-0.5, -0.5])) == -math.inf
    assert effect_size_dz(np.zeros(3)) is None  # 0/0


def test_no_pairs_reports_none() -> None:
    stats = summarize_paired(np.array([]), np.array([]))
    assert stats.n == 0
    assert (stats.mean, stats.sd, stats.t_ci, stats.bootstrap_ci, stats.p_value, stats.t_p_value, stats.d_z) == (None,) * 7


def test_t_interval_matches_the_t_distribution_of_scipy() -> None:
    deltas = np.random.default_rng(3).normal(0.1, 0.05, size=7)
    expected = scipy_stats.t.interval(0.9, len(deltas) - 1, loc=deltas.mean(), scale=scipy_stats.sem(deltas))
    np.testing.assert_allclose(t_confidence_interval(deltas, level=0.9), expected, rtol=1e-10)
