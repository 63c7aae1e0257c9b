//! CSV tables for `pfn predict --train train.csv --test test.csv [--target NAME]`.
//!
//! A file is a header line of column names followed by data rows, separated by commas. Fields
//! may be quoted (`"a,b"`, with `""` for a quote inside); surrounding spaces of a cell are
//! ignored; a UTF-8 byte-order mark and `\r\n` line ends are accepted, and so are blank lines at
//! the end of the file. Feature columns (and a regression target) hold numbers: everything else
//! that is not a finite number is an error that names the file, the line (1-based, the header is
//! line 1), the data row (1-based) and the column, on one line, e.g.
//! `train.csv: line 4 (data row 3), column 'x2': not a number: "abc"`.
//!
//! The target column of a classification model holds class labels, integers or words
//! ([`TargetKind::Classes`], read by [`match_text_tables`]; the classes are those of the training
//! file, see [`crate::labels`]).
//!
//! Empty cells and the usual missing-value markers (`NA`, `N/A`, `NaN` is *not* one of them but a
//! non-finite number, `?`, `null`, `None`, `missing`) are reported as missing values, or, for
//! feature cells with [`ReadOptions::allow_missing_features`], read as NaN for
//! [`crate::impute_with_context_means`].

use std::path::Path;

use crate::labels::{ClassLabels, LabelError};

/// Errors from reading tables and matching train and test columns. Each displays as one line
/// that starts with the file name.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{file}: line {line}: not UTF-8 text")]
    NotUtf8 {
        /// The file.
        file: String,
        /// 1-based line of the first invalid byte.
        line: usize,
    },
    /// The file is empty (no header line).
    #[error("{file}: the file is empty (expected a header line of column names)")]
    Empty {
        /// The file.
        file: String,
    },
    /// A header but no data rows.
    #[error("{file}: no data rows after the header")]
    NoDataRows {
        /// The file.
        file: String,
    },
    /// A header cell is empty.
    #[error("{file}: line 1: column {column} has an empty name")]
    EmptyColumnName {
        /// The file.
        file: String,
        /// 1-based column position.
        column: usize,
    },
    /// Two header cells have the same name.
    #[error("{file}: line 1: column name '{name}' appears more than once")]
    DuplicateColumn {
        /// The file.
        file: String,
        /// The repeated name.
        name: String,
    },
    /// A quoted field is not closed.
    #[error("{file}: line {line}: unterminated quoted field")]
    UnterminatedQuote {
        /// The file.
        file: String,
        /// 1-based line where the field starts.
        line: usize,
    },
    /// A blank line between data rows.
    #[error("{file}: line {line} (data row {row}) is blank")]
    BlankLine {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based data row.
        row: usize,
    },
    /// A row with a different number of fields than the header.
    #[error("{file}: line {line} (data row {row}) has {found} fields but the header has {expected}{detail}")]
    Ragged {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based data row.
        row: usize,
        /// Fields found.
        found: usize,
        /// Fields in the header.
        expected: usize,
        /// `(missing 'y')` or `(extra fields after 'y')`.
        detail: String,
    },
    /// An empty cell or a missing-value marker.
    #[error("{file}: line {line} (data row {row}), column '{column}': missing value{shown}")]
    MissingValue {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// ` ("NA")` for a marker, empty for an empty cell.
        shown: String,
    },
    /// A cell that is not a number.
    #[error("{file}: line {line} (data row {row}), column '{column}': not a number: {value:?}")]
    NonNumeric {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// The cell text.
        value: String,
    },
    /// NaN or an infinity.
    #[error("{file}: line {line} (data row {row}), column '{column}': non-finite value {value:?}")]
    NonFinite {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based data row.
        row: usize,
        /// Column name.
        column: String,
        /// The cell text.
        value: String,
    },
    /// The header is one field that holds semicolons or tabs: the file uses another delimiter.
    #[error("{file}: the header is one column {header:?} holding {name}s: the fields look separated by {name}s ({shown}); pfn reads comma-separated files (convert with e.g. `tr '{tr}' ','`)")]
    OtherDelimiter {
        /// The file.
        file: String,
        /// The header text.
        header: String,
        /// `semicolon` or `tab`.
        name: &'static str,
        /// `';'` or `'\t'`.
        shown: &'static str,
        /// The character as `tr` writes it.
        tr: &'static str,
    },
    /// `--target NAME` is not a column of the training file.
    #[error("{file}: no target column '{name}'; columns are: {available}")]
    UnknownTarget {
        /// The training file.
        file: String,
        /// The name asked for.
        name: String,
        /// The columns present, comma-separated.
        available: String,
    },
    /// The training file has only the target column.
    #[error("{file}: no feature columns besides the target '{target}'")]
    NoFeatures {
        /// The training file.
        file: String,
        /// The target column.
        target: String,
    },
    /// The test file's feature columns are not the training file's.
    #[error("{test_file}: feature columns differ from {train_file}: {difference}")]
    ColumnsDiffer {
        /// The training file.
        train_file: String,
        /// The test file.
        test_file: String,
        /// `missing 'a', 'b'; unexpected 'c'`.
        difference: String,
    },
}

