#!/usr/bin/env python3
"""Coverage of the 90 % predictive intervals of a regression model on real data, through `pfn predict`.

Regression tasks are made from real tables (a numeric column predicted from up to five others):
iris (examples/data), and banknote-authentication, diabetes, vehicle and blood-transfusion from the
shared OpenML-CC18 copies. For every task and split (seeded), `--context` random rows are the context
and `--queries` other rows the queries; `pfn predict --quantiles 0.05,0.95` answers them exactly as a
user's CSV is answered, and a query is covered when its target lies in [q0.05, q0.95]. Prints a
Markdown table (coverage per task with a binomial 95 % interval, mean NLL) and writes it to --out.

A task whose target is determined by one input column (rows that agree in that column always agree
in the target) has no noise: blood's monetary is 250 times its donation count. Its intervals cannot
be calibrated to 90 %: a model that is not told the noise is zero covers such a target whenever it
is centred well. The table marks such tasks, and pools the others in a row of their own.

    python3 docs/results/gp-hyper/coverage.py --pfn target/release/pfn --model models/gp-hyper.pfn \
        --out docs/results/gp-hyper/coverage.md

Needs only the Python standard library.
"""

import argparse
import csv
import json
import math
import os
import random
import subprocess
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "data", "cc18"))

# (name, file, feature columns, target column)
TASKS = [
    ("iris: petal width", os.path.join(ROOT, "examples/data/iris-train.csv"),
     ["sepal_length", "sepal_width", "petal_length"], "petal_width"),
    ("banknote: V4", os.path.join(SHARED, "banknote-authentication.csv"), ["V1", "V2", "V3"], "V4"),
    ("diabetes: BMI", os.path.join(SHARED, "diabetes.csv"), ["plas", "pres", "skin", "age"], "mass"),
    ("vehicle: compactness", os.path.join(SHARED, "vehicle.csv"),
     ["CIRCULARITY", "DISTANCE_CIRCULARITY", "RADIUS_RATIO", "SCATTER_RATIO", "ELONGATEDNESS"],
     "COMPACTNESS"),
    ("blood: monetary", os.path.join(SHARED, "blood-transfusion-service-center.csv"),
     ["V1", "V2", "V4"], "V3"),
]


def read_rows(path, columns):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = []
        for r in reader:
            try:
                rows.append([float(r[c]) for c in columns])
            except (KeyError, ValueError):
                continue
    return rows


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def determining_column(rows, names):
    """The name of an input column that determines the target (the last column) on `rows`, or
    None: every two rows that agree in that column agree in the target. Only columns with at most
    half as many distinct values as rows count (a column of distinct values trivially agrees)."""
    for j, name in enumerate(names):
        seen = {}
        if 2 * len({r[j] for r in rows}) <= len(rows) and all(
            seen.setdefault(r[j], r[-1]) == r[-1] for r in rows
        ):
            return name
    return None


def split_rows(rows, rng, context, queries):
    """One seeded split: (context rows, query rows). `context` random rows (at most half of them)
    are the context and the next `queries` rows of the same shuffle are the queries."""
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    c = min(context, len(rows) // 2)
    return [rows[i] for i in idx[:c]], [rows[i] for i in idx[c:c + queries]]


def wilson(k, n, z=1.96):
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pfn", default=os.path.join(ROOT, "target/release/pfn"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/gp-hyper.pfn"))
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--context", type=int, default=100)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lines = [
        f"# 90 % interval coverage on real regression data: `{os.path.relpath(args.model, ROOT)}`",
        "",
        f"- command: `python3 docs/results/gp-hyper/coverage.py --model {os.path.relpath(args.model, ROOT)}"
        f" --splits {args.splits} --context {args.context} --queries {args.queries} --seed {args.seed}`",
        f"- per task and split: {args.context} random context rows, {args.queries} other rows as queries,"
        " answered by `pfn predict --quantiles 0.05,0.95` (the user's path); covered = target in [q0.05, q0.95]",
        "",
        "| task | features | rows | queries | coverage | 95 % CI | mean NLL |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    total_k = total_n = 0
    noisy_k = noisy_n = 0
    exact = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, features, target in TASKS:
            if not os.path.exists(path):
                lines.append(f"| {name} | – | – | – | missing {path} | | |")
                continue
            rows = read_rows(path, features + [target])
            determined_by = determining_column(rows, features)
            k = n = 0
            nll = []
            for s in range(args.splits):
                ctx, qry = split_rows(rows, rng, args.context, args.queries)
                train, test, out = (os.path.join(tmp, f) for f in ("train.csv", "test.csv", "out.json"))
                write_csv(train, features + [target], ctx)
                write_csv(test, features + [target], qry)
                subprocess.run(
                    [args.pfn, "predict", "--model", args.model, "--train", train, "--test", test,
                     "--quantiles", "0.05,0.95", "--out", out, "--threads", "1"],
                    check=True, stdout=subprocess.DEVNULL)
                with open(out) as f:
                    doc = json.load(f)
                for q, r in zip(doc["predictions"], qry):
                    lo, hi = q["q0.05"], q["q0.95"]
                    k += int(lo <= r[-1] <= hi)
                    n += 1
                    nll.append(q["nll"])
            lo, hi = wilson(k, n)
            label = name
            if determined_by is not None:
                label = f"{name} (no noise: determined by {determined_by})"
                exact.append(name)
            else:
                noisy_k += k
                noisy_n += n
            lines.append(
                f"| {label} | {len(features)} | {len(rows)} | {n} | {k / n:.3f} | {lo:.3f}–{hi:.3f} |"
                f" {sum(nll) / len(nll):.3f} |")
            total_k += k
            total_n += n
    lo, hi = wilson(total_k, total_n)
    lines.append(f"| **all** | | | {total_n} | **{total_k / total_n:.3f}** | {lo:.3f}–{hi:.3f} | |")
    if exact and noisy_n:
        lo, hi = wilson(noisy_k, noisy_n)
        lines.append(
            f"| **all with noisy targets** (not {', '.join(exact)}) | | | {noisy_n} |"
            f" **{noisy_k / noisy_n:.3f}** | {lo:.3f}–{hi:.3f} | |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
