//! The real datasets of `pfn reproduce tabular`: the paper code's small LIBSVM/UCI tables
//! (`data/tabular/`) and fifteen small OpenML-CC18 datasets (`data/cc18/`), read into dense
//! row-major `f64` matrices with class indices.
//!
//! * LIBSVM files (`label idx:value ...`, 1-based sparse indices): an index a row omits is 0 (the
//!   format's convention); the feature count is the largest index in the file.
//! * CSV files: a header row (a UTF-8 byte-order mark is dropped), the label in the last column,
//!   named columns dropped where the dataset says so (iris's `Id`). An empty cell, `?` or `NA` is a
//!   missing value (NaN); categorical columns of the CC18 files are integer codes and are read as
//!   numbers like every other column.
//! * Labels: the sorted distinct label strings become classes `0..K` (numerically when every label
//!   is an integer, so `-1 < 1` and `2 < 10`; else in byte order), [`encode_labels`] through
//!   `pfn_infer::ClassLabels`, the rule `pfn predict` applies to a user's label column.
//!
//! `tabular/diabetes.txt` is the Pima Indians diabetes data that `cc18/diabetes.csv` holds too;
//! only the CC18 copy is evaluated so that no dataset counts twice in the ranks.

use std::path::{Path, PathBuf};

use pfn_infer::ClassLabels;

use crate::error::ExperimentError;

/// How a dataset file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LIBSVM sparse text: `label idx:value ...`.
    Libsvm,
    /// CSV with a header and the label in the last column.
    Csv,
}

/// One dataset of the benchmark: where it lives and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Short name used in tables.
    pub name: &'static str,
    /// Path relative to the data directory.
    pub file: &'static str,
    /// File layout.
    pub format: Format,
    /// CSV columns that are not features (dropped).
    pub drop_columns: &'static [&'static str],
    /// Collection it comes from (`LIBSVM/UCI` or `OpenML-CC18`).
    pub collection: &'static str,
}

const fn libsvm(name: &'static str, file: &'static str) -> DatasetSpec {
    DatasetSpec {
        name,
        file,
        format: Format::Libsvm,
        drop_columns: &[],
        collection: "LIBSVM/UCI",
    }
}

const fn uci_csv(
    name: &'static str,
    file: &'static str,
    drop_columns: &'static [&'static str],
) -> DatasetSpec {
    DatasetSpec {
        name,
        file,
        format: Format::Csv,
        drop_columns,
        collection: "LIBSVM/UCI",
    }
}

const fn cc18(name: &'static str, file: &'static str) -> DatasetSpec {
    DatasetSpec {
        name,
        file,
        format: Format::Csv,
        drop_columns: &[],
        collection: "OpenML-CC18",
    }
}

/// Every dataset of a full run, in report order.
pub const DATASETS: &[DatasetSpec] = &[
    libsvm("australian", "tabular/australian.txt"),
    libsvm("fourclass", "tabular/fourclass.txt"),
    libsvm("ionosphere", "tabular/ionosphere_scale.txt"),
    uci_csv("heart", "tabular/heart.csv", &[]),
    uci_csv("biochem", "tabular/biochem.csv", &[]),
    uci_csv("iris", "tabular/iris.csv", &["Id"]),
    cc18("balance-scale", "cc18/balance-scale.csv"),
    cc18("mfeat-fourier", "cc18/mfeat-fourier.csv"),
    cc18("breast-w", "cc18/breast-w.csv"),
    cc18("mfeat-karhunen", "cc18/mfeat-karhunen.csv"),
    cc18("cmc", "cc18/cmc.csv"),
    cc18("credit-g", "cc18/credit-g.csv"),
    cc18("diabetes", "cc18/diabetes.csv"),
    cc18("vehicle", "cc18/vehicle.csv"),
    cc18("analcatdata_authorship", "cc18/analcatdata_authorship.csv"),
    cc18("pc4", "cc18/pc4.csv"),
    cc18("kc2", "cc18/kc2.csv"),
    cc18(
        "banknote-authentication",
        "cc18/banknote-authentication.csv",
    ),
    cc18(
        "blood-transfusion",
        "cc18/blood-transfusion-service-center.csv",
    ),
    cc18("qsar-biodeg", "cc18/qsar-biodeg.csv"),
    cc18("steel-plates-fault", "cc18/steel-plates-fault.csv"),
];

