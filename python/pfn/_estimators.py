"""scikit-learn estimators backed by pretrained PFN models.

A PFN does no gradient training at ``fit`` time: "fitting" stores the training rows, which the
transformer then reads as its context at prediction time (in-context learning). ``fit`` validates
the data against the model (task, feature count) and loads the model file once; ``predict`` runs
the network on the stored context and the query rows.
"""

# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

import numbers
import os
import warnings
from typing import Any, Dict

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(estimator, X="no_validation", y="no_validation", reset=True, **kwargs):
        if "ensure_all_finite" in kwargs:
            kwargs["force_all_finite"] = kwargs.pop("ensure_all_finite")
        return estimator._validate_data(X, y, reset=reset, **kwargs)

from . import _pfn
from ._predictive import Predictive, seed_from_random_state

__all__ = [
    "PFNRegressor",
    "PFNClassifier",
    "EXPECTED_FAILED_CHECKS",
    "expected_failed_checks",
]

_PRECISIONS = ("f32", "bf16")
_OUTPUT_TYPES = ("mean", "median", "mode", "quantiles", "full")
_DEFAULT_QUANTILES = (0.05, 0.5, 0.95)

_TEN_FEATURES_ONE_ROW = (
    "the check's data have 10 features, but the default model gp-hyper takes 1 to 5; wider "
    "tables are answered through principal components only with 50 or more training rows "
    "(calibration), so one row raises a ValueError saying so"
)
_SUBSET_INVARIANCE = (
    "the network computes in f32, and a query's result depends on how many query rows are "
    "predicted together (presumably the f32 matrix products round differently for other "
    "matrix sizes): predictions of a subset differ in the 7th significant digit (measured: up "
    "to 3e-7 absolute, 7e-6 relative), above the check's 1e-7 tolerance; they do not depend "
    "on the other queries' values, their order or the thread count"
)
#: scikit-learn estimator checks (``sklearn.utils.estimator_checks``) that an estimator with its
#: default pretrained model cannot pass, with the reason; keyed by estimator class name. Pass
#: :func:`expected_failed_checks` to ``parametrize_with_checks`` or ``check_estimator``.
EXPECTED_FAILED_CHECKS: Dict[str, Dict[str, str]] = {
    "PFNRegressor": {
        "check_fit2d_1sample": _TEN_FEATURES_ONE_ROW,
        "check_methods_subset_invariance": _SUBSET_INVARIANCE,
    },
    "PFNClassifier": {
        "check_methods_subset_invariance": _SUBSET_INVARIANCE,
    },
}


def expected_failed_checks(estimator: BaseEstimator) -> Dict[str, str]:
    """The scikit-learn checks ``estimator`` is expected to fail, with reasons.

    Parameters
    ----------
    estimator : PFNRegressor or PFNClassifier
        An estimator with its default model (the list is measured with the default models).

    Returns
    -------
    dict
        ``{check_name: reason}``, the format of ``expected_failed_checks`` of
        :func:`sklearn.utils.estimator_checks.parametrize_with_checks`.
    """
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))


def _model_spec(model: Any) -> str:
    """The ``model`` parameter as the string the native loader takes (name or path)."""
    if isinstance(model, os.PathLike):
        return os.fspath(model)
    if isinstance(model, str) and model:
        return model
    raise ValueError(
        f"model must be a model name (e.g. 'gp-hyper') or the path of a .pfn file, got {model!r}"
    )


def _feature_range_text(lo: int, hi: int) -> str:
    return f"{lo} feature{'s' if lo != 1 else ''}" if lo == hi else f"{lo} to {hi} features"


