"""NumPy-friendly wrapper of the native posterior predictive (`pfn._pfn.Predictive`).

A PFN regression model answers every query with a Riemann ("bar") distribution over the target:
bucket probabilities on fixed borders, optionally with half-normal or Pareto tails. The native
object evaluates these distributions on a 2-D array with one row per query; :class:`Predictive`
adds NumPy broadcasting, argument checks and sub-selection of queries.
"""

# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

import numbers
from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["Predictive", "seed_from_random_state"]

#: Default ``rest_probability`` of :meth:`Predictive.ucb`: ``(1 - 0.682) / 2``, the upper tail
#: mass beyond ``mean + 1 std`` of a Gaussian (GP-UCB with ``beta = 1``).
DEFAULT_UCB_REST_PROBABILITY = (1.0 - 0.682) / 2.0

_MAX_SEED = 2**63 - 1


def seed_from_random_state(random_state: Any) -> int:
    """Turn a scikit-learn style ``random_state`` into a non-negative integer seed.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        ``None`` draws a seed from NumPy's global random state (so ``np.random.seed`` makes it
        reproducible), an int is used as the seed itself, a ``RandomState`` or ``Generator``
        draws the seed from that generator (advancing it).

    Returns
    -------
    int
        A seed in ``[0, 2**63 - 1]``.

    Raises
    ------
    ValueError
        For a negative integer or an object of another type.
    """
    if random_state is None or random_state is np.random:
        return int(np.random.mtrand._rand.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        seed = int(random_state)
        if seed < 0 or seed > _MAX_SEED:
            raise ValueError(f"random_state must be a non-negative integer seed, got {seed}")
        return seed
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, _MAX_SEED, endpoint=True))
    raise ValueError(
        f"random_state must be None, an int, a numpy RandomState or Generator, got {random_state!r}"
    )


