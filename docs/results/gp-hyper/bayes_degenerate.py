#!/usr/bin/env python3
"""The Bayes answers behind the degenerate-context tests of `crates/pfn-infer/tests/shipped_gp_hyper.rs`.

Under the 1-D hyper-prior of `gp-hyper-5d` (Matérn-5/2; lengthscale Γ(3, rate 6), outputscale
Γ(2, rate 0.15), noise Γ(0.5, rate 0.25) floored at 1e-4), with the context in the prior's own
units, the posterior predictive of y* is a mixture over the hyperparameters of GP predictives. It is
estimated by importance sampling: S draws of the hyperparameters from the hyper-prior, weighted by
the GP marginal likelihood of the context. Prints the effective sample size and the predictive mean
and standard deviation at each query, for

- duplicated rows: three rows (0.2, 1) and three rows (0.8, 2), queries 0.2, 0.5, 0.8;
- one row: (0.5, 1.5), queries 0.5, 0.3, 0.9.

It also prints the best answer to the one-row context that a model *trained the way it is used* can
give. Such a model sees the context through its normalisation: with one row, `y` is shifted by the
row's target (the standard deviation of one value is replaced by 1, so the scale is kept) and the
query's input by the row's input (`0.5 + x* - x1`, the scaler's rule for a range of zero). So it
sees `x* - x1` but not the level `y1`, which under the outputscale prior says how large the
function is. Its best predictive of `y* - y1` is the hyper-prior's mixture of
`N(0, 2 (outputscale + noise) - 2 outputscale k(x* - x1))`, with mean 0 (so the answer is centred on
`y1`) and the std printed.

And the best context-normalised answer to the duplicated-rows context, under the tied-inputs
training prior `gp-hyper-5d-ties` (1-D: the input snapped to a grid of k ~ U{2..=8} values, so that
rows can tie; a share `tied_noiseless` of the tied datasets at the noise floor). The model sees
three rows (0, -1) and three rows (1, +1): the level m and the scale s of the targets
(y = m + s z) and the grid are unknown. For a draw of the hyperparameters and of the two grid
values, the density of the normalised targets z is the integral over m and s > 0 of
N(m 1 + s z; 0, K) s^4 (4 = 6 rows - 2), which is |K|^-1/2 A_mm^-1/2 a^-5/2 up to a constant, with
A = [1 z]^T K^-1 [1 z] and a = A_ss - A_ms^2 / A_mm. Draws are weighted by it and by the chance that
the six context rows fall three and three on those two grid values, and each draw's (m, s) is drawn
from its posterior (s^2 ~ Gamma(5/2, rate a/2), m | s ~ N(-s A_ms / A_mm, 1 / A_mm)). The printed
mean and std are in the test's units (y = 1.5 + 0.5 z).

That answer assumes a model that counts rows, and ours cannot: attention averages over the context
rows, so repeating every row k times changes no attention output, and the normalisation (population
mean and std, min-max range) is unchanged too. The duplicated-rows context is therefore exactly the
two-row context (0.2, 1), (0.8, 2) for the model (`crates/pfn-infer/tests/shipped_gp_hyper.rs`
checks this). So the script also prints the best answer to that two-row context under the plain
prior `gp-hyper-5d` (inputs U[0, 1)), which is what the model is scored on: the same integral with
n = 2 (weight |K|^-1/2 A_mm^-1/2 a^-1/2, s^2 ~ Gamma(1/2, rate a/2)) over the two inputs as well,
at the scaled query positions 0, 0.5, 1. Its variance is infinite (E[1/s^2] diverges for a
Gamma(1/2) law: two targets that happen to be close in the prior's units say nothing about the
scale), so the script prints its quantiles, from one predictive draw per weighted draw.

    .venv-py/bin/python docs/results/gp-hyper/bayes_degenerate.py [--draws 400000] [--seed 0]

Needs numpy. Session 9 (2026-12-04), seed 0, 400k draws:
duplicated rows: std 0.014, 1.741, 0.014 (mean 1.00, 1.41, 2.00; ESS 2706);
one row: std 1.742, 2.565, 3.098 (mean 1.27, 0.99, 0.68; ESS 376208).
Session 10 (2026-12-05), seed 0, 400k draws: one row, context-normalised: std 2.00, 3.14, 4.05
(mean 1.5).
Session 11 (2026-12-05), seed 0, 400k draws: two rows (= duplicated rows for a model that cannot
count), plain prior, quantiles 5 / 25 / 50 / 75 / 95 % at 0.2: -1.86 0.76 1.08 1.64 4.38;
at 0.5: -2.21 0.95 1.50 2.05 5.19; at 0.8: -1.42 1.36 1.92 2.23 4.83 (90 % widths 6.24, 7.40,
6.24). A second seed with 1M draws moves them by at most 0.03.
"""

import argparse

import numpy as np


