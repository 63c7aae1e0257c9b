//! The JSON shapes of the API and the validation of requests. The README section "pfn serve"
//! documents them for users.

use serde::{Deserialize, Serialize};

use crate::catalog::ModelInfo;
use crate::error::ApiError;

/// Largest accepted request body (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most query points (grid or explicit) per request.
pub const MAX_QUERY_POINTS: usize = 2000;
/// Most rows (y values) of the density heat map.
pub const MAX_HEATMAP_ROWS: usize = 400;
/// Most cells (rows x query points) of the density heat map.
pub const MAX_HEATMAP_CELLS: usize = 300_000;
/// Most central-interval levels per request.
pub const MAX_LEVELS: usize = 8;
/// Levels used when the request gives none.
pub const DEFAULT_LEVELS: [f64; 3] = [0.5, 0.9, 0.99];
/// Grid size used when the request gives neither `grid` nor `query`.
pub const DEFAULT_GRID_POINTS: usize = 200;
/// Heat-map rows used when the request does not say.
pub const DEFAULT_HEATMAP_ROWS: usize = 100;

fn default_true() -> bool {
    true
}

/// An evenly spaced grid of `n` query points from `min` to `max` (both included).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// First point.
    pub min: f64,
    /// Last point.
    pub max: f64,
    /// Number of points (2 ..= [`MAX_QUERY_POINTS`]).
    pub n: usize,
}

impl GridSpec {
    /// The grid's points.
    pub fn points(&self) -> Vec<f64> {
        let step = (self.max - self.min) / (self.n - 1) as f64;
        (0..self.n)
            .map(|i| {
                if i + 1 == self.n {
                    self.max
                } else {
                    self.min + step * i as f64
                }
            })
            .collect()
    }
}

/// The y axis of the density heat map: `n` rows from `y_min` to `y_max` (automatic range when
/// either is absent; `n = 0` turns the heat map off).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeatmapSpec {
    /// Lowest y (row 0).
    #[serde(default)]
    pub y_min: Option<f64>,
    /// Highest y (last row).
    #[serde(default)]
    pub y_max: Option<f64>,
    /// Number of rows.
    pub n: usize,
}

/// `POST /api/predict` body.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// Model name (see `GET /api/models`).
    pub model: String,
    /// Context inputs.
    pub x: Vec<f64>,
    /// Context targets, one per input.
    pub y: Vec<f64>,
    /// Query grid (give this or `query`; neither: the model's default x range, 200 points).
    #[serde(default)]
    pub grid: Option<GridSpec>,
    /// Explicit query inputs.
    #[serde(default)]
    pub query: Option<Vec<f64>>,
    /// Central-interval probabilities in (0, 1) (default 0.5, 0.9, 0.99).
    #[serde(default)]
    pub levels: Option<Vec<f64>>,
    /// Density heat map (default: 100 rows over an automatic y range).
    #[serde(default)]
    pub heatmap: Option<HeatmapSpec>,
    /// Whether to compute the reference GP overlay for GP-prior models (default true).
    #[serde(default = "default_true")]
    pub gp: bool,
}

/// A request that passed validation against a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest {
    /// Context inputs.
    pub x: Vec<f64>,
    /// Context targets.
    pub y: Vec<f64>,
    /// Query inputs.
    pub query: Vec<f64>,
    /// Interval levels.
    pub levels: Vec<f64>,
    /// Heat map rows and optional fixed range; `None`: no heat map.
    pub heatmap: Option<(usize, Option<(f64, f64)>)>,
    /// Whether to overlay the reference GP.
    pub gp: bool,
}

fn check_finite(field: &str, v: &[f64]) -> Result<(), ApiError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(ApiError::field(
            format!("{field}[{i}]"),
            format!("{} is not a finite number", v[i]),
        )),
        None => Ok(()),
    }
}

/// Parses a request body, naming the problem on failure (JSON has no NaN or Infinity literals;
/// a body that tries them gets a message saying so).
pub fn parse_request(body: &[u8]) -> Result<PredictRequest, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(body);
        let hint = if ["NaN", "Infinity"].iter().any(|t| text.contains(t)) {
            " (JSON has no NaN or Infinity: every number must be finite)"
        } else {
            ""
        };
        ApiError::MalformedJson(format!("invalid JSON request: {e}{hint}"))
    })
}