class _PFNBase(BaseEstimator):
    """Model loading, parameter checks and pickling shared by the PFN estimators."""

    _task: str = ""  # "regression" | "classification"

    # ------------------------------------------------------------------ parameters
    def _check_common_params(self) -> None:
        _model_spec(self.model)
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.n_threads is not None and (
            not isinstance(self.n_threads, numbers.Integral)
            or isinstance(self.n_threads, bool)
            or self.n_threads < 1
        ):
            raise ValueError(
                f"n_threads must be None (every core) or a positive integer, got {self.n_threads!r}"
            )
        if not isinstance(self.calibrate, (bool, np.bool_)):
            raise ValueError(f"calibrate must be True or False, got {self.calibrate!r}")

    # ------------------------------------------------------------------ the native model
    def _load_model(self, key: tuple) -> Any:
        spec, precision, n_threads = key
        try:
            return _pfn.Model(spec, precision=precision, n_threads=n_threads)
        except _pfn.PfnError:
            raise
        except (OSError, RuntimeError) as exc:  # not expected by the contract; keep ValueError
            raise ValueError(f"cannot load model {spec!r}: {exc}") from exc

    def _fit_model(self, n_samples: int, n_features: int, wider_ok: bool = False) -> Any:
        """Load (or reuse) the model for the current parameters and check it fits the data.

        ``wider_ok``: more features than the model takes are accepted (a calibrated classifier
        answers them through principal components of the training rows).
        """
        key = (_model_spec(self.model), self.precision, self.n_threads)
        model = self.__dict__.get("model_")
        if model is None or self.__dict__.get("_model_key") != key:
            model = self._load_model(key)
        if model.task != self._task:
            other = "PFNClassifier" if model.task == "classification" else "PFNRegressor"
            raise ValueError(
                f"model {key[0]!r} ({model.path}) is a {model.task} model, but "
                f"{type(self).__name__} needs a {self._task} model; use {other} for it"
            )
        lo, hi = int(model.min_features), int(model.max_features)
        if n_features < lo or (n_features > hi and not wider_ok):
            raise ValueError(
                f"X has {n_features} feature{'s' if n_features != 1 else ''}, but model "
                f"{model.name!r} takes {_feature_range_text(lo, hi)} "
                f"({'more features than the model supports' if n_features > hi else 'fewer features than the model needs'})"
            )
        lo_ctx, hi_ctx = int(model.min_context), int(model.max_context)
        if not lo_ctx <= n_samples <= hi_ctx:
            # As `pfn predict`: every row is used as context, with a note (no silent
            # subsampling, no refusal); outside the trained sizes predictions may degrade.
            warnings.warn(
                f"n_samples={n_samples} training rows, but model {model.name!r} was trained with "
                f"{lo_ctx} to {hi_ctx} context rows; all rows are used as context "
                f"({'beyond' if n_samples > hi_ctx else 'below'} the trained sizes predictions "
                "may degrade)",
                UserWarning,
                stacklevel=3,
            )
        self._model_key = key
        self._model_digest = model.digest
        self.model_ = model
        return model

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: re-load `model_` of a fitted estimator that
        # was unpickled (or copied), from the parameters it was fitted with.
        if name == "model_":
            state = self.__dict__
            key = state.get("_model_key")
            if key is not None:
                model = self._load_model(key)
                if model.digest != state.get("_model_digest"):
                    warnings.warn(
                        f"model {key[0]!r} now resolves to {model.path} with digest "
                        f"{model.digest}, not the model ({state.get('_model_digest')}) this "
                        "estimator was fitted with; predictions may differ",
                        UserWarning,
                        stacklevel=2,
                    )
                state["model_"] = model
                return model
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> Dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("model_", None)  # the native model is re-loaded on first use
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state = dict(state)
        state.pop("model_", None)
        super().__setstate__(state)

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.non_deterministic = False
        tags.input_tags.two_d_array = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.input_tags.categorical = False
        tags.input_tags.string = False
        tags.target_tags.required = True
        return tags

    def _validate_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = _validate_data(
            self, X, reset=False, dtype=np.float64, ensure_all_finite=True, order="C"
        )
        return np.ascontiguousarray(X, dtype=np.float64)


