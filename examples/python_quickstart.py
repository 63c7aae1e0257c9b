"""Quick start of the `pfn` Python package: regression, classification and training on a prior
written in NumPy. Runs in a few seconds:

    python examples/python_quickstart.py
"""

# SPDX-License-Identifier: MIT OR Apache-2.0

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import pfn
from pfn import PFNClassifier, PFNRegressor

DATA = Path(__file__).resolve().parent / "data"


def regression() -> None:
    """Petal width from three other iris measurements with the default model, gp-hyper."""
    train = pd.read_csv(DATA / "iris-train.csv")
    test = pd.read_csv(DATA / "iris-test.csv")
    features, target = list(train.columns[:-1]), train.columns[-1]
    reg = PFNRegressor().fit(train[features], train[target])
    print(f"regression: R^2 on {len(test)} test rows = {reg.score(test[features], test[target]):.3f}")

    # The whole posterior predictive of each query: a pfn.Predictive.
    pred = reg.predict(test[features], output_type="full")
    lo, hi = pred.interval(0.9)
    covered = np.mean((lo <= test[target]) & (test[target] <= hi))
    print(f"  90 % intervals cover {covered:.0%} of the test targets")
    best = train[target].max()
    ei = pred.ei(best)  # expected improvement over the best training target (maximisation)
    i = int(np.argmax(ei))
    print(
        f"  query {i} has the largest expected improvement over {best}: {ei[i]:.4f} "
        f"(mean {pred.mean()[i]:.2f}, std {pred.std()[i]:.2f})"
    )
    grid = np.linspace(0.0, 3.0, 7)[None, :]  # one grid for every query -> (m, 7)
    print("  density of query 0 on", grid[0], "=", np.round(pred.pdf(grid)[0], 3))


def classification() -> None:
    """Iris species from two measurements with the tabular model (up to 10 classes)."""
    train = pd.read_csv(DATA / "iris-species-train.csv")
    test = pd.read_csv(DATA / "iris-species-test.csv")
    features = ["petal_length", "sepal_width"]
    clf = PFNClassifier(n_ensemble=4).fit(train[features], train["species"])
    proba = clf.predict_proba(test[features])
    print(f"classification: accuracy {clf.score(test[features], test['species']):.3f}; classes {list(clf.classes_)}")
    print("  first query:", {c: round(float(v), 3) for c, v in zip(clf.classes_, proba[0])})


def linear_prior(batch_size, seq_len, num_features, rng):
    """y = a x + b + noise with a, b ~ N(0, 1), x ~ U[0, 1]: datasets of shape (B, T, F), (B, T)."""
    x = rng.random((batch_size, seq_len, num_features))
    a = rng.normal(size=(batch_size, 1, num_features))
    b = rng.normal(size=(batch_size, 1))
    y = (a * x).sum(axis=-1) + b + 0.1 * rng.normal(size=(batch_size, seq_len))
    return x, y


def training() -> None:
    """Train a tiny PFN on the NumPy prior above for 300 steps (under a second) and use it."""
    config = {
        "prior": {"name": "numpy-linear", "num_features": 1, "seq_len": 20, "split": "uniform"},
        "model": {"emsize": 32, "nlayers": 2, "nhead": 2, "nhid": 64, "buckets": 100},
        "borders": {"samples": 4000},
        "optimizer": {"lr": 3e-3, "warmup_steps": 20},
        "budget": {"steps": 300, "batch_size": 16, "validation_every": 100, "validation_datasets": 64},
        "run": {"seed": 0, "threads": 1},
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "linear.pfn"
        summary = pfn.train(config, out, prior=linear_prior)
        history = ", ".join(f"{loss:.3f}" for _, loss in summary["validation_history"])
        print(f"training: {summary['steps']} steps in {summary['seconds']:.1f} s; validation NLL {history}")
        x = np.linspace(0, 1, 8)[:, None]
        reg = PFNRegressor(model=out).fit(x, 2.0 * x[:, 0] - 1.0)
        pred = reg.predict([[0.5], [0.9]], output_type="full")
        print(
            "  context y = 2x - 1 at 8 points; predictive mean at x = 0.5, 0.9 (truth 0, 0.8):",
            np.round(pred.mean(), 3),
            "std",
            np.round(pred.std(), 3),
        )


if __name__ == "__main__":
    print(f"pfn {pfn.__version__}; models: {', '.join(m['name'] for m in pfn.models())}")
    regression()
    classification()
    training()
