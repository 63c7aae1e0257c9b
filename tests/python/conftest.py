"""Shared fixtures of the Python test suite (`pytest tests/python`)."""

# SPDX-License-Identifier: MIT OR Apache-2.0

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: The repository root (tests/python/conftest.py -> ../..).
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of the source checkout."""
    return REPO


@pytest.fixture(scope="session")
def cli_binary() -> Path:
    """The release build of the `pfn` command line, for parity tests (skipped when absent)."""
    path = REPO / "target" / "release" / "pfn"
    if not path.is_file():
        found = shutil.which("pfn")
        if found is None:
            pytest.skip(
                f"the pfn command line is not built ({path} is missing and no `pfn` is on PATH): "
                "run `cargo build --release` for the CLI parity tests"
            )
        path = Path(found)
    return path


@pytest.fixture(scope="session")
def iris_regression():
    """The iris regression example: (X_train, y_train, X_test, y_test, train_csv, test_csv)
    with the features sepal_length, sepal_width, petal_length and the target petal_width."""
    train_csv = EXAMPLES / "iris-train.csv"
    test_csv = EXAMPLES / "iris-test.csv"
    train = pd.read_csv(train_csv)
    test = pd.read_csv(test_csv)
    features = list(train.columns[:-1])
    target = train.columns[-1]
    return (
        train[features],
        train[target].to_numpy(),
        test[features],
        test[target].to_numpy(),
        train_csv,
        test_csv,
    )


@pytest.fixture(scope="session")
def iris_species():
    """The iris species example: (train DataFrame, test DataFrame); label column `species`."""
    return (
        pd.read_csv(EXAMPLES / "iris-species-train.csv"),
        pd.read_csv(EXAMPLES / "iris-species-test.csv"),
    )


@pytest.fixture()
def rng():
    """A seeded NumPy generator."""
    return np.random.default_rng(12345)
