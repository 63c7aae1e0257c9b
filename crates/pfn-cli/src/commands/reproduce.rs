//! `pfn reproduce <experiment>`: runs one of the paper's experiments (gp-fit, gp-hyper, bnn,
//! tabular, strokes) and
//! writes a Markdown report with tables and PNG plots, `results.json`, the exact command, seed,
//! machine and wall times into `--out DIR` (see the `pfn-experiments` crate).

use std::path::PathBuf;

use anyhow::Result;
use pfn_experiments::{parse_count_list, run_experiment, Experiment, ExperimentOptions};

/// Which experiment to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExperimentArg {
    /// Fig. 3/4a: prior-data NLL of PFN artifacts vs the exact GP per context size.
    GpFit,
    /// Fig. 4b: PFN vs type-II ML vs NUTS vs the oracle GP on the GP hyper-prior (NLL, time).
    GpHyper,
    /// Fig. 5: PFN vs SVI vs NUTS on the BNN classification prior (BCE vs inference time).
    Bnn,
    /// Tables 1/7: a tabular PFN vs tuned logistic regression, kNN, GP classifier and XGBoost on
    /// small real datasets (the paper's 30-row protocol and larger contexts).
    Tabular,
    /// Table 2: few-shot Omniglot (5-way 5-shot episodes from the background alphabets, and the
    /// 20-way 1-shot runs) with a PFN trained on the stroke prior vs nearest-neighbour and
    /// logistic-regression baselines.
    Strokes,
}

impl From<ExperimentArg> for Experiment {
    fn from(e: ExperimentArg) -> Self {
        match e {
            ExperimentArg::GpFit => Experiment::GpFit,
            ExperimentArg::GpHyper => Experiment::GpHyper,
            ExperimentArg::Bnn => Experiment::Bnn,
            ExperimentArg::Tabular => Experiment::Tabular,
            ExperimentArg::Strokes => Experiment::Strokes,
        }
    }
}

/// Arguments of `pfn reproduce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment.
    #[arg(value_enum)]
    pub experiment: ExperimentArg,
    /// Output directory for report.md, results.json and the plots (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Reduced run (fewer datasets, sizes, budgets) that finishes in minutes on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Seed of the held-out datasets and of every sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of datasets (default: gp-fit 1000, gp-hyper 100, bnn 100, tabular 21, strokes 1000
    /// episodes; with --quick 100, 8, 4, 4, 40; tabular takes the first ones of its list).
    #[arg(long)]
    pub datasets: Option<usize>,
    /// PFN model artifact; repeat for several (e.g. training budgets). Default: the matching
    /// `*.pfn` files of --models-dir (for tabular: models/tabular.pfn, the shipped classifier; for
    /// strokes: models/strokes.pfn, a class head on 28 x 28 images).
    #[arg(long = "model")]
    pub models: Vec<PathBuf>,
    /// Directory searched for models when no --model is given.
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
    /// Do not search --models-dir (run the baselines alone unless --model is given).
    #[arg(long)]
    pub no_model_search: bool,
    /// Context sizes, comma-separated (gp-fit: default 0,1,2,3,5,10,20,30,40,50 up to the
    /// models' trained context; gp-hyper: default 1..30, --quick 1,2,3,5,10,20,30).
    #[arg(long)]
    pub sizes: Option<String>,
    /// bnn budgets, comma-separated (default 8,16,...,1024; --quick 8,32,128).
    #[arg(long)]
    pub budgets: Option<String>,
    /// tabular: directory holding the datasets' tabular/ and cc18/ folders (default: data, the
    /// repository's copy); strokes: directory of the Omniglot zip archives (default:
    /// data/omniglot).
    #[arg(long = "data")]
    pub data_dir: Option<PathBuf>,
    /// tabular: members of the PFN's class-probability ensemble (feature orders and class
    /// renamings averaged; default 8).
    #[arg(long)]
    pub ensemble: Option<usize>,
    /// tabular: do not temper the PFN's class probabilities (by default a temperature is fitted
    /// on each context of 50 rows or more by 5-fold cross-validation over its rows).
    #[arg(long)]
    pub no_calibrate: bool,
    /// tabular: the PFN always sees the features as given (by default a calibrated context also
    /// chooses between them and 8 or 16 leading principal components by the same folds).
    #[arg(long)]
    pub as_given: bool,
    /// gp-hyper: input features of the held-out datasets (default 1, as in the paper's Fig. 4b);
    /// every model must accept that many.
    #[arg(long)]
    pub features: Option<usize>,
    /// Arithmetic of the PFNs' matrix products: f32, or bf16 (operands rounded to bfloat16, f32
    /// accumulation; faster on CPUs with AVX-512 BF16 or AMX).
    #[arg(long, default_value = "f32")]
    pub precision: pfn_model::Precision,
    /// No progress indicator on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

