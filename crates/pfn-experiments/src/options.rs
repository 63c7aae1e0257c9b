//! The experiments and the options of a run (`pfn reproduce <experiment> ...`), with their
//! defaults (full and `--quick`) and validation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use pfn_infer::Precision;
use serde::Serialize;

use crate::error::ExperimentError;

/// The reproducible experiments of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    /// Prior-data NLL of PFNs against the exact GP with fixed hyperparameters (Fig. 3/4a).
    GpFit,
    /// GP with hyper-priors: PFN against type-II ML, NUTS and the oracle (Fig. 4b).
    GpHyper,
    /// BNN classification: PFN against SVI and NUTS, NLL against inference time (Fig. 5).
    Bnn,
    /// Tabular classification on real datasets: PFN against tuned classifiers (Tables 1 and 7).
    Tabular,
    /// Few-shot Omniglot: a PFN trained on the stroke prior against nearest-neighbour and
    /// logistic-regression baselines (Table 2).
    Strokes,
}

impl Experiment {
    /// Every experiment, in display order.
    pub const ALL: [Experiment; 5] = [
        Experiment::GpFit,
        Experiment::GpHyper,
        Experiment::Bnn,
        Experiment::Tabular,
        Experiment::Strokes,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::GpFit => "gp-fit",
            Experiment::GpHyper => "gp-hyper",
            Experiment::Bnn => "bnn",
            Experiment::Tabular => "tabular",
            Experiment::Strokes => "strokes",
        }
    }

    /// The figure of the paper it reproduces, and the spec section.
    pub fn reproduces(self) -> &'static str {
        match self {
            Experiment::GpFit => "Fig. 3/4a of Müller et al. (ICLR 2022), spec §4.1 and §6.1",
            Experiment::GpHyper => "Fig. 4b of Müller et al. (ICLR 2022), spec §4.2 and §6.2",
            Experiment::Bnn => "Fig. 5 of Müller et al. (ICLR 2022), spec §4.3 and §6.3",
            Experiment::Tabular => {
                "Tables 1 and 7 of Müller et al. (ICLR 2022) on other small datasets, spec §4.4 and §6.4"
            }
            Experiment::Strokes => {
                "Table 2 (§7) of Müller et al. (ICLR 2022) on other Omniglot alphabets, spec §4.6 and §6.5"
            }
        }
    }

    /// Number of datasets of a full run.
    pub fn default_datasets(self) -> usize {
        match self {
            Experiment::GpFit => 1000,
            Experiment::GpHyper => 100,
            Experiment::Bnn => 100,
            Experiment::Tabular => crate::tabular_data::DATASETS.len(),
            Experiment::Strokes => 1000,
        }
    }

    /// Number of datasets of a `--quick` run.
    pub fn quick_datasets(self) -> usize {
        match self {
            Experiment::GpFit => 100,
            Experiment::GpHyper => 8,
            Experiment::Bnn => 4,
            Experiment::Tabular => crate::tabular_data::QUICK_DATASETS.len(),
            Experiment::Strokes => 40,
        }
    }
}

impl fmt::Display for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Experiment {
    type Err = ExperimentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Experiment::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                ExperimentError::option(
                    "experiment",
                    format!(
                        "unknown experiment '{s}'; expected one of {}",
                        Experiment::ALL.map(|e| e.name()).join(", ")
                    ),
                )
            })
    }
}

/// Largest accepted `--features` (gp-hyper).
pub const MAX_GP_HYPER_FEATURES: usize = 64;

/// Largest accepted `--ensemble`.
pub const MAX_ENSEMBLE: usize = 64;

/// Largest accepted `--datasets`.
pub const MAX_DATASETS: usize = 1_000_000;
/// Largest accepted context size in `--sizes`.
pub const MAX_CONTEXT_SIZE: usize = 10_000;
/// Largest accepted budget in `--budgets`.
pub const MAX_BUDGET: usize = 100_000;

/// Context sizes of a full `gp-hyper` run: 1..=30 (the paper's Fig. 4b range).
pub fn gp_hyper_full_sizes() -> Vec<usize> {
    (1..=30).collect()
}

/// Context sizes of a `--quick` `gp-hyper` run.
pub const GP_HYPER_QUICK_SIZES: &[usize] = &[1, 2, 3, 5, 10, 20, 30];

/// Budgets (SVI steps = predictive samples; NUTS warm-up = draws) of a full `bnn` run.
pub const BNN_FULL_BUDGETS: &[usize] = &[8, 16, 32, 64, 128, 256, 512, 1024];

/// Budgets of a `--quick` `bnn` run.
pub const BNN_QUICK_BUDGETS: &[usize] = &[8, 32, 128];

/// The options of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentOptions {
    /// Which experiment.
    pub experiment: Experiment,
    /// Directory for the report, plots and JSON results (created if missing).
    pub out: PathBuf,
    /// Reduced run (fewer datasets, sizes and budgets) that finishes in minutes on 2 cores.
    pub quick: bool,
    /// Seed of the held-out datasets and of every sampler.
    pub seed: u64,
    /// Number of datasets (default: [`Experiment::default_datasets`] or
    /// [`Experiment::quick_datasets`]).
    pub datasets: Option<usize>,
    /// PFN model artifacts given explicitly (`--model`, repeatable).
    pub models: Vec<PathBuf>,
    /// Directory searched for `*.pfn` artifacts when no model is given (`None`: no search).
    pub models_dir: Option<PathBuf>,
    /// Context sizes (`gp-fit`, `gp-hyper`).
    pub sizes: Option<Vec<usize>>,
    /// Compute budgets (`bnn`).
    pub budgets: Option<Vec<usize>>,
    /// Directory of the real datasets (`tabular`; `None`: `data`, see
    /// [`crate::tabular::DEFAULT_DATA_DIR`]; `strokes`: the Omniglot archives, `None`:
    /// [`crate::omniglot::DEFAULT_DATA_DIR`]).
    pub data_dir: Option<PathBuf>,
    /// Members of the PFN's class-probability ensemble (`tabular`; `None`:
    /// [`crate::tabular::DEFAULT_ENSEMBLE`]; see `pfn_infer::ensemble`).
    pub ensemble: Option<usize>,
    /// Temper the PFN's class probabilities by a temperature fitted on each context by
    /// cross-validation (`tabular`; on by default; see `pfn_infer::calibration`).
    pub calibrate: bool,
    /// Let calibrated contexts choose the PFN's input view, the features as given or principal
    /// components (`tabular`; on by default; see `pfn_infer::principal_components`).
    pub select_view: bool,
    /// Input features of the held-out datasets (`gp-hyper`; `None`: one, the paper's Fig. 4b,
    /// see [`crate::gp_hyper::DEFAULT_FEATURES`]). Every model must accept that many.
    pub features: Option<usize>,
    /// Arithmetic of the PFNs' matrix products (`--precision`; f32 by default, bf16 rounds the
    /// operands to bfloat16 with f32 accumulation).
    pub precision: Precision,
    /// Show a progress indicator on stderr.
    pub progress: bool,
    /// The command line as typed, recorded in the report (the canonical command is always
    /// recorded as well).
    pub invocation: Option<String>,
}

impl ExperimentOptions {
    /// Options with defaults: seed 0, models searched in `models/`, no progress output.
    pub fn new(experiment: Experiment, out: impl Into<PathBuf>) -> Self {
        Self {
            experiment,
            out: out.into(),
            quick: false,
            seed: 0,
            datasets: None,
            models: Vec::new(),
            models_dir: Some(PathBuf::from("models")),
            sizes: None,
            budgets: None,
            data_dir: None,
            ensemble: None,
            calibrate: true,
            select_view: true,
            features: None,
            precision: Precision::F32,
            progress: false,
            invocation: None,
        }
    }

