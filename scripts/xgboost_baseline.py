#!/usr/bin/env python3
"""XGBoost baseline of the tabular classification experiment (spec 6.4, Table 6).

Reads one JSON request on stdin and writes one JSON answer on stdout. The Rust side
(pfn_baselines::classifiers::XgBoost) embeds this file and runs it with the interpreter of the
virtual environment made by scripts/install-xgboost.sh; it can also be run by hand:

    .venv-xgboost/bin/python scripts/xgboost_baseline.py < request.json

Request:
    {"n_jobs": 1,                      # worker processes across tasks (optional, default 1)
     "tasks": [{"x": [...],            # training features, row-major, flat
                "n_features": F,
                "labels": [...],       # in 0..num_classes (classes may be absent)
                "num_classes": K,
                "x_test": [...],       # test features, row-major, flat
                "seed": 0}, ...]}
Answer:
    {"versions": {"xgboost": ..., "sklearn": ..., "numpy": ...},
     "results": [{"probabilities": [...],   # test rows x K, row-major, rows sum to 1
                  "params": {...} or null,  # the chosen grid point (null: single class)
                  "cv_auc": float or null}, ...]}
Errors: a message on stderr and exit status 1 (bad request), 2 (fit failed) or 3 (xgboost,
scikit-learn or numpy cannot be imported).

Protocol (the paper's grid): n_estimators 100, colsample_bytree 0.8, and the 16 points of
min_child_weight {0.5, 1} x learning_rate {0.02, 0.2} x subsample {0.5, 0.8} x max_depth {1, 2},
chosen by stratified 5-fold cross-validation on the training rows. The search is a loop written
here rather than scikit-learn's GridSearchCV, because GridSearchCV cannot fit folds whose training
part lacks a class (XGBoost wants labels 0..k-1) nor score folds whose validation part does;
its semantics are those of the Rust baselines (pfn_baselines::classifiers::cv):
  * folds: each class's rows are shuffled (numpy, seeded) and dealt round-robin, continuing from
    class to class; min(5, rows) folds; no search with fewer than 2 rows (first grid point);
  * score: mean over folds of the validation ROC AUC (class-1 AUC for two classes, else the mean
    one-vs-rest AUC over the classes present in the fold), over the folds where it is defined;
    ties go to the lower mean log loss, then to the earlier grid point;
  * absent classes: the present classes are remapped to 0..k-1 for XGBoost and get their
    probabilities back in place; absent classes get 0. A single present class is predicted with
    probability 1.
Each fit uses one thread (nthread 1); parallelise across tasks with n_jobs. Fits go through
xgboost.train (the model XGBClassifier builds, without its per-fit overhead).
"""

import itertools
import json
import sys

try:
    import numpy as np
    import sklearn
    import xgboost
    from sklearn.metrics import roc_auc_score
except ImportError as e:  # pragma: no cover - reported to the Rust side
    print(f"cannot import the XGBoost baseline's packages: {e}", file=sys.stderr)
    sys.exit(3)

GRID = [
    {"learning_rate": lr, "max_depth": depth, "min_child_weight": mcw, "subsample": sub}
    for lr, depth, mcw, sub in itertools.product([0.02, 0.2], [1, 2], [0.5, 1.0], [0.5, 0.8])
]
FOLDS = 5
N_TREES = 100
MIN_PROBABILITY = 1e-15


def fit_predict_params(x, y, k, x_test, params, seed):
    """Fits one grid point on rows whose classes may be a subset of 0..k-1; test rows x k."""
    present = np.unique(y)
    out = np.zeros((x_test.shape[0], k))
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    remap = np.full(k, -1)
    remap[present] = np.arange(len(present))
    # The native API: the same model as xgboost.XGBClassifier (binary:logistic, or
    # multi:softprob with one tree per class and round), about four times faster on small data.
    booster_params = {
        "colsample_bytree": 0.8,
        "seed": seed,
        "nthread": 1,
        "verbosity": 0,
        "eta": params["learning_rate"],
        "max_depth": params["max_depth"],
        "min_child_weight": params["min_child_weight"],
        "subsample": params["subsample"],
    }
    if len(present) == 2:
        booster_params["objective"] = "binary:logistic"
    else:
        booster_params["objective"] = "multi:softprob"
        booster_params["num_class"] = len(present)
    train = xgboost.DMatrix(x, label=remap[y], nthread=1)
    booster = xgboost.train(booster_params, train, num_boost_round=N_TREES)
    p = np.asarray(booster.inplace_predict(x_test), dtype=float)
    if len(present) == 2:
        p = np.column_stack([1.0 - p, p])
    out[:, present] = p
    out /= out.sum(axis=1, keepdims=True)
    return out


