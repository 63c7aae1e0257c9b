//! `pfn sample-prior`: draw datasets from a named prior, write them as CSV with the drawn
//! hyperparameters in a sidecar JSON, and optionally plot them (y against x0, or for an image
//! prior a grid of its episodes).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pfn_plot::classes::CLASS_PALETTE;
use pfn_plot::images::{ImageGrid, ImageRow, ImageTile};
use pfn_plot::{Figure, Series, PALETTE};
use pfn_prior::{prior_by_name, prior_entry, Batch, StrokesDraw, PRIORS};

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
    /// Optional plot of the datasets (`.png` or `.svg`): y against x0, one colour per dataset; for
    /// an image prior (e.g. `strokes`) a grid of images, one row per dataset (episode), each image
    /// framed and captioned with its class.
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
        match prior_entry(&args.prior).and_then(|e| e.image_shape) {
            Some(shape) => plot_episodes(plot, &args.prior, shape, &batch)?,
            None => plot_batch(plot, &args.prior, &batch)?,
        }
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

/// At most this many episodes (rows) and images per episode are drawn.
const MAX_EPISODES: usize = 8;
const MAX_IMAGES: usize = 30;

/// The datasets of an image prior as a grid: one row per episode, its images in sequence order,
/// each framed and captioned in its class's colour; queries (after the episode's context, when
/// the prior records it) are captioned as such.
fn plot_episodes(path: &Path, prior: &str, shape: [usize; 2], b: &Batch) -> Result<()> {
    let pixels = shape[0] * shape[1];
    if b.num_features != pixels {
        bail!(
            "prior '{prior}' draws {} x {} images, but the batch has {} features",
            shape[0],
            shape[1],
            b.num_features
        );
    }
    let episodes = b.batch_size.min(MAX_EPISODES);
    let shown = b.seq_len.min(MAX_IMAGES);
    let mut context_note = None;
    let rows = (0..episodes)
        .map(|d| {
            let context = StrokesDraw::from_hyperparameters(&b.hyperparameters[d]).map(|draw| {
                context_note = Some(format!(
                    "the first {} images are the context ({} per class, shuffled), later ones queries",
                    draw.context_len(),
                    draw.shots
                ));
                draw.context_len()
            });
            let x = b.x_of(d);
            let tiles = b.y_of(d)[..shown]
                .iter()
                .enumerate()
                .map(|(t, &label)| {
                    let class = label.max(0.0) as usize;
                    let query = context.is_some_and(|c| t >= c);
                    ImageTile {
                        pixels: x[t * pixels..(t + 1) * pixels].to_vec(),
                        caption: if query {
                            format!("query: {class}")
                        } else {
                            format!("class {class}")
                        },
                        color: CLASS_PALETTE[class % CLASS_PALETTE.len()],
                    }
                })
                .collect();
            ImageRow {
                label: format!("episode {d}"),
                tiles,
            }
        })
        .collect();
    let mut subtitle =
        String::from("rows: episodes; images in sequence order, framed in their class colour");
    if let Some(note) = context_note {
        subtitle.push_str("; ");
        subtitle.push_str(&note);
    }
    if shown < b.seq_len || episodes < b.batch_size {
        subtitle.push_str(&format!(
            " (first {shown} of {} images, {episodes} of {} episodes)",
            b.seq_len, b.batch_size
        ));
    }
    let grid = ImageGrid {
        title: format!("{episodes} episodes from prior '{prior}'"),
        subtitle,
        image_shape: shape,
        scale: 3,
        rows,
    };
    grid.save(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_priors_plot_a_grid_of_episodes() {
        let dir = std::env::temp_dir().join(format!("pfn-sample-prior-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shape = prior_entry("strokes").unwrap().image_shape.unwrap();
        let batch = prior_by_name("strokes")
            .unwrap()
            .sample_batch(0, 0, 3, 27, shape[0] * shape[1])
            .unwrap();
        let png = dir.join("episodes.png");
        plot_episodes(&png, "strokes", shape, &batch).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
        let svg = dir.join("episodes.svg");
        plot_episodes(&svg, "strokes", shape, &batch).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("episode 2") && text.contains("query: "));
        assert!(text.contains("the first 25 images are the context"));
        // A batch whose rows are not images of that shape is refused.
        assert!(plot_episodes(&png, "strokes", [27, 28], &batch).is_err());
        // Non-image priors have no image shape and keep their scatter plot.
        assert!(prior_entry("gp-1d").unwrap().image_shape.is_none());
        std::fs::remove_dir_all(&dir).ok();
    }
}