/// The datasets of a `--quick` run: small ones covering LIBSVM and CSV input, string labels,
/// three classes and missing values.
pub const QUICK_DATASETS: &[&str] = &["fourclass", "iris", "breast-w", "balance-scale"];

/// The specs of the datasets a run uses: the first `count` of the full or quick list.
pub fn selected(quick: bool, count: usize) -> Vec<DatasetSpec> {
    let all: Vec<DatasetSpec> = if quick {
        QUICK_DATASETS
            .iter()
            .filter_map(|n| DATASETS.iter().find(|d| d.name == *n).copied())
            .collect()
    } else {
        DATASETS.to_vec()
    };
    all.into_iter().take(count).collect()
}

/// A dataset read into memory.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularDataset {
    /// Short name.
    pub name: String,
    /// Collection it comes from.
    pub collection: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// Feature names (`f1`, `f2`, ... for LIBSVM files).
    pub feature_names: Vec<String>,
    /// Features per row.
    pub n_features: usize,
    /// Row-major `rows x n_features`, NaN where a value is missing.
    pub x: Vec<f64>,
    /// Class index per row, `0..class_names.len()`.
    pub labels: Vec<usize>,
    /// The original label of each class, in class-index order.
    pub class_names: Vec<String>,
}

impl TabularDataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of missing (NaN) cells.
    pub fn missing_cells(&self) -> usize {
        self.x.iter().filter(|v| v.is_nan()).count()
    }

    /// Rows per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.num_classes()];
        for &l in &self.labels {
            c[l] += 1;
        }
        c
    }
}

/// Classes of label strings through `pfn_infer::ClassLabels` (the rule of `pfn predict`): the
/// sorted distinct labels (numerically when all are integers, else in byte order) become `0..K`.
/// Returns the class index per row and the labels in class order.
pub fn encode_labels(raw: &[String]) -> Result<(Vec<usize>, Vec<String>), String> {
    let cells: Vec<&str> = raw.iter().map(String::as_str).collect();
    let (classes, labels) = ClassLabels::from_column(&cells).map_err(|e| e.to_string())?;
    Ok((labels, classes.names().to_vec()))
}

fn data_error(path: &Path, problem: impl Into<String>) -> ExperimentError {
    ExperimentError::Data {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Reads one dataset from `data_dir`.
pub fn load(data_dir: &Path, spec: &DatasetSpec) -> Result<TabularDataset, ExperimentError> {
    let path = data_dir.join(spec.file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        data_error(
            &path,
            format!("{e} (the benchmark's data live in the repository's data/ directory; give another with --data)"),
        )
    })?;
    let (feature_names, x, raw_labels) = match spec.format {
        Format::Libsvm => parse_libsvm(&text).map_err(|p| data_error(&path, p))?,
        Format::Csv => parse_csv(&text, spec.drop_columns).map_err(|p| data_error(&path, p))?,
    };
    if raw_labels.is_empty() {
        return Err(data_error(&path, "no data rows"));
    }
    let (labels, class_names) = encode_labels(&raw_labels).map_err(|p| data_error(&path, p))?;
    Ok(TabularDataset {
        name: spec.name.to_string(),
        collection: spec.collection.to_string(),
        path,
        n_features: feature_names.len(),
        feature_names,
        x,
        labels,
        class_names,
    })
}

type Parsed = (Vec<String>, Vec<f64>, Vec<String>);

/// Parses LIBSVM sparse text; an omitted index is 0.
pub fn parse_libsvm(text: &str) -> Result<Parsed, String> {
    let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut labels = Vec::new();
    let mut width = 0usize;
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut tokens = line.split_whitespace();
        let label = tokens.next().unwrap_or_default();
        // "+1" and "1" are the same class.
        let label = label.strip_prefix('+').unwrap_or(label);
        labels.push(label.to_string());
        let mut row = Vec::new();
        for tok in tokens {
            let (i, v) = tok
                .split_once(':')
                .ok_or_else(|| format!("line {}: '{tok}' is not index:value", line_no + 1))?;
            let i: usize = i
                .parse()
                .ok()
                .filter(|&i| i >= 1)
                .ok_or_else(|| format!("line {}: bad index '{i}'", line_no + 1))?;
            let v: f64 = v
                .parse()
                .map_err(|_| format!("line {}: bad value '{v}'", line_no + 1))?;
            width = width.max(i);
            row.push((i - 1, v));
        }
        rows.push(row);
    }
    let mut x = vec![0.0; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        for &(i, v) in row {
            x[r * width + i] = v;
        }
    }
    let names = (1..=width).map(|i| format!("f{i}")).collect();
    Ok((names, x, labels))
}

