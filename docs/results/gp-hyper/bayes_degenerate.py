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

    .venv-py/bin/python docs/results/gp-hyper/bayes_degenerate.py [--draws 400000] [--seed 0]

Needs numpy. Session 9 (2026-12-04), seed 0, 400k draws:
duplicated rows: std 0.014, 1.741, 0.014 (mean 1.00, 1.41, 2.00; ESS 2706);
one row: std 1.742, 2.565, 3.098 (mean 1.27, 0.99, 0.68; ESS 376208).
Session 10 (2026-12-05), seed 0, 400k draws: one row, context-normalised: std 2.00, 3.14, 4.05
(mean 1.5).
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


if __name__ == "__main__":
    main()
