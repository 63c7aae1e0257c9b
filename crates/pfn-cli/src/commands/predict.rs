//! `pfn predict`: posterior predictive of a trained model for the rows of a test CSV, given the
//! rows of a training CSV as context.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use pfn_infer::{load_predict_data, NormaliseError, PosteriorPredictive, PredictError, Predictor};

use crate::model_search::ModelSearch;

/// Format of the predictions file (`--out`), or of standard output when `--format csv|json` is
/// given without `--out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line: `row`, then mean, median, std, the requested
    /// quantiles (regression) or the class probabilities and class (classification), then the
    /// target and its NLL when the test file has the target.
    Csv,
    /// One JSON document: the model, the files, the mean NLL and one object per query with the
    /// CSV's columns.
    Json,
    /// The aligned table shown on the terminal.
    Table,
}

/// Arguments of `pfn predict`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output: a table with one line per query (its feature values, the predictive mean, std and the \
central 90 % interval q0.05..q0.95, plus the true target and its NLL when the test file has the \
target column) is printed on standard output, followed by the mean test NLL and `predictions: FILE` / \
`plot: FILE` lines saying where --out and --plot went. --out FILE also writes every column (all \
--quantiles, the median) as CSV, or as JSON for a .json name (or as --format says). Without --out, \
--format csv|json prints that format on standard output instead of the table (for pipes); the \
summary lines then go to standard error.

