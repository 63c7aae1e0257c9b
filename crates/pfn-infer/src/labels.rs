//! Class labels of a classification table: the distinct values of the context (training) label
//! column, in a fixed order, and the class index of every label.
//!
//! A classification model predicts classes `0..K`; the user's labels may be integers (`0`, `1`,
//! `7`) or words (`Iris-setosa`, `Normal`). [`ClassLabels::from_column`] takes the training
//! label cells and numbers their distinct values:
//!
//! * **integer-like labels** (every cell an integer, written `3`, `-1`, `03` or `3.0`): the
//!   classes sorted numerically (`2 < 10`), each named by its integer in plain decimal (`3.0` and
//!   `03` are the class `3`);
//! * **any other labels**: the distinct strings sorted lexicographically (byte order, so case
//!   matters), as written after trimming surrounding spaces.
//!
//! Class `k` of the model's output is then the `k`-th name ([`ClassLabels::name`]), and
//! [`ClassLabels::encode`] maps a test label to its class (`None` for a label the training rows do
//! not have: such a row is still predicted, but it cannot be scored).
//!
//! An empty cell or a missing-value marker (`NA`, `N/A`, `?`, `null`, `None`, `missing`, any case)
//! is not a label: [`LabelError::Missing`] names its data row.

use crate::table::is_missing_marker;

/// A label cell that cannot be a class, or a column without labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// An empty cell or a missing-value marker.
    #[error("data row {row}: missing class label{shown}")]
    Missing {
        /// 1-based data row (index in the column plus one).
        row: usize,
        /// ` ("NA")` for a marker, empty for an empty cell.
        shown: String,
    },
    /// The column has no cells.
    #[error("no class labels (the label column has no rows)")]
    Empty,
}

/// How the classes are ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Order {
    /// Every label an integer: sorted numerically; the values, parallel to `names`.
    Integer(Vec<i64>),
    /// Sorted lexicographically.
    Text,
}

/// The classes of a classification dataset: the sorted distinct labels of its context rows (see
/// the module docs for the order). Class `k` is the model's output `k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassLabels {
    names: Vec<String>,
    order: Order,
}

/// The integer a label cell stands for, if it is integer-like: an integer, or a finite float with
/// no fractional part within ±2^53.
fn integer_of(cell: &str) -> Option<i64> {
    if let Ok(i) = cell.parse::<i64>() {
        return Some(i);
    }
    let v: f64 = cell.parse().ok()?;
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    (v.is_finite() && v.fract() == 0.0 && v.abs() <= LIMIT).then_some(v as i64)
}

/// The label a cell holds (trimmed), or the missing-label error for data row `row`.
fn label_of(cell: &str, row: usize) -> Result<&str, LabelError> {
    let cell = cell.trim();
    if cell.is_empty() || is_missing_marker(cell) {
        return Err(LabelError::Missing {
            row,
            shown: if cell.is_empty() {
                String::new()
            } else {
                format!(" ({cell:?})")
            },
        });
    }
    Ok(cell)
}

impl ClassLabels {
    /// The classes of the training label cells `values` and each cell's class index. Errors on an
    /// empty column or a missing label (empty cell or marker), naming its 1-based data row.
    pub fn from_column(values: &[&str]) -> Result<(ClassLabels, Vec<usize>), LabelError> {
        if values.is_empty() {
            return Err(LabelError::Empty);
        }
        let cells = values
            .iter()
            .enumerate()
            .map(|(i, v)| label_of(v, i + 1))
            .collect::<Result<Vec<&str>, _>>()?;
        let integers: Option<Vec<i64>> = cells.iter().map(|c| integer_of(c)).collect();
        let labels = match integers {
            Some(ints) => {
                let mut distinct = ints.clone();
                distinct.sort_unstable();
                distinct.dedup();
                ClassLabels {
                    names: distinct.iter().map(i64::to_string).collect(),
                    order: Order::Integer(distinct),
                }
            }
            None => {
                let mut distinct: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
                distinct.sort_unstable();
                distinct.dedup();
                ClassLabels {
                    names: distinct,
                    order: Order::Text,
                }
            }
        };
        let classes = cells
            .iter()
            .map(|c| {
                labels
                    .encode(c)
                    .expect("every training label is one of its classes")
            })
            .collect();
        Ok((labels, classes))
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no class (never true for labels from [`ClassLabels::from_column`]).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of class `class` (panics if `class >= len()`).
    pub fn name(&self, class: usize) -> &str {
        &self.names[class]
    }

    /// Every class name, in class order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the labels are integers (sorted numerically).
    pub fn is_integer(&self) -> bool {
        matches!(self.order, Order::Integer(_))
    }

    /// The class of a label cell (trimmed; for integer labels any spelling of the same integer,
    /// `3`, `03`, `3.0`), or `None` when no context row has that label.
    pub fn encode(&self, value: &str) -> Option<usize> {
        let value = value.trim();
        match &self.order {
            Order::Integer(ints) => ints.binary_search(&integer_of(value)?).ok(),
            Order::Text => self.names.binary_search_by(|n| n.as_str().cmp(value)).ok(),
        }
    }

    /// The class of a test label cell at 1-based data row `row`: `Ok(None)` for a label the
    /// training rows do not have, an error for a missing label.
    pub fn encode_cell(&self, cell: &str, row: usize) -> Result<Option<usize>, LabelError> {
        Ok(self.encode(label_of(cell, row)?))
    }

    /// The class names as a short list for messages: `a, b, c`, or the first `max` names and `…`.
    pub fn summary(&self, max: usize) -> String {
        let mut shown: Vec<&str> = self.names.iter().take(max).map(String::as_str).collect();
        if self.names.len() > max {
            shown.push("…");
        }
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_sort_numerically_and_merge_spellings() {
        let (l, y) = ClassLabels::from_column(&["10", "2", " 3.0", "03", "-1", "2"]).unwrap();
        assert!(l.is_integer());
        assert_eq!(l.names(), ["-1", "2", "3", "10"]);
        assert_eq!(y, vec![3, 1, 2, 2, 0, 1]);
        assert_eq!(l.encode("10.0"), Some(3));
        assert_eq!(l.encode("4"), None);
        assert_eq!(l.encode("ten"), None);
    }

    #[test]
    fn words_sort_lexicographically() {
        let (l, y) = ClassLabels::from_column(&["b", "a", "B", "10", "2", "a"]).unwrap();
        assert!(!l.is_integer());
        assert_eq!(l.names(), ["10", "2", "B", "a", "b"]);
        assert_eq!(y, vec![4, 3, 2, 0, 1, 3]);
        assert_eq!(l.encode(" a "), Some(3));
        assert_eq!(l.encode("A"), None);
        assert_eq!(l.name(2), "B");
        assert_eq!(l.summary(2), "10, 2, …");
    }

    #[test]
    fn missing_labels_name_the_row() {
        assert_eq!(
            ClassLabels::from_column(&["a", " ", "b"]).unwrap_err(),
            LabelError::Missing {
                row: 2,
                shown: String::new()
            }
        );
        let e = ClassLabels::from_column(&["1", "2", "NA"]).unwrap_err();
        assert_eq!(e.to_string(), "data row 3: missing class label (\"NA\")");
        assert_eq!(
            ClassLabels::from_column(&[]).unwrap_err(),
            LabelError::Empty
        );
        let (l, _) = ClassLabels::from_column(&["x"]).unwrap();
        assert_eq!(l.len(), 1);
        assert!(l.encode_cell("?", 7).is_err());
        assert_eq!(l.encode_cell("y", 7), Ok(None));
    }
}