/// Checks `req` against the model's limits and fills in defaults.
pub fn validate(req: PredictRequest, info: &ModelInfo) -> Result<ValidRequest, ApiError> {
    if req.x.len() != req.y.len() {
        return Err(ApiError::LengthMismatch {
            x: req.x.len(),
            y: req.y.len(),
        });
    }
    if req.x.len() > info.max_context {
        return Err(ApiError::TooManyPoints {
            field: "x",
            given: req.x.len(),
            limit: info.max_context,
            why: format!(
                " (model '{}' was trained with at most {} context points)",
                info.name, info.max_context
            ),
        });
    }
    check_finite("x", &req.x)?;
    check_finite("y", &req.y)?;
    let query = match (req.grid, req.query) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "grid",
                "give either 'grid' or 'query', not both",
            ))
        }
        (Some(g), None) => {
            if !(g.min.is_finite() && g.max.is_finite() && (g.max - g.min).is_finite()) {
                return Err(ApiError::field(
                    "grid",
                    "min and max must be finite numbers",
                ));
            }
            if g.min >= g.max {
                return Err(ApiError::field(
                    "grid",
                    format!("min must be below max, got min {} and max {}", g.min, g.max),
                ));
            }
            if g.n < 2 {
                return Err(ApiError::field(
                    "grid.n",
                    format!("need at least 2 points, got {}", g.n),
                ));
            }
            if g.n > MAX_QUERY_POINTS {
                return Err(ApiError::TooManyPoints {
                    field: "grid.n",
                    given: g.n,
                    limit: MAX_QUERY_POINTS,
                    why: String::new(),
                });
            }
            g.points()
        }
        (None, Some(q)) => {
            if q.is_empty() {
                return Err(ApiError::field("query", "give at least one query point"));
            }
            if q.len() > MAX_QUERY_POINTS {
                return Err(ApiError::TooManyPoints {
                    field: "query",
                    given: q.len(),
                    limit: MAX_QUERY_POINTS,
                    why: String::new(),
                });
            }
            check_finite("query", &q)?;
            q
        }
        (None, None) => GridSpec {
            min: info.default_view.x[0],
            max: info.default_view.x[1],
            n: DEFAULT_GRID_POINTS,
        }
        .points(),
    };
    let levels = req.levels.unwrap_or_else(|| DEFAULT_LEVELS.to_vec());
    if levels.len() > MAX_LEVELS {
        return Err(ApiError::field(
            "levels",
            format!("at most {MAX_LEVELS} levels, got {}", levels.len()),
        ));
    }
    for (i, &l) in levels.iter().enumerate() {
        if !(l > 0.0 && l < 1.0) {
            return Err(ApiError::field(
                format!("levels[{i}]"),
                format!(
                    "a central-interval probability must lie strictly between 0 and 1, got {l}"
                ),
            ));
        }
        if levels[..i].contains(&l) {
            return Err(ApiError::field(
                format!("levels[{i}]"),
                format!("level {l} is given twice"),
            ));
        }
    }
    let heatmap = match req.heatmap {
        None => Some((DEFAULT_HEATMAP_ROWS, None)),
        Some(h) if h.n == 0 => None,
        Some(h) => {
            if h.n < 2 || h.n > MAX_HEATMAP_ROWS {
                return Err(ApiError::field(
                    "heatmap.n",
                    format!("need 0 (off) or 2 ..= {MAX_HEATMAP_ROWS} rows, got {}", h.n),
                ));
            }
            if h.n * query.len() > MAX_HEATMAP_CELLS {
                return Err(ApiError::field(
                    "heatmap.n",
                    format!(
                        "{} rows x {} query points = {} cells exceed the limit of {MAX_HEATMAP_CELLS}",
                        h.n,
                        query.len(),
                        h.n * query.len()
                    ),
                ));
            }
            let range = match (h.y_min, h.y_max) {
                (Some(lo), Some(hi)) => {
                    if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
                        return Err(ApiError::field(
                            "heatmap",
                            format!("need finite y_min < y_max, got {lo} and {hi}"),
                        ));
                    }
                    Some((lo, hi))
                }
                (None, None) => None,
                _ => {
                    return Err(ApiError::field(
                        "heatmap",
                        "give both y_min and y_max, or neither (automatic range)",
                    ))
                }
            };
            Some((h.n, range))
        }
    };
    if let Some((rows, _)) = heatmap {
        if rows * query.len() > MAX_HEATMAP_CELLS {
            return Err(ApiError::field(
                "heatmap.n",
                format!(
                    "{rows} rows x {} query points exceed the limit of {MAX_HEATMAP_CELLS} cells; ask for fewer rows or query points",
                    query.len()
                ),
            ));
        }
    }
    Ok(ValidRequest {
        x: req.x,
        y: req.y,
        query,
        levels,
        heatmap,
        gp: req.gp,
    })
}

/// A central interval at every query point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalBand {
    /// Probability mass inside the interval.
    pub level: f64,
    /// Lower ends, one per query point.
    pub lower: Vec<f64>,
    /// Upper ends.
    pub upper: Vec<f64>,
}

