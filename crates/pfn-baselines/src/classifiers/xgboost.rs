//! XGBoost through a Python helper (spec 6.4, Table 6).
//!
//! The helper is `scripts/xgboost_baseline.py`, embedded in this crate at compile time and run
//! with `python -c`, one process per [`Classifier::fit_predict_many`] call (all tasks go through
//! one process, so the interpreter and XGBoost start once). It tunes the paper's grid
//! (min_child_weight {0.5, 1} x learning_rate {0.02, 0.2} x subsample {0.5, 0.8} x max_depth
//! {1, 2}, colsample_bytree 0.8, 100 trees) by stratified 5-fold cross-validated ROC AUC with the
//! same fold and scoring rules as the Rust baselines ([`super::cv`]); see the script's docstring
//! for its request and answer.
//!
//! The interpreter is, in this order: [`XgBoost::python`] when set, `$PFN_XGBOOST_PYTHON`, the
//! virtual environment `.venv-xgboost` at the repository root this crate was built from (made by
//! `scripts/install-xgboost.sh`), or `.venv-xgboost` in the current directory. When none exists
//! the error is [`ClassifierError::XgboostUnavailable`] ("XGBoost is not installed: run
//! scripts/install-xgboost.sh").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{cv, present_classes, validate, ClassData, Classifier, ClassifierError};

/// The helper script, embedded so that the binary does not need the source tree.
pub const SCRIPT: &str = include_str!("../../../../scripts/xgboost_baseline.py");

/// The environment variable naming the Python interpreter of the helper.
pub const PYTHON_ENV: &str = "PFN_XGBOOST_PYTHON";

/// XGBoost with the paper's grid, run by a Python helper (see the module docs).
#[derive(Debug, Clone)]
pub struct XgBoost {
    /// The Python interpreter; `None` to search as described in the module docs.
    pub python: Option<PathBuf>,
    /// Worker processes the helper uses across the tasks of one call (1: serial).
    pub n_jobs: usize,
}

impl Default for XgBoost {
    fn default() -> Self {
        Self {
            python: None,
            n_jobs: 1,
        }
    }
}

#[derive(Serialize)]
struct Request<'a> {
    n_jobs: usize,
    tasks: Vec<TaskJson<'a>>,
}

#[derive(Serialize)]
struct TaskJson<'a> {
    x: &'a [f64],
    n_features: usize,
    labels: Vec<usize>,
    num_classes: usize,
    x_test: &'a [f64],
    seed: u64,
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<TaskAnswer>,
}

#[derive(Deserialize)]
struct TaskAnswer {
    probabilities: Vec<f64>,
}

/// The repository's virtual environment, found from this crate's source directory.
fn repo_venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(".venv-xgboost/bin/python")
}

impl XgBoost {
    /// The interpreter to run, or why there is none (see the module docs for the search order).
    pub fn interpreter(&self) -> Result<PathBuf, ClassifierError> {
        if let Some(p) = &self.python {
            return if p.exists() {
                Ok(p.clone())
            } else {
                Err(ClassifierError::XgboostUnavailable(format!(
                    "{} does not exist",
                    p.display()
                )))
            };
        }
        if let Some(p) = std::env::var_os(PYTHON_ENV) {
            let p = PathBuf::from(p);
            return if p.exists() {
                Ok(p)
            } else {
                Err(ClassifierError::XgboostUnavailable(format!(
                    "${PYTHON_ENV} = {} does not exist",
                    p.display()
                )))
            };
        }
        let candidates = [
            repo_venv_python(),
            PathBuf::from(".venv-xgboost/bin/python"),
        ];
        candidates
            .iter()
            .find(|p| p.exists())
            .cloned()
            .ok_or_else(|| {
                ClassifierError::XgboostUnavailable(format!(
                    "no {} nor ./.venv-xgboost/bin/python; or set ${PYTHON_ENV}",
                    candidates[0].display()
                ))
            })
    }

    /// Whether an interpreter is found (it is not run: a broken environment shows up as an
    /// error of the first fit).
    pub fn available() -> bool {
        Self::default().interpreter().is_ok()
    }

