"""pfn.Predictive: distribution identities and the broadcasting rule."""

# SPDX-License-Identifier: MIT OR Apache-2.0

import numpy as np
import pytest

from pfn import PFNRegressor, Predictive

M = 5  # queries

# numpy >= 2.0 names it trapezoid, older versions trapz.
trapezoid = getattr(np, "trapezoid", None) or np.trapz


@pytest.fixture(scope="module")
def pred(iris_regression):
    X_train, y_train, X_test, _, _, _ = iris_regression
    reg = PFNRegressor(n_threads=1).fit(X_train, y_train)
    p = reg.predict(X_test.iloc[:M], output_type="full")
    assert isinstance(p, Predictive)
    return p


def test_len_and_summaries(pred):
    assert len(pred) == M
    for name in ("mean", "median", "mode", "variance", "std", "entropy"):
        values = getattr(pred, name)()
        assert values.shape == (M,), name
        assert np.all(np.isfinite(values)), name
    np.testing.assert_allclose(pred.std() ** 2, pred.variance(), rtol=1e-12)
    np.testing.assert_allclose(pred.median(), pred.icdf(0.5), rtol=0, atol=1e-12)
    assert np.all(pred.variance() > 0)


def test_buckets(pred):
    borders = pred.borders
    probs = pred.probabilities
    assert borders.ndim == 1 and np.all(np.diff(borders) > 0)
    assert probs.shape == (M, borders.size - 1)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


def test_pdf_integrates_to_one(pred):
    borders = pred.borders
    span = borders[-1] - borders[0]
    # Wide enough for the tails; fine enough that the trapezoid error at the bucket edges of the
    # piecewise-constant density stays far below the tolerance (about jump x step per edge).
    grid = np.union1d(np.linspace(borders[0] - 2 * span, borders[-1] + 2 * span, 40001), borders)
    dens = pred.pdf(grid[None, :])
    assert dens.shape == (M, grid.size)
    assert np.all(dens >= 0)
    np.testing.assert_allclose(trapezoid(dens, grid, axis=1), 1.0, atol=1e-2)
    # Over an interval inside the borders the integral is the cdf difference.
    lo, hi = pred.interval(0.8)
    for i in range(M):
        x = np.linspace(lo[i], hi[i], 20001)
        integral = trapezoid(pred[i].pdf(x[None, :])[0], x)
        mass = pred[i].cdf(hi[i])[0] - pred[i].cdf(lo[i])[0]
        assert abs(integral - mass) < 2e-3, (i, integral, mass)


def test_logpdf_is_log_of_pdf(pred):
    y = pred.icdf(np.array([[0.1, 0.5, 0.9]]))
    np.testing.assert_allclose(pred.logpdf(y), np.log(pred.pdf(y)), rtol=1e-9, atol=1e-12)
    # The default model has full support (tails beyond the outer borders): finite far out.
    span = pred.borders[-1] - pred.borders[0]
    far = pred.logpdf(np.array([[pred.borders[0] - 100 * span, pred.borders[-1] + 100 * span]]))
    assert np.all(np.isfinite(far)), far


def test_cdf_monotone_with_limits(pred):
    borders = pred.borders
    grid = np.linspace(borders[0] - 1.0, borders[-1] + 1.0, 2001)[None, :]
    c = pred.cdf(grid)
    assert c.shape == (M, grid.shape[1])
    assert np.all(np.diff(c, axis=1) >= -1e-12)
    assert np.all((c >= 0) & (c <= 1))
    span = borders[-1] - borders[0]
    np.testing.assert_allclose(pred.cdf(borders[0] - 50 * span), 0.0, atol=1e-6)
    np.testing.assert_allclose(pred.cdf(borders[-1] + 50 * span), 1.0, atol=1e-6)


def test_icdf_inverts_cdf(pred):
    p = np.linspace(0.05, 0.95, 19)[None, :]
    y = pred.icdf(p)
    assert y.shape == (M, p.shape[1])
    assert np.all(np.diff(y, axis=1) >= 0)
    np.testing.assert_allclose(pred.cdf(y), np.broadcast_to(p, y.shape), atol=1e-9)
    np.testing.assert_allclose(pred.icdf(pred.cdf(y)), y, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(pred.ppf(p), y)


def test_quantiles_and_interval(pred):
    q = pred.quantiles([0.05, 0.5, 0.95])
    assert q.shape == (M, 3)
    lo, hi = pred.interval(0.9)
    np.testing.assert_allclose(q[:, 0], lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q[:, 2], hi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q[:, 1], pred.median(), rtol=0, atol=1e-12)
    assert np.all(lo <= pred.median()) and np.all(pred.median() <= hi)
    lo50, hi50 = pred.interval(0.5)
    assert np.all(lo <= lo50) and np.all(hi50 <= hi)
    with pytest.raises(ValueError, match="interval probability"):
        pred.interval(1.5)


def test_acquisition_functions(pred):
    mean = pred.mean()
    best = np.linspace(mean.min() - 1, mean.max() + 1, 7)[None, :]
    ei = pred.ei(best)
    pi = pred.pi(best)
    assert ei.shape == pi.shape == (M, 7)
    assert np.all(ei >= 0)
    assert np.all((pi >= 0) & (pi <= 1))
    # Both fall as the incumbent rises.
    assert np.all(np.diff(ei, axis=1) <= 1e-12)
    assert np.all(np.diff(pi, axis=1) <= 1e-12)
    np.testing.assert_allclose(pi, 1.0 - pred.cdf(best), atol=1e-9)
    # EI of a very low incumbent is the mean minus the incumbent.
    low = pred.borders[0] - 1.0
    np.testing.assert_allclose(pred.ei(low), mean - low, rtol=1e-6)
    # UCB is the upper quantile icdf(1 - rest).
    np.testing.assert_allclose(pred.ucb(), pred.icdf(1.0 - (1.0 - 0.682) / 2.0), atol=1e-12)
    np.testing.assert_allclose(pred.ucb(0.05), pred.icdf(0.95), atol=1e-12)
    rest = np.linspace(0.05, 0.45, M)
    np.testing.assert_allclose(pred.ucb(rest), pred.icdf(1.0 - rest), atol=1e-12)
    # Scalar and per-query arguments agree.
    per_query = np.full(M, best[0, 3])
    np.testing.assert_array_equal(pred.ei(best[0, 3]), pred.ei(per_query))
    np.testing.assert_array_equal(pred.ei(per_query), ei[:, 3])


def test_broadcasting_shapes(pred):
    y0 = float(pred.median()[0])
    assert pred.pdf(y0).shape == (M,)
    assert pred.pdf(np.float64(y0)).shape == (M,)
    assert pred.pdf([y0]).shape == (M,)
    per_query = pred.median()
    assert pred.pdf(per_query).shape == (M,)
    assert pred.pdf(np.linspace(0, 1, 4)[None, :]).shape == (M, 4)
    assert pred.cdf(np.zeros((M, 3))).shape == (M, 3)
    assert pred.icdf(0.3).shape == (M,)
    assert pred.icdf(np.full((1, 2), 0.3)).shape == (M, 2)
    assert pred.ei(0.0).shape == pred.pi(np.zeros(M)).shape == pred.ucb().shape == (M,)
    # One value per query: query i at y[i].
    dens = pred.pdf(per_query)
    for i in range(M):
        assert dens[i] == pred.pdf(per_query[i])[i]
    # A shared grid equals per-query rows of the same values.
    grid = np.linspace(-0.5, 3.0, 6)
    np.testing.assert_array_equal(pred.cdf(grid[None, :]), pred.cdf(np.tile(grid, (M, 1))))
    # Ambiguous or mismatched shapes are refused.
    with pytest.raises(ValueError, match="one value per query"):
        pred.pdf(np.zeros(M + 2))
    with pytest.raises(ValueError, match=r"\(1, k\)"):
        pred.cdf(np.zeros((M + 1, 3)))
    with pytest.raises(ValueError, match="dimensions"):
        pred.pdf(np.zeros((1, 1, 2)))


def test_indexing(pred):
    sub = pred[1:4]
    assert isinstance(sub, Predictive) and len(sub) == 3
    np.testing.assert_array_equal(sub.mean(), pred.mean()[1:4])
    np.testing.assert_array_equal(sub.probabilities, pred.probabilities[1:4])
    y = pred.median()[1:4]
    np.testing.assert_array_equal(sub.pdf(y), pred.pdf(pred.median())[1:4])
    np.testing.assert_array_equal(sub.ei(y), pred.ei(pred.median())[1:4])
    np.testing.assert_array_equal(sub.icdf([[0.2, 0.8]]), pred.icdf([[0.2, 0.8]])[1:4])
    one = pred[-1]
    assert len(one) == 1
    np.testing.assert_array_equal(one.std(), pred.std()[-1:])
    rev = pred[::-1]
    np.testing.assert_array_equal(rev.mean(), pred.mean()[::-1])
    np.testing.assert_array_equal(rev[0].mean(), pred.mean()[-1:])
    with pytest.raises(IndexError):
        pred[M]
    with pytest.raises(TypeError):
        pred["a"]


def test_sample(pred):
    n = 4000
    draws = pred.sample(n, random_state=7)
    assert draws.shape == (M, n)
    np.testing.assert_array_equal(draws, pred.sample(n, random_state=7))
    assert not np.array_equal(draws, pred.sample(n, random_state=8))
    # The sample mean is within 5 standard errors of the predictive mean.
    err = np.abs(draws.mean(axis=1) - pred.mean())
    assert np.all(err < 5 * pred.std() / np.sqrt(n)), err
    assert pred.sample(3, random_state=np.random.RandomState(0)).shape == (M, 3)
    assert pred.sample(3, random_state=np.random.default_rng(0)).shape == (M, 3)
    assert pred.sample(0).shape == (M, 0)
    with pytest.raises(ValueError):
        pred.sample(-1)
    with pytest.raises(ValueError):
        pred.sample(3, random_state=-2)


def test_invalid_probability_raises(pred):
    with pytest.raises(ValueError):
        pred.icdf(1.5)
    with pytest.raises(ValueError):
        pred.ucb(-0.1)
