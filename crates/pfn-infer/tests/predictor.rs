//! The inference API against the model it wraps: artifact round trip, context reuse and query
//! batching, normalisation, and errors.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use pfn_artifact::{
    load_model, save_model, FeaturePadding, InputNormalisation, ModelArtifact, TensorRef,
    XNormalisation, YNormalisation,
};
use pfn_infer::{PredictError, Predictor};
use pfn_model::Workspace;
use pfn_train::{RunConfig, RunOptions, Trainer};
use rand::SeedableRng;

/// A briefly trained tiny GP model (saved once per test binary) and the trainer's parameters.
struct Trained {
    path: PathBuf,
    params: Vec<f32>,
}

fn trained() -> &'static Trained {
    static CELL: OnceLock<Trained> = OnceLock::new();
    CELL.get_or_init(|| {
        let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml");
        let mut config = RunConfig::load(cfg).unwrap();
        config.budget.validation_every = None;
        config.budget.checkpoint_every = None;
        config.budget.validation_datasets = 16;
        let mut trainer = Trainer::new(config).unwrap();
        trainer.run(&RunOptions::default(), &mut ()).unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pfn-infer-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny.pfn");
        trainer.save_model(&path).unwrap();
        Trained {
            path,
            params: trainer.model().params().to_vec(),
        }
    })
}

fn artifact() -> ModelArtifact {
    load_model(&trained().path).unwrap()
}

fn predictor() -> Predictor {
    Predictor::with_threads(&artifact(), 2).unwrap()
}

/// A context of `n` points from a smooth function on [0, 1] and `m` query points.
fn data(n: usize, m: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
    let y: Vec<f64> = x.iter().map(|v| (6.0 * v).sin()).collect();
    let q: Vec<f64> = (0..m).map(|j| j as f64 / (m.max(2) - 1) as f64).collect();
    (x, y, q)
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

#[test]
fn artifact_round_trip_gives_identical_predictions() {
    let p = predictor();
    assert_eq!(p.model().params(), trained().params.as_slice());
    assert_eq!(p.num_features(), 1);
    assert!(p.is_regression());
    let (x, y, q) = data(12, 9);
    // The trainer's model (rebuilt from the params it had) against the loaded predictor.
    let mut original = pfn_model::PfnModel::zeros(p.model().config().clone()).unwrap();
    original.params_mut().copy_from_slice(&trained().params);
    let engine = pfn_engine::Engine::new(2).unwrap();
    let mut tokens = f32s(&x);
    tokens.extend(f32s(&q));
    let yc = f32s(&y);
    let batch = pfn_model::Batch {
        x: &tokens,
        y: &yc,
        batch: 1,
        seq_len: 21,
        single_eval_pos: 12,
    };
    let mut ws = Workspace::inference();
    let direct = original.forward(&engine, &mut ws, &batch).unwrap().to_vec();
    let loaded = p
        .forward_normalised(&mut ws, &f32s(&x), &yc, &f32s(&q))
        .unwrap();
    assert_eq!(loaded, direct);
    let cached = p.context(&x, &y).unwrap().logits(&q).unwrap();
    // A second save and load of the same artifact is byte-identical and predicts the same.
    let art = artifact();
    let path2 = trained().path.with_extension("copy.pfn");
    let tensors: Vec<TensorRef<'_>> = art.tensors.iter().map(|t| t.as_ref()).collect();
    save_model(&path2, &art.metadata, &tensors).unwrap();
    assert_eq!(
        std::fs::read(&path2).unwrap(),
        std::fs::read(&trained().path).unwrap()
    );
    let p2 = Predictor::load(&path2).unwrap();
    assert_eq!(p2.context(&x, &y).unwrap().logits(&q).unwrap(), cached);
}

#[test]
fn cached_context_answers_match_the_uncached_forward() {
    let mut p = predictor();
    let (x, y, q) = data(15, 40);
    let mut ws = Workspace::inference();
    let uncached = p
        .forward_normalised(&mut ws, &f32s(&x), &f32s(&y), &f32s(&q))
        .unwrap();
    let max_diff = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0f32, f32::max)
    };
    // One encoded context, all queries in one pass.
    let mut ctx = p.context(&x, &y).unwrap();
    let cached = ctx.logits(&q).unwrap();
    let d = max_diff(&cached, &uncached);
    assert!(d < 1e-4, "cached vs uncached: max |difference| {d}");
    // The same context answering several calls in small query batches.
    p.set_query_batch(7).unwrap();
    let mut ctx = p.context(&x, &y).unwrap();
    let mut chunked = ctx.logits(&q[..25]).unwrap();
    chunked.extend(ctx.logits(&q[25..]).unwrap());
    let d = max_diff(&chunked, &uncached);
    assert!(d < 1e-4, "chunked vs uncached: max |difference| {d}");
    // An empty context (prior predictive) as well.
    let empty = p.forward_normalised(&mut ws, &[], &[], &f32s(&q)).unwrap();
    let d = max_diff(&p.context(&[], &[]).unwrap().logits(&q).unwrap(), &empty);
    assert!(d < 1e-4, "empty context: max |difference| {d}");
    // Repeated calls on one context are deterministic.
    let mut ctx = p.context(&x, &y).unwrap();
    assert_eq!(ctx.logits(&q).unwrap(), ctx.logits(&q).unwrap());
}

#[test]
fn a_batch_of_queries_equals_one_query_at_a_time() {
    let p = predictor();
    let (x, y, q) = data(10, 12);
    let mut ctx = p.context(&x, &y).unwrap();
    let together = ctx.predict(&q).unwrap();
    for (j, &xq) in q.iter().enumerate() {
        let alone = ctx.predict(&[xq]).unwrap();
        let (a, b) = (
            alone[0].as_regression().unwrap(),
            together[j].as_regression().unwrap(),
        );
        for (u, v) in [
            (a.mean(), b.mean()),
            (a.median(), b.median()),
            (a.std(), b.std()),
            (a.log_pdf(0.3), b.log_pdf(0.3)),
        ] {
            assert!(
                (u - v).abs() < 1e-4 * (1.0 + v.abs()),
                "query {j}: {u} vs {v}"
            );
        }
    }
}

#[test]
fn the_trained_model_follows_its_context() {
    // Even a briefly trained model must predict lower at x where the context is low than where
    // it is high, and have a narrower central 50 % interval next to context points than with no context at all.
    let p = predictor();
    let x = vec![0.2, 0.25, 0.3, 0.7, 0.75, 0.8];
    let y = vec![-1.5, -1.5, -1.5, 1.5, 1.5, 1.5];
    let preds = p.predict(&x, &y, &[0.25, 0.75]).unwrap();
    let (lo, hi) = (
        preds[0].as_regression().unwrap(),
        preds[1].as_regression().unwrap(),
    );
    assert!(
        lo.mean() < hi.mean() - 1.0,
        "{} vs {}",
        lo.mean(),
        hi.mean()
    );
    let prior = p.predict(&[], &[], &[0.25]).unwrap();
    let pr = prior[0].as_regression().unwrap();
    let width = |r: &pfn_infer::RegressionPredictive| {
        let (a, b) = r.interval(0.5).unwrap();
        b - a
    };
    assert!(
        width(lo) < 0.8 * width(pr),
        "{} vs {}",
        width(lo),
        width(pr)
    );
}

/// The tiny model's artifact with another normalisation recorded.
fn with_normalisation(norm: InputNormalisation) -> Predictor {
    let mut art = artifact();
    art.metadata.normalisation = norm;
    Predictor::with_threads(&art, 2).unwrap()
}

