//! `pfn sample-prior`: draw datasets from a named prior, write them as CSV with the drawn
//! hyperparameters in a sidecar JSON, and optionally plot them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pfn_plot::{Figure, Series, PALETTE};
use pfn_prior::{prior_by_name, Batch, PRIORS};

/// Arguments of `pfn sample-prior`.
#[derive(Debug, clap::Args)]
#[command(after_help = priors_help())]
pub struct Args {
    /// Prior name (see the list below).
    #[arg(long)]
    pub prior: String,
    /// Number of datasets to draw.
    #[arg(long, default_value_t = 4)]
    pub datasets: usize,
    /// Points per dataset.
    #[arg(long, default_value_t = 100)]
    pub points: usize,
    /// Number of input features (default: the prior's own default).
    #[arg(long)]
    pub features: Option<usize>,
    /// Seed; the same seed always gives the same datasets, whatever the thread count.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output CSV (`dataset,x0,...,x{d-1},y`); hyperparameters go to the same path with `.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// Optional plot of the datasets (`.png` or `.svg`): y against x0, one colour per dataset.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

fn priors_help() -> String {
    let mut s = String::from("Priors:\n");
    for e in PRIORS {
        s.push_str(&format!("  {:<16} {}\n", e.name, e.description));
    }
    s
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    if args.datasets == 0 {
        bail!("--datasets must be at least 1");
    }
    if args.points == 0 {
        bail!("--points must be at least 1");
    }
    let prior = prior_by_name(&args.prior)?;
    let features = args
        .features
        .unwrap_or_else(|| prior.default_num_features());
    let batch = prior
        .sample_batch(args.seed, 0, args.datasets, args.points, features)
        .with_context(|| format!("sampling prior '{}'", args.prior))?;
    write_csv(&args.out, &batch)?;
    let json_path = args.out.with_extension("json");
    write_sidecar(&json_path, args, &batch)?;
    println!(
        "wrote {} datasets x {} points x {} features to {} (hyperparameters: {})",
        batch.batch_size,
        batch.seq_len,
        batch.num_features,
        args.out.display(),
        json_path.display()
    );
    if let Some(plot) = &args.plot {
        plot_batch(plot, &args.prior, &batch)?;
        println!("plot: {}", plot.display());
    }
    Ok(())
}

fn write_csv(path: &Path, b: &Batch) -> Result<()> {
    pfn_artifact::write_atomically(path, |w| {
        let mut header = String::from("dataset");
        for f in 0..b.num_features {
            header.push_str(&format!(",x{f}"));
        }
        header.push_str(",y");
        writeln!(w, "{header}")?;
        for d in 0..b.batch_size {
            let x = b.x_of(d);
            let y = b.y_of(d);
            for t in 0..b.seq_len {
                write!(w, "{d}")?;
                for v in &x[t * b.num_features..(t + 1) * b.num_features] {
                    write!(w, ",{v}")?;
                }
                writeln!(w, ",{}", y[t])?;
            }
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}

fn write_sidecar(path: &Path, args: &Args, b: &Batch) -> Result<()> {
    let datasets: Vec<serde_json::Value> = (0..b.batch_size)
        .map(|d| {
            serde_json::json!({
                "dataset": d,
                "features_used": b.features_used[d],
                "hyperparameters": b.hyperparameters[d],
            })
        })
        .collect();
    let doc = serde_json::json!({
        "prior": args.prior,
        "seed": args.seed,
        "datasets": b.batch_size,
        "points": b.seq_len,
        "features": b.num_features,
        "targets_differ_from_y": b.y != b.target_y,
        "per_dataset": datasets,
    });
    pfn_artifact::write_atomically(path, |w| {
        serde_json::to_writer_pretty(&mut *w, &doc)?;
        writeln!(w)
    })
    .with_context(|| format!("writing {}", path.display()))
}

fn plot_batch(path: &Path, prior: &str, b: &Batch) -> Result<()> {
    let shown = b.batch_size.min(PALETTE.len());
    let mut fig = Figure::new(&format!("{shown} datasets from prior '{prior}'"), "x0", "y");
    for d in 0..shown {
        let x = b.x_of(d);
        let y = b.y_of(d);
        let mut pts: Vec<(f64, f64)> = (0..b.seq_len)
            .map(|t| (x[t * b.num_features] as f64, y[t] as f64))
            .collect();
        let color = PALETTE[d % PALETTE.len()];
        if b.num_features == 1 {
            pts.sort_by(|a, c| a.0.total_cmp(&c.0));
            fig.series.push(Series::Line {
                label: String::new(),
                points: pts.clone(),
                color,
                dashed: false,
            });
        }
        fig.series.push(Series::Points {
            label: format!("dataset {d}"),
            points: pts,
            color,
            radius: 3,
        });
    }
    fig.save(path)?;
    Ok(())
}
