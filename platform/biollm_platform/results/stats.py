"""Paired statistics of a sleep/nosleep comparison: pure functions over 1-D numpy arrays.

A *delta* is ``treatment - control`` for one pair of trials (same seed, every other axis equal).
Small samples are the norm (3-5 seeds), so every function says what it returns when it cannot
answer instead of producing NaN:

- ``n = 0``: every statistic is None.
- ``n = 1``: mean is the single delta; sd, both confidence intervals and d_z are None (one pair
  carries no information about spread); the exact sign-flip p-value is 1.0 (the only other sign
  gives the same |mean|).
- ``sd = 0`` with ``n >= 2`` (all deltas equal): the t interval is ``(mean, mean)``, the bootstrap
  interval is ``(mean, mean)``; d_z is ``+inf``/``-inf`` when the mean is non-zero and None when it
  is zero (0/0 is undefined).

The Student-t quantile is computed here (scipy is only a test dependency): the t CDF through the
regularized incomplete beta function (Lentz continued fraction), inverted by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXACT_SIGN_FLIP_MAX_N = 16  # 2**16 = 65536 sign patterns: exact enumeration stays instant


@dataclass(frozen=True)
class PairedStats:
    """Summary of the paired deltas of one metric. None means 'cannot be computed' (see module doc)."""

    n: int
    mean: float | None
    sd: float | None
    t_ci: tuple[float, float] | None
    bootstrap_ci: tuple[float, float] | None
    p_value: float | None
    p_value_method: str  # "exact (2^n sign flips)", "monte carlo (... seed ...)" or "none (n = 0)"
    d_z: float | None
    level: float


def paired_deltas(treatment: np.ndarray, control: np.ndarray) -> np.ndarray:
    """(n,), (n,) -> (n,) per-pair differences ``treatment - control``."""
    treatment = np.asarray(treatment, dtype=np.float64)
    control = np.asarray(control, dtype=np.float64)
    if treatment.shape != control.shape or treatment.ndim != 1:
        raise ValueError(
            f"paired arrays must be 1-D and equal in length, got {treatment.shape} and {control.shape}"
        )
    return treatment - control


def mean(deltas: np.ndarray) -> float | None:
    """Arithmetic mean; None for an empty sample."""
    return float(np.mean(deltas)) if len(deltas) else None


def sample_sd(deltas: np.ndarray) -> float | None:
    """Sample standard deviation (ddof=1); None when n < 2."""
    return float(np.std(deltas, ddof=1)) if len(deltas) >= 2 else None


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    # Convergence takes O(sqrt(max(a, b))) terms; df up to ~1e7 converges well inside this bound.
    for m in range(1, 20_000):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


def student_t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t: the t with ``student_t_cdf(t, df) == p`` (bisection to ~1e-15 relative)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must lie in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_ppf(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):  # interval is one ulp wide
            break
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def t_confidence_interval(deltas: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """mean ± t_{(1+level)/2, n-1} · sd/√n; None when n < 2, (mean, mean) when sd = 0."""
    n = len(deltas)
    if n < 2:
        return None
    center, sd = float(np.mean(deltas)), float(np.std(deltas, ddof=1))
    half_width = student_t_ppf(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return (center - half_width, center + half_width)


def bootstrap_percentile_ci(
    deltas: np.ndarray, level: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile interval of the mean over ``n_resamples`` seeded resamples with replacement.

    None when n < 2 (every resample of one value is that value). Linear interpolation between order
    statistics (numpy's default quantile method).
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    n = len(deltas)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    resampled_means = deltas[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)  # (n_resamples,)
    alpha = 1.0 - level
    low, high = np.quantile(resampled_means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(low), float(high))


def sign_flip_p_value(
    deltas: np.ndarray, max_exact_n: int = EXACT_SIGN_FLIP_MAX_N, n_permutations: int = 100_000, seed: int = 0
) -> tuple[float | None, str]:
    """Two-sided paired permutation test of 'mean delta = 0'; returns (p, method).

    Under the null each delta is as likely to have either sign. p is the fraction of sign patterns
    whose |mean| is at least the observed |mean|. For n <= ``max_exact_n`` all 2^n patterns are
    enumerated (exact; the smallest attainable p is 2/2^n). Beyond that, ``n_permutations`` seeded
    random patterns are drawn and p = (hits + 1) / (n_permutations + 1).
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    n = len(deltas)
    if n == 0:
        return None, "none (n = 0)"
    observed = abs(float(np.mean(deltas)))
    # Patterns that tie mathematically can differ by rounding in the last bits; count them as ties.
    tolerance = 1e-12 * max(float(np.mean(np.abs(deltas))), 1e-300)
    if n <= max_exact_n:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1  # (2^n, n)
        flipped_means = ((1 - 2 * bits) @ deltas) / n  # (2^n,)
        hits = int(np.count_nonzero(np.abs(flipped_means) >= observed - tolerance))
        return hits / 2**n, f"exact ({2**n} sign flips)"
    rng = np.random.default_rng(seed)
    hits, remaining = 0, n_permutations
    while remaining:
        chunk = min(remaining, max(1, 2_000_000 // n))  # bound memory at ~16 MB per chunk
        signs = rng.choice(np.array([-1.0, 1.0]), size=(chunk, n))  # (chunk, n)
        hits += int(np.count_nonzero(np.abs(signs @ deltas / n) >= observed - tolerance))
        remaining -= chunk
    return (hits + 1) / (n_permutations + 1), f"monte carlo ({n_permutations} random sign flips, seed {seed})"


def effect_size_dz(deltas: np.ndarray) -> float | None:
    """Paired effect size d_z = mean / sd (ddof=1). None when n < 2 or 0/0; ±inf when sd = 0, mean ≠ 0."""
    if len(deltas) < 2:
        return None
    center, sd = float(np.mean(deltas)), float(np.std(deltas, ddof=1))
    if sd == 0.0:
        return None if center == 0.0 else math.copysign(math.inf, center)
    return center / sd


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
        mean=mean(deltas),
        sd=sample_sd(deltas),
        t_ci=t_confidence_interval(deltas, level),
        bootstrap_ci=bootstrap_percentile_ci(deltas, level, n_bootstrap, seed),
        p_value=p_value,
        p_value_method=method,
        d_z=effect_size_dz(deltas),
        level=level,
    )