#[test]
fn normalisation_is_applied_and_undone() {
    let norm = InputNormalisation {
        x: XNormalisation::ContextMinMax,
        y: YNormalisation::ContextStandardise,
        feature_padding: None,
    };
    let p = with_normalisation(norm);
    let raw = predictor();
    // Data in [0, 1] with standardised targets are a fixed point of the normalisation...
    let (x, y, q) = data(10, 5);
    let mean = y.iter().sum::<f64>() / 10.0;
    let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 10.0).sqrt();
    // ...after mapping: x' = 3 + 5 x (affine, so min/max scaling undoes it) and y' = mean + sd * z.
    let xs: Vec<f64> = x.iter().map(|v| 3.0 + 5.0 * v).collect();
    let qs: Vec<f64> = q.iter().map(|v| 3.0 + 5.0 * v).collect();
    let z: Vec<f64> = y.iter().map(|v| (v - mean) / sd).collect();
    let (lo, hi) = (xs[0], xs[9]);
    let x01: Vec<f64> = xs.iter().map(|v| (v - lo) / (hi - lo)).collect();
    let q01: Vec<f64> = qs.iter().map(|v| (v - lo) / (hi - lo)).collect();
    let a = p.predict(&xs, &y, &qs).unwrap();
    let b = raw.predict(&x01, &z, &q01).unwrap();
    for (pa, pb) in a.iter().zip(&b) {
        let (ra, rb) = (pa.as_regression().unwrap(), pb.as_regression().unwrap());
        assert!((ra.mean() - (mean + sd * rb.mean())).abs() < 1e-5);
        assert!((ra.median() - (mean + sd * rb.median())).abs() < 1e-5);
        assert!((ra.std() - sd * rb.std()).abs() < 1e-5);
        let yv = 0.4;
        assert!((ra.log_pdf(yv) - (rb.log_pdf((yv - mean) / sd) - sd.ln())).abs() < 1e-5);
        assert!((ra.cdf(yv) - rb.cdf((yv - mean) / sd)).abs() < 1e-6);
        assert!((ra.quantile(0.9).unwrap() - (mean + sd * rb.quantile(0.9).unwrap())).abs() < 1e-5);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let s = ra.sample_n(&mut rng, 2000);
        let sm = s.iter().sum::<f64>() / s.len() as f64;
        assert!((sm - ra.mean()).abs() < 4.0 * ra.std() / (2000f64).sqrt() + 1e-3);
    }
    // Targets rescaled by 10: every location scales, log densities shift by -ln 10.
    let y10: Vec<f64> = y.iter().map(|v| 10.0 * v).collect();
    let c = p.predict(&xs, &y10, &qs).unwrap();
    for (pa, pc) in a.iter().zip(&c) {
        let (ra, rc) = (pa.as_regression().unwrap(), pc.as_regression().unwrap());
        assert!((rc.mean() - 10.0 * ra.mean()).abs() < 1e-4);
        assert!((rc.log_pdf(2.0) - (ra.log_pdf(0.2) - 10f64.ln())).abs() < 1e-5);
    }
    // Normalising models need a context.
    assert!(matches!(
        p.predict(&[], &[], &[0.5]),
        Err(PredictError::EmptyContext)
    ));
}

#[test]
fn bad_inputs_are_errors() {
    let p = predictor();
    let e = p.predict(&[0.1, 0.2], &[1.0], &[0.5]).unwrap_err();
    assert!(
        e.to_string().contains("1 targets for 2 context rows"),
        "{e}"
    );
    let e = p
        .predict(&[0.1, f64::NAN], &[1.0, 2.0], &[0.5])
        .unwrap_err();
    assert!(matches!(e, PredictError::NonFinite { index: 1, .. }), "{e}");
    let e = p.predict(&[0.1], &[1.0], &[f64::INFINITY]).unwrap_err();
    assert!(e.to_string().contains("query x[0]"), "{e}");
    let e = p.predict(&[0.1], &[1e300], &[0.5]).unwrap_err().to_string();
    assert!(e.contains("normalised context y[0]"), "{e}");
    let mut q = predictor();
    assert!(q.set_query_batch(0).is_err());
}

/// An untrained 3-feature model (2 steps on the ridge prior) with `padding` recorded.
fn three_feature_model(padding: Option<FeaturePadding>) -> Predictor {
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml");
    let mut config = RunConfig::load(cfg).unwrap();
    config.prior.name = "ridge".into();
    config.prior.num_features = 3;
    config.budget.steps = Some(2);
    config.optimizer.warmup_steps = Some(1);
    config.budget.validation_every = None;
    config.budget.checkpoint_every = None;
    config.budget.validation_datasets = 4;
    let mut trainer = Trainer::new(config).unwrap();
    trainer.run(&RunOptions::default(), &mut ()).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pfn-infer-pad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("three.pfn");
    trainer.save_model(&path).unwrap();
    let mut art = load_model(&path).unwrap();
    art.metadata.normalisation.feature_padding = padding;
    Predictor::with_threads(&art, 1).unwrap()
}