    /// Runs the helper on `tasks` (labels contiguous, at least two classes each) and returns
    /// its probabilities.
    fn run(&self, tasks: Vec<TaskJson>) -> Result<Vec<Vec<f64>>, ClassifierError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let python = self.interpreter()?;
        let expected: Vec<usize> = tasks
            .iter()
            .map(|t| t.x_test.len().checked_div(t.n_features).unwrap_or(0) * t.num_classes)
            .collect();
        let request = serde_json::to_vec(&Request {
            n_jobs: self.n_jobs.max(1),
            tasks,
        })
        .map_err(|e| ClassifierError::Xgboost(format!("cannot write the request: {e}")))?;
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                ClassifierError::XgboostUnavailable(format!("cannot run {}: {e}", python.display()))
            })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = std::thread::spawn(move || stdin.write_all(&request));
        let output = child
            .wait_with_output()
            .map_err(|e| ClassifierError::Xgboost(format!("waiting for the helper: {e}")))?;
        let written = writer.join().expect("the writer thread does not panic");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last_line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        match output.status.code() {
            Some(0) => {}
            Some(3) => return Err(ClassifierError::XgboostUnavailable(last_line.to_string())),
            _ => {
                return Err(ClassifierError::Xgboost(format!(
                    "{} exited with {}: {last_line}",
                    python.display(),
                    output.status
                )))
            }
        }
        written.map_err(|e| ClassifierError::Xgboost(format!("writing the request: {e}")))?;
        let answer: Answer = serde_json::from_slice(&output.stdout)
            .map_err(|e| ClassifierError::Xgboost(format!("unreadable answer: {e}")))?;
        if answer.results.len() != expected.len() {
            return Err(ClassifierError::Xgboost(format!(
                "{} answers for {} tasks",
                answer.results.len(),
                expected.len()
            )));
        }
        answer
            .results
            .into_iter()
            .zip(expected)
            .enumerate()
            .map(|(i, (r, len))| {
                if r.probabilities.len() == len {
                    Ok(r.probabilities)
                } else {
                    Err(ClassifierError::Xgboost(format!(
                        "task {i}: {} probabilities, expected {len}",
                        r.probabilities.len()
                    )))
                }
            })
            .collect()
    }
}

impl Classifier for XgBoost {
    fn name(&self) -> &str {
        "XGBoost"
    }

    fn fit_predict(
        &self,
        train: &ClassData,
        x_test: &[f64],
        seed: u64,
    ) -> Result<Vec<f64>, ClassifierError> {
        Ok(self
            .fit_predict_many(&[(*train, x_test)], seed)?
            .pop()
            .expect("one task, one answer"))
    }

    fn fit_predict_many(
        &self,
        tasks: &[(ClassData, &[f64])],
        seed: u64,
    ) -> Result<Vec<Vec<f64>>, ClassifierError> {
        // Single-class tasks are answered here; the others go to Python with their present
        // classes remapped to 0..k (the script would handle both too).
        let mut answers: Vec<Option<Vec<f64>>> = Vec::with_capacity(tasks.len());
        let mut sent = Vec::new();
        let mut remaps = Vec::new();
        for (train, x_test) in tasks {
            let rows = validate(train, x_test)?;
            let (present, remapped) = present_classes(train.labels, train.num_classes);
            if present.len() == 1 {
                let mut p = vec![0.0; rows * train.num_classes];
                for row in p.chunks_exact_mut(train.num_classes) {
                    row[present[0]] = 1.0;
                }
                answers.push(Some(p));
                continue;
            }
            answers.push(None);
            sent.push(TaskJson {
                x: train.x,
                n_features: train.n_features,
                labels: remapped,
                num_classes: present.len(),
                x_test,
                seed,
            });
            remaps.push((present, train.num_classes, rows));
        }
        let mut results = self.run(sent)?.into_iter().zip(remaps);
        Ok(answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    let (probs, (present, k, rows)) = results.next().expect("one answer per task");
                    cv::expand(&probs, &present, k, rows)
                })
            })
            .collect())
    }
}