def matern52(a, b, lengthscale, outputscale):
    """Batched Matérn-5/2 kernel matrices, one per hyperparameter draw: (S, len(a), len(b))."""
    r = np.abs(a[None, :, None] - b[None, None, :]) / lengthscale[:, None, None]
    return outputscale[:, None, None] * (1 + np.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-np.sqrt(5) * r)


def bayes_predictive(x, y, queries, draws, rng):
    """Mean and std of the Bayes predictive at `queries`, and the effective sample size."""
    x, y, q = (np.asarray(v, float) for v in (x, y, queries))
    noise = np.maximum(rng.gamma(0.5, 1 / 0.25, draws), 1e-4)
    outputscale = rng.gamma(2.0, 1 / 0.15, draws)
    lengthscale = rng.gamma(3.0, 1 / 6.0, draws)
    k = matern52(x, x, lengthscale, outputscale) + noise[:, None, None] * np.eye(len(x))[None]
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(chol, np.broadcast_to(y[None, :, None], (draws, len(x), 1)))[:, :, 0]
    log_w = -0.5 * (alpha * alpha).sum(1) - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
    v = np.linalg.solve(chol, np.transpose(matern52(q, x, lengthscale, outputscale), (0, 2, 1)))
    mu = np.einsum("sxq,sx->sq", v, alpha)
    var = outputscale[:, None] - (v * v).sum(1) + noise[:, None]
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean = (w[:, None] * mu).sum(0)
    std = np.sqrt((w[:, None] * (var + mu**2)).sum(0) - mean**2)
    return mean, std, 1 / (w**2).sum()


def normalised_one_row_std(x1, queries, draws, rng):
    """Std of the best context-normalised predictive of y* - y1 at `queries`, one row at `x1`."""
    noise = np.maximum(rng.gamma(0.5, 1 / 0.25, draws), 1e-4)
    outputscale = rng.gamma(2.0, 1 / 0.15, draws)
    lengthscale = rng.gamma(3.0, 1 / 6.0, draws)
    k = matern52(np.asarray(queries, float), np.array([x1], float), lengthscale, np.ones(draws))
    var = 2 * (outputscale[:, None] + noise[:, None]) - 2 * outputscale[:, None] * k[:, :, 0]
    return np.sqrt(var.mean(0))


class NormalisedPosterior:
    """The context of normalised targets z at inputs x (per draw: (S, n)), seen by a model that
    lost the targets' level m and scale s (y = m + s z): for each hyperparameter draw, the log
    weight of the context (|K|^-1/2 A_mm^-1/2 a^-(n-1)/2, the integral over m and s > 0 of
    N(m 1 + s z; 0, K) s^(n-2)), and one draw of (m, s) from its posterior
    (s^2 ~ Gamma((n-1)/2, rate a/2), m | s ~ N(-s A_ms / A_mm, 1 / A_mm))."""

    def __init__(self, x, z, lengthscale, outputscale, noise, rng):
        draws, n = x.shape
        self.x, self.z = x, z
        self.lengthscale, self.outputscale, self.noise = lengthscale, outputscale, noise
        self.cov = matern52_rows(x, x, lengthscale, outputscale) + noise[:, None, None] * np.eye(n)[None]
        basis = np.stack([np.ones(n), z], 1)
        a_mat = np.einsum("ki,skj->sij", basis, np.linalg.solve(self.cov, np.broadcast_to(basis, (draws, n, 2))))
        a_mm, a_ms, a_ss = a_mat[:, 0, 0], a_mat[:, 0, 1], a_mat[:, 1, 1]
        schur = a_ss - a_ms**2 / a_mm
        log_det = np.linalg.slogdet(self.cov)[1]
        self.log_w = -0.5 * log_det - 0.5 * np.log(a_mm) - (n - 1) / 2 * np.log(schur)
        self.scale = np.sqrt(rng.gamma((n - 1) / 2, 2 / schur))
        self.level = -self.scale * a_ms / a_mm + rng.standard_normal(draws) / np.sqrt(a_mm)

    def query(self, q):
        """Per draw, the mean and variance of the normalised target at inputs q (S,)."""
        k_q = matern52_rows(q[:, None], self.x, self.lengthscale, self.outputscale)[:, 0, :]
        solved = np.linalg.solve(self.cov, k_q[:, :, None])[:, :, 0]
        var = self.outputscale + self.noise - (k_q * solved).sum(1)
        mean_z = self.level * (solved.sum(1) - 1) / self.scale + (solved * self.z).sum(1)
        return mean_z, var / self.scale**2