#[test]
fn fewer_features_are_padded_and_scaled_as_in_training() {
    let p = three_feature_model(Some(FeaturePadding::Sqrt));
    assert_eq!(p.feature_range(), (1, 3));
    // Two features: padded to [a·s, b·s, 0] with s = sqrt(3/2), as VariableFeatures trains.
    let x2 = [0.1, 0.7, 0.4, 0.2, 0.9, 0.5];
    let y = [0.3, -0.2, 0.8];
    let q2 = [0.25, 0.75, 0.6, 0.1];
    let s = (3.0f64 / 2.0).sqrt();
    let pad = |v: &[f64]| -> Vec<f64> {
        v.chunks(2)
            .flat_map(|r| [r[0] * s, r[1] * s, 0.0])
            .collect()
    };
    let mut small = p.context_with_features(&x2, &y, 2).unwrap();
    assert_eq!(small.num_features(), 2);
    let a = small.logits(&q2).unwrap();
    let b = p.context(&pad(&x2), &y).unwrap().logits(&pad(&q2)).unwrap();
    assert_eq!(a, b);
    // Rows must have the context's width; widths outside 1..=3 are refused.
    assert!(small.logits(&[0.1, 0.2, 0.3]).is_err());
    assert!(matches!(
        p.context_with_features(&[0.1; 8], &[0.0, 1.0], 4),
        Err(PredictError::FeatureCount { got: 4, .. })
    ));
    // Without padding recorded only the full width is accepted.
    let strict = three_feature_model(None);
    assert_eq!(strict.feature_range(), (3, 3));
    assert!(matches!(
        strict.context_with_features(&x2, &y, 2),
        Err(PredictError::FeatureCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
}

/// `y` with a deterministic noise of amplitude 0.15 added.
fn with_noise(y: &[f64]) -> Vec<f64> {
    y.iter()
        .enumerate()
        .map(|(i, v)| v + 0.3 * ((i * 37 % 11) as f64 / 10.0 - 0.5))
        .collect()
}

/// Every fold of `(x, y)` (`d` columns per row, `folds[i]` the fold of row `i`) answered from the
/// other folds through a cached context, after `view` maps the fold's context and query rows to
/// the model's inputs and their width: the held-out predictions with their targets, both in the
/// model's normalised units.
fn held_out_by_hand(
    p: &Predictor,
    x: &[f64],
    d: usize,
    y: &[f64],
    folds: &[usize],
    view: impl Fn(&[f64], &[f64]) -> (Vec<f64>, Vec<f64>, usize),
) -> Vec<(pfn_distribution::BarPrediction, f64)> {
    let mut held_out = Vec::new();
    for f in 0..=folds.iter().copied().max().unwrap_or(0) {
        let (xc, yc, xq, yq) = common::split_fold(x, d, y, folds, f);
        let (xc, xq, width) = view(&xc, &xq);
        let preds = p
            .context_with_features(&xc, &yc, width)
            .unwrap()
            .predict(&xq)
            .unwrap();
        for (pred, target) in preds.iter().zip(&yq) {
            let r = pred.as_regression().unwrap();
            held_out.push((r.normalised().clone(), r.target_scaler().transform(*target)));
        }
    }
    held_out
}

#[test]
fn regression_calibration_fits_a_power_on_context_folds_and_tempers_the_context() {
    use pfn_infer::calibration::{fit_density_temperature, stratified_folds};
    use pfn_infer::ContextCalibration;
    let p = predictor();
    // 60 noisy context points of a smooth function.
    let (x, y, q) = data(60, 7);
    let y = with_noise(&y);
    let c = ContextCalibration {
        folds: 5,
        min_rows: 50,
        seed: 4,
        select_view: true,
    };
    let beta = p.density_temperature(&x, &y, 1, c).unwrap();
    assert!(beta != 1.0, "{beta}");
    // By hand: each fold answered through its own cached context.
    let folds = stratified_folds(&vec![0; 60], 5, 4);
    let held_out = held_out_by_hand(&p, &x, 1, &y, &folds, |xc, xq| {
        (xc.to_vec(), xq.to_vec(), 1)
    });
    let by_hand = fit_density_temperature(&held_out);
    assert!(
        (beta - by_hand).abs() < 1e-3 * by_hand,
        "{beta} vs {by_hand}"
    );
    // The context applies it: every prediction is the raw one tempered.
    let mut context = p.context_with_features(&x, &y, 1).unwrap();
    let raw = context.predict(&q).unwrap();
    context.set_temperature(beta).unwrap();
    assert!(context.set_temperature(0.0).is_err() && context.set_temperature(f64::NAN).is_err());
    assert_eq!(context.temperature(), beta);
    let tempered = context.predict(&q).unwrap();
    for (a, b) in raw.iter().zip(&tempered) {
        let (a, b) = (a.as_regression().unwrap(), b.as_regression().unwrap());
        for v in [-0.5, 0.0, 0.3, 1.0] {
            let expected = a.tempered(beta).log_pdf(v);
            assert!((b.log_pdf(v) - expected).abs() < 1e-9, "{v}");
        }
        assert!(beta < 1.0 || b.std() <= a.std() + 1e-12);
    }
    // Too few rows, or constant targets: nothing fitted; one fold is refused.
    assert_eq!(
        p.density_temperature(&x[..20], &y[..20], 1, c).unwrap(),
        1.0
    );
    assert_eq!(p.density_temperature(&x, &[2.5; 60], 1, c).unwrap(), 1.0);
    let one = ContextCalibration { folds: 1, ..c };
    assert!(p.density_temperature(&x, &y, 1, one).is_err());
}

#[test]
fn a_regression_table_wider_than_the_model_is_answered_through_principal_components() {
    use pfn_infer::calibration::{fit_density_temperature, stratified_folds};
    use pfn_infer::{ContextCalibration, InputView, PrincipalComponents};
    let p = predictor();
    assert_eq!(p.num_features(), 1);
    // Three columns that all carry the same input t (scaled and shifted), for a 1-feature model.
    let (t, y, _) = data(60, 2);
    let y = with_noise(&y);
    let x: Vec<f64> = t
        .iter()
        .enumerate()
        .flat_map(|(i, &v)| [v, 2.0 * v + 1.0 + 1e-3 * (i % 3) as f64, -v])
        .collect();
    let c = ContextCalibration {
        folds: 5,
        min_rows: 50,
        seed: 4,
        select_view: true,
    };
    let (view, beta) = p.regression_calibration(&x, &y, 3, c).unwrap();
    assert_eq!(view, InputView::PrincipalComponents(1));
    // By hand: each fold projected on its own context rows' first component.
    let folds = stratified_folds(&vec![0; 60], 5, 4);
    let held_out = held_out_by_hand(&p, &x, 3, &y, &folds, |xc, xq| {
        let pc = PrincipalComponents::fit(xc, 3, 1);
        (pc.project(xc), pc.project(xq), 1)
    });
    let by_hand = fit_density_temperature(&held_out);
    assert!(
        (beta - by_hand).abs() < 1e-3 * by_hand,
        "{beta} vs {by_hand}"
    );
    // The component is the shared input up to sign and scale.
    let v = view.apply(&x, &x[..30], 3).unwrap();
    assert_eq!(v.features, 1);
    let cx = v.x;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mc, mt) = (mean(&cx), mean(&t));
    let cov: f64 = cx.iter().zip(&t).map(|(a, b)| (a - mc) * (b - mt)).sum();
    let var_c: f64 = cx.iter().map(|a| (a - mc) * (a - mc)).sum();
    let var_t: f64 = t.iter().map(|b| (b - mt) * (b - mt)).sum();
    let corr = cov / (var_c * var_t).sqrt();
    assert!(corr.abs() > 0.999, "{corr}");
    // As given the table is too wide: without view selection, or with too few rows, an error.
    let as_given = ContextCalibration {
        select_view: false,
        ..c
    };
    assert!(p.regression_calibration(&x, &y, 3, as_given).is_err());
    assert_eq!(
        p.regression_calibration(&x[..60], &y[..20], 3, c).unwrap(),
        (InputView::AsGiven, 1.0)
    );
}