/// Parses a CSV with a header, the label in the last column; empty cells, `?` and `NA` are NaN.
pub fn parse_csv(text: &str, drop_columns: &[&str]) -> Result<Parsed, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or("empty file")?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if header.len() < 2 {
        return Err("expected at least one feature column and a label column".into());
    }
    let label_col = header.len() - 1;
    let keep: Vec<usize> = (0..label_col)
        .filter(|&c| !drop_columns.contains(&header[c].as_str()))
        .collect();
    let names = keep.iter().map(|&c| header[c].clone()).collect();
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for (line_no, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != header.len() {
            return Err(format!(
                "row {}: {} cells for {} columns",
                line_no + 1,
                cells.len(),
                header.len()
            ));
        }
        for &c in &keep {
            let cell = cells[c];
            let v = if cell.is_empty() || cell == "?" || cell == "NA" {
                f64::NAN
            } else {
                cell.parse::<f64>().map_err(|_| {
                    format!(
                        "row {}, column '{}': '{cell}' is not a number",
                        line_no + 1,
                        header[c]
                    )
                })?
            };
            x.push(v);
        }
        let label = cells[label_col];
        if label.is_empty() {
            return Err(format!("row {}: empty label", line_no + 1));
        }
        labels.push(label.to_string());
    }
    Ok((names, x, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_numerically_or_by_bytes() {
        let raw: Vec<String> = ["10", "2", "-1", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (l, names) = encode_labels(&raw).unwrap();
        assert_eq!(names, vec!["-1", "2", "10"]);
        assert_eq!(l, vec![2, 1, 0, 1]);
        let raw: Vec<String> = ["b", "a", "c", "a"].iter().map(|s| s.to_string()).collect();
        let (l, names) = encode_labels(&raw).unwrap();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(l, vec![1, 0, 2, 0]);
    }

    #[test]
    fn libsvm_rows_fill_omitted_indices_with_zero() {
        let (names, x, labels) = parse_libsvm("+1 1:0.5 3:2\n-1 2:1\n").unwrap();
        assert_eq!(names.len(), 3);
        assert_eq!(x, vec![0.5, 0.0, 2.0, 0.0, 1.0, 0.0]);
        assert_eq!(labels, vec!["1", "-1"]);
        assert!(parse_libsvm("1 0:3\n").is_err());
        assert!(parse_libsvm("1 a\n").is_err());
    }

    #[test]
    fn csv_drops_columns_reads_missing_cells_and_strips_the_bom() {
        let text = "\u{feff}Id,a,b,class\n1,0.5,,x\n2,?,3,y\n";
        let (names, x, labels) = parse_csv(text, &["Id"]).unwrap();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(x[0], 0.5);
        assert!(x[1].is_nan() && x[2].is_nan());
        assert_eq!(x[3], 3.0);
        assert_eq!(labels, vec!["x", "y"]);
        assert!(parse_csv("a,class\n1,2,3\n", &[])
            .unwrap_err()
            .contains("3 cells"));
        assert!(parse_csv("a,class\nz,1\n", &[])
            .unwrap_err()
            .contains("'z'"));
    }

    #[test]
    fn the_repository_copies_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
        for spec in DATASETS {
            let d = load(&dir, spec).unwrap();
            assert!(d.rows() >= 150, "{}", d.name);
            assert!((2..=10).contains(&d.num_classes()), "{}", d.name);
            assert_eq!(d.x.len(), d.rows() * d.n_features);
            match d.name.as_str() {
                "iris" => {
                    assert_eq!(d.n_features, 4);
                    assert_eq!(d.class_names[0], "Iris-setosa");
                }
                "heart" => assert_eq!(d.feature_names[0], "age"),
                "australian" => {
                    assert_eq!((d.n_features, d.rows()), (14, 690));
                    assert_eq!(d.class_names, vec!["-1", "1"]);
                }
                "breast-w" => assert!(d.missing_cells() > 0),
                "mfeat-fourier" => assert_eq!((d.n_features, d.num_classes()), (76, 10)),
                _ => {}
            }
        }
    }
}
