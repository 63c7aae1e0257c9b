"""Prior-Data Fitted Networks (PFNs) in Rust, with scikit-learn estimators.

A PFN is a transformer trained on datasets drawn from a prior; given a new dataset as context it
returns the posterior predictive of query points in one forward pass (Müller et al., 2022,
"Transformers Can Do Bayesian Inference").

Quick start::

    import numpy as np
    from pfn import PFNRegressor, PFNClassifier

    X = np.random.rand(50, 2); y = np.sin(6 * X[:, 0]) + X[:, 1]
    reg = PFNRegressor().fit(X, y)                        # model "gp-hyper": 1 to 5 features
    mean = reg.predict(X[:5])                             # (5,)
    pred = reg.predict(X[:5], output_type="full")         # a pfn.Predictive
    lo, hi = pred.interval(0.9); ei = pred.ei(best=y.max())
    clf = PFNClassifier(n_ensemble=4).fit(X, y > 1)       # model "tabular": up to 10 classes
    proba = clf.predict_proba(X[:5])                      # (5, 2)

See :func:`train` to train a model on a registry prior or a prior written in Python.
"""

# SPDX-License-Identifier: MIT OR Apache-2.0

from . import _pfn
from ._estimators import PFNClassifier, PFNRegressor
from ._predictive import Predictive
from ._pfn import PfnError
from ._train import models, prior_names, sample_prior, train

__version__: str = _pfn.version()

__all__ = [
    "PFNRegressor",
    "PFNClassifier",
    "Predictive",
    "PfnError",
    "train",
    "sample_prior",
    "models",
    "prior_names",
    "__version__",
]
