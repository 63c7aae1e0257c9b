//! `pfn predict`: posterior predictive of a trained model for the rows of a test CSV, given the
//! rows of a training CSV as context.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use pfn_infer::{load_predict_data, PosteriorPredictive, Predictor};

/// Output format of `pfn predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON document.
    Json,
    /// An aligned, human-readable table.
    Table,
}

/// Arguments of `pfn predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trained model file (from `pfn train`).
    #[arg(long)]
    pub model: PathBuf,
    /// Context rows: feature columns and the target column (CSV with a header).
    #[arg(long)]
    pub train: PathBuf,
    /// Query rows: the same feature columns, the target optionally (then its NLL is reported).
    #[arg(long)]
    pub test: PathBuf,
    /// Quantiles to report, comma-separated, each in (0, 1) (regression models).
    #[arg(long, default_value = "0.05,0.5,0.95")]
    pub quantiles: String,
    /// Output format (default: csv or json by the extension of --out, a table on the terminal).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Target column of the training file (default: its last column).
    #[arg(long)]
    pub target: Option<String>,
    /// Compute threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Plot (`.png` or `.svg`) of the posterior predictive over a grid of the single input feature:
    /// density heat map, mean, 50 % and 90 % central intervals, context and test points
    /// (regression models with one feature).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Parses `0.05,0.5,0.95`: every value a number strictly between 0 and 1.
pub fn parse_quantiles(text: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        let v: f64 = p
            .parse()
            .map_err(|_| anyhow::anyhow!("--quantiles: '{p}' is not a number"))?;
        if !(v > 0.0 && v < 1.0) {
            bail!("--quantiles: {p} is not strictly between 0 and 1");
        }
        out.push(v);
    }
    Ok(out)
}

/// Column name of quantile `p`: `q0.05`.
fn quantile_name(p: f64) -> String {
    format!("q{p}")
}

/// One output row: named numeric columns.
struct Row {
    values: Vec<f64>,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let quantiles = parse_quantiles(&args.quantiles)?;
    let predictor = Predictor::with_threads(&pfn_train::load_model(&args.model)?, args.threads)?;
    let data = load_predict_data(&args.train, &args.test, args.target.as_deref())?;
    let expected = predictor.num_features();
    if data.n_features() != expected {
        bail!(
            "{}: {} feature column{} ({}) besides the target '{}', but the model {} takes {expected}{}",
            args.train.display(),
            data.n_features(),
            if data.n_features() == 1 { "" } else { "s" },
            data.feature_names.join(", "),
            data.target_name,
            args.model.display(),
            if data.n_features() > expected {
                " (more features than the model supports)"
            } else {
                ""
            }
        );
    }
    let max_ctx = predictor.max_trained_context();
    if data.n_train() > max_ctx {
        eprintln!(
            "note: {} has {} rows but the model was trained with at most {max_ctx} context points; predictions may degrade",
            args.train.display(),
            data.n_train()
        );
    }
    let mut context = predictor
        .context(&data.train_x, &data.train_y)
        .with_context(|| format!("{}", args.train.display()))?;
    let preds = context
        .predict(&data.test_x)
        .with_context(|| format!("{}", args.test.display()))?;

    let regression = predictor.is_regression();
    let mut columns: Vec<String> = Vec::new();
    if regression {
        columns.extend(["mean", "median", "std"].map(String::from));
        columns.extend(quantiles.iter().map(|&p| quantile_name(p)));
    } else {
        let classes = predictor.head().width();
        columns.extend((0..classes).map(|c| format!("p{c}")));
        columns.push("class".into());
    }
    if data.test_y.is_some() {
        columns.push(data.target_name.clone());
        columns.push("nll".into());
    }
    let mut rows = Vec::with_capacity(preds.len());
    for (i, pred) in preds.iter().enumerate() {
        let mut values = Vec::with_capacity(columns.len());
        match pred {
            PosteriorPredictive::Regression(r) => {
                values.extend([r.mean(), r.median(), r.std()]);
                values.extend(r.quantiles(&quantiles)?);
            }
            PosteriorPredictive::Classification(c) => {
                values.extend_from_slice(c.probabilities());
                values.push(c.predicted_class() as f64);
            }
        }
        if let Some(y) = &data.test_y {
            values.push(y[i]);
            values.push(pred.nll(y[i]));
        }
        rows.push(Row { values });
    }