/// The PFN's predictive density on a y grid x the query points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heatmap {
    /// The y values of the rows, ascending.
    pub y: Vec<f64>,
    /// `density[i][j]`: the predictive density at `y[i]` for query point `j` (f32 precision).
    pub density: Vec<Vec<f32>>,
    /// Largest value in `density`.
    pub max_density: f32,
}

/// How the PFN's predictive compares with the reference GP's (see [`crate::divergence`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// `KL(GP ‖ PFN)` at each query point in nats (`null` where undefined: bounded support).
    pub kl: Vec<Option<f64>>,
    /// Mean of `kl` over the query points (`null` if any is undefined).
    pub mean_kl: Option<f64>,
    /// Largest `kl`.
    pub max_kl: Option<f64>,
    /// Mean over the query points of the PFN's expected negative log-likelihood of an
    /// observation drawn from the GP's predictive, `E_GP[−log q_PFN(y)]` (nats).
    pub mean_cross_entropy: Option<f64>,
    /// Mean entropy of the GP's predictive (the best possible `mean_cross_entropy`).
    pub mean_gp_entropy: f64,
    /// One-line definition of the numbers above.
    pub definition: &'static str,
}

/// GP hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HyperSummary {
    /// `rbf` or `matern52`.
    pub kernel: String,
    /// Lengthscales.
    pub lengthscales: Vec<f64>,
    /// Outputscale (signal variance).
    pub outputscale: f64,
    /// Noise variance.
    pub noise: f64,
}

/// The reference GP overlay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpOverlay {
    /// `exact`, `type2_map` or `type2_ml`.
    pub kind: String,
    /// Legend label: `GP (exact)`, `GP (type-II MAP)` or `GP (type-II ML)`.
    pub label: String,
    /// What it is, for people.
    pub description: String,
    /// Its hyperparameters.
    pub hyper: HyperSummary,
    /// Predictive mean at each query point.
    pub mean: Vec<f64>,
    /// Predictive standard deviation of an observation (noise included).
    pub std: Vec<f64>,
    /// Gaussian central intervals, same levels as the PFN's.
    pub intervals: Vec<IntervalBand>,
    /// Divergence and likelihood numbers.
    pub comparison: Comparison,
}

/// Which inputs lie outside what the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutOfRange {
    /// x range of the training data (for min-max normalised models: the context's range).
    pub trained_x_range: Option<[f64; 2]>,
    /// y range of the training targets (head borders), when y is not normalised.
    pub trained_y_range: Option<[f64; 2]>,
    /// Indices of context points with x outside `trained_x_range`.
    pub context_x: Vec<usize>,
    /// Indices of context points with y outside `trained_y_range`.
    pub context_y: Vec<usize>,
    /// Indices of query points outside `trained_x_range`.
    pub query_x: Vec<usize>,
    /// Whether any of the lists above is non-empty.
    pub any: bool,
}

/// `POST /api/predict` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictResponse {
    /// Model name.
    pub model: String,
    /// Number of context points.
    pub n_context: usize,
    /// Query inputs.
    pub x: Vec<f64>,
    /// PFN predictive mean.
    pub mean: Vec<f64>,
    /// PFN predictive median.
    pub median: Vec<f64>,
    /// PFN predictive standard deviation.
    pub std: Vec<f64>,
    /// PFN central intervals (exact quantiles of the bar distribution, tails included).
    pub intervals: Vec<IntervalBand>,
    /// PFN density heat map (`null` when turned off).
    pub heatmap: Option<Heatmap>,
    /// Reference GP overlay (`null` for non-GP priors, when turned off, or when it failed: see
    /// `warnings`).
    pub gp: Option<GpOverlay>,
    /// Inputs outside the training range.
    pub out_of_range: OutOfRange,
    /// Human-readable warnings (out-of-range inputs, GP failures).
    pub warnings: Vec<String>,
    /// Server-side computation time in milliseconds.
    pub elapsed_ms: f64,
}

/// `GET /api/models` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelsResponse {
    /// The models, sorted by name.
    pub models: Vec<ModelInfo>,
    /// Files of the models directory that could not be loaded.
    pub skipped: Vec<crate::catalog::SkippedFile>,
    /// Request limits of `/api/predict`.
    pub limits: Limits,
}

/// Request limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// [`MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// [`MAX_QUERY_POINTS`].
    pub max_query_points: usize,
    /// [`MAX_HEATMAP_ROWS`].
    pub max_heatmap_rows: usize,
    /// [`MAX_HEATMAP_CELLS`].
    pub max_heatmap_cells: usize,
    /// [`MAX_LEVELS`].
    pub max_levels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            max_query_points: MAX_QUERY_POINTS,
            max_heatmap_rows: MAX_HEATMAP_ROWS,
            max_heatmap_cells: MAX_HEATMAP_CELLS,
            max_levels: MAX_LEVELS,
        }
    }
}
