"""Type stubs of the native module `pfn._pfn` (Rust, crates/pfn-py): the contract between the
compiled engine and the pure-Python estimators. Every array argument is converted to a contiguous
float64 (or int64 for class codes) NumPy array by the Python layer before the call; every
function that computes releases the GIL. Errors are raised as `PfnError` (a `ValueError`
subclass) with the same messages as the `pfn` command line."""

from typing import Callable, Optional, Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

class PfnError(ValueError):
    """Bad input or a model that cannot answer: the message names the problem."""

def version() -> str:
    """Version of the Rust crates the module was built from."""

def model_dirs() -> list[str]:
    """Directories searched for a model name, in order: $PFN_MODELS alone when set; else
    `models/` in the current directory, the package's bundled `models/`, and the `models/` of the
    source checkout the package was built from."""

def models() -> list[dict]:
    """Every model file in the first existing models directory: dicts with keys name, path, task
    ("regression" | "classification"), prior, min_features, max_features, n_classes (0 for
    regression), min_context, max_context, digest, parameters, final_validation_loss (None if not
    measured), training (dict: runs, steps, datasets, seconds, complete)."""

class Model:
    """A loaded PFN model file with its cached predictor."""

    def __init__(self, model: str, precision: str = "f32", n_threads: Optional[int] = None) -> None:
        """`model` is a name (`gp-hyper`, found in `model_dirs()`) or a path to a `.pfn` file.
        `precision` is "f32" or "bf16"; `n_threads` None uses every core."""
    path: str
    name: str                  # file stem
    digest: str
    task: str                  # "regression" | "classification"
    prior: str
    min_features: int
    max_features: int
    n_classes: int             # the head's class count (0 for regression)
    min_context: int
    max_context: int
    precision: str             # settable: "f32" | "bf16"
    n_threads: int
    last_compute_seconds: float  # engine time of the last predict / predict_proba (GIL released)

    def predict(
        self,
        x_context: F64,
        y_context: F64,
        x_query: F64,
        calibrate: bool = False,
        seed: int = 0,
    ) -> "Predictive":
        """Regression. x_context (n, f), y_context (n,), x_query (m, f); f in
        [min_features, max_features]; inputs and targets are normalised as in training and the
        predictive is returned in the units of y. With `calibrate`, a context of 50 rows or more
        tempers the bucket densities by a power fitted by 5-fold cross-validation over its rows
        (folds seeded by `seed`)."""

    def predict_proba(
        self,
        x_context: F64,
        y_context: I64,
        x_query: F64,
        n_classes: int,
        n_ensemble: int = 1,
        seed: int = 0,
        calibrate: bool = False,
    ) -> F64:
        """Classification. y_context holds class codes 0..n_classes-1 (n_classes ≤ the model's);
        returns (m, n_classes) probabilities (rows sum to 1), pooled over `n_ensemble` members
        (feature orders, class renamings and normal scores, seeded by `seed`; 1 = the data as
        given). With `calibrate`, a context of 50 rows or more tempers them: p**beta,
        renormalised, with beta fitted by 5-fold cross-validation over the context rows."""

class Predictive:
    """The posterior predictive distributions of m queries (a Riemann/bar distribution each, in the
    units of y). Every method is vectorised over the m queries."""

    def __len__(self) -> int: ...
    def mean(self) -> F64: ...          # (m,)
    def median(self) -> F64: ...        # (m,)
    def mode(self) -> F64: ...          # (m,)
    def variance(self) -> F64: ...      # (m,)
    def std(self) -> F64: ...           # (m,)
    def entropy(self) -> F64: ...       # (m,) differential entropy, nats
    def pdf(self, y: F64) -> F64:
        """y (m, k): density of query i at y[i, j]; returns (m, k)."""
    def logpdf(self, y: F64) -> F64:
        """As pdf, natural log (finite far into the tails)."""
    def cdf(self, y: F64) -> F64:
        """y (m, k) -> (m, k)."""
    def icdf(self, p: F64) -> F64:
        """p (m, k) in [0, 1] -> (m, k) quantiles (p = 0 and 1 give -inf and +inf for a
        full-support model)."""
    def expected_improvement(self, best: F64) -> F64:
        """best (m,) -> (m,); maximisation: E[max(Y - best, 0)]."""
    def probability_of_improvement(self, best: F64) -> F64:
        """best (m,) -> (m,); P(Y > best)."""
    def upper_confidence_bound(self, rest_probability: F64) -> F64:
        """rest_probability (m,) in [0, 1] -> (m,) upper quantiles icdf(1 - rest)."""
    def sample(self, n: int, seed: int = 0) -> F64:
        """(m, n) draws, seeded."""
    def borders(self) -> F64:
        """(B+1,) bucket borders in the units of y."""
    def probabilities(self) -> F64:
        """(m, B) bucket probabilities."""

def sample_prior(
    name: str,
    batch_size: int,
    seq_len: int,
    num_features: Optional[int] = None,
    seed: int = 0,
    batch_index: int = 0,
) -> tuple[F32, F32, F32]:
    """Datasets from a registry prior (the names of `pfn sample-prior --list`): x (B, T, F),
    y (B, T), target_y (B, T), float32, the same draws as the Rust trainer's."""

def prior_names() -> list[str]:
    """Names of the registry's priors."""

def train(
    config: str,
    out: str,
    prior: Optional[Callable] = None,
    resume: bool = False,
    quiet: bool = True,
) -> dict:
    """Trains a model from a run configuration given as TOML text (the format of `pfn train
    --config`) and writes the model file `out` and its checkpoint `out + ".ckpt"` atomically,
    exactly as the command line does. With `prior`, the datasets come from the Python function
    `prior(batch_size, seq_len, num_features, rng)` (rng: a `numpy.random.Generator` seeded from
    the run seed and the batch index) returning (x, y) or (x, y, target_y) shaped (B, T, F),
    (B, T), (B, T); the config's `prior.name` is then only a label. `run.threads` sizes the
    process-wide sampling pool on the first call only. Returns a summary dict: steps,
    steps_this_session, datasets, seconds, datasets_per_second, steps_per_second,
    final_validation_loss, last_loss, validation_history (list of (step, loss)), complete (the
    budget was spent and the model file written), out, checkpoint."""