class PFNRegressor(RegressorMixin, _PFNBase):
    """Regression with a pretrained PFN: the posterior predictive by in-context learning.

    ``fit`` stores the training rows as the model's context; ``predict`` returns, for each query
    row, a summary of its posterior predictive distribution (or the whole distribution).

    Parameters
    ----------
    model : str or path-like, default="gp-hyper"
        Name of a model in the models directory (see :func:`pfn.models`) or path of a ``.pfn``
        file. It must be a regression model. The default ``gp-hyper`` takes 1 to 5 features and
        was trained on up to 249 context rows.
    precision : {"f32", "bf16"}, default="f32"
        Arithmetic of the model's matrix products (``bf16``: operands rounded to bfloat16).
    n_threads : int or None, default=None
        Compute threads; ``None`` uses every core.
    calibrate : bool, default=True
        With 50 or more training rows, temper every predictive by a power fitted on the
        training rows: 5-fold cross-validation (seeded as ``pfn predict``'s default ``--seed
        0``), each fold answered from the other folds, and the power of the bucket densities
        (1/16 to 16) that maximises the held-out targets' likelihood. The same folds choose the
        input view: the features as given, or the scores on leading principal components of
        the training rows' standardised features (at most as many as the model takes); so a
        table with more features than the model takes is accepted and answered through its
        components. Only the training rows are used, as ``pfn predict`` does unless
        ``--no-calibrate``. ``False`` returns the model's predictive as it is.

    Attributes
    ----------
    model_ : pfn._pfn.Model
        The loaded model (not pickled: re-loaded from ``model`` on first use after unpickling).
    X_train_ : ndarray of shape (n_samples, n_features)
        The context features (float64).
    y_train_ : ndarray of shape (n_samples,)
        The context targets (float64).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during ``fit`` (only for input with string column names).

    Examples
    --------
    >>> from pfn import PFNRegressor                             # doctest: +SKIP
    >>> reg = PFNRegressor().fit(X_train, y_train)                # doctest: +SKIP
    >>> reg.predict(X_test).shape                                 # doctest: +SKIP
    (20,)
    >>> pred = reg.predict(X_test, output_type="full")            # doctest: +SKIP
    >>> lo, hi = pred.interval(0.9)                               # doctest: +SKIP
    """

    _task = "regression"

    def __init__(self, model="gp-hyper", precision="f32", n_threads=None, calibrate=True):
        self.model = model
        self.precision = precision
        self.n_threads = n_threads
        self.calibrate = calibrate

    def fit(self, X, y):
        """Store the training rows as the model's context.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features: finite numbers; ``n_features`` within the model's range (or more,
            with ``calibrate`` and at least 50 rows whose targets are not all equal).
        y : array-like of shape (n_samples,)
            Training targets: finite numbers.

        Returns
        -------
        self : PFNRegressor
        """
        self._check_common_params()
        X, y = _validate_data(
            self,
            X,
            y,
            dtype=np.float64,
            ensure_all_finite=True,
            y_numeric=True,
            multi_output=False,
            order="C",
        )
        X = np.ascontiguousarray(X, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        # Calibrated contexts choose their input view, and a table wider than the model is
        # answered through principal components of the training rows.
        wider_ok = (
            bool(self.calibrate)
            and X.shape[0] >= int(_pfn.CALIBRATION_MIN_ROWS)
            and bool(np.any(y != y[0]))
        )
        self._fit_model(X.shape[0], X.shape[1], wider_ok=wider_ok)
        self.X_train_ = X
        self.y_train_ = y
        return self

    def predict(self, X, output_type="mean", quantiles=None):
        """Predict the target of the query rows.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows with the training features.
        output_type : {"mean", "median", "mode", "quantiles", "full"}, default="mean"
            What to return: a point summary of each query's predictive (shape ``(n_queries,)``),
            its quantiles (shape ``(n_queries, len(quantiles))``), or the whole distributions as
            a :class:`pfn.Predictive`.
        quantiles : sequence of float, optional
            Probabilities in ``[0, 1]`` for ``output_type="quantiles"`` (default
            ``[0.05, 0.5, 0.95]``); an error with any other output type.

        Returns
        -------
        ndarray or Predictive
        """
        if output_type not in _OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {_OUTPUT_TYPES}, got {output_type!r}")
        if quantiles is not None and output_type != "quantiles":
            raise ValueError(
                f"quantiles are only used with output_type='quantiles', not {output_type!r}"
            )
        X = self._validate_X(X)
        pred = Predictive(
            self.model_.predict(self.X_train_, self.y_train_, X, calibrate=bool(self.calibrate))
        )
        if output_type == "full":
            return pred
        if output_type == "quantiles":
            qs = np.asarray(_DEFAULT_QUANTILES if quantiles is None else quantiles, dtype=np.float64)
            if qs.ndim != 1 or qs.size == 0:
                raise ValueError(f"quantiles must be a non-empty 1-D sequence, got {quantiles!r}")
            if not np.all((qs >= 0.0) & (qs <= 1.0)):
                raise ValueError(f"quantiles must lie in [0, 1], got {quantiles!r}")
            return pred.quantiles(qs)
        return getattr(pred, output_type)()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags


class PFNClassifier(ClassifierMixin, _PFNBase):
    """Classification with a pretrained PFN (class probabilities by in-context learning).

    ``fit`` stores the training rows as the model's context; ``predict_proba`` pools the
    class probabilities of an ensemble of views of the data (feature orders, class renamings,
    normal scores), as ``pfn predict --ensemble``, and tempers them by a temperature fitted on
    the training rows by cross-validation, as ``pfn predict`` does unless ``--no-calibrate``.

    Parameters
    ----------
    model : str or path-like, default="tabular"
        Name of a classification model in the models directory (see :func:`pfn.models`) or
        path of a ``.pfn`` file. The default ``tabular`` takes 1 to 60 features and at most 10
        classes.
    n_ensemble : int, default=8
        Ensemble members (1 = the data as given only).
    random_state : int, RandomState, Generator or None, default=0
        Seed of the ensemble's permutations and of the calibration folds; an int is used as the
        seed itself (the CLI's ``--seed``); anything else draws a seed at ``fit``.
    precision : {"f32", "bf16"}, default="f32"
        Arithmetic of the model's matrix products.
    n_threads : int or None, default=None
        Compute threads; ``None`` uses every core.
    calibrate : bool, default=True
        With 50 or more training rows, raise the probabilities to the power beta and
        renormalise, with beta (1/16 to 16) chosen to minimise the log loss of 5-fold
        cross-validated answers on the training rows (each fold answered from the other
        folds; labels smoothed by the rule of succession). The same folds choose the input
        view: the features as given, or the scores on 8 or 16 leading principal components of
        the training rows' standardised features, whichever has the lowest tempered held-out log
        loss (wide tables with correlated columns gain most); a table with more features than
        the model takes is then accepted and answered through principal components. Only the
        training rows are used. ``False`` returns the ensemble's probabilities as they are.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct training labels, sorted (numbers numerically, strings lexicographically).
    model_ : pfn._pfn.Model
        The loaded model (not pickled: re-loaded from ``model`` on first use after unpickling).
    X_train_ : ndarray of shape (n_samples, n_features)
        The context features (float64).
    y_train_ : ndarray of shape (n_samples,)
        The context labels as class codes (int64, indices into ``classes_``).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during ``fit`` (only for input with string column names).

    Examples
    --------
    >>> from pfn import PFNClassifier                            # doctest: +SKIP
    >>> clf = PFNClassifier(n_ensemble=4).fit(X_train, labels)    # doctest: +SKIP
    >>> clf.predict_proba(X_test).shape                           # doctest: +SKIP
    (30, 3)
    """

    _task = "classification"

    def __init__(
        self,
        model="tabular",
        n_ensemble=8,
        random_state=0,
        precision="f32",
        n_threads=None,
        calibrate=True,
    ):
        self.model = model
        self.n_ensemble = n_ensemble
        self.calibrate = calibrate
        self.random_state = random_state
        self.precision = precision
        self.n_threads = n_threads

    def fit(self, X, y):
        """Store the training rows and labels as the model's context.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features: finite numbers; ``n_features`` within the model's range (or more,
            with ``calibrate`` and at least 50 rows of two or more classes).
        y : array-like of shape (n_samples,)
            Class labels (numbers or strings), at most as many distinct ones as the model has
            classes.

        Returns
        -------
        self : PFNClassifier
        """
        self._check_common_params()
        if (
            not isinstance(self.n_ensemble, numbers.Integral)
            or isinstance(self.n_ensemble, bool)
            or self.n_ensemble < 1
        ):
            raise ValueError(f"n_ensemble must be a positive integer, got {self.n_ensemble!r}")
        X, y = _validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite=True, multi_output=False, order="C"
        )
        check_classification_targets(y)
        X = np.ascontiguousarray(X, dtype=np.float64)
        classes, codes = np.unique(y, return_inverse=True)
        # Calibrated contexts choose their input view, and a table wider than the model is
        # answered through principal components of the training rows.
        wider_ok = (
            bool(self.calibrate)
            and X.shape[0] >= int(_pfn.CALIBRATION_MIN_ROWS)
            and classes.size >= 2
        )
        model = self._fit_model(X.shape[0], X.shape[1], wider_ok=wider_ok)
        if classes.size > int(model.n_classes):
            shown = ", ".join(map(str, classes[:12])) + (", ..." if classes.size > 12 else "")
            raise ValueError(
                f"y has {classes.size} classes ({shown}), but model {model.name!r} predicts at "
                f"most {int(model.n_classes)}"
            )
        self.classes_ = classes
        self.X_train_ = X
        self.y_train_ = np.ascontiguousarray(codes.reshape(-1), dtype=np.int64)
        self._seed = seed_from_random_state(self.random_state)
        return self

    def predict_proba(self, X):
        """Class probabilities of the query rows.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Probabilities in the order of ``classes_``; rows sum to 1.
        """
        X = self._validate_X(X)
        n_classes = len(self.classes_)
        if n_classes == 1:
            return np.ones((X.shape[0], 1))
        proba = self.model_.predict_proba(
            self.X_train_,
            self.y_train_,
            X,
            n_classes=n_classes,
            n_ensemble=int(self.n_ensemble),
            seed=int(self._seed),
            calibrate=bool(self.calibrate),
        )
        return np.asarray(proba, dtype=np.float64)

    def predict(self, X):
        """Most probable class of each query row.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_log_proba(self, X):
        """Natural log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags
