//! Writing a run's outputs: Markdown tables and number formats, the report header (command,
//! seed, machine, wall time), and the files in the output directory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ExperimentError;
use crate::machine::MachineInfo;
use crate::options::ExperimentOptions;
use crate::stats::Summary;

/// File name of the Markdown report in the output directory.
pub const REPORT_FILE: &str = "report.md";
/// File name of the machine-readable results in the output directory.
pub const RESULTS_FILE: &str = "results.json";

/// The exact line a report prints when an experiment has no PFN model.
pub const NO_MODEL: &str = "PFN: no model available";

/// A Markdown table built row by row.
#[derive(Debug, Clone, Default)]
pub struct MarkdownTable {
    header: Vec<String>,
    right_aligned: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl MarkdownTable {
    /// A table with these column headers; the first column is left-aligned, the others right.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            right_aligned: (0..header.len()).map(|i| i > 0).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are left empty, extra cells dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as Markdown (ending in a newline).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| {} |", self.header.join(" | "));
        let rule: Vec<&str> = self
            .right_aligned
            .iter()
            .map(|&r| if r { "---:" } else { "---" })
            .collect();
        let _ = writeln!(s, "|{}|", rule.join("|"));
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        s
    }
}

/// `mean ± ci95` with three decimals (`mean` alone when the interval is undefined).
pub fn fmt_ci(s: &Summary) -> String {
    if s.ci95.is_finite() {
        format!("{:.3} ± {:.3}", s.mean, s.ci95)
    } else {
        format!("{:.3}", s.mean)
    }
}

/// A number with three decimals, `–` for NaN.
pub fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.3}")
    }
}

/// A duration in seconds with a readable unit (µs, ms, s).
pub fn fmt_secs(secs: f64) -> String {
    if !secs.is_finite() {
        "–".into()
    } else if secs < 1e-3 {
        format!("{:.1} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// A ratio such as a speed-up, `×` suffixed.
pub fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "–".into()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else if r > 0.0 {
        // Two significant digits.
        let digits = (-r.log10()).ceil() as usize + 1;
        format!("{r:.digits$}×")
    } else {
        format!("{r}×")
    }
}

/// What every report records about its run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// The experiment's name.
    pub experiment: String,
    /// The figure it reproduces.
    pub reproduces: String,
    /// The canonical command that repeats the run.
    pub command: String,
    /// The command line as typed, when known.
    pub invocation: Option<String>,
    /// The seed.
    pub seed: u64,
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// Number of datasets.
    pub datasets: usize,
    /// When the run started.
    pub started: String,
    /// Wall time of the whole run in seconds (set when it finishes).
    pub total_seconds: f64,
    /// The machine and build.
    pub machine: MachineInfo,
}

impl RunInfo {
    /// The record of a run with `options` starting now.
    pub fn start(options: &ExperimentOptions) -> Self {
        Self {
            experiment: options.experiment.name().into(),
            reproduces: options.experiment.reproduces().into(),
            command: options.canonical_command(),
            invocation: options.invocation.clone(),
            seed: options.seed,
            quick: options.quick,
            datasets: options.num_datasets(),
            started: crate::machine::utc_now(),
            total_seconds: f64::NAN,
            machine: MachineInfo::detect(),
        }
    }

    /// The report's header: title and the run's provenance as a list.
    pub fn header(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {title}\n");
        let _ = writeln!(s, "Reproduces {}.\n", self.reproduces);
        let _ = writeln!(s, "- command: `{}`", self.command);
        if let Some(inv) = &self.invocation {
            if *inv != self.command {
                let _ = writeln!(s, "- invoked as: `{inv}`");
            }
        }
        let _ = writeln!(
            s,
            "- seed: {}; {} dataset{}; {}",
            self.seed,
            self.datasets,
            if self.datasets == 1 { "" } else { "s" },
            if self.quick {
                "**quick run** (reduced datasets, sizes and budgets: a smoke test, not the paper's protocol)"
            } else {
                "full run"
            }
        );
        let _ = writeln!(s, "- machine: {}", self.machine.describe());
        let _ = writeln!(
            s,
            "- started {}; total wall time {}",
            self.started,
            fmt_secs(self.total_seconds)
        );
        s
    }
}

/// Creates the output directory.
pub fn create_out_dir(dir: &Path) -> Result<(), ExperimentError> {
    std::fs::create_dir_all(dir).map_err(|source| ExperimentError::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// Writes `text` to `dir/name` atomically and returns the path.
pub fn write_text(dir: &Path, name: &str, text: &str) -> Result<PathBuf, ExperimentError> {
    let path = dir.join(name);
    pfn_artifact::write_atomically(&path, |w| w.write_all(text.as_bytes())).map_err(|source| {
        ExperimentError::Io {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(path)
}

/// Saves `figure` as `dir/name` and returns the path.
pub fn save_figure(
    figure: &pfn_plot::Figure,
    dir: &Path,
    name: &str,
) -> Result<PathBuf, ExperimentError> {
    let path = dir.join(name);
    figure.save(&path).map_err(|source| ExperimentError::Plot {
        path: path.display().to_string(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_as_markdown() {
        let mut t = MarkdownTable::new(&["n", "NLL"]);
        t.row(vec!["1".into(), "0.500".into()]);
        t.row(vec!["2".into()]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.render(),
            "| n | NLL |\n|---|---:|\n| 1 | 0.500 |\n| 2 |  |\n"
        );
    }

    #[test]
    fn numbers_are_formatted_with_units() {
        assert_eq!(fmt_secs(2.5e-5), "25.0 µs");
        assert_eq!(fmt_secs(0.0123), "12.30 ms");
        assert_eq!(fmt_secs(3.0), "3.00 s");
        assert_eq!(fmt_ratio(1234.4), "1234×");
        assert_eq!(fmt_ratio(12.34), "12.3×");
        assert_eq!(fmt_ratio(0.5), "0.50×");
        assert_eq!(fmt_ratio(0.0026), "0.0026×");
        assert_eq!(fmt_ratio(0.013), "0.013×");
        assert_eq!(fmt_num(f64::NAN), "–");
        let s = Summary::of(&[1.0, 2.0]);
        assert!(fmt_ci(&s).starts_with("1.500 ± "));
        assert_eq!(fmt_ci(&Summary::of(&[1.0])), "1.000");
    }
}
