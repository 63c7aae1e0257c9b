#!/usr/bin/env python3
"""Coverage of an ML-II Gaussian process's 90 % intervals on the tasks and splits of coverage.py.

The reference point for the PFN's real-data coverage: the same tasks, the same seeded splits
(coverage.py's shuffles, in the same order), answered by scikit-learn's GaussianProcessRegressor
with a constant times an RBF kernel with one length scale per feature plus white noise, its
hyperparameters set by type-II maximum likelihood (3 starts), inputs min-max scaled and targets
standardised with the context rows (as the PFN does). Its intervals are the plug-in predictive
mean ± 1.645 sd: they ignore the uncertainty about the hyperparameters, which the PFN's posterior
predictive averages over.

    .venv-xgboost/bin/python docs/results/gp-hyper/coverage_ml2.py --seed 0

Needs numpy and scikit-learn (scripts/install-xgboost.sh installs both into .venv-xgboost).
"""

import argparse
import math
import os
import random
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coverage  # noqa: E402  (the tasks, splits and helpers of the PFN's table)

Z90 = 1.6448536269514722


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--context", type=int, default=100)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    rng = random.Random(args.seed)
    print(f"ML-II GP, seed {args.seed}: {args.context} context rows, {args.queries} queries, "
          f"{args.splits} splits per task\n")
    print("| task | queries | coverage | 95 % CI | mean NLL |")
    print("|---|---:|---:|---:|---:|")
    noisy_k = noisy_n = 0
    for name, path, features, target in coverage.TASKS:
        if not os.path.exists(path):
            print(f"| {name} | – | missing {path} | | |")
            continue
        rows = coverage.read_rows(path, features + [target])
        determined_by = coverage.determining_column(rows, features)
        k = n = 0
        nll = []
        for _ in range(args.splits):
            ctx, qry = (np.array(r) for r in coverage.split_rows(rows, rng, args.context,
                                                                  args.queries))
            x, y, xq, yq = ctx[:, :-1], ctx[:, -1], qry[:, :-1], qry[:, -1]
            lo, hi = x.min(axis=0), x.max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.ones(x.shape[1]), (1e-2, 1e2))
                      + WhiteKernel(0.1, (1e-6, 1e1)))
            gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2,
                                          random_state=0).fit((x - lo) / span, y)
            mean, sd = gp.predict((xq - lo) / span, return_std=True)
            k += int(np.sum(np.abs(yq - mean) <= Z90 * sd))
            n += len(yq)
            nll.extend(0.5 * np.log(2 * math.pi * sd**2) + 0.5 * ((yq - mean) / sd) ** 2)
        label = name
        if determined_by is not None:
            label = f"{name} (no noise: determined by {determined_by})"
        else:
            noisy_k += k
            noisy_n += n
        lo_ci, hi_ci = coverage.wilson(k, n)
        print(f"| {label} | {n} | {k / n:.3f} | {lo_ci:.3f}–{hi_ci:.3f} | {np.mean(nll):.3f} |")
    if noisy_n:
        lo_ci, hi_ci = coverage.wilson(noisy_k, noisy_n)
        print(f"| **all with noisy targets** | {noisy_n} | **{noisy_k / noisy_n:.3f}** |"
              f" {lo_ci:.3f}–{hi_ci:.3f} | |")


if __name__ == "__main__":
    main()
