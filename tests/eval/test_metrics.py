"""The metric formulas as pure functions: against per-element loops, closed forms and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from dualtalk.eval import metrics as M


def sts_per_element(x, y, timestep=0.1):
    """The STS formula written element by element (dims outer, time inner), as the reference does."""
    ans = 0
    for d in range(x.shape[1]):
        for i in range(1, x.shape[0]):
            ans += ((x[i][d] - x[i - 1][d]) - (y[i][d] - y[i - 1][d])) ** 2 / timestep
    return np.sqrt(ans)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sts_is_bit_identical_to_the_per_element_loop(rng, dtype):
    x = rng.standard_normal((120, 7)).astype(dtype)
    y = rng.standard_normal((120, 7)).astype(dtype)
    got = M.sts(x, y)
    want = sts_per_element(x, y)
    assert got.dtype == dtype and got == want


def test_sts_on_selected_steps(rng):
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    steps = np.zeros(49, bool)
    steps[10:20] = True  # steps 10->11 ... 19->20
    assert np.isclose(M.sts(x, y, steps=steps), sts_per_element(x[10:21], y[10:21]))
    assert M.sts(x, y, steps=np.zeros(49, bool)) == 0
    assert M.sts(x, x) == 0


def test_frechet_distance_closed_form():
    # diagonal Gaussians: ||dmu||^2 + sum(s1 + s2 - 2 sqrt(s1 s2))
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    want = 5.0 + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert np.isclose(M.frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)), want)


def test_frechet_distance_of_samples(rng):
    a = rng.standard_normal((400, 5))
    assert abs(M.frechet_distance(a, a)) < 1e-8
    b = a + 2.0  # shifted: only the mean term, 5 dims x 2^2
    assert np.isclose(M.frechet_distance(a, b), 20.0)
    # fewer frames than dims: singular covariances, still finite (eps on the diagonal)
    assert np.isfinite(M.frechet_distance(rng.standard_normal((4, 10)), rng.standard_normal((4, 10))))


def test_paired_fd_is_zero_for_a_perfect_prediction(rng):
    partner = rng.standard_normal((300, 3))
    gt = partner + 0.3 * rng.standard_normal((300, 3))  # a person coupled with the partner
    assert abs(M.paired_frechet_distance(gt, gt, partner)) < 1e-8
    # the same frames in the wrong order: FD ~ 0, but the coupling is lost and P-FD sees it
    assert M.frechet_distance(gt[::-1], gt) < 1e-8
    assert M.paired_frechet_distance(gt[::-1], gt, partner) > 1.0


def test_mse_and_variance_keep_float32(rng):
    p = rng.standard_normal((100, 4)).astype(np.float32)
    g = np.zeros_like(p)
    assert M.mse(p, g).dtype == np.float32 and np.isclose(M.mse(p, g), np.mean(p.astype(np.float64) ** 2))
    assert M.variance(p).dtype == np.float32 and np.isclose(M.variance(p), np.var(p, axis=0).mean())


def test_sid_entropy(rng):
    centres = np.eye(4) * 50  # 4 far-apart clusters in 4-D
    pred = np.repeat(centres, 25, axis=0) + rng.normal(0, 0.1, (100, 4))
    # ground truth spread evenly over the 4 clusters: 2 bits; all in one cluster: 0 bits
    assert np.isclose(M.sid(pred, pred, 4), 2.0, atol=1e-4)
    assert abs(M.sid(pred, pred[:25], 4)) < 1e-4
    # per-element histogram + entropy gives the same number
    labels = M.kmeans_labels(pred, pred, 4)
    hist = [0] * 4
    for lab in labels:
        hist[lab] += 1
    p = np.array(hist) / sum(hist)
    assert M.sid(pred, pred, 4) == -sum(p[i] * np.log2(p[i] + 1e-6) for i in range(4))


def test_rpcc(rng):
    gt, partner = rng.standard_normal((200, 3)), rng.standard_normal((200, 3))
    assert M.rpcc(gt, gt, partner) == 0
    coupled = partner + 0.1 * rng.standard_normal((200, 3))  # a prediction that copies the partner
    assert M.rpcc(coupled, gt, partner) > 0.8


def test_diversity_is_seeded(rng):
    x = rng.standard_normal((500, 6))
    a = M.diversity(x, 100, np.random.default_rng(3))
    assert a == M.diversity(x, 100, np.random.default_rng(3))
    assert a != M.diversity(x, 100, np.random.default_rng(4))
    assert np.isclose(M.diversity(x, 500, np.random.default_rng(0)), np.sqrt(2 * 6), rtol=0.1)


def test_sid_is_the_same_in_worker_threads(rng):
    """k-means runs with one OpenMP thread wherever it is called: SID does not depend on the caller."""
    from concurrent.futures import ThreadPoolExecutor

    x = rng.standard_normal((300, 3)).astype(np.float32)
    y = rng.standard_normal((300, 3)).astype(np.float32)
    here = M.sid(x, y, 10)
    with ThreadPoolExecutor(2) as pool:
        assert set(pool.map(lambda _: M.sid(x, y, 10), range(4))) == {here}