    /// Checks every option against the experiment.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        if self.out.as_os_str().is_empty() {
            return Err(ExperimentError::option("--out", "give a directory"));
        }
        if self.out.is_file() {
            return Err(ExperimentError::option(
                "--out",
                format!("{} is a file, not a directory", self.out.display()),
            ));
        }
        if let Some(d) = self.datasets {
            if d == 0 || d > MAX_DATASETS {
                return Err(ExperimentError::option(
                    "--datasets",
                    format!("{d} is out of range; expected 1..={MAX_DATASETS}"),
                ));
            }
        }
        if let Some(sizes) = &self.sizes {
            if matches!(
                self.experiment,
                Experiment::Bnn | Experiment::Tabular | Experiment::Strokes
            ) {
                return Err(ExperimentError::option(
                    "--sizes",
                    "applies to gp-fit and gp-hyper only (bnn, tabular and strokes use the paper's context sizes)",
                ));
            }
            if sizes.is_empty() {
                return Err(ExperimentError::option(
                    "--sizes",
                    "give at least one context size",
                ));
            }
            let min = if self.experiment == Experiment::GpHyper {
                1
            } else {
                0
            };
            if let Some(&n) = sizes
                .iter()
                .find(|&&n| !(min..=MAX_CONTEXT_SIZE).contains(&n))
            {
                return Err(ExperimentError::option(
                    "--sizes",
                    format!(
                        "context size {n} is out of range; expected {min}..={MAX_CONTEXT_SIZE}{}",
                        if min == 1 {
                            " (type-II ML and NUTS need at least one observation)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        if let Some(budgets) = &self.budgets {
            if self.experiment != Experiment::Bnn {
                return Err(ExperimentError::option(
                    "--budgets",
                    "applies to the bnn experiment only",
                ));
            }
            if budgets.is_empty() {
                return Err(ExperimentError::option(
                    "--budgets",
                    "give at least one budget",
                ));
            }
            if let Some(&b) = budgets.iter().find(|&&b| !(2..=MAX_BUDGET).contains(&b)) {
                return Err(ExperimentError::option(
                    "--budgets",
                    format!("budget {b} is out of range; expected 2..={MAX_BUDGET}"),
                ));
            }
        }
        if let (Experiment::Tabular, Some(d)) = (self.experiment, self.datasets) {
            let available = if self.quick {
                crate::tabular_data::QUICK_DATASETS.len()
            } else {
                crate::tabular_data::DATASETS.len()
            };
            if d > available {
                return Err(ExperimentError::option(
                    "--datasets",
                    format!(
                        "the tabular benchmark has {available} datasets{}; expected 1..={available}",
                        if self.quick { " in a quick run" } else { "" }
                    ),
                ));
            }
        }
        if let Some(d) = &self.data_dir {
            if !matches!(self.experiment, Experiment::Tabular | Experiment::Strokes) {
                return Err(ExperimentError::option(
                    "--data",
                    "applies to the tabular and strokes experiments only",
                ));
            }
            if !d.is_dir() {
                return Err(ExperimentError::option(
                    "--data",
                    format!("{} is not a directory", d.display()),
                ));
            }
        }
        if let Some(e) = self.ensemble {
            if self.experiment != Experiment::Tabular {
                return Err(ExperimentError::option(
                    "--ensemble",
                    "applies to the tabular experiment only",
                ));
            }
            if !(1..=MAX_ENSEMBLE).contains(&e) {
                return Err(ExperimentError::option(
                    "--ensemble",
                    format!("{e} members is out of range; expected 1..={MAX_ENSEMBLE}"),
                ));
            }
        }
        if !self.calibrate && self.experiment != Experiment::Tabular {
            return Err(ExperimentError::option(
                "--no-calibrate",
                "applies to the tabular experiment only",
            ));
        }
        if !self.select_view && self.experiment != Experiment::Tabular {
            return Err(ExperimentError::option(
                "--as-given",
                "applies to the tabular experiment only",
            ));
        }
        if let Some(f) = self.features {
            if self.experiment != Experiment::GpHyper {
                return Err(ExperimentError::option(
                    "--features",
                    "applies to the gp-hyper experiment only",
                ));
            }
            if !(1..=MAX_GP_HYPER_FEATURES).contains(&f) {
                return Err(ExperimentError::option(
                    "--features",
                    format!("{f} features is out of range; expected 1..={MAX_GP_HYPER_FEATURES}"),
                ));
            }
        }
        for m in &self.models {
            if !m.is_file() {
                return Err(ExperimentError::option(
                    "--model",
                    format!("{} is not a file", m.display()),
                ));
            }
        }
        Ok(())
    }

    /// Members of the PFN's class-probability ensemble in the tabular experiment.
    pub fn tabular_ensemble(&self) -> usize {
        self.ensemble.unwrap_or(crate::tabular::DEFAULT_ENSEMBLE)
    }

    /// The number of datasets of this run.
    pub fn num_datasets(&self) -> usize {
        self.datasets.unwrap_or(if self.quick {
            self.experiment.quick_datasets()
        } else {
            self.experiment.default_datasets()
        })
    }

    /// The `gp-hyper` context sizes of this run (sorted, de-duplicated).
    pub fn gp_hyper_sizes(&self) -> Vec<usize> {
        let mut s = match &self.sizes {
            Some(s) => s.clone(),
            None if self.quick => GP_HYPER_QUICK_SIZES.to_vec(),
            None => gp_hyper_full_sizes(),
        };
        s.sort_unstable();
        s.dedup();
        s
    }

    /// The `bnn` budgets of this run (sorted, de-duplicated).
    pub fn bnn_budgets(&self) -> Vec<usize> {
        let mut b = match &self.budgets {
            Some(b) => b.clone(),
            None if self.quick => BNN_QUICK_BUDGETS.to_vec(),
            None => BNN_FULL_BUDGETS.to_vec(),
        };
        b.sort_unstable();
        b.dedup();
        b
    }

    /// The command that repeats this run exactly (every option spelled out).
    pub fn canonical_command(&self) -> String {
        let mut parts = vec![
            "pfn".to_string(),
            "reproduce".into(),
            self.experiment.name().into(),
            "--out".into(),
            quote(&self.out.display().to_string()),
            "--seed".into(),
            self.seed.to_string(),
            "--datasets".into(),
            self.num_datasets().to_string(),
        ];
        if self.quick {
            parts.push("--quick".into());
        }
        for m in &self.models {
            parts.push("--model".into());
            parts.push(quote(&m.display().to_string()));
        }
        if self.models.is_empty() {
            match &self.models_dir {
                Some(d) => {
                    parts.push("--models-dir".into());
                    parts.push(quote(&d.display().to_string()));
                }
                None => parts.push("--no-model-search".into()),
            }
        }
        if let Some(s) = &self.sizes {
            parts.push("--sizes".into());
            parts.push(join(s));
        }
        if let Some(b) = &self.budgets {
            parts.push("--budgets".into());
            parts.push(join(b));
        }
        if let Some(d) = &self.data_dir {
            parts.push("--data".into());
            parts.push(quote(&d.display().to_string()));
        }
        if self.experiment == Experiment::Tabular {
            parts.push("--ensemble".into());
            parts.push(self.tabular_ensemble().to_string());
            if !self.calibrate {
                parts.push("--no-calibrate".into());
            } else if !self.select_view {
                parts.push("--as-given".into());
            }
        }
        if let Some(f) = self.features {
            parts.push("--features".into());
            parts.push(f.to_string());
        }
        if self.precision != Precision::F32 {
            parts.push("--precision".into());
            parts.push(self.precision.to_string());
        }
        parts.join(" ")
    }
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Quotes a shell word when it contains anything but safe characters.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Parses a comma-separated list of non-negative integers given to `option`.
pub fn parse_count_list(text: &str, option: &'static str) -> Result<Vec<usize>, ExperimentError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        out.push(part.parse::<usize>().map_err(|_| {
            ExperimentError::option(
                option,
                format!("'{part}' is not a non-negative integer (expected e.g. 1,2,5,10)"),
            )
        })?);
    }
    if out.is_empty() {
        return Err(ExperimentError::option(option, "give at least one value"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_names_round_trip() {
        for e in Experiment::ALL {
            assert_eq!(e.name().parse::<Experiment>().unwrap(), e);
        }
        let err = "gp-fits".parse::<Experiment>().unwrap_err().to_string();
        assert!(err.contains("gp-fits") && err.contains("gp-hyper"), "{err}");
    }

    #[test]
    fn lists_parse_and_reject_bad_items() {
        assert_eq!(
            parse_count_list("1, 2,5,", "--sizes").unwrap(),
            vec![1, 2, 5]
        );
        let e = parse_count_list("1,x", "--sizes").unwrap_err().to_string();
        assert!(e.contains("--sizes") && e.contains("'x'"), "{e}");
        assert!(parse_count_list(" , ", "--budgets").is_err());
        assert!(parse_count_list("-3", "--budgets").is_err());
    }

    #[test]
    fn options_that_do_not_apply_are_rejected() {
        let mut o = ExperimentOptions::new(Experiment::GpFit, "out");
        o.budgets = Some(vec![8]);
        assert!(o.validate().unwrap_err().to_string().contains("--budgets"));
        let mut o = ExperimentOptions::new(Experiment::Bnn, "out");
        o.sizes = Some(vec![3]);
        assert!(o.validate().unwrap_err().to_string().contains("--sizes"));
        let mut o = ExperimentOptions::new(Experiment::GpHyper, "out");
        o.sizes = Some(vec![0, 5]);
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("context size 0"), "{e}");
        let mut o = ExperimentOptions::new(Experiment::Bnn, "out");
        o.budgets = Some(vec![1]);
        assert!(o.validate().unwrap_err().to_string().contains("budget 1"));
        let mut o = ExperimentOptions::new(Experiment::Bnn, "out");
        o.datasets = Some(0);
        assert!(o.validate().unwrap_err().to_string().contains("--datasets"));
        let mut o = ExperimentOptions::new(Experiment::Bnn, "out");
        o.models = vec![PathBuf::from("/definitely/not/here.pfn")];
        let e = o.validate().unwrap_err().to_string();
        assert!(
            e.contains("--model") && e.contains("/definitely/not/here.pfn"),
            "{e}"
        );
    }

    #[test]
    fn defaults_depend_on_quick() {
        let mut o = ExperimentOptions::new(Experiment::GpHyper, "out dir");
        assert_eq!(o.num_datasets(), 100);
        assert_eq!(o.gp_hyper_sizes(), (1..=30).collect::<Vec<_>>());
        o.quick = true;
        assert_eq!(o.num_datasets(), 8);
        assert_eq!(o.gp_hyper_sizes(), GP_HYPER_QUICK_SIZES.to_vec());
        o.datasets = Some(7);
        assert_eq!(o.num_datasets(), 7);
        assert_eq!(
            o.canonical_command(),
            "pfn reproduce gp-hyper --out 'out dir' --seed 0 --datasets 7 --quick --models-dir models"
        );
        o.precision = Precision::Bf16;
        assert!(
            o.canonical_command().ends_with(" --precision bf16"),
            "{}",
            o.canonical_command()
        );
        let mut b = ExperimentOptions::new(Experiment::Bnn, "o");
        b.budgets = Some(vec![64, 8, 64]);
        assert_eq!(b.bnn_budgets(), vec![8, 64]);
    }
}
