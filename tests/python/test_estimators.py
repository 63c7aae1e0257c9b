"""PFNRegressor and PFNClassifier: scikit-learn conformance, parity with `pfn predict`,
pickling and input errors."""

# SPDX-License-Identifier: MIT OR Apache-2.0

import inspect
import pickle
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import pfn
from pfn import PFNClassifier, PFNRegressor, Predictive
from pfn._estimators import EXPECTED_FAILED_CHECKS, expected_failed_checks


# ---------------------------------------------------------------------- scikit-learn checks
# Strict where scikit-learn supports it (>= 1.8): a listed check that passes fails the suite, so
# EXPECTED_FAILED_CHECKS cannot outgrow the checks that really fail.
_STRICT = (
    {"xfail_strict": True}
    if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters
    else {}
)


@parametrize_with_checks(
    [PFNRegressor(n_threads=1), PFNClassifier(n_ensemble=2, n_threads=1)],
    expected_failed_checks=expected_failed_checks,
    **_STRICT,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_expected_failures_have_reasons():
    for name, checks in EXPECTED_FAILED_CHECKS.items():
        for check, reason in checks.items():
            assert check.startswith("check_"), (name, check)
            assert len(reason) > 20, (name, check)


# ---------------------------------------------------------------------- parity with the CLI
def _run_cli(binary, *args):
    result = subprocess.run(
        [str(binary), "predict", *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def test_regression_matches_cli(cli_binary, iris_regression, tmp_path):
    X_train, y_train, X_test, _, train_csv, test_csv = iris_regression
    out = tmp_path / "predictions.csv"
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    _run_cli(
        cli_binary,
        "--model", "gp-hyper",
        "--train", train_csv,
        "--test", test_csv,
        "--out", out,
        "--threads", 1,
        "--quantiles", ",".join(map(str, qs)),
    )
    cli = pd.read_csv(out)
    reg = PFNRegressor(model="gp-hyper", n_threads=1).fit(X_train, y_train)
    pred = reg.predict(X_test, output_type="full")
    # Same engine, same inputs, same thread count: equal up to the last printed digit.
    tol = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pred.mean(), cli["mean"], **tol)
    np.testing.assert_allclose(reg.predict(X_test), cli["mean"], **tol)
    np.testing.assert_allclose(pred.median(), cli["median"], **tol)
    np.testing.assert_allclose(pred.std(), cli["std"], **tol)
    quant = reg.predict(X_test, output_type="quantiles", quantiles=qs)
    for j, q in enumerate(qs):
        np.testing.assert_allclose(quant[:, j], cli[f"q{q}"], **tol)
    # The CLI's nll column is -log pdf at the true target.
    np.testing.assert_allclose(
        -pred.logpdf(cli["petal_width"].to_numpy()), cli["nll"], rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("labels", ["words", "integers"])
def test_classification_matches_cli(cli_binary, iris_species, tmp_path, labels):
    train, test = iris_species
    # A small table of two features; integer labels check the numeric class order (2 < 10).
    train = train.iloc[::2][["petal_length", "sepal_width", "species"]].copy()
    test = test.iloc[:12][["petal_length", "sepal_width", "species"]].copy()
    if labels == "integers":
        codes = {"Iris-setosa": 10, "Iris-versicolor": 2, "Iris-virginica": 7}
        train["species"] = train["species"].map(codes)
        test["species"] = test["species"].map(codes)
    train_csv, test_csv, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "p.csv"
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    ensemble, seed = 3, 5
    _run_cli(
        cli_binary,
        "--model", "tabular",
        "--train", train_csv,
        "--test", test_csv,
        "--out", out,
        "--threads", 1,
        "--ensemble", ensemble,
        "--seed", seed,
    )
    cli = pd.read_csv(out)
    features = ["petal_length", "sepal_width"]
    clf = PFNClassifier(model="tabular", n_ensemble=ensemble, random_state=seed, n_threads=1)
    clf.fit(train[features], train["species"])
    proba = clf.predict_proba(test[features])
    columns = [f"p_{c}" for c in clf.classes_]
    assert [c for c in cli.columns if c.startswith("p_")] == columns
    np.testing.assert_allclose(proba, cli[columns].to_numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(test[features]).astype(str), cli["predicted"].astype(str))


# ---------------------------------------------------------------------- behaviour
def test_regressor_outputs(iris_regression):
    X_train, y_train, X_test, y_test, _, _ = iris_regression
    reg = PFNRegressor(n_threads=1).fit(X_train, y_train)
    assert reg.n_features_in_ == 3
    assert list(reg.feature_names_in_) == list(X_train.columns)
    assert reg.model_.task == "regression"
    m = len(X_test)
    for kind in ("mean", "median", "mode"):
        assert reg.predict(X_test, output_type=kind).shape == (m,)
    assert reg.predict(X_test, output_type="quantiles").shape == (m, 3)
    assert reg.predict(X_test, output_type="quantiles", quantiles=[0.5]).shape == (m, 1)
    full = reg.predict(X_test, output_type="full")
    assert isinstance(full, Predictive) and len(full) == m
    np.testing.assert_allclose(
        reg.predict(X_test, output_type="quantiles"), full.quantiles([0.05, 0.5, 0.95])
    )
    # Petal width from the other measurements is an easy regression.
    assert reg.score(X_test, y_test) > 0.8
    with pytest.raises(ValueError, match="output_type"):
        reg.predict(X_test, output_type="samples")
    with pytest.raises(ValueError, match="quantiles"):
        reg.predict(X_test, quantiles=[0.1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reg.predict(X_test, output_type="quantiles", quantiles=[0.5, 1.2])


def test_regressor_calibration_tempers_the_predictive(iris_regression):
    X_train, y_train, X_test, y_test, _, _ = iris_regression
    assert len(X_train) >= 50  # calibrated from 50 training rows on
    on = PFNRegressor(n_threads=1).fit(X_train, y_train).predict(X_test, output_type="full")
    off = (
        PFNRegressor(n_threads=1, calibrate=False)
        .fit(X_train, y_train)
        .predict(X_test, output_type="full")
    )
    # One power beta of the bucket densities maps every raw predictive onto the calibrated one:
    # log q_k - log w_k = beta (log p_k - log w_k) - log Z.
    widths = np.diff(on.borders)
    a_on = np.log(on.probabilities) - np.log(widths)
    a_off = np.log(off.probabilities) - np.log(widths)
    d_on = a_on - a_on[:, :1]
    d_off = a_off - a_off[:, :1]
    beta = np.sum(d_on * d_off) / np.sum(d_off**2)
    assert 1 / 16 <= beta <= 16 and abs(beta - 1) > 1e-6
    np.testing.assert_allclose(d_on, beta * d_off, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="calibrate"):
        PFNRegressor(calibrate=1).fit(X_train, y_train)


def test_classifier_basics(iris_species):
    train, test = iris_species
    features = list(train.columns[:-1])
    clf = PFNClassifier(n_ensemble=2, n_threads=1).fit(train[features], train["species"])
    assert list(clf.classes_) == ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]
    assert clf.y_train_.dtype == np.int64
    proba = clf.predict_proba(test[features])
    assert proba.shape == (len(test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert clf.score(test[features], test["species"]) > 0.85
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(test[features])), proba)
    # Deterministic for a fixed random_state; the ensemble seed matters.
    np.testing.assert_array_equal(proba, clf.predict_proba(test[features]))
    other = clone(clf).set_params(random_state=1).fit(train[features], train["species"])
    assert not np.array_equal(other.predict_proba(test[features]), proba)


def test_classifier_calibration_tempers_the_ensemble(iris_species):
    train, test = iris_species
    features = list(train.columns[:-1])
    assert len(train) >= 50  # calibrated from 50 training rows on
    on = PFNClassifier(n_ensemble=2, n_threads=1).fit(train[features], train["species"])
    off = clone(on).set_params(calibrate=False).fit(train[features], train["species"])
    p_on, p_off = on.predict_proba(test[features]), off.predict_proba(test[features])
    assert not np.allclose(p_on, p_off)
    # One power beta maps every uncalibrated row onto the calibrated one.
    log_on, log_off = np.log(p_on), np.log(p_off)
    ratios_on = log_on[:, 1:] - log_on[:, :1]
    ratios_off = log_off[:, 1:] - log_off[:, :1]
    beta = np.sum(ratios_on * ratios_off) / np.sum(ratios_off**2)
    assert 1 / 16 <= beta <= 16
    np.testing.assert_allclose(ratios_on, beta * ratios_off, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="calibrate"):
        PFNClassifier(calibrate="yes").fit(train[features], train["species"])


def test_single_class_classifier():
    X = np.arange(12.0).reshape(6, 2)
    clf = PFNClassifier(n_ensemble=1).fit(X, ["only"] * 6)
    np.testing.assert_array_equal(clf.predict_proba(X[:3]), np.ones((3, 1)))
    assert list(clf.predict(X[:3])) == ["only"] * 3


@pytest.mark.parametrize(
    "estimator",
    [PFNRegressor(n_threads=1), PFNClassifier(n_ensemble=2, random_state=3, n_threads=1)],
    ids=["regressor", "classifier"],
)
def test_pickle_round_trip(estimator, rng):
    X = rng.normal(size=(40, 3))
    y = X[:, 0] - X[:, 1] ** 2
    if isinstance(estimator, PFNClassifier):
        y = np.where(y > 0, "pos", "neg")
    est = clone(estimator).fit(X, y)
    Xq = rng.normal(size=(7, 3))
    method = "predict_proba" if isinstance(est, PFNClassifier) else "predict"
    before = getattr(est, method)(Xq)
    blob = pickle.dumps(est)
    restored = pickle.loads(blob)
    assert "model_" not in restored.__dict__  # the native model is re-loaded lazily
    np.testing.assert_array_equal(getattr(restored, method)(Xq), before)
    assert restored.model_.digest == est.model_.digest
    assert "model_" in restored.__dict__
    # An unfitted estimator pickles too and has no model.
    fresh = pickle.loads(pickle.dumps(clone(estimator)))
    assert not hasattr(fresh, "model_")


def test_more_rows_than_trained_context_warns(rng):
    # As `pfn predict`: all rows are used, with a warning naming both numbers.
    model = pfn._pfn.Model("gp-1d")
    n = model.max_context + 10
    X = rng.random((n, 1))
    with pytest.warns(UserWarning, match=rf"n_samples={n} training rows.*{model.max_context} context rows"):
        reg = PFNRegressor(model="gp-1d", n_threads=1).fit(X, np.sin(6 * X[:, 0]))
    assert reg.X_train_.shape == (n, 1)
    assert np.all(np.isfinite(reg.predict(X[:3])))


def test_fewer_rows_than_trained_context_warns(rng):
    # tabular was trained on at least 4 context rows; fewer still predict (as `pfn predict`).
    X = rng.random((3, 2))
    with pytest.warns(UserWarning, match=r"n_samples=3 training rows.*'tabular'.*4 to \d+ context"):
        clf = PFNClassifier(n_ensemble=1, n_threads=1).fit(X, [0, 1, 0])
    proba = clf.predict_proba(rng.random((4, 2)))
    assert proba.shape == (4, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


def test_no_warning_inside_trained_context(iris_regression):
    X_train, y_train, _, _, _, _ = iris_regression
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PFNRegressor(n_threads=1).fit(X_train, y_train)


# ---------------------------------------------------------------------- input errors
def test_wrong_feature_count(rng):
    X = rng.random((20, 3))
    y = X.sum(axis=1)
    reg = PFNRegressor(n_threads=1).fit(X, y)
    with pytest.raises(ValueError, match="3 features"):
        reg.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"6 features.*gp-hyper.*1 to 5 features"):
        PFNRegressor().fit(rng.random((20, 6)), y)  # too few rows to calibrate
    with pytest.raises(ValueError, match=r"X has 2 features.*'gp-1d' takes 1 feature"):
        PFNRegressor(model="gp-1d").fit(X[:, :2], y)


def test_wide_tables_need_a_calibrated_classifier(rng):
    # 70 features, more than tabular's 60: a calibrated context of 60 rows is answered through
    # principal components of its rows; without calibration, or with too few rows, it is an error.
    latent = rng.standard_normal((100, 3))
    X = latent @ rng.standard_normal((3, 70)) + 0.1 * rng.standard_normal((100, 70))
    y = (latent[:, 0] > 0).astype(int)
    clf = PFNClassifier(n_ensemble=2, n_threads=1).fit(X[:60], y[:60])
    proba = clf.predict_proba(X[60:])
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    assert (clf.predict(X[60:]) == y[60:]).mean() > 0.8
    with pytest.raises(ValueError, match=r"X has 70 features.*more features than the model supports"):
        PFNClassifier(calibrate=False).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match=r"X has 70 features"):
        PFNClassifier().fit(X[:40], y[:40])


def test_wide_regression_tables_need_calibration(rng):
    # 8 features, more than gp-hyper's 5: 60 calibrated training rows are answered through
    # principal components; without calibration, or with too few rows, it is an error.
    latent = rng.standard_normal((100, 2))
    X = latent @ rng.standard_normal((2, 8)) + 0.05 * rng.standard_normal((100, 8))
    y = np.sin(latent[:, 0]) + 0.1 * rng.standard_normal(100)
    reg = PFNRegressor(n_threads=1).fit(X[:60], y[:60])
    mean = reg.predict(X[60:])
    assert mean.shape == (40,) and np.all(np.isfinite(mean))
    # Better than predicting the training mean.
    assert np.mean((mean - y[60:]) ** 2) < 0.5 * np.var(y[60:])
    with pytest.raises(ValueError, match=r"X has 8 features.*more features than the model supports"):
        PFNRegressor(calibrate=False).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match=r"X has 8 features"):
        PFNRegressor().fit(X[:40], y[:40])


def test_nan_in_X(rng):
    X = rng.random((20, 2))
    y = X.sum(axis=1)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PFNRegressor().fit(X_nan, y)
    reg = PFNRegressor(n_threads=1).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        reg.predict(X_nan)
    with pytest.raises(ValueError, match="NaN"):
        PFNClassifier().fit(X_nan, y > 1)
    y_nan = y.copy()
    y_nan[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PFNRegressor().fit(X, y_nan)


def test_strings_in_X_for_regressor():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "x", "z"]})
    with pytest.raises(ValueError, match="could not convert string to float"):
        PFNRegressor().fit(X, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="Unknown label type|continuous"):
        PFNClassifier().fit(np.arange(8.0).reshape(4, 2), [0.1, 0.2, 0.3, 0.4])