def auc_ovr(p, y, k):
    """The Rust roc_auc_ovr: class-1 AUC for k = 2, else the mean OvR AUC over present classes."""
    present = np.unique(y)
    if len(present) < 2:
        return None
    if k == 2:
        return roc_auc_score(y == 1, p[:, 1])
    return float(np.mean([roc_auc_score(y == c, p[:, c]) for c in present]))


def stratified_folds(y, k, folds, rng):
    fold_of = np.zeros(len(y), dtype=int)
    nxt = 0
    for c in range(k):
        rows = np.flatnonzero(y == c)
        rng.shuffle(rows)
        for i in rows:
            fold_of[i] = nxt % folds
            nxt += 1
    return fold_of


def run_task(task):
    f = int(task["n_features"])
    k = int(task["num_classes"])
    seed = int(task.get("seed", 0)) % (2**31)
    y = np.asarray(task["labels"], dtype=int)
    x = np.asarray(task["x"], dtype=float).reshape(len(y), f)
    x_test = np.asarray(task["x_test"], dtype=float).reshape(-1, f)
    if k < 1 or len(y) == 0 or y.min() < 0 or y.max() >= k:
        raise ValueError("labels must lie in 0..num_classes and the training set must not be empty")
    present = np.unique(y)
    if len(present) == 1:
        out = np.zeros((x_test.shape[0], k))
        out[:, present[0]] = 1.0
        return {"probabilities": out.ravel().tolist(), "params": None, "cv_auc": None}
    folds = min(FOLDS, len(y))
    best, best_auc = 0, None
    if folds >= 2:
        fold_of = stratified_folds(y, k, folds, np.random.default_rng(seed))
        auc_sum = np.zeros(len(GRID))
        loss_sum = np.zeros(len(GRID))
        auc_folds = 0
        for fold in range(folds):
            tr, va = fold_of != fold, fold_of == fold
            if not tr.any() or not va.any():
                continue
            fold_has_auc = False
            for g, params in enumerate(GRID):
                p = fit_predict_params(x[tr], y[tr], k, x[va], params, seed)
                a = auc_ovr(p, y[va], k)
                if a is not None:
                    auc_sum[g] += a
                    fold_has_auc = True
                loss_sum[g] += -np.mean(np.log(np.maximum(p[np.arange(va.sum()), y[va]], MIN_PROBABILITY)))
            auc_folds += fold_has_auc
        aucs = auc_sum / auc_folds if auc_folds else np.full(len(GRID), -np.inf)
        keys = [(-aucs[g], loss_sum[g], g) for g in range(len(GRID))]
        best = min(keys)[2]
        best_auc = float(aucs[best]) if auc_folds else None
    p = fit_predict_params(x, y, k, x_test, GRID[best], seed)
    return {"probabilities": p.ravel().tolist(), "params": GRID[best], "cv_auc": best_auc}


def main():
    try:
        request = json.load(sys.stdin)
        tasks = request["tasks"]
        n_jobs = max(1, int(request.get("n_jobs", 1)))
    except (ValueError, KeyError, TypeError) as e:
        print(f"bad request: {e}", file=sys.stderr)
        sys.exit(1)
    try:
        if n_jobs > 1 and len(tasks) > 1:
            import multiprocessing

            # fork: the tasks' function lives in __main__, which `python -c` cannot re-import.
            with multiprocessing.get_context("fork").Pool(min(n_jobs, len(tasks))) as pool:
                results = pool.map(run_task, tasks)
        else:
            results = [run_task(t) for t in tasks]
    except Exception as e:  # noqa: BLE001 - reported to the Rust side in one line
        print(f"fit failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
    versions = {"xgboost": xgboost.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__}
    json.dump({"versions": versions, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
