//! `pfn predict`: posterior predictive of a trained model for the rows of a test CSV, given the
//! rows of a training CSV as context.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use pfn_artifact::OutputHead;
use pfn_infer::{
    impute_with_context_means, load_predict_data_with, ClassEnsemble, ClassLabels, ClassTask,
    ContextCalibration, InputView, NormaliseError, PosteriorPredictive, PredictError, Predictor,
    ReadOptions, TableError, TargetKind, Tempered,
};
use pfn_plot::classes::{class_probability_bars, reliability_diagram, ConfidenceBin};

use crate::model_search::ModelSearch;

/// Format of the predictions file (`--out`), or of standard output when `--format csv|json` is
/// given without `--out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line: `row`, then mean, median, std, the requested
    /// quantiles (regression) or `p_<label>` per class and the `predicted` label
    /// (classification), then the target and its NLL (and, for classes, `correct`: 1 or 0) when
    /// the test file has the target.
    Csv,
    /// One JSON document: the model, the files, the mean NLL (for classes also `classes` and
    /// `metrics`: log loss, accuracy, ROC AUC, ECE) and one object per query with the CSV's
    /// columns.
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

Classification models: the target column holds class labels, integers or words; the classes are \
the distinct training labels (integers in numeric order, words in alphabetical order), at most as \
many as the model predicts. Each query gets a probability per class (p_<label>) and the predicted \
label; a labelled test file adds log loss, accuracy, ROC AUC (one-vs-rest mean for more than two \
classes) and the calibration error. A test label that no training row has is predicted but not \
scored (a note names the rows).

Missing feature values (empty cells, NA, ?) are errors naming the row and column; --impute mean \
replaces them by the column's mean over the training rows.

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
    /// Plot (`.png` or `.svg`). Regression, one input feature: the posterior predictive over a
    /// grid of it (density heat map, mean, 50 % and 90 % intervals, context and test points);
    /// more features: per test query, sorted by predicted mean, the mean with 50 % and 90 %
    /// intervals and the true target when the test file has it. Classification with test labels:
    /// a reliability diagram (accuracy against confidence in 10 bins, with counts); without:
    /// each query's class probabilities as a stacked bar.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Fill missing feature values (empty cells, `NA`, `?`) instead of failing: `mean`, the
    /// column's mean over the training rows (a column with no training value becomes 0).
    #[arg(long, value_enum)]
    pub impute: Option<Impute>,
    /// Classification models: average the class probabilities over this many views of the data
    /// (member 0 as given, the others with the feature columns in a random order and the classes
    /// renamed; `pfn_infer::ensemble`). 1 turns the ensemble off.
    #[arg(long, default_value_t = DEFAULT_ENSEMBLE, value_parser = parse_members)]
    pub ensemble: usize,
    /// Seed of the ensemble's permutations and of the calibration folds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Do not temper the predictions. By default, with 50 or more training rows, a temperature
    /// is fitted on them by 5-fold cross-validation (each fold answered from the others;
    /// `pfn_infer::calibration`) and applied to the test rows: to the class probabilities of a
    /// classification model, to the bucket densities of a regression model.
    #[arg(long)]
    pub no_calibrate: bool,
    /// The model always sees the feature columns as given. By default a calibrated context also
    /// chooses, by the same folds, between them and the scores on 8 or 16 leading principal
    /// components of the training rows' standardised columns (at most as many as the model
    /// takes; `pfn_infer::principal_components`), which lets a table wider than the model be
    /// answered.
    #[arg(long)]
    pub as_given: bool,
}

/// The summary line that says how the predictions (class `probabilities`, or bucket `densities`
/// of a regression model) were calibrated.
fn calibration_note(
    off: bool,
    rows: usize,
    c: &ContextCalibration,
    beta: f64,
    what: &str,
) -> String {
    let min_rows = c.min_rows.max(c.folds);
    if off {
        "calibration: off (--no-calibrate)".into()
    } else if beta == 1.0 && rows < min_rows {
        format!(
            "calibration: none ({rows} training rows; a temperature is fitted from {min_rows} on)"
        )
    } else {
        format!(
            "calibration: {what} raised to the power {beta:.3} ({}), fitted by {}-fold cross-validation on the training rows",
            if beta > 1.0 { "sharper" } else if beta < 1.0 { "flatter" } else { "unchanged" },
            c.folds
        )
    }
}

/// What the summary line says of the input view the calibration folds chose.
fn view_note(view: InputView) -> String {
    match view {
        InputView::AsGiven => "the feature columns as given".into(),
        InputView::PrincipalComponents(_) => format!(
            "{} of the training rows' standardised feature columns, chosen by the same folds",
            view.describe()
        ),
    }
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

/// One cell of an output row.
enum Cell {
    /// A number.
    Num(f64),
    /// A label.
    Text(String),
    /// No value (the score of a query whose label no training row has).
    Empty,
}

/// One output row: the cells of the named columns.
struct Row {
    values: Vec<Cell>,
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

/// How `--impute` fills missing feature values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Impute {
    /// The mean of the column over the training (context) rows that have a value
    /// (`pfn_infer::impute_with_context_means`).
    Mean,
}

/// What a model's branch of [`run`] produces for the shared output code.
struct Output {
    /// Columns of the CSV/JSON rows (after `row`).
    columns: Vec<String>,
    rows: Vec<Row>,
    table_header: Vec<String>,
    table_body: Vec<Vec<String>>,
    /// Mean NLL over the labelled queries (the log loss for classes).
    mean_nll: Option<f64>,
    /// Summary lines (scores, notes) printed after the table.
    summary: Vec<String>,
    /// Line explaining the table's columns.
    legend: Option<String>,
    /// Extra fields of the JSON document.
    json: serde_json::Map<String, serde_json::Value>,
    /// Description of the target for the `context:` line.
    target_text: String,
}

impl Output {
    /// Records how the predictions (class `probabilities`, or bucket `densities` of a regression
    /// model) were calibrated: the first summary line and the JSON field `calibration`.
    fn record_calibration(
        &mut self,
        off: bool,
        rows: usize,
        calibration: &ContextCalibration,
        beta: f64,
        view: Option<InputView>,
        what: &str,
    ) {
        let mut note = calibration_note(off, rows, calibration, beta, what);
        if let Some(view) = view.filter(|_| !off) {
            note.push_str(&format!("; input: {}", view_note(view)));
        }
        self.summary.insert(0, note);
        let mut json = serde_json::json!({
            "on": !off,
            "folds": calibration.folds,
            "min_rows": calibration.min_rows,
            "power": beta,
        });
        if let Some(view) = view {
            json["view"] = serde_json::json!(view.describe());
            json["components"] = match view {
                InputView::AsGiven => serde_json::Value::Null,
                InputView::PrincipalComponents(k) => serde_json::json!(k),
            };
        }
        self.json.insert("calibration".into(), json);
    }
}

/// Default members of a classification model's ensemble (`--ensemble`): in `pfn reproduce
/// tabular` 8 members raised the mean ROC AUC over 1 member on both protocols
/// (`docs/results/tabular`).
const DEFAULT_ENSEMBLE: usize = 8;

/// Parses `--ensemble`: an integer in 1..=64.
fn parse_members(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of members in 1..=64, got '{text}'"
        )),
    }
}