def test_too_many_classes(rng):
    X = rng.random((60, 2))
    y = np.arange(60) % 12
    with pytest.raises(ValueError, match=r"12 classes.*'tabular' predicts at most 10"):
        PFNClassifier().fit(X, y)


@pytest.mark.parametrize("cls", [PFNRegressor, PFNClassifier])
def test_unknown_model(cls, rng):
    X = rng.random((10, 2))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="no-such-model"):
        cls(model="no-such-model").fit(X, y)
    with pytest.raises(pfn.PfnError, match="no-such-model"):
        cls(model="no-such-model").fit(X, y)


def test_wrong_task_and_params(rng):
    X = rng.random((10, 2))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="classification model.*PFNClassifier"):
        PFNRegressor(model="tabular").fit(X, y)
    with pytest.raises(ValueError, match="regression model.*PFNRegressor"):
        PFNClassifier(model="gp-hyper").fit(X, y)
    with pytest.raises(ValueError, match="precision"):
        PFNRegressor(precision="f16").fit(X, y)
    with pytest.raises(ValueError, match="n_threads"):
        PFNRegressor(n_threads=0).fit(X, y)
    with pytest.raises(ValueError, match="n_ensemble"):
        PFNClassifier(n_ensemble=0).fit(X, y)
    with pytest.raises(ValueError, match="model must be"):
        PFNRegressor(model="").fit(X, y)


