//! Answers one validated request: the PFN's predictive statistics, intervals and density heat map
//! at the query points, the out-of-range flags, and the reference GP overlay with the comparison
//! numbers.

use std::time::Instant;

use pfn_distribution::normal;
use pfn_gp::KernelKind;

use crate::api::{
    Comparison, GpOverlay, Heatmap, HyperSummary, IntervalBand, OutOfRange, PredictResponse,
    ValidRequest,
};
use crate::catalog::ModelEntry;
use crate::divergence::gaussian_to_predictive;
use crate::error::ApiError;
use crate::posterior::PosteriorError;

/// What the comparison numbers mean, sent with every overlay.
pub const COMPARISON_DEFINITION: &str = "kl[j] = KL(GP || PFN) of the predictive distributions of a noisy observation at query point j, in nats, computed in closed form on the PFN's buckets; mean_cross_entropy = mean over j of E_{y~GP}[-log q_PFN(y)], the PFN's expected NLL on data drawn from the GP posterior predictive; mean_gp_entropy = its lower bound (mean GP entropy); mean_kl = mean_cross_entropy - mean_gp_entropy";

/// Quantile probabilities used for the automatic heat-map range.
const AUTO_RANGE_TAIL: f64 = 0.005;

fn posterior_error(e: PosteriorError) -> ApiError {
    match e {
        PosteriorError::InvalidInput(m) => ApiError::field("x", m),
        other => ApiError::Internal(other.to_string()),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn outside(range: Option<[f64; 2]>, v: &[f64]) -> Vec<usize> {
    match range {
        Some([lo, hi]) => v
            .iter()
            .enumerate()
            .filter(|(_, &x)| x < lo || x > hi)
            .map(|(i, _)| i)
            .collect(),
        None => Vec::new(),
    }
}

fn out_of_range(entry: &ModelEntry, req: &ValidRequest, warnings: &mut Vec<String>) -> OutOfRange {
    let info = &entry.info;
    let mut trained_x = info.trained_x_range;
    if info.x_normalisation == "context_min_max" && !req.x.is_empty() {
        let lo = req.x.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = req.x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        trained_x = Some([lo, hi]);
    }
    let trained_y = info.trained_y_range;
    let context_x = outside(trained_x, &req.x);
    let context_y = outside(trained_y, &req.y);
    let query_x = outside(trained_x, &req.query);
    let fmt = |r: [f64; 2]| format!("[{}, {}]", r[0], r[1]);
    if let (false, Some(r)) = (context_x.is_empty(), trained_x) {
        warnings.push(format!(
            "{} of {} context points have x outside the trained range {}: the model never saw inputs there",
            context_x.len(),
            req.x.len(),
            fmt(r)
        ));
    }
    if let (false, Some(r)) = (context_y.is_empty(), trained_y) {
        warnings.push(format!(
            "{} of {} context points have y outside the range of the training targets {}",
            context_y.len(),
            req.y.len(),
            fmt(r)
        ));
    }
    if let (false, Some(r)) = (query_x.is_empty(), trained_x) {
        let what = if info.x_normalisation == "context_min_max" {
            "the context's x range (the model min-max scales x with the context)"
        } else {
            "the trained x range"
        };
        warnings.push(format!(
            "{} of {} query points lie outside {what} {}: predictions there are extrapolations",
            query_x.len(),
            req.query.len(),
            fmt(r)
        ));
    }
    let any = !(context_x.is_empty() && context_y.is_empty() && query_x.is_empty());
    OutOfRange {
        trained_x_range: trained_x,
        trained_y_range: trained_y,
        context_x,
        context_y,
        query_x,
        any,
    }
}

/// The GP's predictive at the query points, if the model has a reference and it can be fitted.
struct GpPart {
    kind: String,
    label: String,
    description: String,
    hyper: HyperSummary,
    mean: Vec<f64>,
    var_y: Vec<f64>,
}

fn fit_gp(entry: &ModelEntry, req: &ValidRequest, warnings: &mut Vec<String>) -> Option<GpPart> {
    let reference = entry.reference.as_ref()?;
    if !req.gp {
        return None;
    }
    let fitted = match reference.fit(&req.x, &req.y, 1) {
        Ok(Some(f)) => f,
        Ok(None) => {
            warnings.push(
                "the reference GP needs at least one context point for this prior (its hyperparameters are fitted)"
                    .to_string(),
            );
            return None;
        }
        Err(e) => {
            warnings.push(format!("reference GP failed: {e}"));
            return None;
        }
    };
    let pred = match fitted.predict(&req.query) {
        Ok(p) => p,
        Err(e) => {
            warnings.push(format!("reference GP prediction failed: {e}"));
            return None;
        }
    };
    let h = fitted.gp.hyper();
    Some(GpPart {
        kind: fitted.kind.to_string(),
        label: reference.label().to_string(),
        description: fitted.description,
        hyper: HyperSummary {
            kernel: match h.kind {
                KernelKind::Rbf => "rbf",
                KernelKind::Matern52 => "matern52",
            }
            .to_string(),
            lengthscales: h.lengthscales.clone(),
            outputscale: h.outputscale,
            noise: h.noise,
        },
        mean: pred.mean,
        var_y: pred.var_y,
    })
}

fn mean_of(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Computes the full answer for `req` on `entry`'s model.
pub fn predict(entry: &ModelEntry, req: &ValidRequest) -> Result<PredictResponse, ApiError> {
    let started = Instant::now();
    let backend = entry
        .backend
        .as_ref()
        .ok_or_else(|| ApiError::UnsupportedModel {
            name: entry.info.name.clone(),
            reason: entry
                .info
                .unsupported_reason
                .clone()
                .unwrap_or_else(|| "no network loaded".into()),
        })?;
    let mut warnings = Vec::new();
    let out_of_range = out_of_range(entry, req, &mut warnings);
    let preds = backend
        .predict(&req.x, &req.y, &req.query)
        .map_err(posterior_error)?;
    let m = req.query.len();
    if preds.len() != m {
        return Err(ApiError::Internal(format!(
            "the model returned {} predictives for {m} query points",
            preds.len()
        )));
    }
    let gp = fit_gp(entry, req, &mut warnings);

    let mut mean = Vec::with_capacity(m);
    let mut median = Vec::with_capacity(m);
    let mut std = Vec::with_capacity(m);
    let mut bands: Vec<IntervalBand> = req
        .levels
        .iter()
        .map(|&level| IntervalBand {
            level,
            lower: Vec::with_capacity(m),
            upper: Vec::with_capacity(m),
        })
        .collect();
    let mut kl = Vec::new();
    let mut cross_entropy = Vec::new();
    let mut gp_entropy = Vec::new();
    let mut auto_lo = f64::INFINITY;
    let mut auto_hi = f64::NEG_INFINITY;
    for (j, p) in preds.iter().enumerate() {
        mean.push(p.mean());
        median.push(p.median());
        std.push(p.std());
        for band in &mut bands {
            let (lo, hi) = p.interval(band.level).map_err(internal)?;
            band.lower.push(lo);
            band.upper.push(hi);
        }
        if let Some(g) = &gp {
            match gaussian_to_predictive(g.mean[j], g.var_y[j], p) {
                Some(c) => {
                    kl.push(Some(c.kl));
                    cross_entropy.push(c.cross_entropy);
                    gp_entropy.push(c.entropy);
                }
                None => {
                    kl.push(None);
                    gp_entropy.push(
                        0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * g.var_y[j]).ln(),
                    );
                }
            }
        }
        if matches!(req.heatmap, Some((_, None))) {
            auto_lo = auto_lo.min(p.quantile(AUTO_RANGE_TAIL).map_err(internal)?);
            auto_hi = auto_hi.max(p.quantile(1.0 - AUTO_RANGE_TAIL).map_err(internal)?);
        }
    }

    let heatmap = match req.heatmap {
        None => None,
        Some((rows, range)) => {
            let (lo, hi) = match range {
                Some(r) => r,
                None => {
                    let pad = 0.05 * (auto_hi - auto_lo).max(1e-6);
                    (auto_lo - pad, auto_hi + pad)
                }
            };
            let y: Vec<f64> = (0..rows)
                .map(|i| lo + (hi - lo) * i as f64 / (rows - 1) as f64)
                .collect();
            let mut density = vec![vec![0.0f32; m]; rows];
            let mut max_density = 0.0f32;
            for (j, p) in preds.iter().enumerate() {
                for (row, &yi) in density.iter_mut().zip(&y) {
                    let d = p.pdf(yi) as f32;
                    let d = if d.is_finite() { d } else { 0.0 };
                    row[j] = d;
                    max_density = max_density.max(d);
                }
            }
            Some(Heatmap {
                y,
                density,
                max_density,
            })
        }
    };

    let gp = gp.map(|g| {
        let sd: Vec<f64> = g.var_y.iter().map(|v| v.sqrt()).collect();
        let intervals = req
            .levels
            .iter()
            .map(|&level| {
                let z = normal::upper_tail_inverse(0.5 * (1.0 - level));
                IntervalBand {
                    level,
                    lower: g.mean.iter().zip(&sd).map(|(mu, s)| mu - z * s).collect(),
                    upper: g.mean.iter().zip(&sd).map(|(mu, s)| mu + z * s).collect(),
                }
            })
            .collect();
        let all_defined = kl.iter().all(Option::is_some);
        let defined: Vec<f64> = kl.iter().flatten().copied().collect();
        if !all_defined {
            warnings.push(
                "KL(GP || PFN) is infinite: the PFN's bounded support excludes part of the GP's predictive"
                    .to_string(),
            );
        }
        let comparison = Comparison {
            mean_kl: all_defined.then(|| mean_of(&defined)),
            max_kl: all_defined.then(|| defined.iter().copied().fold(0.0, f64::max)),
            mean_cross_entropy: all_defined.then(|| mean_of(&cross_entropy)),
            mean_gp_entropy: mean_of(&gp_entropy),
            kl,
            definition: COMPARISON_DEFINITION,
        };
        GpOverlay {
            kind: g.kind,
            label: g.label,
            description: g.description,
            hyper: g.hyper,
            mean: g.mean,
            std: sd,
            intervals,
            comparison,
        }
    });

    Ok(PredictResponse {
        model: entry.info.name.clone(),
        n_context: req.x.len(),
        x: req.query.clone(),
        mean,
        median,
        std,
        intervals: bands,
        heatmap,
        gp,
        out_of_range,
        warnings,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}
