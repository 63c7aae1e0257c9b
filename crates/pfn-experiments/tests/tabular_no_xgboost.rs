//! `pfn reproduce tabular` when XGBoost's Python side is missing: the run completes, every
//! XGBoost cell says it failed and why, and the ranks leave XGBoost out. (Its own test binary,
//! because it points `$PFN_XGBOOST_PYTHON` at a missing interpreter for the whole process.)

use std::path::PathBuf;

use pfn_baselines::classifiers::xgboost::PYTHON_ENV;
use pfn_experiments::{run_experiment, Experiment, ExperimentOptions, ExperimentResult};

#[test]
fn a_missing_xgboost_is_reported_as_failed_and_left_out_of_the_ranks() {
    std::env::set_var(PYTHON_ENV, "/definitely/not/a/python");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "pfn-experiments-tabular-no-xgb-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let mut opts = ExperimentOptions::new(Experiment::Tabular, &out);
    opts.quick = true;
    opts.datasets = Some(2);
    opts.models_dir = None;
    opts.data_dir = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"));
    let outcome = run_experiment(&opts).unwrap();
    let ExperimentResult::Tabular(r) = &outcome.result else {
        panic!("wrong result kind")
    };
    for p in [&r.paper, &r.larger] {
        let xgb = p
            .methods
            .iter()
            .position(|m| m.method == "XGBoost")
            .unwrap();
        assert!(p.methods[xgb].cells.iter().all(Option::is_none));
        assert!(p.methods[xgb].errors.iter().all(|e| e
            .as_deref()
            .is_some_and(|e| e.contains("install-xgboost.sh"))));
        assert!(!p.ranked_methods.iter().any(|m| m == "XGBoost"));
        assert_eq!(p.ranked_methods.len(), 3);
        assert_eq!(p.ranked_datasets.len(), 2);
        let s = &p.summary[xgb];
        assert!(s.mean_rank.is_none() && s.datasets_failed == 2);
        let sum: f64 = p.summary.iter().filter_map(|s| s.mean_rank).sum();
        assert!((sum - 6.0).abs() < 1e-9);
    }
    let md = &outcome.markdown;
    assert!(md.contains("| failed |"), "{md}");
    assert!(md.contains("XGBoost failed on fourclass, iris: XGBoost is not installed"));
}
