//! `pfn eval`: the Prior-Data NLL of a trained model on held-out datasets of its prior, per context
//! size, beside the exact GP when the prior is a GP; as a table, a Markdown report and a plot.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pfn_experiments::datasets::dataset_seed;
use pfn_experiments::prior_nll::{
    default_context_sizes, evaluate, PriorNllOptions, PriorNllReport,
};
use pfn_infer::Predictor;
use pfn_plot::{Figure, Series, PALETTE};

/// Arguments of `pfn eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trained model file (from `pfn train`).
    #[arg(long)]
    pub model: PathBuf,
    /// Number of held-out prior datasets.
    #[arg(long, default_value_t = 1000)]
    pub datasets: usize,
    /// Context sizes, comma-separated (default: 0,1,2,3,5,10,20,30,40,50 up to the largest
    /// context size the model was trained on). The query is point max(sizes) of every dataset.
    #[arg(long)]
    pub sizes: Option<String>,
    /// Seed of the held-out datasets (default: derived from the model's run seed, distinct from
    /// its training and validation data).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Registry prior of the held-out datasets (default: the model's own), e.g. to score a model
    /// fine-tuned on a variant of a prior on the original prior's datasets.
    #[arg(long)]
    pub prior: Option<String>,
    /// Markdown report to write.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Plot of NLL against context size (`.png` or `.svg`).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Compute threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Arithmetic of the model's matrix products: f32, or bf16 (operands rounded to bfloat16, f32
    /// accumulation; about twice as fast on CPUs with AVX-512 BF16).
    #[arg(long, default_value = "f32")]
    pub precision: pfn_model::Precision,
}

fn parse_sizes(text: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(
            part.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--sizes: '{part}' is not a non-negative integer"))?,
        );
    }
    if out.is_empty() {
        bail!("--sizes: give at least one context size");
    }
    Ok(out)
}

fn cell(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.3}"))
}

/// What the report header adds to the last run's budget: for a model trained in stages, every
/// recorded run together, and where its history starts.
fn lineage_note(meta: &pfn_artifact::ModelMetadata) -> String {
    match meta.init_from() {
        None => String::new(),
        Some(start) if meta.lineage.is_empty() => {
            format!(" (this run only: it started from {start})")
        }
        Some(start) => format!(
            " (this run, from {start}; in all: {})",
            super::models::runs_in_all(meta)
        ),
    }
}