    let format = args.format.unwrap_or_else(|| match &args.out {
        Some(p) if p.extension().is_some_and(|e| e == "json") => Format::Json,
        Some(_) => Format::Csv,
        None => Format::Table,
    });
    let mean_nll = data.test_y.as_ref().map(|_| {
        let nll: Vec<f64> = rows.iter().map(|r| r.values[r.values.len() - 1]).collect();
        nll.iter().sum::<f64>() / nll.len().max(1) as f64
    });
    let mut text = Vec::new();
    match format {
        Format::Csv => write_csv(&mut text, &columns, &rows)?,
        Format::Json => write_json(
            &mut text,
            args,
            &data.target_name,
            &columns,
            &rows,
            mean_nll,
        )?,
        Format::Table => write_table(&mut text, &columns, &rows)?,
    }
    match &args.out {
        Some(path) => {
            pfn_train::write_atomically(path, |w| w.write_all(&text))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} predictions to {}", rows.len(), path.display());
        }
        None => std::io::stdout().write_all(&text)?,
    }
    if let Some(nll) = mean_nll {
        eprintln!("mean test NLL: {nll:.4} nats");
    }
    if let Some(path) = &args.plot {
        plot_predictive(path, &mut context, &data, regression)?;
        eprintln!("plot: {}", path.display());
    }
    Ok(())
}

/// Draws the posterior predictive over a grid of the one input feature (the paper's figure 3 view).
fn plot_predictive(
    path: &std::path::Path,
    context: &mut pfn_infer::Context<'_>,
    data: &pfn_infer::PredictData,
    regression: bool,
) -> Result<()> {
    use pfn_plot::{Figure, HeatMap, Series, PALETTE};
    if !regression || data.feature_names.len() != 1 {
        anyhow::bail!(
            "--plot needs a regression model with one input feature (this data has {} features)",
            data.feature_names.len()
        );
    }
    let xs_all: Vec<f64> = data.train_x.iter().chain(&data.test_x).cloned().collect();
    let (lo, hi) = xs_all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let (lo, hi) = (lo - pad, hi + pad);
    let nx = 200;
    let grid: Vec<f64> = (0..nx)
        .map(|i| lo + (hi - lo) * i as f64 / (nx - 1) as f64)
        .collect();
    let preds = context.predict(&grid)?;
    let mut mean = Vec::with_capacity(nx);
    let (mut l50, mut u50, mut l90, mut u90) = (vec![], vec![], vec![], vec![]);
    for p in &preds {
        let r = p
            .as_regression()
            .context("the model returned class probabilities")?;
        mean.push((0.0, r.mean()));
        let (a, b) = r.interval(0.5)?;
        l50.push(a);
        u50.push(b);
        let (a, b) = r.interval(0.9)?;
        l90.push(a);
        u90.push(b);
    }
    for (m, &x) in mean.iter_mut().zip(&grid) {
        m.0 = x;
    }
    let ys_all: Vec<f64> = data
        .train_y
        .iter()
        .chain(data.test_y.iter().flatten())
        .chain(&l90)
        .chain(&u90)
        .cloned()
        .collect();
    let (ylo, yhi) = ys_all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let ypad = ((yhi - ylo) * 0.1).max(1e-3);
    let (ylo, yhi) = (ylo - ypad, yhi + ypad);
    let ny = 160;
    let mut values = vec![0.0; nx * ny];
    for (c, p) in preds.iter().enumerate() {
        let r = p.as_regression().context("regression expected")?;
        for row in 0..ny {
            let y = ylo + (yhi - ylo) * (row as f64 + 0.5) / ny as f64;
            values[row * nx + c] = r.pdf(y);
        }
    }
    // Scale each column to its own maximum so that sharp and broad predictives are both visible.
    for c in 0..nx {
        let m = (0..ny).map(|r| values[r * nx + c]).fold(0.0, f64::max);
        if m > 0.0 {
            (0..ny).for_each(|r| values[r * nx + c] /= m);
        }
    }
    let mut fig = Figure::new(
        "PFN posterior predictive",
        &data.feature_names[0],
        &data.target_name,
    );
    fig.heat_map = Some(HeatMap {
        x_range: (lo, hi),
        y_range: (ylo, yhi),
        nx,
        ny,
        values,
    });
    fig.x_range = Some((lo, hi));
    fig.y_range = Some((ylo, yhi));
    fig.series.push(Series::Band {
        label: "90 % interval".into(),
        x: grid.clone(),
        lower: l90,
        upper: u90,
        color: PALETTE[0],
        opacity: 0.15,
    });
    fig.series.push(Series::Band {
        label: "50 % interval".into(),
        x: grid.clone(),
        lower: l50,
        upper: u50,
        color: PALETTE[0],
        opacity: 0.25,
    });
    fig.series.push(Series::Line {
        label: "PFN mean".into(),
        points: mean,
        color: PALETTE[0],
        dashed: false,
    });
    fig.series.push(Series::Points {
        label: "context".into(),
        points: data
            .train_x
            .iter()
            .cloned()
            .zip(data.train_y.iter().cloned())
            .collect(),
        color: (0, 0, 0),
        radius: 4,
    });
    if let Some(ty) = &data.test_y {
        fig.series.push(Series::Points {
            label: "test".into(),
            points: data
                .test_x
                .iter()
                .cloned()
                .zip(ty.iter().cloned())
                .collect(),
            color: PALETTE[3],
            radius: 3,
        });
    }
    fig.save(path)?;
    Ok(())
}