/// A numeric table read from CSV, stored column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File name used in messages.
    pub file: String,
    /// Column names, in file order.
    pub columns: Vec<String>,
    /// `values[c][r]`: column `c`, data row `r` (0-based).
    pub values: Vec<Vec<f64>>,
    /// 1-based file line of each data row.
    pub lines: Vec<usize>,
}

impl Table {
    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// Position of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The values of the column called `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.column_index(name).map(|i| self.values[i].as_slice())
    }
}

/// One CSV record: its fields and the 1-based line where it starts.
struct Record {
    line: usize,
    fields: Vec<String>,
    blank: bool,
}

/// Splits CSV text into records (RFC 4180 quoting, `\n` or `\r\n` line ends).
fn records(text: &str, file: &str) -> Result<Vec<Record>, TableError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut raw_len = 0usize;
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some(',') => {
                    raw_len += 1;
                    fields.push(std::mem::take(&mut field));
                }
                Some('"') if field.trim().is_empty() => {
                    raw_len += 1;
                    field.clear();
                    let quote_line = line;
                    loop {
                        match chars.next() {
                            None => {
                                return Err(TableError::UnterminatedQuote {
                                    file: file.to_string(),
                                    line: quote_line,
                                })
                            }
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                }
                Some(c) => {
                    raw_len += 1;
                    field.push(c);
                }
            }
        }
        let blank = raw_len == 0 || (fields.len() == 1 && fields[0].trim().is_empty());
        out.push(Record {
            line: start_line,
            fields,
            blank,
        });
    }
    // Blank lines at the end of the file are not rows.
    while out.last().is_some_and(|r| r.blank) {
        out.pop();
    }
    Ok(out)
}

const MISSING_MARKERS: &[&str] = &["na", "n/a", "?", "null", "none", "missing"];

/// Whether a (trimmed, non-empty) cell is a missing-value marker: `NA`, `N/A`, `?`, `null`,
/// `None` or `missing`, in any case.
pub(crate) fn is_missing_marker(cell: &str) -> bool {
    MISSING_MARKERS.contains(&cell.to_ascii_lowercase().as_str())
}

/// A CSV file's cells as text: the structure is checked (header names, quoting, the same number
/// of fields in every row), the cells are not. [`parse_csv`] reads every cell of it as a number;
/// [`match_text_tables`] reads the feature columns as numbers and a class label column as text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTable {
    /// File name used in messages.
    pub file: String,
    /// Column names, in file order.
    pub columns: Vec<String>,
    /// `rows[r][c]`: data row `r` (0-based), column `c`, with surrounding spaces trimmed.
    pub rows: Vec<Vec<String>>,
    /// 1-based file line of each data row.
    pub lines: Vec<usize>,
}

impl TextTable {
    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// Position of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The cells of column `c`, top to bottom.
    pub fn column_cells(&self, c: usize) -> Vec<&str> {
        self.rows.iter().map(|r| r[c].as_str()).collect()
    }

    /// The missing-value error for data row `r` (0-based), column `c`.
    fn missing(&self, r: usize, c: usize) -> TableError {
        let cell = &self.rows[r][c];
        TableError::MissingValue {
            file: self.file.clone(),
            line: self.lines[r],
            row: r + 1,
            column: self.columns[c].clone(),
            shown: if cell.is_empty() {
                String::new()
            } else {
                format!(" ({cell:?})")
            },
        }
    }

    /// The number in data row `r` (0-based), column `c`. A missing cell (empty or a marker) is
    /// NaN when `allow_missing`, else an error; anything else that is not a finite number is an
    /// error naming the file, line, row and column.
    pub fn number(&self, r: usize, c: usize, allow_missing: bool) -> Result<f64, TableError> {
        let cell = self.rows[r][c].as_str();
        if cell.is_empty() || is_missing_marker(cell) {
            return if allow_missing {
                Ok(f64::NAN)
            } else {
                Err(self.missing(r, c))
            };
        }
        let at = |value: &str| {
            (
                self.file.clone(),
                self.lines[r],
                r + 1,
                self.columns[c].clone(),
                value.to_string(),
            )
        };
        let v: f64 = cell.parse().map_err(|_| {
            let (file, line, row, column, value) = at(cell);
            TableError::NonNumeric {
                file,
                line,
                row,
                column,
                value,
            }
        })?;
        if !v.is_finite() {
            let (file, line, row, column, value) = at(cell);
            return Err(TableError::NonFinite {
                file,
                line,
                row,
                column,
                value,
            });
        }
        Ok(v)
    }

