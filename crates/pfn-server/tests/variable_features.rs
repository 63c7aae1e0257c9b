//! A model trained with a variable number of features on `gp-hyper-5d` (the shipped
//! general-purpose model's prior and input normalisation, at toy size) is served with one feature:
//! the catalog lists it as supported, the API answers what `pfn_infer::Predictor` answers for
//! one-feature data, and the GP overlay is the context-scaled type-II ML fit.

mod common;

use std::sync::OnceLock;

use pfn_artifact::ModelArtifact;
use pfn_infer::Predictor;
use pfn_server::api::{validate, PredictRequest};
use pfn_server::predict::predict;
use pfn_server::predictor_model::{PredictorModel, PredictorModelError};
use pfn_server::ModelCatalog;
use pfn_train::{RunConfig, RunOptions, Trainer};

const CONFIG: &str = r#"
[prior]
name = "gp-hyper-5d"
num_features = 3
seq_len = 16
split = "uniform"

[model]
emsize = 16
nlayers = 1
nhead = 2
nhid = 32
buckets = 20

[borders]
samples = 4000

[optimizer]
lr = 3e-3

[budget]
steps = 20
batch_size = 8
validation_datasets = 8

[run]
seed = 5
threads = 2
"#;

/// The toy model, trained once per test binary and saved and loaded (so it carries a digest).
fn artifact() -> &'static ModelArtifact {
    static ARTIFACT: OnceLock<ModelArtifact> = OnceLock::new();
    ARTIFACT.get_or_init(|| {
        let config = RunConfig::from_toml_str(CONFIG, "test config").expect("config");
        let mut trainer = Trainer::new(config).expect("trainer");
        trainer
            .run(&RunOptions::default(), &mut ())
            .expect("training");
        let dir = std::env::temp_dir().join(format!("pfn-server-varfeat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hyper.pfn");
        trainer.save_model(&path).expect("save");
        let artifact = pfn_artifact::load_model(&path).expect("load");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(artifact.metadata.training.steps, 20);
        assert_eq!(artifact.metadata.prior, "gp-hyper-5d");
        artifact
    })
}

fn request(x: &[f64], y: &[f64], query: &[f64]) -> PredictRequest {
    serde_json::from_value(serde_json::json!({
        "model": "hyper",
        "x": x,
        "y": y,
        "query": query,
        "levels": [0.5, 0.9],
        "heatmap": {"n": 0}
    }))
    .unwrap()
}

#[test]
fn a_variable_feature_model_is_served_with_one_feature() {
    let mut catalog = ModelCatalog::new();
    catalog.add_artifact("hyper", artifact(), 2).unwrap();
    let entry = catalog.get("hyper").unwrap();
    let info = &entry.info;
    assert!(info.supported, "{:?}", info.unsupported_reason);
    assert_eq!(info.num_features, 3);
    assert_eq!(info.feature_range, [1, 3]);
    assert!(info.needs_context);
    assert_eq!(info.x_normalisation, "context_min_max");
    assert_eq!(info.trained_x_range, None);
    assert_eq!(info.reference_gp.as_deref(), Some("type2_ml"));
    assert_eq!(info.reference_gp_label.as_deref(), Some("GP (type-II ML)"));
    assert_eq!(entry.backend.as_ref().unwrap().num_features(), 1);

    // Data in arbitrary units: x in [100, 140], y around 50.
    let x = [100.0, 104.0, 111.0, 118.0, 125.0, 131.0, 140.0];
    let y = [50.0, 56.5, 58.0, 49.0, 41.5, 44.0, 52.0];
    let q = [95.0, 107.0, 121.0, 139.0, 150.0];
    let r = predict(entry, &validate(request(&x, &y, &q), info).unwrap()).unwrap();

    // The same numbers as the predictor on one-feature data.
    let predictor = Predictor::with_threads(artifact(), 2).unwrap();
    let mut context = predictor.context_with_features(&x, &y, 1).unwrap();
    let want = context.predict(&q).unwrap();
    for (j, w) in want.iter().enumerate() {
        let w = w.as_regression().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
        assert!(
            close(r.mean[j], w.mean()),
            "mean {j}: {} vs {}",
            r.mean[j],
            w.mean()
        );
        assert!(
            close(r.std[j], w.std()),
            "std {j}: {} vs {}",
            r.std[j],
            w.std()
        );
    }
    // Context points are never outside "the trained range" of a min-max model; the queries beyond
    // the context's x range are flagged as extrapolations.
    assert!(r.out_of_range.context_x.is_empty());
    assert_eq!(r.out_of_range.trained_x_range, Some([100.0, 140.0]));
    assert_eq!(r.out_of_range.query_x, vec![0, 4]);
    assert!(
        !r.warnings
            .iter()
            .any(|w| w.contains("context points have x")),
        "{:?}",
        r.warnings
    );

    // The overlay: a GP fitted in the context-scaled space, in the data's units.
    let gp = r.gp.as_ref().expect("GP overlay");
    assert_eq!(gp.kind, "type2_ml");
    assert_eq!(gp.label, "GP (type-II ML)");
    assert!(gp.description.contains("type-II ML"), "{}", gp.description);
    let y_mean = y.iter().sum::<f64>() / y.len() as f64;
    for (j, (&m, &s)) in gp.mean.iter().zip(&gp.std).enumerate() {
        assert!(m.is_finite() && s > 0.0, "query {j}: {m} ± {s}");
        assert!(
            (m - y_mean).abs() < 30.0,
            "query {j}: GP mean {m} is not in the data's units"
        );
    }
    assert!(gp.hyper.lengthscales[0] > 0.1, "{:?}", gp.hyper);
    assert_eq!(gp.comparison.kl.len(), q.len());

    // No context: a clear client error, not a crash.
    let err = predict(entry, &validate(request(&[], &[], &q), info).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("at least one context point"),
        "{err}"
    );
}

#[test]
fn the_served_feature_count_must_be_accepted_by_the_model() {
    assert!(PredictorModel::with_features(artifact(), 1, 2).is_ok());
    let err = PredictorModel::with_features(artifact(), 1, 4).unwrap_err();
    assert!(
        matches!(
            err,
            PredictorModelError::FeatureCount {
                asked: 4,
                range: (1, 3)
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("takes 1 to 3 features, not 4"),
        "{err}"
    );

    // Without the variable-feature padding the model takes exactly 3: listed, not servable.
    let mut fixed = artifact().clone();
    fixed.metadata.normalisation.feature_padding = None;
    let mut catalog = ModelCatalog::new();
    catalog.add_artifact("fixed", &fixed, 1).unwrap();
    let info = &catalog.get("fixed").unwrap().info;
    assert!(!info.supported);
    assert_eq!(info.feature_range, [3, 3]);
    assert!(
        info.unsupported_reason
            .as_deref()
            .unwrap()
            .contains("takes exactly 3 features"),
        "{:?}",
        info.unsupported_reason
    );
    assert!(catalog.get("fixed").unwrap().backend.is_none());
}
