//! Reproductions of the experiments of "Transformers Can Do Bayesian Inference" (Müller et al.,
//! ICLR 2022) behind `pfn reproduce <experiment>`:
//!
//! * [`gp_fit`] — Fig. 3/4a: prior-data NLL per context size of PFN artifacts against the exact
//!   GP on held-out datasets of their GP prior;
//! * [`gp_hyper`] — Fig. 4b: on the GP hyper-prior, the PFN against type-II ML, NUTS 32+32 and
//!   256+256 and the oracle exact GP: NLL per context size, wall time per dataset, speed-ups;
//! * [`prior_nll`] — the one Prior-Data NLL evaluator (PFN and exact GP per context size on
//!   held-out prior data, through the user's path), used by `gp-fit` and `pfn eval`;
//! * [`bnn`] — Fig. 5: on the BNN classification prior, BCE against inference time for the PFN,
//!   SVI and NUTS over their budgets;
//! * [`tabular`] — Tables 1/7: a tabular-classification PFN against tuned logistic regression,
//!   kNN, GP classifier and XGBoost on small real datasets ([`tabular_data`]), under the paper's
//!   protocol (balanced binary, 30 context rows) and with larger contexts;
//! * [`strokes`] — Table 2 (§7): a PFN trained on the stroke prior classifies real Omniglot
//!   characters ([`omniglot`]) 5-way 5-shot, against nearest-neighbour and logistic-regression
//!   baselines on the same episodes, and the baselines on the 20-way 1-shot runs.
//!
//! [`run_experiment`] writes a Markdown report (tables, the exact command and seed, machine,
//! wall times), PNG plots and `results.json` into the output directory. Without a PFN model an
//! experiment still runs its baselines and says [`report::NO_MODEL`]. The PFN side goes through
//! `pfn_infer::Predictor` (context encoded once, then the queries).
//!
//! ```no_run
//! use pfn_experiments::{run_experiment, Experiment, ExperimentOptions};
//!
//! let mut options = ExperimentOptions::new(Experiment::GpHyper, "results/gp-hyper");
//! options.quick = true;
//! let outcome = run_experiment(&options)?;
//! println!("{}", outcome.markdown);
//! # Ok::<(), pfn_experiments::ExperimentError>(())
//! ```
#![warn(missing_docs)]

pub mod bnn;
pub mod datasets;
pub mod error;
pub mod figures;
pub mod gp_fit;
pub mod gp_hyper;
pub mod machine;
pub mod models;
pub mod omniglot;
pub mod options;
pub mod prior_nll;
pub mod progress;
pub mod report;
pub mod stats;
pub mod strokes;
pub mod tabular;
pub mod tabular_data;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

pub use error::ExperimentError;
pub use options::{parse_count_list, Experiment, ExperimentOptions};
pub use report::NO_MODEL;

/// The results of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ExperimentResult {
    /// `gp-fit`.
    GpFit(gp_fit::GpFitResult),
    /// `gp-hyper`.
    GpHyper(gp_hyper::GpHyperResult),
    /// `bnn`.
    Bnn(bnn::BnnResult),
    /// `tabular`.
    Tabular(Box<tabular::TabularResult>),
    /// `strokes`.
    Strokes(Box<strokes::StrokesResult>),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The Markdown report file.
    pub report: PathBuf,
    /// The JSON results file.
    pub results: PathBuf,
    /// The plot files.
    pub plots: Vec<PathBuf>,
    /// The report's text.
    pub markdown: String,
    /// The results.
    pub result: ExperimentResult,
}

/// Runs an experiment and writes its report, plots and JSON results into `options.out`.
pub fn run_experiment(options: &ExperimentOptions) -> Result<Outcome, ExperimentError> {
    options.validate()?;
    report::create_out_dir(&options.out)?;
    let start = Instant::now();
    let info = report::RunInfo::start(options);
    let dir = options.out.as_path();
    let (markdown, result, plots) = match options.experiment {
        Experiment::GpFit => {
            let mut r = gp_fit::run(options, info)?;
            let mut plots = Vec::new();
            for sec in &mut r.sections {
                plots.extend(gp_fit::plot(sec, dir)?);
            }
            r.run.total_seconds = start.elapsed().as_secs_f64();
            (gp_fit::markdown(&r), ExperimentResult::GpFit(r), plots)
        }
        Experiment::GpHyper => {
            let mut r = gp_hyper::run(options, info)?;
            let plots = gp_hyper::plot(&mut r, dir)?;
            r.run.total_seconds = start.elapsed().as_secs_f64();
            (gp_hyper::markdown(&r), ExperimentResult::GpHyper(r), plots)
        }
        Experiment::Bnn => {
            let mut r = bnn::run(options, info)?;
            let plots = bnn::plot(&mut r, dir)?;
            r.run.total_seconds = start.elapsed().as_secs_f64();
            (bnn::markdown(&r), ExperimentResult::Bnn(r), plots)
        }
        Experiment::Tabular => {
            let mut r = tabular::run(options, info)?;
            let plots = tabular::plot(&mut r, dir)?;
            r.run.total_seconds = start.elapsed().as_secs_f64();
            (
                tabular::markdown(&r),
                ExperimentResult::Tabular(Box::new(r)),
                plots,
            )
        }
        Experiment::Strokes => {
            let mut r = strokes::run(options, info)?;
            let plots = strokes::plot(&mut r, dir)?;
            r.run.total_seconds = start.elapsed().as_secs_f64();
            (
                strokes::markdown(&r),
                ExperimentResult::Strokes(Box::new(r)),
                plots,
            )
        }
    };
    let report = report::write_text(dir, report::REPORT_FILE, &markdown)?;
    let json = serde_json::to_string_pretty(&result)?;
    let results = report::write_text(dir, report::RESULTS_FILE, &json)?;
    Ok(Outcome {
        report,
        results,
        plots,
        markdown,
        result,
    })
}
