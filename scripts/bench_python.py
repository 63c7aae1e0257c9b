#!/usr/bin/env python3
"""Benchmarks of the Python package against the Rust it wraps (issue 16's targets).

1. Per-call overhead of ``Model.predict`` (and of ``PFNRegressor.predict``) over the Rust
   predictor for 1000 queries: the Rust side is timed by
   ``cargo run --release -p pfn-infer --example predict_timing`` on the same shapes.
2. Training throughput of a prior written in NumPy against the same prior in Rust: the paper's 1-D
   GP prior (`gp-1d`: RBF, lengthscale 0.1, outputscale 1, noise 1e-4, x ~ U[0, 1], 51 points),
   the same run configuration (sampled targets; the Python prior has no closed-form posterior
   targets), datasets per second as `pfn.train` reports them.

Usage: scripts/bench_python.py [--steps 150] [--threads 1] [--out results.txt]
Needs the package installed (``pip install .``) and ``cargo`` for the Rust timing.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import pfn
from pfn import _pfn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rust_predict_seconds(model_path, n, m, d, repeats):
    cmd = ["cargo", "run", "--quiet", "--release", "-p", "pfn-infer", "--example",
           "predict_timing", "--", model_path, str(n), str(m), str(d), str(repeats)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    lines = out.strip().splitlines()
    fastest = [float(line.split("min ")[1].split(" s")[0]) for line in lines]
    return fastest[0], fastest[1], "\n".join(lines)


def python_overheads(model, n, m, d, repeats):
    """Median per-call overheads (seconds): wall time minus the engine's own compute time of the
    same call (``Model.last_compute_seconds``), so load on the machine cancels out."""
    rng = np.random.default_rng(0)
    x = rng.random((n, d))
    y = np.sin(6 * x[:, 0]) + x.sum(axis=1)
    xq = rng.random((m, d))
    reg = pfn.PFNRegressor(model=model.path, n_threads=1).fit(x, y)
    reg.predict(xq)
    native, estimator, means = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        pred = model.predict(x, y, xq)
        native.append(time.perf_counter() - t - model.last_compute_seconds)
        t = time.perf_counter()
        pred.mean()
        means.append(time.perf_counter() - t)
        t = time.perf_counter()
        reg.predict(xq)
        estimator.append(time.perf_counter() - t - reg.model_.last_compute_seconds)
    med = lambda v: float(np.median(v))  # noqa: E731
    return med(native), med(estimator), med(means)


def numpy_gp_prior(batch_size, seq_len, num_features, rng):
    """The gp-1d prior in NumPy: RBF(0.1), outputscale 1, noise 1e-4, x ~ U[0, 1]."""
    x = rng.random((batch_size, seq_len, num_features))
    d2 = ((x[:, :, None, :] - x[:, None, :, :]) ** 2).sum(-1)
    k = np.exp(-0.5 * d2 / 0.1**2) + (1e-4 + 1e-6) * np.eye(seq_len)
    chol = np.linalg.cholesky(k)
    y = (chol @ rng.standard_normal((batch_size, seq_len, 1)))[..., 0]
    return x.astype(np.float32), y.astype(np.float32)


CONFIG = """
[prior]
name = "{name}"
num_features = 1
seq_len = 51
split = "uniform"

[model]
emsize = 128
nlayers = 4
nhead = 4
nhid = 256
buckets = 1000
query_self_attention = false

[borders]
samples = 100000
full_support = true

[optimizer]
lr = 1e-3
warmup_steps = 10
schedule = "cosine"

[budget]
steps = {steps}
batch_size = 64
checkpoint_every = 100000
validation_every = 100000
validation_datasets = 64

[run]
seed = 0
threads = {threads}
"""


def train_rate(name, prior, steps, threads, tmp):
    out = os.path.join(tmp, f"{name}.pfn")
    summary = pfn.train(CONFIG.format(name=name, steps=steps, threads=threads), out, prior=prior)
    return summary["datasets_per_second"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--skip-training", action="store_true", help="only the per-call overhead")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    lines = [f"pfn {pfn.__version__}, Python {sys.version.split()[0]}, numpy {np.__version__}"]
    model = _pfn.Model("gp-hyper", n_threads=1)
    n, m, d = 50, 1000, 2
    rust, rust_means, rust_line = rust_predict_seconds(model.path, n, m, d, a.repeats)
    native, estimator, means = python_overheads(model, n, m, d, a.repeats)
    lines += [
        rust_line,
        f"python Model.predict: overhead {1e3 * native:.3f} ms per call (median over {a.repeats} calls "
        "of wall time minus the engine's compute time in the same call)",
        f"python PFNRegressor.predict: {1e3 * estimator:.3f} ms per call beyond the engine's compute "
        f"(input validation, and the {m} means, which alone take {1e3 * means:.3f} ms through "
        "Predictive.mean)",
    ]
    if a.skip_training:
        print("\n".join(lines))
        return
    with tempfile.TemporaryDirectory() as tmp:
        rust_rate = train_rate("gp-1d", None, a.steps, a.threads, tmp)
        py_rate = train_rate("numpy-gp-1d", numpy_gp_prior, a.steps, a.threads, tmp)
    lines += [
        f"training, {a.steps} steps x 64 datasets, {a.threads} thread(s): Rust gp-1d prior "
        f"{rust_rate:.1f} datasets/s, NumPy GP prior {py_rate:.1f} datasets/s "
        f"({100 * py_rate / rust_rate:.1f} %)",
    ]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