def test_params_unchanged_and_refit(rng):
    X = rng.random((15, 1))
    y = X[:, 0] * 2
    reg = PFNRegressor(model="gp-1d", n_threads=1)
    assert reg.get_params() == {
        "model": "gp-1d",
        "precision": "f32",
        "n_threads": 1,
        "calibrate": True,
    }
    reg.fit(X, y)
    first = reg.model_
    reg.fit(X, y + 1)
    assert reg.model_ is first  # same parameters: the loaded model is reused
    reg.set_params(model="gp-hyper").fit(X, y)
    assert reg.model_.name == "gp-hyper"


# ---------------------------------------------------------------------- module functions
def test_models_and_priors():
    listed = {m["name"]: m for m in pfn.models()}
    assert "gp-hyper" in listed and "tabular" in listed
    gp = listed["gp-hyper"]
    assert gp["task"] == "regression" and gp["n_classes"] == 0
    assert (gp["min_features"], gp["max_features"]) == (1, 5)
    assert listed["tabular"]["task"] == "classification"
    # The tabular model was trained in two runs, both recorded in its file.
    training = listed["tabular"]["training"]
    assert training["runs"] == 2 and training["complete"] is True
    assert training["datasets"] > 500_000 and training["seconds"] > 0
    names = pfn.prior_names()
    assert "gp-1d" in names and "tabular-bnn" in names
    assert isinstance(pfn.__version__, str) and pfn.__version__
    assert issubclass(pfn.PfnError, ValueError)


def test_sample_prior_shapes():
    x, y, target = pfn.sample_prior("gp-1d", batch_size=3, seq_len=11, seed=4)
    assert x.shape == (3, 11, 1) and y.shape == (3, 11) and target.shape == (3, 11)
    assert x.dtype == y.dtype == np.float32
    again = pfn.sample_prior("gp-1d", batch_size=3, seq_len=11, seed=4)
    np.testing.assert_array_equal(x, again[0])
    np.testing.assert_array_equal(y, again[1])
    other = pfn.sample_prior("gp-1d", batch_size=3, seq_len=11, seed=5)
    assert not np.array_equal(y, other[1])
    x5 = pfn.sample_prior("ridge", batch_size=2, seq_len=7, num_features=4)[0]
    assert x5.shape == (2, 7, 4)
    with pytest.raises(ValueError, match="no-such-prior"):
        pfn.sample_prior("no-such-prior", batch_size=1, seq_len=5)