/// The report as a Markdown document.
fn markdown(args: &Args, predictor: &Predictor, r: &PriorNllReport) -> String {
    let meta = predictor.metadata();
    let has_gp = r.mean_gp.is_some();
    let mut s = String::new();
    let _ = writeln!(s, "# Prior-Data NLL of `{}`\n", args.model.display());
    let _ = writeln!(
        s,
        "- prior: `{}`; model: {} parameters (emsize {}, {} layers, {} heads, nhid {}, {} outputs), {} matrix products; sha256 `{}`",
        r.prior,
        predictor.model().num_params(),
        meta.architecture.emsize,
        meta.architecture.nlayers,
        meta.architecture.nhead,
        meta.architecture.nhid,
        meta.architecture.n_out,
        predictor.precision(),
        predictor.digest()
    );
    let _ = writeln!(
        s,
        "- training: {} steps, {} datasets, {:.0} s{}; final validation loss {}",
        meta.training.steps,
        meta.training.datasets,
        meta.training.seconds,
        lineage_note(meta),
        cell(meta.final_validation_loss)
    );
    let _ = writeln!(
        s,
        "- evaluation: {} held-out datasets (seed {}), query = point {} of each dataset, context = its first n points; the model is asked as a user asks it (the normalisation its file records; a padded dataset with its used columns only), in batched passes{}",
        r.datasets,
        r.seed,
        r.query_index,
        if has_gp {
            "; exact GP with each dataset's true hyperparameters"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "- time: PFN {:.2} s, exact GP {:.2} s\n",
        r.pfn_seconds, r.gp_seconds
    );
    if has_gp {
        let _ = writeln!(
            s,
            "| n | PFN NLL | exact GP NLL | gap (nats) |\n|---:|---:|---:|---:|"
        );
        for row in &r.rows {
            let _ = writeln!(
                s,
                "| {} | {:.3} ± {:.3} | {:.3} ± {:.3} | {:.3} ± {:.3} |",
                row.n,
                row.pfn.mean,
                row.pfn.se,
                row.gp.map_or(f64::NAN, |g| g.mean),
                row.gp.map_or(f64::NAN, |g| g.se),
                row.gap.map_or(f64::NAN, |g| g.mean),
                row.gap.map_or(f64::NAN, |g| g.se),
            );
        }
        let _ = writeln!(
            s,
            "| mean | {:.3} | {} | {} |",
            r.mean_pfn,
            cell(r.mean_gp),
            cell(r.mean_gap)
        );
        let _ = writeln!(
            s,
            "\n± is one standard error over datasets; the gap is paired (PFN − GP on the same points)."
        );
    } else {
        let _ = writeln!(s, "| n | PFN NLL |\n|---:|---:|");
        for row in &r.rows {
            let _ = writeln!(s, "| {} | {:.3} ± {:.3} |", row.n, row.pfn.mean, row.pfn.se);
        }
        let _ = writeln!(s, "| mean | {:.3} |", r.mean_pfn);
    }
    s
}

fn plot(path: &Path, r: &PriorNllReport) -> Result<()> {
    let mut fig = Figure::new(
        &format!(
            "Prior-data NLL on {} held-out '{}' datasets",
            r.datasets, r.prior
        ),
        "context size n",
        "NLL of the held-out point (nats)",
    );
    let xs: Vec<f64> = r.rows.iter().map(|row| row.n as f64).collect();
    fig.series.push(Series::Band {
        label: String::new(),
        x: xs.clone(),
        lower: r
            .rows
            .iter()
            .map(|row| row.pfn.mean - 2.0 * row.pfn.se)
            .collect(),
        upper: r
            .rows
            .iter()
            .map(|row| row.pfn.mean + 2.0 * row.pfn.se)
            .collect(),
        color: PALETTE[0],
        opacity: 0.2,
    });
    let pfn: Vec<(f64, f64)> = r
        .rows
        .iter()
        .map(|row| (row.n as f64, row.pfn.mean))
        .collect();
    fig.series.push(Series::Line {
        label: "PFN".into(),
        points: pfn.clone(),
        color: PALETTE[0],
        dashed: false,
    });
    fig.series.push(Series::Points {
        label: String::new(),
        points: pfn,
        color: PALETTE[0],
        radius: 3,
    });
    if r.mean_gp.is_some() {
        let gp: Vec<(f64, f64)> = r
            .rows
            .iter()
            .filter_map(|row| row.gp.map(|g| (row.n as f64, g.mean)))
            .collect();
        fig.series.push(Series::Line {
            label: "exact GP".into(),
            points: gp.clone(),
            color: PALETTE[1],
            dashed: true,
        });
        fig.series.push(Series::Points {
            label: String::new(),
            points: gp,
            color: PALETTE[1],
            radius: 3,
        });
    }
    fig.save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let mut predictor =
        Predictor::with_threads(&pfn_artifact::load_model(&args.model)?, args.threads)?;
    predictor.set_precision(args.precision);
    let sizes = match &args.sizes {
        Some(text) => parse_sizes(text)?,
        None => default_context_sizes(
            predictor.min_trained_context(),
            predictor.max_trained_context(),
        ),
    };
    let seed = args
        .seed
        .unwrap_or_else(|| dataset_seed(predictor.metadata().run_seed().unwrap_or_default()));
    let label = args.model.display().to_string();
    let report = evaluate(
        &predictor,
        &label,
        &PriorNllOptions {
            datasets: args.datasets,
            context_sizes: sizes,
            seed,
            prior: args.prior.clone(),
        },
    )?;
    let text = markdown(args, &predictor, &report);
    print!("{text}");
    if let Some(out) = &args.out {
        pfn_artifact::write_atomically(out, |w| w.write_all(text.as_bytes()))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("report: {}", out.display());
    }
    if let Some(p) = &args.plot {
        plot(p, &report)?;
        eprintln!("plot: {}", p.display());
    }
    Ok(())
}