Models: --model takes a file (models/gp-1d.pfn) or a model name (gp-1d, gp-hyper), looked up as \
NAME.pfn in $PFN_MODELS when that is set, else in ./models, else in a models/ directory next to the \
executable or one of its parent directories. The default is gp-hyper, the general-purpose regression \
model (1 to 5 features, up to 249 context rows); `pfn models` lists what is there.")]
pub struct Args {
    /// Model file, or the name of a model in the models directory (default: gp-hyper).
    #[arg(long)]
    pub model: Option<String>,
    /// Context rows: feature columns and the target column (CSV with a header).
    #[arg(long)]
    pub train: PathBuf,
    /// Query rows: the same feature columns, the target optionally (then its NLL is reported).
    #[arg(long)]
    pub test: PathBuf,
    /// Quantiles written to the output file, comma-separated, each in (0, 1) (regression models;
    /// the terminal table always shows the 90 % interval).
    #[arg(long, default_value = "0.05,0.5,0.95")]
    pub quantiles: String,
    /// Format of the --out file (default: json for a .json name, else csv). Without --out, csv or
    /// json is printed on standard output instead of the table.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Predictions file with every column (CSV, or JSON for a .json name).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Target column of the training file (default: its last column).
    #[arg(long)]
    pub target: Option<String>,
    /// Compute threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Arithmetic of the model's matrix products: f32, or bf16 (operands rounded to bfloat16, f32
    /// accumulation; about twice as fast on CPUs with AVX-512 BF16).
    #[arg(long, default_value = "f32")]
    pub precision: pfn_model::Precision,
    /// Plot (`.png` or `.svg`), regression models. One input feature: the posterior predictive
    /// over a grid of it (density heat map, mean, 50 % and 90 % intervals, context and test
    /// points). More features: per test query, sorted by predicted mean, the mean with 50 % and
    /// 90 % intervals and the true target when the test file has it.
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

/// Feature columns shown in the terminal table at most (wider data show the row number only).
const MAX_TABLE_FEATURES: usize = 6;

/// "1 feature", "3 features".
fn features(n: usize) -> String {
    format!("{n} feature{}", if n == 1 { "" } else { "s" })
}

/// "1", "1 to 5".
fn range_text((lo, hi): (usize, usize)) -> String {
    if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo} to {hi}")
    }
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let quantiles = parse_quantiles(&args.quantiles)?;
    if let Some(plot) = &args.plot {
        let ext = plot
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("png" | "svg")) {
            bail!(
                "--plot {}: the file name must end in .png or .svg",
                plot.display()
            );
        }
    }
    let model_path = ModelSearch::from_environment().resolve(args.model.as_deref())?;
    let mut predictor =
        Predictor::with_threads(&pfn_artifact::load_model(&model_path)?, args.threads)?;
    predictor.set_precision(args.precision);
    let regression = predictor.is_regression();
    if args.plot.is_some() && !regression {
        bail!(
            "--plot needs a regression model; {} predicts classes",
            model_path.display()
        );
    }
    let data = load_predict_data(&args.train, &args.test, args.target.as_deref())?;
    let (lo, hi) = predictor.feature_range();
    let d = data.n_features();
    if d < lo || d > hi {
        bail!(
            "{}: {} ({}) besides the target '{}', but the model {} takes {}{}",
            args.train.display(),
            if d == 1 {
                "1 feature column".to_string()
            } else {
                format!("{d} feature columns")
            },
            data.feature_names.join(", "),
            data.target_name,
            model_path.display(),
            range_text((lo, hi)),
            if d > hi {
                " (more features than the model supports)"
            } else {
                " (fewer features than the model needs)"
            }
        );
    }
    let max_ctx = predictor.max_trained_context();
    if data.n_train() > max_ctx {
        eprintln!(
            "note: {} has {} rows but the model was trained with at most {max_ctx} context points; all rows are used as context (beyond the trained size predictions may degrade; see the README)",
            args.train.display(),
            data.n_train()
        );
    }
    let mut context = predictor
        .context_with_features(&data.train_x, &data.train_y, d)
        .map_err(|e| name_the_column(e, &data.feature_names, &data.target_name))
        .with_context(|| format!("{}", args.train.display()))?;
    let preds = context
        .predict(&data.test_x)
        .with_context(|| format!("{}", args.test.display()))?;

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
    let mut table_body = Vec::with_capacity(preds.len());
    let show_features = d <= MAX_TABLE_FEATURES;
    for (i, pred) in preds.iter().enumerate() {
        let mut values = Vec::with_capacity(columns.len());
        let mut cells = vec![(i + 1).to_string()];
        if show_features {
            cells.extend(
                data.test_x[i * d..(i + 1) * d]
                    .iter()
                    .map(|&v| input_cell(v)),
            );
        }
        match pred {
            PosteriorPredictive::Regression(r) => {
                values.extend([r.mean(), r.median(), r.std()]);
                values.extend(r.quantiles(&quantiles)?);
                let (q05, q95) = r.interval(0.9)?;
                cells.extend([r.mean(), r.std(), q05, q95].map(value_cell));
            }
            PosteriorPredictive::Classification(c) => {
                values.extend_from_slice(c.probabilities());
                values.push(c.predicted_class() as f64);
                cells.extend(c.probabilities().iter().map(|&p| value_cell(p)));
                cells.push(c.predicted_class().to_string());
            }
        }
        if let Some(y) = &data.test_y {
            let nll = pred.nll(y[i]);
            values.push(y[i]);
            values.push(nll);
            cells.extend([input_cell(y[i]), value_cell(nll)]);
        }
        rows.push(Row { values });
        table_body.push(cells);
    }
    let mut table_header = vec!["row".to_string()];
    if show_features {
        table_header.extend(data.feature_names.iter().cloned());
    }
    if regression {
        table_header.extend(["mean", "std", "q0.05", "q0.95"].map(String::from));
    } else {
        table_header.extend((0..predictor.head().width()).map(|c| format!("p{c}")));
        table_header.push("class".into());
    }
    if data.test_y.is_some() {
        table_header.push(data.target_name.clone());
        table_header.push("nll".into());
    }

    let mean_nll = data.test_y.as_ref().map(|_| {
        let nll: Vec<f64> = rows.iter().map(|r| r.values[r.values.len() - 1]).collect();
        nll.iter().sum::<f64>() / nll.len().max(1) as f64
    });
    let file_format = args.format.unwrap_or(match &args.out {
        Some(p) if p.extension().is_some_and(|e| e == "json") => Format::Json,
        _ => Format::Csv,
    });
    let render = |format: Format| -> Result<Vec<u8>> {
        let mut text = Vec::new();
        match format {
            Format::Csv => write_csv(&mut text, &columns, &rows)?,
            Format::Json => write_json(
                &mut text,
                &model_path,
                args,
                &data.target_name,
                &columns,
                &rows,
                mean_nll,
            )?,
            Format::Table => write_table(&mut text, &table_header, &table_body)?,
        }
        Ok(text)
    };
    // Machine output on stdout (`--format csv|json` without `--out`): the summary goes to stderr.
    let machine_stdout =
        args.out.is_none() && matches!(args.format, Some(Format::Csv | Format::Json));
    let mut summary: Vec<String> = Vec::new();
    if let Some(nll) = mean_nll {
        summary.push(format!(
            "mean test NLL: {nll:.4} nats per query ({} queries)",
            rows.len()
        ));
    }
    if let Some(path) = &args.out {
        let text = render(file_format)?;
        pfn_artifact::write_atomically(path, |w| w.write_all(&text))
            .with_context(|| format!("writing {}", path.display()))?;
        summary.push(format!("predictions: {}", path.display()));
    }
    if let Some(path) = &args.plot {
        if d == 1 {
            plot_predictive(path, &mut context, &data)?;
        } else {
            plot_by_rank(path, &preds, &data)?;
        }
        summary.push(format!("plot: {}", path.display()));
    }
    let mut stdout = std::io::stdout().lock();
    if machine_stdout {
        stdout.write_all(&render(file_format)?)?;
        for line in &summary {
            eprintln!("{line}");
        }
        return Ok(());
    }
    writeln!(
        stdout,
        "model: {} (prior {}; takes {}, up to {max_ctx} context rows)",
        model_path.display(),
        predictor.metadata().prior,
        features_range(lo, hi)
    )?;
    writeln!(
        stdout,
        "context: {} rows of {}, {} ({}), target '{}'; queries: {} rows of {}",
        data.n_train(),
        args.train.display(),
        features(d),
        data.feature_names.join(", "),
        data.target_name,
        rows.len(),
        args.test.display()
    )?;
    writeln!(stdout)?;
    write_table(&mut stdout, &table_header, &table_body)?;
    writeln!(stdout)?;
    if regression {
        writeln!(
            stdout,
            "mean, std: predictive mean and standard deviation; q0.05..q0.95: central 90 % predictive interval{}",
            if data.test_y.is_some() {
                format!(
                    "; {}: the true target; nll: its negative log predictive density (nats)",
                    data.target_name
                )
            } else {
                String::new()
            }
        )?;
    }
    for line in &summary {
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}