/// The library options of parsed arguments; `invocation` is the command line as typed.
pub fn options(args: &Args, invocation: Option<String>) -> Result<ExperimentOptions> {
    let mut o = ExperimentOptions::new(args.experiment.into(), &args.out);
    o.quick = args.quick;
    o.seed = args.seed;
    o.datasets = args.datasets;
    o.models = args.models.clone();
    o.models_dir = (!args.no_model_search).then(|| args.models_dir.clone());
    o.sizes = args
        .sizes
        .as_deref()
        .map(|s| parse_count_list(s, "--sizes"))
        .transpose()?;
    o.budgets = args
        .budgets
        .as_deref()
        .map(|s| parse_count_list(s, "--budgets"))
        .transpose()?;
    o.data_dir = args.data_dir.clone();
    o.ensemble = args.ensemble;
    o.calibrate = !args.no_calibrate;
    o.select_view = !args.as_given;
    o.features = args.features;
    o.precision = args.precision;
    o.progress = !args.no_progress;
    o.invocation = invocation;
    o.validate()?;
    Ok(o)
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let invocation = std::env::args()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                "pfn".to_string()
            } else {
                pfn_experiments::options::quote(&a)
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let opts = options(args, Some(invocation))?;
    let outcome = run_experiment(&opts)?;
    print!("{}", outcome.markdown);
    eprintln!("report: {}", outcome.report.display());
    eprintln!("results: {}", outcome.results.display());
    for p in &outcome.plots {
        eprintln!("plot: {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<ExperimentOptions> {
        let cli = Cli::try_parse_from(std::iter::once("reproduce").chain(argv.iter().copied()))?;
        options(&cli.args, None)
    }

    #[test]
    fn parses_the_options() {
        let o = parse(&[
            "bnn",
            "--out",
            "r",
            "--quick",
            "--seed",
            "3",
            "--budgets",
            "8,16",
            "--no-model-search",
        ])
        .unwrap();
        assert_eq!(o.experiment, Experiment::Bnn);
        assert!(o.quick);
        assert_eq!(o.seed, 3);
        assert_eq!(o.budgets, Some(vec![8, 16]));
        assert_eq!(o.models_dir, None);
        let o = parse(&["tabular", "--out", "r", "--quick", "--no-model-search"]).unwrap();
        assert_eq!(o.experiment, Experiment::Tabular);
        assert_eq!(o.num_datasets(), 4);
        assert!(o.calibrate && !o.canonical_command().contains("calibrate"));
        let o = parse(&["tabular", "--out", "r", "--no-calibrate"]).unwrap();
        assert!(!o.calibrate && o.canonical_command().contains("--no-calibrate"));
        let o = parse(&["tabular", "--out", "r", "--as-given"]).unwrap();
        assert!(o.calibrate && !o.select_view && o.canonical_command().contains("--as-given"));
        let o = parse(&["strokes", "--out", "r", "--quick", "--seed", "2"]).unwrap();
        assert_eq!(o.experiment, Experiment::Strokes);
        assert_eq!((o.num_datasets(), o.seed), (40, 2));
        let o = parse(&["gp-fit", "--out", "r", "--sizes", "0,5"]).unwrap();
        assert_eq!(o.sizes, Some(vec![0, 5]));
        assert_eq!(o.models_dir, Some(PathBuf::from("models")));
        let o = parse(&["gp-hyper", "--out", "r", "--features", "3"]).unwrap();
        assert_eq!(o.features, Some(3));
        assert!(
            o.canonical_command().contains("--features 3"),
            "{}",
            o.canonical_command()
        );
    }

    #[test]
    fn bad_options_fail_with_a_message() {
        let err = |argv: &[&str]| parse(argv).unwrap_err().to_string();
        assert!(err(&["gp-fits", "--out", "r"]).contains("gp-fits"));
        assert!(err(&["bnn"]).contains("--out"));
        assert!(err(&["bnn", "--out", "r", "--no-calibrate"]).contains("tabular experiment only"));
        assert!(err(&["bnn", "--out", "r", "--as-given"]).contains("tabular experiment only"));
        assert!(err(&["bnn", "--out", "r", "--datasets", "0"]).contains("--datasets"));
        assert!(err(&["bnn", "--out", "r", "--datasets", "x"]).contains("--datasets"));
        assert!(err(&["gp-hyper", "--out", "r", "--sizes", "1,a"]).contains("'a'"));
        assert!(err(&["gp-hyper", "--out", "r", "--budgets", "8"]).contains("bnn experiment only"));
        assert!(err(&["bnn", "--out", "r", "--model", "missing.pfn"]).contains("missing.pfn"));
        assert!(err(&["bnn", "--out", "r", "--data", "."]).contains("tabular and strokes"));
        assert!(err(&["strokes", "--out", "r", "--sizes", "5"]).contains("--sizes"));
        assert!(err(&["tabular", "--out", "r", "--data", "/no/such/dir"]).contains("--data"));
        assert!(err(&["tabular", "--out", "r", "--sizes", "30"]).contains("--sizes"));
        assert!(err(&["tabular", "--out", "r", "--datasets", "22"]).contains("21 datasets"));
        assert!(err(&["bnn", "--out", "r", "--features", "2"]).contains("gp-hyper experiment only"));
        assert!(err(&["gp-hyper", "--out", "r", "--features", "0"]).contains("out of range"));
    }
}
