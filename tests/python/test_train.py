"""pfn.train with a prior written in Python, and the TOML writer of dict configurations."""

# SPDX-License-Identifier: MIT OR Apache-2.0

import math

import numpy as np
import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

needs_tomllib = pytest.mark.skipif(
    tomllib is None, reason="tomllib (Python >= 3.11) reads the written TOML back"
)

import pfn
from pfn import PFNRegressor
from pfn._train import _config_text, config_to_toml


def tiny_config(steps=60, seed=0):
    """A run small enough to train in seconds on one thread."""
    return {
        "prior": {"name": "python-linear", "num_features": 1, "seq_len": 20, "split": "uniform"},
        "model": {"emsize": 32, "nlayers": 2, "nhead": 2, "nhid": 64, "buckets": 100},
        "borders": {"samples": 4000},
        "optimizer": {"lr": 3e-3, "warmup_steps": min(5, steps), "schedule": "cosine"},
        "budget": {
            "steps": steps,
            "batch_size": 16,
            "checkpoint_every": steps,
            "validation_every": 20,
            "validation_datasets": 64,
        },
        "run": {"seed": seed, "threads": 1},
    }


class LinearPrior:
    """y = a x + b + N(0, 0.1^2) with a, b ~ N(0, 1), x ~ U[0, 1]: a prior in NumPy."""

    def __init__(self):
        self.calls = []

    def __call__(self, batch_size, seq_len, num_features, rng):
        self.calls.append((batch_size, seq_len, num_features, type(rng)))
        x = rng.random((batch_size, seq_len, num_features))
        a = rng.normal(size=(batch_size, 1, num_features))
        b = rng.normal(size=(batch_size, 1))
        f = (a * x).sum(axis=-1) + b
        y = f + 0.1 * rng.normal(size=f.shape)
        return x, y


def test_train_on_a_python_prior(tmp_path, rng):
    prior = LinearPrior()
    out = tmp_path / "linear.pfn"
    summary = pfn.train(tiny_config(), out, prior=prior)
    assert summary["steps"] == 60
    assert out.is_file()
    assert prior.calls, "the Python prior was never called"
    batch, seq_len, features, rng_type = prior.calls[0]
    assert (seq_len, features) == (20, 1)
    assert rng_type is np.random.Generator
    history = summary["validation_history"]
    assert [step for step, _ in history][-1] == 60 and len(history) >= 3
    first, last = history[0][1], history[-1][1]
    assert math.isfinite(last) and last < first, history
    assert summary["final_validation_loss"] == pytest.approx(last)
    # The model file is a regression model usable by the estimator.
    x = rng.random((15, 1))
    y = 1.5 * x[:, 0] - 0.3 + 0.1 * rng.normal(size=15)
    reg = PFNRegressor(model=str(out), n_threads=1).fit(x, y)
    assert reg.model_.task == "regression"
    assert reg.model_.max_features == 1
    xq = np.linspace(0, 1, 5)[:, None]
    pred = reg.predict(xq, output_type="full")
    assert np.all(np.isfinite(pred.mean())) and np.all(pred.std() > 0)
    np.testing.assert_allclose(pred.probabilities.sum(axis=1), 1.0, atol=1e-9)


def test_train_from_toml_file_and_text(tmp_path):
    text = config_to_toml(tiny_config(steps=4))
    text = text.replace("validation_every = 20", "validation_every = 2")
    path = tmp_path / "run.toml"
    path.write_text(text)
    for config in (path, str(path), text):
        out = tmp_path / "m.pfn"
        summary = pfn.train(config, out, prior=LinearPrior())
        assert summary["steps"] == 4
        assert out.is_file()


def test_train_errors(tmp_path):
    with pytest.raises(TypeError, match="callable"):
        pfn.train(tiny_config(), tmp_path / "x.pfn", prior="linear")
    with pytest.raises(FileNotFoundError):
        pfn.train(str(tmp_path / "missing.toml"), tmp_path / "x.pfn")
    with pytest.raises(ValueError, match="no-such-prior"):
        pfn.train("[prior]\nname = 'no-such-prior'\n", tmp_path / "x.pfn")


def test_python_prior_errors(tmp_path):
    def raises(batch_size, seq_len, num_features, rng):
        raise RuntimeError("boom in the prior")

    def wrong_shape(batch_size, seq_len, num_features, rng):
        return np.zeros((batch_size, seq_len + 1, num_features)), np.zeros((batch_size, seq_len))

    def not_a_tuple(batch_size, seq_len, num_features, rng):
        return None

    config = tiny_config(steps=4)
    with pytest.raises(ValueError, match="boom in the prior"):
        pfn.train(config, tmp_path / "x.pfn", prior=raises)
    with pytest.raises(ValueError, match="shape"):
        pfn.train(config, tmp_path / "x.pfn", prior=wrong_shape)
    with pytest.raises(ValueError, match=r"\(x, y\)"):
        pfn.train(config, tmp_path / "x.pfn", prior=not_a_tuple)


@needs_tomllib
@pytest.mark.parametrize("name", ["tiny.toml", "tiny-classifier.toml", "gp-1d.toml"])
def test_toml_round_trip_of_shipped_configs(repo_root, name):
    with open(repo_root / "configs" / name, "rb") as f:
        config = tomllib.load(f)
    assert tomllib.loads(config_to_toml(config)) == config


@needs_tomllib
def test_toml_writer_values():
    config = {
        "title": 'quote " and \\ and \n',
        "prior": {
            "name": "gp",
            "params": {"lengthscale": 0.1, "tiny": 1e-20, "big": 1e300, "n": 3, "list": [1, 2.5]},
            "max_context": None,
        },
        "optimizer": {"betas": (0.9, 0.999), "flag": True, "inf": float("inf")},
        "weird key": {"a.b": np.float32(0.5), "c": np.int64(4), "d": [[1, 2], ["x"]]},
        "nested": {"inline": [{"a": 1}, {"b": "c"}]},
    }
    text = config_to_toml(config)
    back = tomllib.loads(text)
    assert back["title"] == config["title"]
    assert back["prior"]["params"] == config["prior"]["params"]
    assert "max_context" not in back["prior"]
    assert back["optimizer"] == {"betas": [0.9, 0.999], "flag": True, "inf": float("inf")}
    assert back["weird key"] == {"a.b": 0.5, "c": 4, "d": [[1, 2], ["x"]]}
    assert isinstance(back["prior"]["params"]["lengthscale"], float)
    assert isinstance(back["prior"]["params"]["n"], int)
    assert back["nested"]["inline"] == [{"a": 1}, {"b": "c"}]
    with pytest.raises(TypeError, match="cannot write"):
        config_to_toml({"a": {"b": object()}})


@needs_tomllib
def test_config_text_dispatch(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[prior]\nname = 'gp-1d'\n")
    assert _config_text(path) == path.read_text()
    assert _config_text(str(path)) == path.read_text()
    assert _config_text("[prior]\nname = 'x'\n") == "[prior]\nname = 'x'\n"
    assert tomllib.loads(_config_text({"prior": {"name": "x"}})) == {"prior": {"name": "x"}}
    with pytest.raises(FileNotFoundError):
        _config_text(str(tmp_path / "nope.toml"))
    with pytest.raises(TypeError):
        _config_text(42)