def weights(log_w):
    """Normalised importance weights."""
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def normalised_duplicated_rows(noiseless, draws, rng):
    """Mean and std of the best context-normalised answer to the duplicated-rows context at the
    scaled inputs 0, 0.5, 1 (the test's 0.2, 0.5, 0.8), under the tied prior; and the ESS."""
    lengthscale = rng.gamma(3.0, 1 / 6.0, draws)
    outputscale = rng.gamma(2.0, 1 / 0.15, draws)
    noise = np.maximum(rng.gamma(0.5, 1 / 0.25, draws), 1e-4)
    noise = np.where(rng.random(draws) < noiseless, 1e-4, noise)
    k = rng.integers(2, 9, draws)
    lo = (rng.random(draws) * k).astype(int)
    hi = (rng.random(draws) * (k - 1)).astype(int)
    hi = np.where(hi >= lo, hi + 1, hi)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    a, b = lo / (k - 1), hi / (k - 1)
    # Chance that the six rows fall three and three on this pair of grid values (up to a constant).
    log_w_grid = np.log(k * (k - 1) / 2) - 6 * np.log(k)
    x = np.stack([a, a, a, b, b, b], 1)
    post = NormalisedPosterior(x, np.array([-1.0, -1, -1, 1, 1, 1]), lengthscale, outputscale, noise, rng)
    w = weights(log_w_grid + post.log_w)
    means, stds = [], []
    for t in (0.0, 0.5, 1.0):
        mean_z, var_z = post.query(a + t * (b - a))
        mean = (w * mean_z).sum()
        std = np.sqrt((w * (var_z + mean_z**2)).sum() - mean**2)
        means.append(1.5 + 0.5 * mean)
        stds.append(0.5 * std)
    return np.array(means), np.array(stds), 1 / (w**2).sum()


def normalised_two_rows_quantiles(probs, draws, rng):
    """Quantiles `probs` of the best context-normalised answer to the two-row context (0.2, 1),
    (0.8, 2) at the scaled inputs 0, 0.5, 1 (the test's 0.2, 0.5, 0.8), under the plain prior
    (1-D, inputs U[0, 1)); and the ESS. Rows: queries; columns: `probs`; in the test's units."""
    lengthscale = rng.gamma(3.0, 1 / 6.0, draws)
    outputscale = rng.gamma(2.0, 1 / 0.15, draws)
    noise = np.maximum(rng.gamma(0.5, 1 / 0.25, draws), 1e-4)
    u = rng.random((draws, 2))
    a, b = u.min(1), u.max(1)
    post = NormalisedPosterior(np.stack([a, b], 1), np.array([-1.0, 1.0]), lengthscale, outputscale, noise, rng)
    w = weights(post.log_w)
    rows = []
    for t in (0.0, 0.5, 1.0):
        mean_z, var_z = post.query(a + t * (b - a))
        draw_z = mean_z + np.sqrt(var_z) * rng.standard_normal(draws)
        order = np.argsort(draw_z)
        cum = np.cumsum(w[order])
        rows.append([1.5 + 0.5 * draw_z[order][np.searchsorted(cum, p)] for p in probs])
    return np.array(rows), 1 / (w**2).sum()


def matern52_rows(a, b, lengthscale, outputscale):
    """Matérn-5/2 kernel matrices between per-draw inputs a (S, n) and b (S, m): (S, n, m)."""
    r = np.abs(a[:, :, None] - b[:, None, :]) / lengthscale[:, None, None]
    return outputscale[:, None, None] * (1 + np.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-np.sqrt(5) * r)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [
        ("duplicated rows", [0.2] * 3 + [0.8] * 3, [1, 1, 1, 2, 2, 2], [0.2, 0.5, 0.8]),
        ("one row", [0.5], [1.5], [0.5, 0.3, 0.9]),
    ]
    for name, x, y, q in cases:
        mean, std, ess = bayes_predictive(x, y, q, args.draws, rng)
        print(f"{name}: queries {q}: mean {np.round(mean, 3)}, std {np.round(std, 3)}, ESS {ess:.0f}")
    std = normalised_one_row_std(0.5, [0.5, 0.3, 0.9], args.draws, rng)
    print(f"one row, context-normalised: queries [0.5, 0.3, 0.9]: mean 1.5, std {np.round(std, 3)}")
    for noiseless in (0.0, 0.5):
        mean, std, ess = normalised_duplicated_rows(noiseless, args.draws, rng)
        print(
            f"duplicated rows, context-normalised, tied prior with tied_noiseless {noiseless}: "
            f"queries [0.2, 0.5, 0.8]: mean {np.round(mean, 3)}, std {np.round(std, 3)}, ESS {ess:.0f}"
        )
    probs = (0.05, 0.25, 0.5, 0.75, 0.95)
    quantiles, ess = normalised_two_rows_quantiles(probs, args.draws, rng)
    for q, row in zip((0.2, 0.5, 0.8), quantiles):
        print(
            f"two rows (duplicated rows for a model that cannot count), context-normalised, plain prior: "
            f"query {q}: quantiles {probs}: {np.round(row, 2)}, 90 % width {row[-1] - row[0]:.2f}, ESS {ess:.0f}"
        )


if __name__ == "__main__":
    main()