/// Confidence bins of the reliability diagram and of the reported calibration error.
const CALIBRATION_BINS: usize = 10;

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
    let options = ReadOptions {
        target: args.target.as_deref(),
        target_kind: if regression {
            TargetKind::Numeric
        } else {
            TargetKind::Classes
        },
        allow_missing_features: args.impute.is_some(),
    };
    let mut data = load_predict_data_with(&args.train, &args.test, &options).map_err(|e| {
        match &e {
            TableError::MissingValue { column, .. }
                if args.impute.is_none() && is_feature_column(args, column) =>
            {
                anyhow::anyhow!(
                    "{e} (pass --impute mean to fill missing feature values with the column's mean over the training rows)"
                )
            }
            _ => e.into(),
        }
    })?;
    let (lo, hi) = predictor.feature_range();
    let d = data.n_features();
    let calibration = ContextCalibration {
        seed: args.seed,
        select_view: !args.as_given,
        ..ContextCalibration::default()
    };
    // A table wider than the model is answered through principal components when its context is
    // calibrated (the folds choose how many; `pfn_infer::principal_components`).
    let projects_wide =
        !args.no_calibrate && calibration.select_view && calibration.applies_to(&data.train_y);
    if d < lo || (d > hi && !projects_wide) {
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
            if d < lo {
                " (fewer features than the model needs)".to_string()
            } else {
                format!(
                    " (more features than the model supports; with calibration on and at least {} training rows whose targets are not all equal, a wider table is answered through its principal components)",
                    calibration.min_rows.max(calibration.folds)
                )
            }
        );
    }
    let mut notes: Vec<String> = Vec::new();
    if args.impute.is_some() {
        let n = impute_with_context_means(&mut data.train_x, &mut data.test_x, d);
        notes.push(format!(
            "imputed {n} missing feature value{} with the column means of the {} training rows",
            if n == 1 { "" } else { "s" },
            data.n_train()
        ));
    }
    let max_ctx = predictor.max_trained_context();
    if data.n_train() > max_ctx {
        eprintln!(
            "note: {} has {} rows but the model was trained with at most {max_ctx} context points; all rows are used as context (beyond the trained size predictions may degrade; see the README)",
            args.train.display(),
            data.n_train()
        );
    }
    if let (Some(classes), OutputHead::Classes { n_out }) = (&data.classes, predictor.head()) {
        if classes.len() > *n_out {
            bail!(
                "{}: the training labels in column '{}' have {} classes ({}) but this model predicts at most {n_out}",
                args.train.display(),
                data.target_name,
                classes.len(),
                classes.summary(12)
            );
        }
    }
    if d > hi {
        notes.push(format!(
            "{d} feature columns, more than the {hi} the model takes: it sees principal components of them"
        ));
    }
    // The regression context, kept for the plot.
    let mut regression_context = None;
    // The regression model's inputs for the test rows (the test file's columns, or their
    // principal components when the calibration folds chose those).
    let mut model_test_x: std::borrow::Cow<'_, [f64]> = std::borrow::Cow::Borrowed(&data.test_x);
    // Whether the summary names the input view: where there was a choice, or it is not the
    // columns as given.
    let views_matter = |view: InputView| {
        view != InputView::AsGiven || InputView::candidates(d, hi) != [InputView::AsGiven]
    };
    let mut output = match &data.classes {
        None => {
            let (view, beta) = if args.no_calibrate {
                (InputView::AsGiven, 1.0)
            } else {
                predictor
                    .regression_calibration(&data.train_x, &data.train_y, d, calibration)
                    .map_err(|e| name_the_column(e, &data.feature_names, &data.target_name))
                    .with_context(|| format!("{}", args.train.display()))?
            };
            let v = view.apply(&data.train_x, &data.test_x, d)?;
            model_test_x = v.x_query;
            let context = regression_context.insert(
                predictor
                    .context_with_features(&v.x, &data.train_y, v.features)
                    .map_err(|e| name_the_column(e, &data.feature_names, &data.target_name))
                    .with_context(|| format!("{}", args.train.display()))?,
            );
            context.set_temperature(beta)?;
            let mut output = regression_output(args, &quantiles, context, &data, &model_test_x)?;
            output.record_calibration(
                args.no_calibrate,
                data.n_train(),
                &calibration,
                beta,
                Some(view).filter(|&v| views_matter(v)),
                "densities",
            );
            output
        }
        Some(classes) => {
            let labels: Vec<usize> = data.train_y.iter().map(|&c| c as usize).collect();
            let ensemble = ClassEnsemble::new(args.ensemble, args.seed);
            let task = ClassTask {
                x: &data.train_x,
                labels: &labels,
                x_query: &data.test_x,
                features: d,
            };
            let tempered = if args.no_calibrate {
                predictor
                    .ensemble_class_probabilities(
                        task.x,
                        task.labels,
                        d,
                        task.x_query,
                        classes.len(),
                        ensemble,
                    )
                    .map(|probabilities| Tempered {
                        probabilities,
                        beta: 1.0,
                        view: InputView::AsGiven,
                    })
            } else {
                predictor.calibrated_class_probabilities(task, classes.len(), ensemble, calibration)
            }
            .map_err(|e| name_the_column(e, &data.feature_names, &data.target_name))
            .with_context(|| format!("{}", args.train.display()))?;
            let mut output = classification_output(classes, tempered.probabilities, &data)?;
            output.record_calibration(
                args.no_calibrate,
                data.n_train(),
                &calibration,
                tempered.beta,
                Some(tempered.view).filter(|&v| views_matter(v)),
                "probabilities",
            );
            output
        }
    };
    let mut summary = std::mem::take(&mut output.summary);
    summary.extend(notes.into_iter().map(|n| format!("note: {n}")));
    let file_format = args.format.unwrap_or(match &args.out {
        Some(p) if p.extension().is_some_and(|e| e == "json") => Format::Json,
        _ => Format::Csv,
    });
    let render = |format: Format| -> Result<Vec<u8>> {
        let mut text = Vec::new();
        match format {
            Format::Csv => write_csv(&mut text, &output.columns, &output.rows)?,
            Format::Json => write_json(&mut text, &model_path, args, &data.target_name, &output)?,
            Format::Table => write_table(&mut text, &output.table_header, &output.table_body)?,
        }
        Ok(text)
    };
    // Machine output on stdout (`--format csv|json` without `--out`): the summary goes to stderr.
    let machine_stdout =
        args.out.is_none() && matches!(args.format, Some(Format::Csv | Format::Json));
    if let Some(path) = &args.out {
        let text = render(file_format)?;
        pfn_artifact::write_atomically(path, |w| w.write_all(&text))
            .with_context(|| format!("writing {}", path.display()))?;
        summary.push(format!("predictions: {}", path.display()));
    }
    if let Some(path) = &args.plot {
        match (&data.classes, regression_context.as_mut()) {
            (Some(classes), _) => plot_classes(path, classes, &output, &data, args)?,
            (None, Some(context)) if d == 1 => plot_predictive(path, context, &data)?,
            (None, Some(context)) => {
                let preds = context
                    .predict(&model_test_x)
                    .with_context(|| format!("{}", args.test.display()))?;
                plot_by_rank(path, &preds, &data)?
            }
            (None, None) => unreachable!("a regression model always has its context"),
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
        "context: {} rows of {}, {} ({}), {}; queries: {} rows of {}",
        data.n_train(),
        args.train.display(),
        features(d),
        data.feature_names.join(", "),
        output.target_text,
        output.rows.len(),
        args.test.display()
    )?;
    writeln!(stdout)?;
    write_table(&mut stdout, &output.table_header, &output.table_body)?;
    writeln!(stdout)?;
    if let Some(legend) = &output.legend {
        writeln!(stdout, "{legend}")?;
    }
    for line in &summary {
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}

/// Whether `column` is a feature (not the target: `--target`, else the training file's last
/// column), for the `--impute` hint of a missing-value error.
fn is_feature_column(args: &Args, column: &str) -> bool {
    let target = args.target.clone().or_else(|| {
        pfn_infer::read_csv_text(&args.train)
            .ok()
            .and_then(|t| t.columns.last().cloned())
    });
    target.as_deref() != Some(column)
}

/// Regression: the predictive mean, median, std and quantiles of each query.
fn regression_output(
    args: &Args,
    quantiles: &[f64],
    context: &mut pfn_infer::Context<'_>,
    data: &pfn_infer::PredictData,
    model_test_x: &[f64],
) -> Result<Output> {
    let d = data.n_features();
    let preds = context
        .predict(model_test_x)
        .with_context(|| format!("{}", args.test.display()))?;
    let mut columns: Vec<String> = ["mean", "median", "std"].map(String::from).to_vec();
    columns.extend(quantiles.iter().map(|&p| quantile_name(p)));
    if data.test_y.is_some() {
        columns.push(data.target_name.clone());
        columns.push("nll".into());
    }
    let mut rows = Vec::with_capacity(preds.len());
    let mut table_body = Vec::with_capacity(preds.len());
    let show_features = d <= MAX_TABLE_FEATURES;
    let mut nll_sum = 0.0;
    for (i, pred) in preds.iter().enumerate() {
        let r = pred
            .as_regression()
            .context("the model returned class probabilities")?;
        let mut values = vec![r.mean(), r.median(), r.std()];
        values.extend(r.quantiles(quantiles)?);
        let mut cells = vec![(i + 1).to_string()];
        if show_features {
            cells.extend(data.test_row(i).iter().map(|&v| input_cell(v)));
        }
        let (q05, q95) = r.interval(0.9)?;
        cells.extend([r.mean(), r.std(), q05, q95].map(value_cell));
        if let Some(y) = &data.test_y {
            let nll = pred.nll(y[i]);
            nll_sum += nll;
            values.push(y[i]);
            values.push(nll);
            cells.extend([input_cell(y[i]), value_cell(nll)]);
        }
        rows.push(Row {
            values: values.into_iter().map(Cell::Num).collect(),
        });
        table_body.push(cells);
    }
    let mut table_header = vec!["row".to_string()];
    if show_features {
        table_header.extend(data.feature_names.iter().cloned());
    }
    table_header.extend(["mean", "std", "q0.05", "q0.95"].map(String::from));
    if data.test_y.is_some() {
        table_header.push(data.target_name.clone());
        table_header.push("nll".into());
    }
    let mean_nll = data
        .test_y
        .as_ref()
        .map(|_| nll_sum / rows.len().max(1) as f64);
    let mut summary = Vec::new();
    if let Some(nll) = mean_nll {
        summary.push(format!(
            "mean test NLL: {nll:.4} nats per query ({} queries)",
            rows.len()
        ));
    }
    let legend = format!(
        "mean, std: predictive mean and standard deviation; q0.05..q0.95: central 90 % predictive interval{}",
        if data.test_y.is_some() {
            format!(
                "; {}: the true target; nll: its negative log predictive density (nats)",
                data.target_name
            )
        } else {
            String::new()
        }
    );
    Ok(Output {
        columns,
        rows,
        table_header,
        table_body,
        mean_nll,
        summary,
        legend: Some(legend),
        json: serde_json::Map::new(),
        target_text: format!("target '{}'", data.target_name),
    })
}

/// Scores of labelled class predictions (over the rows whose label is a training class).
struct ClassScores {
    log_loss: Option<f64>,
    accuracy: Option<f64>,
    roc_auc: Option<f64>,
    ece: Option<f64>,
    /// Rows scored.
    scored: usize,
    /// Rows right.
    right: usize,
    /// 1-based test rows whose label no training row has, with the label.
    unseen: Vec<(usize, String)>,
    /// Top-label reliability bins.
    bins: Vec<pfn_distribution::class_metrics::ReliabilityBin>,
}

/// Log loss, accuracy, ROC AUC and calibration of `probabilities` (row-major, `k` per row) against
/// the test labels; rows with a label the training rows lack are left out and listed.
fn score_classes(
    probabilities: &[f64],
    k: usize,
    test_labels: &[(String, Option<usize>)],
) -> Result<ClassScores> {
    use pfn_distribution::class_metrics as cm;
    let mut probs = Vec::with_capacity(probabilities.len());
    let mut labels = Vec::with_capacity(test_labels.len());
    let mut unseen = Vec::new();
    for (i, (text, class)) in test_labels.iter().enumerate() {
        match class {
            Some(c) => {
                probs.extend_from_slice(&probabilities[i * k..(i + 1) * k]);
                labels.push(*c);
            }
            None => unseen.push((i + 1, text.clone())),
        }
    }
    let right = probs
        .chunks_exact(k)
        .zip(&labels)
        .filter(|(row, &l)| cm::predicted_class(row) == l)
        .count();
    Ok(ClassScores {
        log_loss: cm::log_loss(&probs, &labels, k)?,
        accuracy: cm::accuracy(&probs, &labels, k)?,
        roc_auc: cm::roc_auc_ovr(&probs, &labels, k)?,
        ece: cm::expected_calibration_error(&probs, &labels, k, CALIBRATION_BINS)?,
        scored: labels.len(),
        right,
        unseen,
        bins: cm::reliability_bins(&probs, &labels, k, CALIBRATION_BINS)?,
    })
}

/// `p_<label>`: the output column of a class's probability.
fn probability_column(name: &str) -> String {
    format!("p_{name}")
}

/// Classification: each class's probability under its label, the predicted label and, for a
/// labelled test file, the scores.
fn classification_output(
    classes: &ClassLabels,
    probabilities: Vec<f64>,
    data: &pfn_infer::PredictData,
) -> Result<Output> {
    use pfn_distribution::class_metrics::{predicted_class, MIN_PROBABILITY};
    let k = classes.len();
    let d = data.n_features();
    let m = data.n_test();
    let mut columns: Vec<String> = classes
        .names()
        .iter()
        .map(|n| probability_column(n))
        .collect();
    columns.push("predicted".into());
    // The true label's column: the target's name unless an output column already has it.
    let label_column = if columns.contains(&data.target_name)
        || ["row", "nll", "correct"].contains(&data.target_name.as_str())
    {
        format!("true_{}", data.target_name)
    } else {
        data.target_name.clone()
    };
    if data.test_labels.is_some() {
        columns.extend([label_column.clone(), "nll".into(), "correct".into()]);
    }
    let show_features = d <= MAX_TABLE_FEATURES;
    let mut table_header = vec!["row".to_string()];
    if show_features {
        table_header.extend(data.feature_names.iter().cloned());
    }
    table_header.extend(columns.iter().take(k + 1).cloned());
    if data.test_labels.is_some() {
        table_header.extend([label_column.clone(), "nll".into()]);
    }
    let mut rows = Vec::with_capacity(m);
    let mut table_body = Vec::with_capacity(m);
    for i in 0..m {
        let p = &probabilities[i * k..(i + 1) * k];
        let predicted = predicted_class(p);
        let mut values: Vec<Cell> = p.iter().map(|&v| Cell::Num(v)).collect();
        values.push(Cell::Text(classes.name(predicted).to_string()));
        let mut cells = vec![(i + 1).to_string()];
        if show_features {
            cells.extend(data.test_row(i).iter().map(|&v| input_cell(v)));
        }
        cells.extend(p.iter().map(|&v| value_cell(v)));
        cells.push(classes.name(predicted).to_string());
        if let Some(labels) = &data.test_labels {
            let (text, class) = &labels[i];
            values.push(Cell::Text(text.clone()));
            cells.push(text.clone());
            match class {
                Some(c) => {
                    // `+ 0.0` turns the −0 of a certain prediction into 0.
                    let nll = -p[*c].max(MIN_PROBABILITY).ln() + 0.0;
                    values.push(Cell::Num(nll));
                    values.push(Cell::Num(f64::from(u8::from(predicted == *c))));
                    cells.push(value_cell(nll));
                }
                None => {
                    values.extend([Cell::Empty, Cell::Empty]);
                    cells.push("unseen".into());
                }
            }
        }
        rows.push(Row { values });
        table_body.push(cells);
    }

    let mut summary = Vec::new();
    let mut json = serde_json::Map::new();
    json.insert("task".into(), serde_json::json!("classification"));
    json.insert("classes".into(), serde_json::json!(classes.names()));
    if k == 1 {
        summary.push(format!(
            "note: the training labels have a single class '{}': every query is predicted as '{}' with probability 1",
            classes.name(0),
            classes.name(0)
        ));
    }
    let mut mean_nll = None;
    if let Some(labels) = &data.test_labels {
        let s = score_classes(&probabilities, k, labels)?;
        mean_nll = s.log_loss;
        if s.scored == 0 {
            summary.push(format!(
                "no test row has a label of the training rows (classes {}): nothing to score",
                classes.summary(10)
            ));
        } else {
            let of = format!(
                "{} labelled quer{}",
                s.scored,
                if s.scored == 1 { "y" } else { "ies" }
            );
            if let Some(v) = s.log_loss {
                let v = v + 0.0;
                summary.push(format!("test log loss: {v:.4} nats per query ({of})"));
            }
            if let Some(v) = s.accuracy {
                summary.push(format!(
                    "test accuracy: {v:.4} ({} of {} right)",
                    s.right, s.scored
                ));
            }
            summary.push(match s.roc_auc {
                Some(v) if k == 2 => format!(
                    "test ROC AUC: {v:.4} (p_{} ranking class '{}' above '{}')",
                    classes.name(1),
                    classes.name(1),
                    classes.name(0)
                ),
                Some(v) => format!(
                    "test ROC AUC: {v:.4} (one-vs-rest, mean over the classes present in the test labels)"
                ),
                None => "test ROC AUC: undefined (the scored test labels hold a single class)"
                    .to_string(),
            });
            if let Some(v) = s.ece {
                summary.push(format!(
                    "test calibration error (ECE, {CALIBRATION_BINS} confidence bins): {v:.4}"
                ));
            }
        }
        if !s.unseen.is_empty() {
            let shown: Vec<String> = s
                .unseen
                .iter()
                .take(5)
                .map(|(row, label)| format!("row {row} ({label:?})"))
                .collect();
            summary.push(format!(
                "note: {} test row{} ha{} a label that no training row has, so {} predicted but not scored: {}{}; the scores above are over the other {} rows",
                s.unseen.len(),
                if s.unseen.len() == 1 { "" } else { "s" },
                if s.unseen.len() == 1 { "s" } else { "ve" },
                if s.unseen.len() == 1 { "it is" } else { "they are" },
                shown.join(", "),
                if s.unseen.len() > 5 { ", …" } else { "" },
                s.scored
            ));
        }
        json.insert(
            "metrics".into(),
            serde_json::json!({
                "log_loss": s.log_loss,
                "accuracy": s.accuracy,
                "roc_auc": s.roc_auc,
                "roc_auc_kind": if k == 2 { "binary" } else { "one-vs-rest macro" },
                "ece": s.ece,
                "ece_bins": CALIBRATION_BINS,
                "scored_queries": s.scored,
                "unseen_label_rows": s.unseen.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
            }),
        );
    }
    let legend = format!(
        "p_<label>: predicted probability of each class; predicted: the most probable class{}",
        if data.test_labels.is_some() {
            format!(
                "; {label_column}: the true label; nll: minus the log of its probability (nats)"
            )
        } else {
            String::new()
        }
    );
    Ok(Output {
        columns,
        rows,
        table_header,
        table_body,
        mean_nll,
        summary,
        legend: Some(legend),
        json,
        target_text: format!(
            "labels '{}' ({} class{}: {})",
            data.target_name,
            k,
            if k == 1 { "" } else { "es" },
            classes.summary(10)
        ),
    })
}

/// The class plot: with scored test labels a reliability diagram, else the class probabilities
/// of every query as stacked bars, sorted by predicted class and confidence.
fn plot_classes(
    path: &Path,
    classes: &ClassLabels,
    output: &Output,
    data: &pfn_infer::PredictData,
    args: &Args,
) -> Result<()> {
    let k = classes.len();
    let probabilities: Vec<f64> = output
        .rows
        .iter()
        .flat_map(|r| {
            r.values[..k].iter().map(|c| match c {
                Cell::Num(v) => *v,
                _ => f64::NAN,
            })
        })
        .collect();
    let test_name = args.test.file_name().map_or_else(
        || args.test.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    if let Some(labels) = data
        .test_labels
        .as_ref()
        .filter(|l| l.iter().any(|(_, c)| c.is_some()))
    {
        let s = score_classes(&probabilities, k, labels)?;
        let bins: Vec<ConfidenceBin> = s
            .bins
            .iter()
            .map(|b| ConfidenceBin {
                lower: b.lower,
                upper: b.upper,
                count: b.count,
                confidence: b.confidence,
                accuracy: b.accuracy,
            })
            .collect();
        let title = format!(
            "Reliability on {test_name}: {} queries, accuracy {:.3}, ECE {:.3}",
            s.scored,
            s.accuracy.unwrap_or(f64::NAN),
            s.ece.unwrap_or(f64::NAN)
        );
        reliability_diagram(&title, &bins)?.save(path)?;
    } else {
        let m = output.rows.len();
        let mut order: Vec<usize> = (0..m).collect();
        let top = |i: usize| {
            let row = &probabilities[i * k..(i + 1) * k];
            let c = pfn_distribution::class_metrics::predicted_class(row);
            (c, row[c])
        };
        order.sort_by(|&a, &b| {
            let ((ca, pa), (cb, pb)) = (top(a), top(b));
            ca.cmp(&cb).then(pb.total_cmp(&pa)).then(a.cmp(&b))
        });
        let sorted: Vec<f64> = order
            .iter()
            .flat_map(|&i| probabilities[i * k..(i + 1) * k].iter().copied())
            .collect();
        let fig = class_probability_bars(
            &format!("Class probabilities of the {m} queries of {test_name}"),
            "test query, sorted by predicted class and confidence",
            classes.names(),
            &sorted,
        )?;
        fig.save(path)?;
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

/// A CSV field: quoted when it holds a comma, a quote, a line break or surrounding spaces.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.trim() != text {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn write_csv(w: &mut impl Write, columns: &[String], rows: &[Row]) -> Result<()> {
    let header: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
    writeln!(w, "row,{}", header.join(","))?;
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .values
            .iter()
            .map(|v| match v {
                Cell::Num(v) => format!("{v}"),
                Cell::Text(t) => csv_field(t),
                Cell::Empty => String::new(),
            })
            .collect();
        writeln!(w, "{},{}", i + 1, cells.join(","))?;
    }
    Ok(())
}

fn write_json(
    w: &mut impl Write,
    model: &Path,
    args: &Args,
    target: &str,
    output: &Output,
) -> Result<()> {
    let rows_json: Vec<serde_json::Value> = output
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut obj = serde_json::Map::new();
            obj.insert("row".into(), serde_json::json!(i + 1));
            for (c, v) in output.columns.iter().zip(&r.values) {
                let value = match v {
                    Cell::Num(v) => serde_json::json!(v),
                    Cell::Text(t) => serde_json::json!(t),
                    Cell::Empty => serde_json::Value::Null,
                };
                obj.insert(c.clone(), value);
            }
            serde_json::Value::Object(obj)
        })
        .collect();
    let mut doc = serde_json::json!({
        "model": model.display().to_string(),
        "train": args.train.display().to_string(),
        "test": args.test.display().to_string(),
        "target": target,
        "mean_nll": output.mean_nll,
    });
    let obj = doc.as_object_mut().expect("an object");
    for (k, v) in &output.json {
        obj.insert(k.clone(), v.clone());
    }
    obj.insert("predictions".into(), serde_json::Value::Array(rows_json));
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
    use std::sync::OnceLock;

    /// A tiny classifier (tabular-bnn prior, up to 4 features, 10 classes) trained for a few
    /// steps once per test binary: its probabilities mean little, but they are a real model's.
    fn classifier() -> &'static PathBuf {
        static MODEL: OnceLock<PathBuf> = OnceLock::new();
        MODEL.get_or_init(|| {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../configs/tiny-classifier.toml");
            let config = pfn_train::RunConfig::load(&path).unwrap();
            let mut trainer = pfn_train::Trainer::new(config).unwrap();
            trainer
                .run(&pfn_train::RunOptions::default(), &mut ())
                .unwrap();
            let path = dir().join("tiny-classifier.pfn");
            trainer.save_model(&path).unwrap();
            path
        })
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pfn-predict-classes-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let p = dir().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn args(train: &Path, test: &Path, out: Option<&str>) -> Args {
        Args {
            model: Some(classifier().display().to_string()),
            train: train.into(),
            test: test.into(),
            quantiles: "0.05,0.5,0.95".into(),
            format: None,
            out: out.map(|o| dir().join(o)),
            target: None,
            threads: 1,
            precision: pfn_model::Precision::F32,
            plot: None,
            impute: None,
            ensemble: DEFAULT_ENSEMBLE,
            seed: 0,
            no_calibrate: false,
            as_given: false,
        }
    }

    fn json(args: &Args) -> serde_json::Value {
        run(args).unwrap();
        serde_json::from_slice(&std::fs::read(args.out.as_ref().unwrap()).unwrap()).unwrap()
    }

    /// Iris-like rows: four measurements and a species name.
    const IRIS_TRAIN: &str = "sepal_length,sepal_width,petal_length,petal_width,species
5.1,3.5,1.4,0.2,Iris-setosa
4.9,3.0,1.4,0.2,Iris-setosa
4.7,3.2,1.3,0.2,Iris-setosa
7.0,3.2,4.7,1.4,Iris-versicolor
6.4,3.2,4.5,1.5,Iris-versicolor
6.9,3.1,4.9,1.5,Iris-versicolor
6.3,3.3,6.0,2.5,Iris-virginica
5.8,2.7,5.1,1.9,Iris-virginica
7.1,3.0,5.9,2.1,Iris-virginica
";

    #[test]
    fn string_labels_end_to_end_with_scores() {
        let train = write("iris-train.csv", IRIS_TRAIN);
        let test = write(
            "iris-test.csv",
            "species,petal_width,petal_length,sepal_width,sepal_length
Iris-setosa,0.2,1.5,3.4,5.0
Iris-versicolor,1.3,4.0,2.3,5.5
Iris-virginica,2.3,5.7,3.2,6.9
Iris-unknown,1.0,3.0,3.0,6.0
Iris-setosa,0.3,1.4,3.6,5.2
",
        );
        let doc = json(&args(&train, &test, Some("iris.json")));
        let names = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"];
        assert_eq!(doc["classes"], serde_json::json!(names));
        let preds = doc["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 5);
        let labels = [
            "Iris-setosa",
            "Iris-versicolor",
            "Iris-virginica",
            "Iris-unknown",
            "Iris-setosa",
        ];
        let (mut nll, mut right, mut scored) = (0.0, 0, 0);
        for (row, label) in preds.iter().zip(labels) {
            let p: Vec<f64> = names
                .iter()
                .map(|n| row[format!("p_{n}")].as_f64().unwrap())
                .collect();
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{p:?}");
            let best = (0..3).fold(0, |b, c| if p[c] > p[b] { c } else { b });
            assert_eq!(row["predicted"], names[best]);
            assert_eq!(row["species"], label);
            match names.iter().position(|n| *n == label) {
                Some(c) => {
                    let expected = -p[c].ln();
                    assert!((row["nll"].as_f64().unwrap() - expected).abs() < 1e-12);
                    assert_eq!(
                        row["correct"].as_f64().unwrap(),
                        f64::from(u8::from(best == c))
                    );
                    nll += expected;
                    right += usize::from(best == c);
                    scored += 1;
                }
                None => assert!(row["nll"].is_null() && row["correct"].is_null()),
            }
        }
        let m = &doc["metrics"];
        assert_eq!(m["scored_queries"], 4);
        assert_eq!(m["unseen_label_rows"], serde_json::json!([4]));
        assert!((m["log_loss"].as_f64().unwrap() - nll / scored as f64).abs() < 1e-12);
        assert!((doc["mean_nll"].as_f64().unwrap() - nll / scored as f64).abs() < 1e-12);
        assert_eq!(
            m["accuracy"].as_f64().unwrap(),
            right as f64 / scored as f64
        );
        let auc = m["roc_auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc));

        // The same as CSV, and a reliability diagram.
        let mut a = args(&train, &test, Some("iris.csv"));
        a.plot = Some(dir().join("iris-reliability.png"));
        run(&a).unwrap();
        let csv = std::fs::read_to_string(dir().join("iris.csv")).unwrap();
        assert!(csv.starts_with(
            "row,p_Iris-setosa,p_Iris-versicolor,p_Iris-virginica,predicted,species,nll,correct\n"
        ));
        assert!(
            csv.lines().nth(4).unwrap().ends_with(",Iris-unknown,,"),
            "{csv}"
        );
        assert!(
            std::fs::metadata(dir().join("iris-reliability.png"))
                .unwrap()
                .len()
                > 1000
        );
    }

    #[test]
    fn calibration_tempers_the_probabilities_with_enough_training_rows() {
        // 60 training rows (calibrated) whose class is the sign of a + b, 4 test rows.
        let mut text = String::from("a,b,label\n");
        for i in 0..60 {
            let (a, b) = ((i * 7 % 13) as f64 - 6.0, (i * 5 % 11) as f64 - 5.0);
            text += &format!("{a},{b},{}\n", if a + b > 0.0 { "up" } else { "down" });
        }
        let train = write("cal-train.csv", &text);
        let test = write("cal-test.csv", "a,b\n3,2\n-4,-1\n0.5,-0.2\n-2,2.5\n");
        let on = json(&args(&train, &test, Some("cal-on.json")));
        let mut off_args = args(&train, &test, Some("cal-off.json"));
        off_args.no_calibrate = true;
        let off = json(&off_args);
        assert_eq!(on["calibration"]["on"], true);
        assert_eq!(off["calibration"]["on"], false);
        assert_eq!(off["calibration"]["power"], 1.0);
        let beta = on["calibration"]["power"].as_f64().unwrap();
        let (lo, hi) = pfn_infer::calibration::BETA_RANGE;
        assert!(
            (lo..=hi).contains(&beta) && (beta - 1.0).abs() > 1e-6,
            "{beta}"
        );
        // Calibrated = uncalibrated raised to the power β, renormalised.
        let probs = |doc: &serde_json::Value| -> Vec<[f64; 2]> {
            doc["predictions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| [r["p_down"].as_f64().unwrap(), r["p_up"].as_f64().unwrap()])
                .collect()
        };
        for (p_on, p_off) in probs(&on).iter().zip(probs(&off)) {
            let w = [p_off[0].powf(beta), p_off[1].powf(beta)];
            let expected = w[1] / (w[0] + w[1]);
            assert!(
                (p_on[1] - expected).abs() < 1e-9,
                "{p_on:?} vs {p_off:?}, β {beta}"
            );
        }
        // Too few rows: nothing fitted, and the summary says so.
        let small = write(
            "cal-small.csv",
            &text.lines().take(21).collect::<Vec<_>>().join("\n"),
        );
        let doc = json(&args(&small, &test, Some("cal-small.json")));
        assert_eq!(doc["calibration"]["power"], 1.0);
        let note = calibration_note(false, 20, &ContextCalibration::default(), 1.0, "densities");
        assert!(note.contains("20 training rows"), "{note}");
    }

    #[test]
    fn a_classification_table_wider_than_the_model_is_answered_through_principal_components() {
        // Six feature columns for a model that takes four: 60 training rows are calibrated, and
        // the folds can only choose principal components; 20 rows are refused with a hint.
        let mut text = String::from("a,b,c,d,e,f,label\n");
        for i in 0..60 {
            let t = (i * 7 % 13) as f64 - 6.0;
            let u = (i * 5 % 11) as f64 - 5.0;
            let row = [t, u, t + 0.1 * u, 2.0 * t, u - t, 0.5 * u];
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            text += &format!(
                "{},{}\n",
                cells.join(","),
                if t > 0.0 { "hi" } else { "lo" }
            );
        }
        let train = write("wide-train.csv", &text);
        let test = write(
            "wide-test.csv",
            "a,b,c,d,e,f\n3,1,3.1,6,-2,0.5\n-4,2,-3.8,-8,6,1\n",
        );
        let doc = json(&args(&train, &test, Some("wide.json")));
        assert_eq!(doc["calibration"]["view"], "4 principal components");
        assert_eq!(doc["calibration"]["components"], 4);
        for row in doc["predictions"].as_array().unwrap() {
            let p = row["p_hi"].as_f64().unwrap() + row["p_lo"].as_f64().unwrap();
            assert!((p - 1.0).abs() < 1e-9, "{row}");
        }
        // A narrow table keeps its columns (no candidate besides them for this model).
        let narrow = write(
            "narrow-train.csv",
            &text
                .lines()
                .map(|l| {
                    let c: Vec<&str> = l.split(',').collect();
                    format!("{},{},{}", c[0], c[1], c[6])
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let narrow_test = write("narrow-test.csv", "a,b\n3,1\n");
        let doc = json(&args(&narrow, &narrow_test, Some("narrow.json")));
        // No choice for this narrow table: the view is not reported.
        assert!(doc["calibration"].get("view").is_none());
        // Too few rows to calibrate, or calibration off: an error that says why.
        let small = write(
            "wide-small.csv",
            &text.lines().take(21).collect::<Vec<_>>().join("\n"),
        );
        let e = run(&args(&small, &test, Some("wide-small.json")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("6 feature columns") && e.contains("principal components"),
            "{e}"
        );
        let mut off = args(&train, &test, Some("wide-off.json"));
        off.no_calibrate = true;
        assert!(run(&off).unwrap_err().to_string().contains("more features"));
        let mut given = args(&train, &test, Some("wide-given.json"));
        given.as_given = true;
        assert!(run(&given)
            .unwrap_err()
            .to_string()
            .contains("more features"));
    }

    #[test]
    fn binary_scores_match_hand_computed_values() {
        let train = write(
            "bin-train.csv",
            "a,b,label\n0,0,no\n0,1,no\n1,0,yes\n1,1,yes\n0.5,0.2,no\n0.9,0.8,yes\n",
        );
        let test = write(
            "bin-test.csv",
            "a,b,label\n0.1,0.1,no\n0.9,0.9,yes\n0.2,0.8,yes\n0.8,0.1,no\n",
        );
        let doc = json(&args(&train, &test, Some("bin.json")));
        let preds = doc["predictions"].as_array().unwrap();
        let p_yes: Vec<f64> = preds.iter().map(|r| r["p_yes"].as_f64().unwrap()).collect();
        let yes = [false, true, true, false];
        // AUC by counting (positive, negative) pairs, ties one half.
        let mut pairs = 0.0;
        for i in 0..4 {
            for j in 0..4 {
                if yes[i] && !yes[j] {
                    pairs += if p_yes[i] > p_yes[j] {
                        1.0
                    } else if p_yes[i] == p_yes[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        let m = &doc["metrics"];
        assert!((m["roc_auc"].as_f64().unwrap() - pairs / 4.0).abs() < 1e-12);
        let log_loss: f64 = p_yes
            .iter()
            .zip(yes)
            .map(|(&p, y)| -(if y { p } else { 1.0 - p }).ln())
            .sum::<f64>()
            / 4.0;
        assert!((m["log_loss"].as_f64().unwrap() - log_loss).abs() < 1e-9);
        let right = p_yes
            .iter()
            .zip(yes)
            .filter(|(&p, y)| (p > 0.5) == *y)
            .count();
        assert_eq!(m["accuracy"].as_f64().unwrap(), right as f64 / 4.0);
    }

    #[test]
    fn integer_labels_keep_their_names_in_numeric_order() {
        let train = write(
            "int-train.csv",
            "a,b,class\n0,0,10\n0,1,2\n1,0,10\n1,1,2\n0.5,0.5,7\n",
        );
        let test = write("int-test.csv", "a,b\n0.2,0.3\n0.7,0.1\n");
        let mut a = args(&train, &test, Some("int.json"));
        a.plot = Some(dir().join("int-bars.svg"));
        let doc = json(&a);
        assert_eq!(doc["classes"], serde_json::json!(["2", "7", "10"]));
        let row = &doc["predictions"][0];
        let sum: f64 = ["p_2", "p_7", "p_10"]
            .iter()
            .map(|c| row[*c].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert!(["2", "7", "10"].contains(&row["predicted"].as_str().unwrap()));
        assert!(doc.get("metrics").is_none());
        let svg = std::fs::read_to_string(dir().join("int-bars.svg")).unwrap();
        assert!(svg.contains("\n10\n"), "the legend names the classes");
    }

    #[test]
    fn more_classes_than_the_model_predicts_is_an_error() {
        let mut text = "a,b,y\n".to_string();
        for (i, l) in "abcdefghijkl".chars().enumerate() {
            text.push_str(&format!("{i},{},{l}\n", i % 3));
        }
        let train = write("many-train.csv", &text);
        let test = write("many-test.csv", "a,b\n1,1\n");
        let e = run(&args(&train, &test, None)).unwrap_err().to_string();
        assert!(
            e.contains("the training labels in column 'y' have 12 classes (a, b, c, d, e, f, g, h, i, j, k, l) but this model predicts at most 10"),
            "{e}"
        );
    }

    #[test]
    fn a_single_class_is_predicted_with_probability_one() {
        let train = write("one-train.csv", "a,b,y\n0,0,only\n1,1,only\n2,0,only\n");
        let test = write("one-test.csv", "a,b,y\n0.5,0.5,only\n3,3,other\n");
        let doc = json(&args(&train, &test, Some("one.json")));
        for row in doc["predictions"].as_array().unwrap() {
            assert_eq!(row["p_only"].as_f64().unwrap(), 1.0);
            assert_eq!(row["predicted"], "only");
        }
        assert_eq!(doc["metrics"]["log_loss"].as_f64().unwrap(), 0.0);
        assert!(doc["metrics"]["roc_auc"].is_null());
    }

    #[test]
    fn missing_features_are_errors_or_imputed() {
        let train = write("na-train.csv", "a,b,y\n1,0,u\n3,NA,v\n,1,u\n2,1,v\n");
        let test = write("na-test.csv", "a,b\n?,0.5\n1,1\n");
        let e = run(&args(&train, &test, None)).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}: line 3 (data row 2), column 'b': missing value (\"NA\")",
                train.display()
            )) && e.contains("--impute mean"),
            "{e}"
        );
        let mut a = args(&train, &test, Some("na.json"));
        a.impute = Some(Impute::Mean);
        let doc = json(&a);
        assert_eq!(doc["predictions"].as_array().unwrap().len(), 2);
        // A missing label is no feature: an error without the hint, even with --impute.
        let bad = write("na-label.csv", "a,b,y\n1,0,u\n3,1,\n");
        a.train = bad.clone();
        let e = run(&a).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: line 3 (data row 2), column 'y': missing value",
                bad.display()
            )
        );
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(" x"), "\" x\"");
    }

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