/// "1 feature", "1 to 5 features".
fn features_range(lo: usize, hi: usize) -> String {
    if lo == hi {
        features(lo)
    } else {
        format!("{lo} to {hi} features")
    }
}

/// A number as the table shows a predicted value: 4 decimals, scientific when tiny or huge.
fn value_cell(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// A number from the data as the table shows it: as written when short, else as a value.
fn input_cell(v: f64) -> String {
    let plain = format!("{v}");
    if plain.len() <= 9 {
        plain
    } else {
        value_cell(v)
    }
}

/// Draws, per test query sorted by predicted mean, the mean and the 50 % / 90 % central intervals,
/// with the true targets as points when the test file has them (inputs with several features,
/// where a plot over the input is not possible).
fn plot_by_rank(
    path: &std::path::Path,
    preds: &[PosteriorPredictive],
    data: &pfn_infer::PredictData,
) -> Result<()> {
    use pfn_plot::{Figure, Series, PALETTE};
    struct Query {
        index: usize,
        mean: f64,
        i50: (f64, f64),
        i90: (f64, f64),
    }
    let mut queries = Vec::with_capacity(preds.len());
    for (index, p) in preds.iter().enumerate() {
        let r = p
            .as_regression()
            .context("the model returned class probabilities")?;
        queries.push(Query {
            index,
            mean: r.mean(),
            i50: r.interval(0.5)?,
            i90: r.interval(0.9)?,
        });
    }
    queries.sort_by(|a, b| a.mean.total_cmp(&b.mean).then(a.index.cmp(&b.index)));
    let rank: Vec<f64> = (1..=queries.len()).map(|k| k as f64).collect();
    let mut fig = Figure::new(
        &format!(
            "PFN posterior predictive of '{}' per test query ({} features)",
            data.target_name,
            data.n_features()
        ),
        "test query, sorted by predicted mean",
        &data.target_name,
    );
    let m = queries.len() as f64;
    fig.x_range = Some((0.5, m + 0.5));
    fig.series.push(Series::Band {
        label: "90 % interval".into(),
        x: rank.clone(),
        lower: queries.iter().map(|q| q.i90.0).collect(),
        upper: queries.iter().map(|q| q.i90.1).collect(),
        color: PALETTE[0],
        opacity: 0.15,
    });
    fig.series.push(Series::Band {
        label: "50 % interval".into(),
        x: rank.clone(),
        lower: queries.iter().map(|q| q.i50.0).collect(),
        upper: queries.iter().map(|q| q.i50.1).collect(),
        color: PALETTE[0],
        opacity: 0.25,
    });
    fig.series.push(Series::Line {
        label: "PFN mean".into(),
        points: rank
            .iter()
            .zip(&queries)
            .map(|(&k, q)| (k, q.mean))
            .collect(),
        color: PALETTE[0],
        dashed: false,
    });
    if let Some(ty) = &data.test_y {
        fig.series.push(Series::Points {
            label: format!("true {}", data.target_name),
            points: rank
                .iter()
                .zip(&queries)
                .map(|(&k, q)| (k, ty[q.index]))
                .collect(),
            color: PALETTE[3],
            radius: 4,
        });
    }
    fig.save(path)?;
    Ok(())
}

/// Draws the posterior predictive over a grid of the one input feature (the paper's figure 3 view).
fn plot_predictive(
    path: &std::path::Path,
    context: &mut pfn_infer::Context<'_>,
    data: &pfn_infer::PredictData,
) -> Result<()> {
    use pfn_plot::{Figure, HeatMap, Series, PALETTE};
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
    model: &Path,
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
        "model": model.display().to_string(),
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

/// A normalisation error that names a feature by index, or the target, rewritten with the
/// column's name from the file's header.
fn name_the_column(e: PredictError, features: &[String], target: &str) -> anyhow::Error {
    match &e {
        PredictError::Normalise(NormaliseError::FeatureRangeOverflow { feature, .. }) => {
            match features.get(*feature) {
                Some(name) => anyhow::anyhow!("column '{name}': {e}"),
                None => e.into(),
            }
        }
        PredictError::Normalise(NormaliseError::TargetOverflow { .. }) => {
            anyhow::anyhow!("column '{target}': {e}")
        }
        _ => e.into(),
    }
}

/// An aligned table: `header` and `body` cells right-aligned in columns two spaces apart.
fn write_table(w: &mut impl Write, header: &[String], body: &[Vec<String>]) -> Result<()> {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            body.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .chain([header[c].chars().count()])
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
    writeln!(w, "{}", line(header))?;
    for r in body {
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
