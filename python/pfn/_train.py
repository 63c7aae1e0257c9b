"""Training, prior sampling and model listing: thin wrappers of the native module.

``train`` takes the run configuration of ``pfn train --config`` as a TOML file, TOML text or a
nested ``dict``; a dict is written as TOML by the small serialiser below (tables of scalars,
arrays and sub-tables, the shape of every run configuration), so no TOML package is needed.
"""

# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

import math
import numbers
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from . import _pfn

__all__ = ["train", "sample_prior", "models", "prior_names", "config_to_toml"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"TOML keys must be strings, got {key!r}")
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any, where: str) -> str:
    """One TOML value (no tables at this level: dicts become inline tables)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # always has '.', 'e' or both: a TOML float
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, os.PathLike):
        return _toml_string(os.fspath(value))
    if isinstance(value, Mapping):
        items = [
            f"{_toml_key(k)} = {_toml_value(v, f'{where}.{k}')}"
            for k, v in value.items()
            if v is not None
        ]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [_toml_value(v, f"{where}[{i}]") for i, v in enumerate(list(value))]
        if any(v is None for v in value):
            raise TypeError(f"{where}: TOML arrays cannot hold None")
        return "[" + ", ".join(items) + "]"
    raise TypeError(f"{where}: cannot write {type(value).__name__} {value!r} as TOML")


def config_to_toml(config: Mapping[str, Any]) -> str:
    """Write a run configuration given as a nested dict as TOML text.

    Top-level dicts become ``[table]`` sections and dicts inside them ``[table.sub]`` sections;
    scalars (bool, int, float, str), lists and tuples become TOML values. A ``None`` value is
    left out (the key takes its default), as TOML has no null.

    Parameters
    ----------
    config : mapping
        E.g. ``{"prior": {"name": "gp-1d", "seq_len": 20}, "budget": {"steps": 60}}``.

    Returns
    -------
    str
        TOML text readable by ``pfn train --config`` (and :mod:`tomllib`).
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping, got {type(config).__name__}")
    lines: List[str] = []

    def emit(table: Mapping[str, Any], path: Tuple[str, ...]) -> None:
        where = ".".join(path) or "config"
        scalars = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if path:
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        for key, value in scalars:
            lines.append(f"{_toml_key(key)} = {_toml_value(value, f'{where}.{key}')}")
        for key, value in tables:
            emit(value, path + (key,))

    emit(config, ())
    return "\n".join(lines) + "\n"


def _config_text(config: Any) -> str:
    """TOML text of ``config``: a mapping, a path of a TOML file, or TOML text."""
    if isinstance(config, Mapping):
        return config_to_toml(config)
    if isinstance(config, os.PathLike):
        with open(os.fspath(config), encoding="utf-8") as f:
            return f.read()
    if isinstance(config, bytes):
        config = config.decode("utf-8")
    if isinstance(config, str):
        looks_like_path = "\n" not in config and "=" not in config
        if looks_like_path or (config.endswith(".toml") and os.path.isfile(config)):
            if not os.path.isfile(config):
                raise FileNotFoundError(f"configuration file {config!r} does not exist")
            with open(config, encoding="utf-8") as f:
                return f.read()
        return config
    raise TypeError(
        f"config must be a dict, a path of a TOML file or TOML text, got {type(config).__name__}"
    )


def train(
    config: Any,
    out: Any,
    prior: Optional[Callable] = None,
    resume: bool = False,
    quiet: bool = True,
) -> Dict[str, Any]:
    """Train a PFN model, as ``pfn train --config CONFIG --out OUT``.

    Parameters
    ----------
    config : dict, path-like or str
        The run configuration (the format of ``configs/*.toml``): a nested dict, the path of a
        TOML file, or TOML text.
    out : path-like
        The model file to write; the checkpoint goes to ``out + ".ckpt"``.
    prior : callable, optional
        A Python prior ``prior(batch_size, seq_len, num_features, rng)`` returning ``(x, y)`` or
        ``(x, y, target_y)`` with shapes ``(B, T, F)``, ``(B, T)``, ``(B, T)``; ``rng`` is a
        ``numpy.random.Generator`` seeded from the run seed and the batch index. The config's
        ``prior.name`` is then only a label. By default the registry prior named in the config.
    resume : bool, default=False
        Continue from the checkpoint ``out + ".ckpt"``.
    quiet : bool, default=True
        No progress lines on standard error.

    Returns
    -------
    dict
        Keys ``steps``, ``datasets``, ``seconds``, ``datasets_per_second``,
        ``final_validation_loss``, ``validation_history`` (list of ``(step, loss)``), ``out``,
        ``checkpoint``.
    """
    if prior is not None and not callable(prior):
        raise TypeError(f"prior must be callable or None, got {type(prior).__name__}")
    text = _config_text(config)
    return _pfn.train(text, os.fspath(out), prior, bool(resume), bool(quiet))


def sample_prior(
    name: str,
    batch_size: int = 4,
    seq_len: int = 100,
    num_features: Optional[int] = None,
    seed: int = 0,
    batch_index: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw datasets from a registry prior (see :func:`prior_names`).

    Parameters
    ----------
    name : str
        Prior name, e.g. ``"gp-1d"``.
    batch_size : int, default=4
        Datasets to draw.
    seq_len : int, default=100
        Points per dataset.
    num_features : int, optional
        Input features (default: the prior's own).
    seed : int, default=0
        Seed; the same seed gives the same draws as the Rust trainer's.
    batch_index : int, default=0
        Index of the batch within the seeded stream.

    Returns
    -------
    x : ndarray of shape (batch_size, seq_len, num_features), float32
    y : ndarray of shape (batch_size, seq_len), float32
    target_y : ndarray of shape (batch_size, seq_len), float32
    """
    return _pfn.sample_prior(name, batch_size, seq_len, num_features, seed, batch_index)


def models() -> List[Dict[str, Any]]:
    """The model files of the models directory (see ``pfn models``).

    Returns
    -------
    list of dict
        Keys ``name``, ``path``, ``task``, ``prior``, ``min_features``, ``max_features``,
        ``n_classes``, ``min_context``, ``max_context``, ``digest``, ``parameters``,
        ``final_validation_loss`` and ``training``: the budget of every training run the file
        records (``runs``, ``steps``, ``datasets``, ``seconds``; ``complete`` is False when the
        oldest recorded run started from a model file whose training is unknown).
    """
    return _pfn.models()


def prior_names() -> List[str]:
    """Names of the registry's priors (those of ``pfn sample-prior --help``).

    Returns
    -------
    list of str
    """
    return _pfn.prior_names()
