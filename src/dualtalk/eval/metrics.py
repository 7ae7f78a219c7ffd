"""The paper's motion metrics as pure, vectorised functions over arrays of frames.

Every function takes (T, D) arrays (one row per 25 fps frame) and reproduces the arithmetic of the
reference evaluation script bit for bit where that is possible, including its dtypes: with float32 inputs
(what the dataset and the model produce) ``mse``, ``sts`` and ``variance`` are float32 numbers, as the
reference gives under NumPy >= 2; Fréchet distances, SID and rPCC are float64.

- :func:`frechet_distance` - FD between the Gaussians fitted to two sets of frames (``np.cov``, ddof 1;
  ``scipy.linalg.sqrtm`` of the covariance product, ``eps`` on the diagonals when that is singular).
- :func:`sid` - speaker identity diversity: k-means (scikit-learn, ``random_state=0``) fitted on one set,
  the other set's frames assigned to those clusters, entropy (bits) of the assignment histogram.
- :func:`sts` - sqrt of the summed squared velocity differences / 0.1 (the reference's per-element loop
  as one ``cumsum`` in the same order, so float32 rounding is identical).
- :func:`rpcc` - |pcc(gt, partner) - pcc(pred, partner)|, Pearson over flattened arrays.
- :func:`variance` - mean over dims of the per-dim variance (ddof 0).
- :func:`diversity` - mean L2 distance between seeded random pairs of frames.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

# k-means on constant motion (e.g. the ``mean`` baseline) finds fewer distinct points than clusters; that is
# expected and SID is still defined. Filtered here, once, because ``warnings.catch_warnings`` is not
# thread-safe and evaluation runs files in a thread pool (one thread's exit could restore the filters
# without the other's ``ignore``).
warnings.filterwarnings("ignore", message=r"Number of distinct clusters \(\d+\) found smaller than n_clusters")

#: k of the k-means in SID for each parameter group (reference values)
SID_CLUSTERS = {"exp": 40, "jaw": 10, "pose": 10, "mouth": 40, "upper": 40}  # mouth, upper: ARKit (ours)
#: time step that divides the squared velocity differences in STS (reference value)
STS_TIMESTEP = 0.1
SID_EPS = 1e-6
FD_EPS = 1e-6


def activation_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of frames x (T, D); ``np.cov`` computes in float64, ddof 1."""
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2, eps: float = FD_EPS) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2)) (float64)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about singular products; we handle them below
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():  # singular product: regularise both covariances
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):  # numerical error: drop a negligible imaginary part
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between the frames of ``a`` (T1, D) and ``b`` (T2, D)."""
    return frechet_distance_from_stats(*activation_stats(a), *activation_stats(b))


def paired_frechet_distance(pred: np.ndarray, gt: np.ndarray, partner: np.ndarray) -> float:
    """P-FD: FD of [partner gt, gt] vs [partner gt, pred], each (T, 2D)."""
    return frechet_distance(np.concatenate([partner, gt], axis=-1), np.concatenate([partner, pred], axis=-1))


def mse(pred: np.ndarray, gt: np.ndarray):
    """Mean squared error over all elements, in the inputs' dtype (float32 in, float32 out)."""
    return np.mean((pred - gt) ** 2)


def variance(x: np.ndarray):
    """Mean over dims of the per-dim variance (ddof 0), in the input's dtype."""
    return np.mean(np.var(x, axis=0))


def sts(pred: np.ndarray, gt: np.ndarray, timestep: float = STS_TIMESTEP, steps: np.ndarray | None = None):
    """sqrt(sum_{d, t>=1} ((pred_t - pred_{t-1}) - (gt_t - gt_{t-1}))^2 / timestep), input dtype.

    The reference sums element by element, dims outer and time inner, in the input dtype; ``np.cumsum``
    is a sequential sum too, so running it over the terms in that order gives the same rounding.
    ``steps`` (T-1,) bool optionally keeps only some steps t-1 -> t (role subsets).
    """
    d = np.diff(pred, axis=0) - np.diff(gt, axis=0)  # (T-1, D)
    if steps is not None:
        d = d[np.asarray(steps, bool)]  # (S, D)
    if d.size == 0:
        return np.sqrt(d.dtype.type(0))
    terms = d**2 / d.dtype.type(timestep)  # (S, D), timestep cast to the input dtype as NumPy 2 does
    return np.sqrt(np.cumsum(terms.T.reshape(-1))[-1])  # dims outer, time inner


def _entropy_bits(labels: np.ndarray, k: int) -> float:
    hist = np.bincount(labels, minlength=k)  # (k,)
    p = hist / np.sum(hist)
    return float(-np.cumsum(p * np.log2(p + SID_EPS))[-1])  # sequential, as the reference's loop


def _one_openmp_thread():
    """Limit the calling thread's OpenMP pool to one thread (scikit-learn's k-means runs on it)."""
    from ..io.threads import limit_threads

    # one controller for the process (k-means runs per file and group); made after scikit-learn is
    # imported, so that its OpenMP is found
    return limit_threads(1, "openmp", reuse=True)


def kmeans_labels(fit_on: np.ndarray, assign: np.ndarray, k: int, random_state: int = 0) -> np.ndarray:
    """Fit ``KMeans(k, random_state, n_init='auto')`` on ``fit_on`` and label the frames of ``assign``.

    Runs with one OpenMP thread: scikit-learn's Lloyd iterations sum the centres per thread, so with
    float32 data the last bits of the centres - and, rarely, a label - depend on the number of threads,
    i.e. on the machine. One thread makes SID the same everywhere (it reproduces the reference fixture).
    """
    from ..errors import require

    require("sklearn", "eval")
    from sklearn.cluster import KMeans

    with warnings.catch_warnings(), _one_openmp_thread():
        warnings.simplefilter("ignore")  # ConvergenceWarning on duplicate points (constant motion)
        km = KMeans(n_clusters=k, random_state=random_state, n_init="auto").fit(fit_on)
        return km.predict(assign)


def sid(fit_on: np.ndarray, assign: np.ndarray, k: int, random_state: int = 0) -> float:
    """Entropy (bits) of the histogram of ``assign``'s frames over k-means clusters fitted on ``fit_on``.

    The reference protocol fits on the prediction and assigns the ground truth: ``sid(pred, gt, k)``.
    """
    return _entropy_bits(kmeans_labels(fit_on, assign, k, random_state), k)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the flattened arrays (``np.corrcoef``, float64)."""
    return float(np.corrcoef(a.reshape(-1), b.reshape(-1))[0, 1])


def rpcc(pred: np.ndarray, gt: np.ndarray, partner: np.ndarray) -> float:
    """|pcc(gt, partner) - pcc(pred, partner)|: how far the prediction is from the real coupling."""
    return abs(pearson(gt, partner) - pearson(pred, partner))


def diversity(x: np.ndarray, times: int, rng: np.random.Generator) -> float:
    """Mean L2 distance between ``times`` random frame pairs (drawn without replacement, seeded)."""
    times = min(times, len(x))
    first = rng.choice(len(x), times, replace=False)
    second = rng.choice(len(x), times, replace=False)
    return float(np.mean(np.linalg.norm(x[first] - x[second], axis=1)))


__all__ = [
    "SID_CLUSTERS",
    "STS_TIMESTEP",
    "activation_stats",
    "diversity",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kmeans_labels",
    "mse",
    "paired_frechet_distance",
    "pearson",
    "rpcc",
    "sid",
    "sts",
    "variance",
]