    /// Every cell as a number (missing values are errors): the numeric [`Table`]. Cells are
    /// checked row by row, so the error is the first bad cell in reading order.
    pub fn to_numeric(&self) -> Result<Table, TableError> {
        let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(self.n_rows()); self.columns.len()];
        for r in 0..self.n_rows() {
            for (c, column) in values.iter_mut().enumerate() {
                column.push(self.number(r, c, false)?);
            }
        }
        Ok(Table {
            file: self.file.clone(),
            columns: self.columns.clone(),
            values,
            lines: self.lines.clone(),
        })
    }
}

/// Reads a CSV file into a [`TextTable`] (structure only); errors name `path` as given.
pub fn read_csv_text(path: impl AsRef<Path>) -> Result<TextTable, TableError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TableError::Io {
        file: file.clone(),
        source,
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            return Err(TableError::NotUtf8 { file, line });
        }
    };
    parse_csv_text(text, &file)
}

/// Reads a CSV file into a numeric [`Table`]; errors name `path` as given.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Table, TableError> {
    read_csv_text(path)?.to_numeric()
}

/// Parses CSV text into a numeric [`Table`]; `file` is the name used in messages.
pub fn parse_csv(text: &str, file: &str) -> Result<Table, TableError> {
    parse_csv_text(text, file)?.to_numeric()
}

/// Parses CSV text into a [`TextTable`]: header, quoting and field counts are checked, the cells
/// are kept as (trimmed) text; `file` is the name used in messages.
pub fn parse_csv_text(text: &str, file: &str) -> Result<TextTable, TableError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut recs = records(text, file)?.into_iter().skip_while(|r| r.blank);
    let header = match recs.next() {
        Some(h) if !h.blank => h,
        _ => {
            return Err(TableError::Empty {
                file: file.to_string(),
            })
        }
    };
    let columns: Vec<String> = header.fields.iter().map(|c| c.trim().to_string()).collect();
    if let [only] = columns.as_slice() {
        for (delimiter, name, shown, tr) in [
            (';', "semicolon", "';'", ";"),
            ('\t', "tab", "'\\t'", "\\t"),
        ] {
            if only.contains(delimiter) {
                return Err(TableError::OtherDelimiter {
                    file: file.to_string(),
                    header: only.clone(),
                    name,
                    shown,
                    tr,
                });
            }
        }
    }
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            return Err(TableError::EmptyColumnName {
                file: file.to_string(),
                column: i + 1,
            });
        }
        if columns[..i].contains(c) {
            return Err(TableError::DuplicateColumn {
                file: file.to_string(),
                name: c.clone(),
            });
        }
    }
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (r, rec) in recs.enumerate() {
        let row = r + 1;
        let line = rec.line;
        if rec.blank && columns.len() > 1 {
            return Err(TableError::BlankLine {
                file: file.to_string(),
                line,
                row,
            });
        }
        if rec.fields.len() != columns.len() {
            let detail = if rec.fields.len() < columns.len() {
                let missing: Vec<String> = columns[rec.fields.len()..]
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect();
                format!(" (missing {})", missing.join(", "))
            } else {
                format!(
                    " (extra fields after '{}')",
                    columns.last().map_or("", |c| c.as_str())
                )
            };
            return Err(TableError::Ragged {
                file: file.to_string(),
                line,
                row,
                found: rec.fields.len(),
                expected: columns.len(),
                detail,
            });
        }
        rows.push(rec.fields.iter().map(|f| f.trim().to_string()).collect());
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(TableError::NoDataRows {
            file: file.to_string(),
        });
    }
    Ok(TextTable {
        file: file.to_string(),
        columns,
        rows,
        lines,
    })
}

/// What the target column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetKind {
    /// Numbers (a regression target, or class indices read as numbers).
    #[default]
    Numeric,
    /// Class labels, integers or words: [`ClassLabels`] of the training column.
    Classes,
}

/// How [`match_text_tables`] reads a pair of files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    /// Target column of the training file (default: its last column).
    pub target: Option<&'a str>,
    /// What the target column holds.
    pub target_kind: TargetKind,
    /// Read missing feature cells (empty or a marker) as NaN instead of failing (for
    /// [`crate::impute_with_context_means`]). Missing targets are always errors.
    pub allow_missing_features: bool,
}

