"""Paired statistics of one comparison (treatment vs control, paired by seed): pure functions over 1-D
numpy arrays, on ``scipy.stats``.

A *delta* is ``treatment - control`` for one pair of trials (same seed, every other axis equal).
Small samples are the norm (3-5 seeds), so every function says what it returns when it cannot answer
instead of producing NaN:

- ``n = 0``: every statistic is None.
- ``n = 1``: mean is the single delta; sd, both intervals, d_z and the t-test p are None (one pair
  carries no information about spread); the exact sign-flip p is 1.0 (the other sign gives the same
  |mean|).
- ``sd = 0`` with ``n >= 2`` (all deltas equal): both intervals are ``(mean, mean)``; the t-test p is
  0.0 when the mean is non-zero (t is infinite) and 1.0 when it is zero; d_z is ``+inf``/``-inf``, or
  None for 0/0.

Two p-values, both two-sided tests of "mean delta = 0": the exact sign-flip permutation test (no
distributional assumption; with n pairs it cannot go below 2/2^n, 0.25 for 3 seeds and 0.0625 for 5)
and the paired t-test. With several comparisons ``holm_adjust`` controls the family-wise error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

EXACT_SIGN_FLIP_MAX_N = 16  # 2**16 = 65536 sign patterns: exact enumeration stays instant


@dataclass(frozen=True)
class PairedStats:
    """Summary of the paired deltas of one metric. None means 'cannot be computed' (see module doc)."""

    n: int
    mean: float | None
    sd: float | None
    t_ci: tuple[float, float] | None
    bootstrap_ci: tuple[float, float] | None
    p_value: float | None  # exact (or Monte Carlo) sign-flip permutation test
    p_value_method: str  # "exact (2^n sign flips)", "monte carlo (... seed ...)" or "none (n = 0)"
    t_p_value: float | None  # paired t-test
    d_z: float | None
    level: float


def paired_deltas(treatment: np.ndarray, control: np.ndarray) -> np.ndarray:
    """(n,), (n,) -> (n,) per-pair differences ``treatment - control``."""
    treatment = np.asarray(treatment, dtype=np.float64)
    control = np.asarray(control, dtype=np.float64)
    if treatment.shape != control.shape or treatment.ndim != 1:
        raise ValueError(f"paired arrays must be 1-D and equal in length, got {treatment.shape} and {control.shape}")
    return treatment - control


def sample_sd(deltas: np.ndarray) -> float | None:
    """Sample standard deviation (ddof=1); None when n < 2."""
    return float(np.std(deltas, ddof=1)) if len(deltas) >= 2 else None


def t_confidence_interval(deltas: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """mean ± t_{(1+level)/2, n-1} · sd/√n; None when n < 2, (mean, mean) when sd = 0."""
    n = len(deltas)
    if n < 2:
        return None
    center, sd = float(np.mean(deltas)), float(np.std(deltas, ddof=1))
    half_width = float(scipy_stats.t.ppf(0.5 + level / 2.0, n - 1)) * sd / math.sqrt(n)
    return (center - half_width, center + half_width)


def _no_spread(deltas: np.ndarray) -> bool:
    """Every delta equal up to rounding (float noise of summed fractions counts as equal)."""
    return float(np.ptp(deltas)) <= 1e-12 * max(float(np.max(np.abs(deltas))), 1e-300)


def paired_t_p_value(deltas: np.ndarray) -> float | None:
    """Two-sided one-sample t-test of the deltas against 0 (= the paired t-test); None when n < 2."""
    n = len(deltas)
    if n < 2:
        return None
    if _no_spread(deltas):
        return 1.0 if float(np.max(np.abs(deltas))) == 0.0 else 0.0
    return float(scipy_stats.ttest_1samp(deltas, 0.0).pvalue)


def bootstrap_percentile_ci(
    deltas: np.ndarray, level: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile interval of the mean over ``n_resamples`` seeded resamples with replacement
    (``scipy.stats.bootstrap``). None when n < 2; (mean, mean) when every delta is equal."""
    deltas = np.asarray(deltas, dtype=np.float64)
    if len(deltas) < 2:
        return None
    if _no_spread(deltas):
        return (float(np.mean(deltas)), float(np.mean(deltas)))
    result = scipy_stats.bootstrap(
        (deltas,), np.mean, n_resamples=n_resamples, confidence_level=level, method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def sign_flip_p_value(
    deltas: np.ndarray, max_exact_n: int = EXACT_SIGN_FLIP_MAX_N, n_permutations: int = 100_000, seed: int = 0
) -> tuple[float | None, str]:
    """Two-sided paired permutation test of 'mean delta = 0'; returns (p, method).

    Under the null each delta is as likely to have either sign. Exact over all 2^n patterns for
    n <= ``max_exact_n`` (the smallest attainable p is 2/2^n); beyond, ``n_permutations`` seeded random
    patterns (``scipy.stats.permutation_test``).
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    n = len(deltas)
    if n == 0:
        return None, "none (n = 0)"
    if n == 1 or not np.any(deltas):  # one pair: both signs give the same |mean|
        return 1.0, f"exact ({2**n} sign flips)"
    exact = n <= max_exact_n
    result = scipy_stats.permutation_test(
        (deltas,), np.mean, permutation_type="samples", alternative="two-sided",
        n_resamples=np.inf if exact else n_permutations, rng=np.random.default_rng(seed),
    )
    p = min(1.0, float(result.pvalue))
    if exact:
        return p, f"exact ({2**n} sign flips)"
    return p, f"monte carlo ({n_permutations} random sign flips, seed {seed})"


def effect_size_dz(deltas: np.ndarray) -> float | None:
    """Paired effect size d_z = mean / sd (ddof=1). None when n < 2 or 0/0; ±inf when sd = 0, mean ≠ 0."""
    if len(deltas) < 2:
        return None
    center, sd = float(np.mean(deltas)), float(np.std(deltas, ddof=1))
    if sd == 0.0:
        return None if center == 0.0 else math.copysign(math.inf, center)
    return center / sd


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (controls the family-wise error rate); None entries stay None and
    are not counted in the family.

    Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
    """
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def summarize_paired(
    treatment: np.ndarray,
    control: np.ndarray,
    level: float = 0.95,
    n_bootstrap: int = 10_000,
    seed: int = 0,
    max_exact_n: int = EXACT_SIGN_FLIP_MAX_N,
    n_permutations: int = 100_000,
) -> PairedStats:
    """Every statistic of the deltas ``treatment - control`` in one record."""
    deltas = paired_deltas(treatment, control)
    p_value, method = sign_flip_p_value(deltas, max_exact_n, n_permutations, seed)
    return PairedStats(
        n=len(deltas),
        mean=float(np.mean(deltas)) if len(deltas) else None,
        sd=sample_sd(deltas),
        t_ci=t_confidence_interval(deltas, level),
        bootstrap_ci=bootstrap_percentile_ci(deltas, level, n_bootstrap, seed),
        p_value=p_value,
        p_value_method=method,
        t_p_value=paired_t_p_value(deltas),
        d_z=effect_size_dz(deltas),
        level=level,
    )