fn write_csv(w: &mut impl Write, columns: &[String], rows: &[Row]) -> Result<()> {
    writeln!(w, "row,{}", columns.join(","))?;
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r.values.iter().map(|v| format!("{v}")).collect();
        writeln!(w, "{},{}", i + 1, cells.join(","))?;
    }
    Ok(())
}

fn write_json(
    w: &mut impl Write,
    args: &Args,
    target: &str,
    columns: &[String],
    rows: &[Row],
    mean_nll: Option<f64>,
) -> Result<()> {
    let rows_json: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut obj = serde_json::Map::new();
            obj.insert("row".into(), serde_json::json!(i + 1));
            for (c, v) in columns.iter().zip(&r.values) {
                obj.insert(c.clone(), serde_json::json!(v));
            }
            serde_json::Value::Object(obj)
        })
        .collect();
    let doc = serde_json::json!({
        "model": args.model.display().to_string(),
        "train": args.train.display().to_string(),
        "test": args.test.display().to_string(),
        "target": target,
        "mean_nll": mean_nll,
        "predictions": rows_json,
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)?;
    Ok(())
}

fn write_table(w: &mut impl Write, columns: &[String], rows: &[Row]) -> Result<()> {
    let mut header = vec!["row".to_string()];
    header.extend(columns.iter().cloned());
    let body: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut cells = vec![(i + 1).to_string()];
            cells.extend(r.values.iter().map(|v| format!("{v:.4}")));
            cells
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            body.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(w, "{}", line(&header))?;
    for r in &body {
        writeln!(w, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_parse_and_reject() {
        assert_eq!(
            parse_quantiles("0.05, 0.5,0.95").unwrap(),
            vec![0.05, 0.5, 0.95]
        );
        assert!(parse_quantiles("0.5,abc")
            .unwrap_err()
            .to_string()
            .contains("'abc'"));
        assert!(parse_quantiles("1.5")
            .unwrap_err()
            .to_string()
            .contains("between 0 and 1"));
        assert!(parse_quantiles("0").is_err());
        assert_eq!(parse_quantiles("").unwrap(), Vec::<f64>::new());
    }
}