/// Training and test data for prediction: row-major feature matrices in the training file's
/// column order, the training targets and, if the test file has the target column, the test
/// targets.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictData {
    /// Feature column names (training file order, target excluded).
    pub feature_names: Vec<String>,
    /// Target column name.
    pub target_name: String,
    /// Training features, `n_train x n_features`, row-major (NaN for a missing value when
    /// [`ReadOptions::allow_missing_features`]).
    pub train_x: Vec<f64>,
    /// Training targets; for class labels the class index of each row ([`PredictData::classes`]).
    pub train_y: Vec<f64>,
    /// Test features, `n_test x n_features`, row-major.
    pub test_x: Vec<f64>,
    /// Numeric test targets, when the test file has the target column (used to report NLL);
    /// `None` for class labels (see [`PredictData::test_labels`]).
    pub test_y: Option<Vec<f64>>,
    /// Class labels: the classes of the training label column.
    pub classes: Option<ClassLabels>,
    /// Class labels of a labelled test file: each row's label as written (trimmed) and its class,
    /// `None` for a label that no training row has.
    pub test_labels: Option<Vec<(String, Option<usize>)>>,
}

impl PredictData {
    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Number of training rows.
    pub fn n_train(&self) -> usize {
        self.train_y.len()
    }

    /// Number of test rows.
    pub fn n_test(&self) -> usize {
        self.test_x.len() / self.n_features().max(1)
    }

    /// Features of training row `i` (panics if `i >= n_train()`).
    pub fn train_row(&self, i: usize) -> &[f64] {
        let f = self.n_features();
        &self.train_x[i * f..(i + 1) * f]
    }

    /// Features of test row `i` (panics if `i >= n_test()`).
    pub fn test_row(&self, i: usize) -> &[f64] {
        let f = self.n_features();
        &self.test_x[i * f..(i + 1) * f]
    }
}

fn quoted_list(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which columns of a training and a test file are the target and the features.
struct ColumnMatch {
    target: usize,
    target_name: String,
    /// Feature columns of the training file.
    train_features: Vec<usize>,
    feature_names: Vec<String>,
    /// The same features' columns in the test file.
    test_features: Vec<usize>,
    /// The target's column in the test file, if it has one.
    test_target: Option<usize>,
}

/// The target is `target` or the last training column; every other training column is a feature,
/// and the test file must have exactly these feature columns (in any order) plus, optionally, the
/// target.
fn match_columns(
    (train_file, train_columns): (&str, &[String]),
    (test_file, test_columns): (&str, &[String]),
    target: Option<&str>,
) -> Result<ColumnMatch, TableError> {
    let position = |columns: &[String], name: &str| columns.iter().position(|c| c == name);
    let target_idx = match target {
        Some(name) => position(train_columns, name).ok_or_else(|| TableError::UnknownTarget {
            file: train_file.to_string(),
            name: name.to_string(),
            available: train_columns.join(", "),
        })?,
        None => train_columns.len() - 1,
    };
    let target_name = train_columns[target_idx].clone();
    let feature_idx: Vec<usize> = (0..train_columns.len())
        .filter(|&c| c != target_idx)
        .collect();
    if feature_idx.is_empty() {
        return Err(TableError::NoFeatures {
            file: train_file.to_string(),
            target: target_name,
        });
    }
    let feature_names: Vec<String> = feature_idx
        .iter()
        .map(|&c| train_columns[c].clone())
        .collect();
    let missing: Vec<&String> = feature_names
        .iter()
        .filter(|n| position(test_columns, n).is_none())
        .collect();
    let extra: Vec<&String> = test_columns
        .iter()
        .filter(|n| **n != target_name && !feature_names.contains(n))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing {}", quoted_list(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("unexpected {}", quoted_list(&extra)));
        }
        return Err(TableError::ColumnsDiffer {
            train_file: train_file.to_string(),
            test_file: test_file.to_string(),
            difference: parts.join("; "),
        });
    }
    let test_features: Vec<usize> = feature_names
        .iter()
        .filter_map(|n| position(test_columns, n))
        .collect();
    Ok(ColumnMatch {
        target: target_idx,
        test_target: position(test_columns, &target_name),
        target_name,
        train_features: feature_idx,
        feature_names,
        test_features,
    })
}

fn row_major(table: &Table, columns: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(table.n_rows() * columns.len());
    for r in 0..table.n_rows() {
        for &c in columns {
            out.push(table.values[c][r]);
        }
    }
    out
}

