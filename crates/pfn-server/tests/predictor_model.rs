//! The server answers with `pfn_infer::Predictor`'s own predictives (`RegressionPredictive`), in
//! the caller's units also when the model standardises y with the context.

mod common;

use pfn_artifact::YNormalisation;
use pfn_infer::Predictor;
use pfn_server::predictor_model::PredictorModel;
use pfn_server::PosteriorModel;

#[test]
fn border_mapping_matches_the_predictors_own_inverse_transform() {
    let mut artifact = common::tiny_artifact().clone();
    artifact.metadata.normalisation.y = YNormalisation::ContextStandardise;
    let served = PredictorModel::new(&artifact, 2).unwrap();
    let reference = Predictor::with_threads(&artifact, 2).unwrap();

    let cx = [0.1, 0.35, 0.6, 0.9];
    let cy = [12.0, 15.5, 9.0, 13.0]; // mean 12.375, std ≈ 2.3: far from the identity map
    let q = [0.0, 0.2, 0.5, 0.75, 1.0];
    let ours = served.predict(&cx, &cy, &q).unwrap();
    let theirs = reference.predict(&cx, &cy, &q).unwrap();
    assert_eq!(ours.len(), q.len());
    for (j, t) in theirs.iter().enumerate() {
        let t = t.as_regression().unwrap();
        let o = &ours[j];
        let close = |a: f64, b: f64, what: &str| {
            assert!(
                (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                "query {j} {what}: {a} vs {b}"
            );
        };
        close(o.mean(), t.mean(), "mean");
        close(o.std(), t.std(), "std");
        for y in [8.0, 11.0, 12.4, 14.0, 30.0] {
            close(o.pdf(y), t.pdf(y), "pdf");
            close(o.cdf(y), t.cdf(y), "cdf");
        }
        // One quantile convention (exact tails) on both paths: `pfn predict` and `pfn serve`
        // report the same intervals, also those reaching into the half-normal tails, where the
        // linear-in-bucket convention would differ.
        for level in [0.5, 0.9, 0.998, 0.99999] {
            let (lo, hi) = o.interval(level).unwrap();
            let (tlo, thi) = t.interval(level).unwrap();
            close(lo, tlo, "lower quantile");
            close(hi, thi, "upper quantile");
        }
        let (_, outer) = t.interval(0.99999).unwrap();
        let top = t
            .target_scaler()
            .inverse(*t.normalised().distribution().borders().last().unwrap());
        assert!(
            outer > top,
            "the 0.999995 quantile {outer} lies in the tail beyond {top}"
        );
        assert!(
            o.mean() > 5.0 && o.mean() < 20.0,
            "mean {} is not in the data's units",
            o.mean()
        );
    }
}

#[test]
fn a_context_normalised_model_needs_a_context_point() {
    let mut artifact = common::tiny_artifact().clone();
    artifact.metadata.normalisation.y = YNormalisation::ContextStandardise;
    let served = PredictorModel::new(&artifact, 1).unwrap();
    let err = served.predict(&[], &[], &[0.5]).unwrap_err();
    assert!(
        matches!(err, pfn_server::PosteriorError::InvalidInput(_)),
        "{err}"
    );
    assert!(
        err.to_string().contains("at least one context point"),
        "{err}"
    );
}