class Predictive:
    """Posterior predictive distributions of ``m`` queries.

    Returned by :meth:`pfn.PFNRegressor.predict` with ``output_type="full"``. Each query's
    distribution is a Riemann (bar) distribution in the units of the training target.

    Broadcasting rule
    -----------------
    Arguments of the evaluating methods (``pdf``, ``logpdf``, ``cdf``, ``icdf``/``ppf``, ``ei``,
    ``pi``, ``ucb``) are broadcast against the query axis as follows:

    * a scalar is used for every query; the result has shape ``(m,)``;
    * a 1-D array of shape ``(m,)`` holds one value per query (query ``i`` at ``y[i]``); the
      result has shape ``(m,)``. A 1-D array of any other length (except 1, treated as a scalar)
      is rejected as ambiguous: pass ``y[None, :]`` for a grid shared by all queries;
    * a 2-D array of shape ``(1, k)`` is the same ``k``-point grid for every query, shape
      ``(m, k)`` a grid per query; the result has shape ``(m, k)``.

    Parameters
    ----------
    native : pfn._pfn.Predictive
        The native predictive returned by :meth:`pfn._pfn.Model.predict`.
    index : array of int, optional
        Queries of ``native`` this object stands for (used by indexing); all by default.

    Examples
    --------
    >>> pred = reg.predict(X_test, output_type="full")       # doctest: +SKIP
    >>> pred.mean().shape, pred.pdf(0.5).shape                # doctest: +SKIP
    ((20,), (20,))
    >>> pred.pdf(np.linspace(0, 3, 50)[None, :]).shape        # doctest: +SKIP
    (20, 50)
    >>> lo, hi = pred.interval(0.9)                           # doctest: +SKIP
    """

    __slots__ = ("_native", "_index", "_n_total")

    def __init__(self, native: Any, index: Optional[np.ndarray] = None) -> None:
        self._native = native
        self._n_total = len(native)
        if index is not None:
            index = np.asarray(index, dtype=np.intp)
            if index.ndim != 1:
                raise ValueError("index must be one-dimensional")
            if index.size and (index.min() < 0 or index.max() >= self._n_total):
                raise IndexError(f"query index out of range for {self._n_total} queries")
            if np.array_equal(index, np.arange(self._n_total)):
                index = None
        self._index = index

    # ------------------------------------------------------------------ container protocol
    def __len__(self) -> int:
        return self._n_total if self._index is None else int(self._index.size)

    def __getitem__(self, key: Any) -> "Predictive":
        """Select queries: an int gives a :class:`Predictive` of that one query, a slice one of
        those queries (in the slice's order)."""
        positions = np.arange(len(self))
        if isinstance(key, slice):
            chosen = positions[key]
        elif isinstance(key, numbers.Integral) and not isinstance(key, bool):
            k = int(key)
            if k < -len(self) or k >= len(self):
                raise IndexError(f"query {k} out of range for {len(self)} queries")
            chosen = positions[k : k + 1] if k >= 0 else positions[k:][:1]
        else:
            raise TypeError(f"Predictive indices must be integers or slices, not {type(key).__name__}")
        base = np.arange(self._n_total) if self._index is None else self._index
        return Predictive(self._native, base[chosen])

    def __repr__(self) -> str:
        return f"<pfn.Predictive of {len(self)} queries, {self.probabilities.shape[1]} buckets>"

    @property
    def native(self) -> Any:
        """The wrapped ``pfn._pfn.Predictive`` (all queries, before any indexing)."""
        return self._native

    # ------------------------------------------------------------------ helpers
    def _select(self, values: np.ndarray) -> np.ndarray:
        """Rows of the selected queries from a native per-query result."""
        values = np.asarray(values)
        return values if self._index is None else values[self._index]

    def _grid(self, values: Any, name: str) -> Tuple[np.ndarray, bool]:
        """``values`` broadcast to ``(m, k)`` by the class's rule; and whether the caller gets a
        1-D ``(m,)`` result (scalar or 1-D input)."""
        a = np.asarray(values, dtype=np.float64)
        m = len(self)
        if a.ndim == 0:
            return np.full((m, 1), float(a)), True
        if a.ndim == 1:
            if a.shape[0] == m:
                return a.reshape(m, 1), True
            if a.shape[0] == 1:
                return np.full((m, 1), float(a[0])), True
            raise ValueError(
                f"{name} has shape {a.shape} but there are {m} queries: pass one value per query "
                f"(shape ({m},)), a scalar, or a grid shared by all queries as shape (1, k), "
                f"e.g. {name}[None, :]"
            )
        if a.ndim == 2:
            if a.shape[0] not in (1, m):
                raise ValueError(
                    f"{name} has shape {a.shape}: a 2-D argument must have shape (1, k) or "
                    f"({m}, k) for {m} queries"
                )
            return np.broadcast_to(a, (m, a.shape[1])), False
        raise ValueError(f"{name} must be a scalar, a 1-D or a 2-D array, got {a.ndim} dimensions")

    def _full_rows(self, grid: np.ndarray, fill: float) -> np.ndarray:
        """``grid`` (selected queries) spread onto every native query as a contiguous float64
        array; the rows of unselected queries hold ``fill``."""
        if self._index is None:
            return np.ascontiguousarray(grid, dtype=np.float64)
        full = np.full((self._n_total, grid.shape[1]), fill, dtype=np.float64)
        full[self._index] = grid
        return full

    def _evaluate(self, method: str, values: Any, name: str, fill: float) -> np.ndarray:
        """Native ``method`` on an ``(m, k)`` argument, with the broadcasting rule."""
        grid, flat = self._grid(values, name)
        out = self._select(getattr(self._native, method)(self._full_rows(grid, fill)))
        return out[:, 0] if flat else out

    def _evaluate_columns(self, method: str, values: Any, name: str, fill: float) -> np.ndarray:
        """Native ``method`` taking one value per query (shape ``(m,)``), applied column by
        column to a broadcast ``(m, k)`` argument."""
        grid, flat = self._grid(values, name)
        columns = [
            self._select(getattr(self._native, method)(self._full_rows(grid[:, j : j + 1], fill)[:, 0]))
            for j in range(grid.shape[1])
        ]
        if not columns:
            return np.empty((len(self), 0))
        out = np.stack(columns, axis=1)
        return out[:, 0] if flat else out

    # ------------------------------------------------------------------ summaries
    def mean(self) -> np.ndarray:
        """Predictive mean of each query, shape ``(m,)``."""
        return self._select(self._native.mean())

    def median(self) -> np.ndarray:
        """Predictive median of each query, shape ``(m,)``."""
        return self._select(self._native.median())

    def mode(self) -> np.ndarray:
        """Mode (point of highest density) of each query, shape ``(m,)``."""
        return self._select(self._native.mode())

    def variance(self) -> np.ndarray:
        """Predictive variance of each query, shape ``(m,)``."""
        return self._select(self._native.variance())

    def std(self) -> np.ndarray:
        """Predictive standard deviation of each query, shape ``(m,)``."""
        return self._select(self._native.std())

    def entropy(self) -> np.ndarray:
        """Differential entropy (nats) of each query, shape ``(m,)``."""
        return self._select(self._native.entropy())

    # ------------------------------------------------------------------ evaluation
    def pdf(self, y: Any) -> np.ndarray:
        """Predictive density at ``y`` (broadcast by the class's rule).

        Parameters
        ----------
        y : float or array_like
            Scalar, shape ``(m,)``, ``(1, k)`` or ``(m, k)``.

        Returns
        -------
        ndarray
            Shape ``(m,)`` for a scalar or 1-D ``y``, else ``(m, k)``.
        """
        return self._evaluate("pdf", y, "y", 0.0)

    def logpdf(self, y: Any) -> np.ndarray:
        """Natural log of :meth:`pdf` (finite far into the tails); same shapes."""
        return self._evaluate("logpdf", y, "y", 0.0)

    def cdf(self, y: Any) -> np.ndarray:
        """Cumulative distribution function at ``y``; same shapes as :meth:`pdf`."""
        return self._evaluate("cdf", y, "y", 0.0)

    def icdf(self, p: Any) -> np.ndarray:
        """Quantile function (inverse cdf) at probabilities ``p`` in ``[0, 1]``.

        Parameters
        ----------
        p : float or array_like
            Scalar, shape ``(m,)``, ``(1, k)`` or ``(m, k)``.

        Returns
        -------
        ndarray
            Shape ``(m,)`` for a scalar or 1-D ``p``, else ``(m, k)``.
        """
        return self._evaluate("icdf", p, "p", 0.5)

    ppf = icdf

    def quantiles(self, qs: Any) -> np.ndarray:
        """Quantiles ``qs`` of every query.

        Parameters
        ----------
        qs : float or sequence of float
            Probabilities in ``[0, 1]``.

        Returns
        -------
        ndarray of shape (m, len(qs))
        """
        qs = np.atleast_1d(np.asarray(qs, dtype=np.float64))
        if qs.ndim != 1:
            raise ValueError(f"qs must be a sequence of probabilities, got shape {qs.shape}")
        return self.icdf(qs.reshape(1, -1))

    def interval(self, p: float = 0.9) -> Tuple[np.ndarray, np.ndarray]:
        """Central interval holding probability ``p``: ``(icdf((1-p)/2), icdf((1+p)/2))``.

        Parameters
        ----------
        p : float, default=0.9
            Probability in ``[0, 1]``.

        Returns
        -------
        lo, hi : ndarray of shape (m,)
        """
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"interval probability p must lie in [0, 1], got {p}")
        side = 0.5 * (1.0 - p)
        q = self.icdf(np.array([[side, 1.0 - side]]))
        return q[:, 0], q[:, 1]

    # ------------------------------------------------------------------ acquisition functions
    def ei(self, best: Any) -> np.ndarray:
        """Expected improvement over ``best`` (maximisation): ``E[max(Y - best, 0)]``.

        Parameters
        ----------
        best : float or array_like
            Scalar or shape ``(m,)`` (also ``(1, k)``/``(m, k)`` by the broadcasting rule).

        Returns
        -------
        ndarray
            Shape ``(m,)`` (``(m, k)`` for a 2-D ``best``).
        """
        return self._evaluate_columns("expected_improvement", best, "best", 0.0)

    def pi(self, best: Any) -> np.ndarray:
        """Probability of improvement ``P(Y > best)``; shapes as :meth:`ei`."""
        return self._evaluate_columns("probability_of_improvement", best, "best", 0.0)

    def ucb(self, rest_probability: Any = DEFAULT_UCB_REST_PROBABILITY) -> np.ndarray:
        """Upper confidence bound: the upper quantile ``icdf(1 - rest_probability)``.

        Parameters
        ----------
        rest_probability : float or array_like, default=0.159
            Probability mass above the bound, in ``[0, 1]``; the default ``(1 - 0.682) / 2``
            matches ``mean + 1 std`` for a Gaussian. Scalar or shape ``(m,)``.

        Returns
        -------
        ndarray
            Shape ``(m,)`` (``(m, k)`` for a 2-D argument).
        """
        return self._evaluate_columns(
            "upper_confidence_bound", rest_probability, "rest_probability", 0.5
        )

    expected_improvement = ei
    probability_of_improvement = pi
    upper_confidence_bound = ucb

    # ------------------------------------------------------------------ sampling and raw data
    def sample(self, n: int, random_state: Any = None) -> np.ndarray:
        """Draw ``n`` values from every query's predictive.

        Parameters
        ----------
        n : int
            Draws per query.
        random_state : None, int, RandomState or Generator, default=None
            Seed of the draws (see :func:`seed_from_random_state`); an int gives reproducible
            draws.

        Returns
        -------
        ndarray of shape (m, n)
        """
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        seed = seed_from_random_state(random_state)
        return self._select(self._native.sample(int(n), seed))

    @property
    def borders(self) -> np.ndarray:
        """Bucket borders in the units of y, shape ``(B + 1,)`` (shared by all queries)."""
        return np.asarray(self._native.borders())

    @property
    def probabilities(self) -> np.ndarray:
        """Bucket probabilities of every query, shape ``(m, B)``; rows sum to 1."""
        return self._select(self._native.probabilities())