/// Matches a training and a test table: the target is `target` or the last training column;
/// every other training column is a feature, and the test table must have exactly these feature
/// columns (in any order) plus, optionally, the target.
pub fn match_train_test(
    train: &Table,
    test: &Table,
    target: Option<&str>,
) -> Result<PredictData, TableError> {
    let m = match_columns(
        (&train.file, &train.columns),
        (&test.file, &test.columns),
        target,
    )?;
    Ok(PredictData {
        train_x: row_major(train, &m.train_features),
        train_y: train.values[m.target].clone(),
        test_x: row_major(test, &m.test_features),
        test_y: m.test_target.map(|c| test.values[c].clone()),
        feature_names: m.feature_names,
        target_name: m.target_name,
        classes: None,
        test_labels: None,
    })
}

/// The features of every row of `table` (row-major, in `columns` order).
fn text_features(
    table: &TextTable,
    columns: &[usize],
    allow_missing: bool,
) -> Result<Vec<f64>, TableError> {
    let mut out = Vec::with_capacity(table.n_rows() * columns.len());
    for r in 0..table.n_rows() {
        for &c in columns {
            out.push(table.number(r, c, allow_missing)?);
        }
    }
    Ok(out)
}

/// The label error of data row `row` of `table`'s column `c`, as a table error.
fn label_error(table: &TextTable, c: usize, e: LabelError) -> TableError {
    match e {
        LabelError::Missing { row, .. } => table.missing(row - 1, c),
        // `parse_csv_text` never returns a table without rows.
        LabelError::Empty => TableError::NoDataRows {
            file: table.file.clone(),
        },
    }
}

/// Matches a training and a test file read as text ([`parse_csv_text`]), as
/// [`match_train_test`] does, reading the feature columns as numbers and the target as
/// `options.target_kind` says: numbers, or class labels (integers or words, [`ClassLabels`] of
/// the training column; a test label the training rows lack is kept with no class). Missing
/// targets are errors naming file, line, row and column, and so are missing features unless
/// `options.allow_missing_features` (then NaN).
pub fn match_text_tables(
    train: &TextTable,
    test: &TextTable,
    options: &ReadOptions<'_>,
) -> Result<PredictData, TableError> {
    let m = match_columns(
        (&train.file, &train.columns),
        (&test.file, &test.columns),
        options.target,
    )?;
    let allow = options.allow_missing_features;
    let train_x = text_features(train, &m.train_features, allow)?;
    let (train_y, classes) = match options.target_kind {
        TargetKind::Numeric => (
            (0..train.n_rows())
                .map(|r| train.number(r, m.target, false))
                .collect::<Result<Vec<f64>, _>>()?,
            None,
        ),
        TargetKind::Classes => {
            let (labels, y) = ClassLabels::from_column(&train.column_cells(m.target))
                .map_err(|e| label_error(train, m.target, e))?;
            (y.into_iter().map(|k| k as f64).collect(), Some(labels))
        }
    };
    let test_x = text_features(test, &m.test_features, allow)?;
    let (mut test_y, mut test_labels) = (None, None);
    if let Some(c) = m.test_target {
        match &classes {
            None => {
                test_y = Some(
                    (0..test.n_rows())
                        .map(|r| test.number(r, c, false))
                        .collect::<Result<Vec<f64>, _>>()?,
                )
            }
            Some(labels) => {
                test_labels = Some(
                    (0..test.n_rows())
                        .map(|r| {
                            let cell = &test.rows[r][c];
                            labels
                                .encode_cell(cell, r + 1)
                                .map(|k| (cell.clone(), k))
                                .map_err(|e| label_error(test, c, e))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
        }
    }
    Ok(PredictData {
        feature_names: m.feature_names,
        target_name: m.target_name,
        train_x,
        train_y,
        test_x,
        test_y,
        classes,
        test_labels,
    })
}

/// Reads both files and matches them ([`read_csv`] then [`match_train_test`]).
pub fn load_predict_data(
    train: impl AsRef<Path>,
    test: impl AsRef<Path>,
    target: Option<&str>,
) -> Result<PredictData, TableError> {
    let train = read_csv(train)?;
    let test = read_csv(test)?;
    match_train_test(&train, &test, target)
}

/// Reads both files as text and matches them ([`read_csv_text`] then [`match_text_tables`]):
/// class labels, missing features as `options` say.
pub fn load_predict_data_with(
    train: impl AsRef<Path>,
    test: impl AsRef<Path>,
    options: &ReadOptions<'_>,
) -> Result<PredictData, TableError> {
    let train = read_csv_text(train)?;
    let test = read_csv_text(test)?;
    match_text_tables(&train, &test, options)
}
