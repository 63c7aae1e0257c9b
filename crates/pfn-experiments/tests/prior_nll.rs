//! The Prior-Data NLL evaluator (`pfn eval`, `gp-fit`) on the shipped models.

use std::path::PathBuf;

use pfn_experiments::prior_nll::{default_context_sizes, evaluate, PriorNllOptions};
use pfn_infer::Predictor;

fn shipped(name: &str) -> Predictor {
    Predictor::load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(format!("{name}.pfn")),
    )
    .unwrap()
}

#[test]
fn prior_nll_scores_the_model_against_the_exact_gp() {
    let p = shipped("gp-1d");
    let sizes = default_context_sizes(p.min_trained_context(), p.max_trained_context());
    assert_eq!(sizes, vec![0, 1, 2, 3, 5, 10, 20, 30, 40, 50]);
    let options = PriorNllOptions {
        datasets: 64,
        context_sizes: sizes.clone(),
        seed: 5,

        prior: None,
    };
    let report = evaluate(&p, "gp-1d", &options).unwrap();
    assert_eq!(report.query_index, 50);
    assert_eq!(report.rows.len(), sizes.len());
    let first = &report.rows[0];
    let gp0 = first.gp.unwrap().mean;
    // n = 0: the exact predictive is N(0, 1 + 1e-4), whose expected NLL is 0.5 ln(2πe) ≈ 1.419.
    assert!(
        (gp0 - 1.419).abs() < 3.0 * first.gp.unwrap().se + 0.05,
        "{gp0}"
    );
    // The exact GP gets much better with context; the gap is paired and consistent.
    let last = report.rows.last().unwrap();
    assert!(last.gp.unwrap().mean < gp0 - 1.0);
    for r in &report.rows {
        let gap = r.gap.unwrap().mean;
        assert!((gap - (r.pfn.mean - r.gp.unwrap().mean)).abs() < 1e-9);
        // Bayes-optimal with the true hyperparameters: a PFN can only be worse on average (up to
        // sampling noise).
        assert!(
            gap > -4.0 * r.gap.unwrap().se - 0.02,
            "n = {}: gap {gap}",
            r.n
        );
    }
    assert!(report.mean_gap.unwrap().is_finite());
    // The same seed gives the same report.
    let again = evaluate(&p, "gp-1d", &options).unwrap();
    assert_eq!(report.rows, again.rows);
}

#[test]
fn padded_priors_are_scored_through_the_users_path_with_the_exact_gp() {
    // gp-hyper-5d pads 1..=5 used features to 5 columns; the evaluator hands the model only the
    // used columns (as a user's CSV) and scores the exact GP of those columns beside it.
    let p = shipped("gp-hyper");
    let sizes = default_context_sizes(p.min_trained_context(), 20);
    assert_eq!(
        sizes[0], 1,
        "context-normalised models start at one context point"
    );
    let report = evaluate(
        &p,
        "gp-hyper",
        &PriorNllOptions {
            datasets: 32,
            context_sizes: sizes,
            seed: 3,

            prior: None,
        },
    )
    .unwrap();
    for r in &report.rows {
        let (pfn, gp) = (r.pfn.mean, r.gp.unwrap().mean);
        assert!(pfn.is_finite() && gp.is_finite(), "n = {}", r.n);
        assert!(
            r.gap.unwrap().mean > -4.0 * r.gap.unwrap().se - 0.05,
            "n = {}: {pfn} vs {gp}",
            r.n
        );
    }
    // With 20 points the exact GP is far better than with one.
    assert!(report.rows.last().unwrap().gp.unwrap().mean < report.rows[0].gp.unwrap().mean);
}

#[test]
fn a_model_trained_with_prior_parameters_is_scored_on_that_prior() {
    // Fine-tuned with [prior.params] tied_inputs = 0.08 (docs/results/gp-hyper/ties-light/).
    let p = Predictor::load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/results/gp-hyper/ties-light/gp-hyper-ties08-harmonic.pfn"),
    )
    .unwrap();
    let options = |prior: Option<&str>| PriorNllOptions {
        datasets: 48,
        context_sizes: vec![1, 5],
        seed: 3,
        prior: prior.map(str::to_string),
    };
    let own = evaluate(&p, "ties08", &options(None)).unwrap();
    assert_eq!(own.prior, r#"gp-hyper-5d-ties {"tied_inputs":0.08}"#);
    // Naming the prior gives the registry's default share (30 %): other datasets.
    let default = evaluate(&p, "ties08", &options(Some("gp-hyper-5d-ties"))).unwrap();
    assert_eq!(default.prior, "gp-hyper-5d-ties");
    assert_ne!(own.mean_gp, default.mean_gp);
}
