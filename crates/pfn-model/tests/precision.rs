//! bf16 inference: close to f32, consistent between the full and the cached pass, never used in
//! training, and rebuilt when the weights change.

mod common;

use common::{random_batch, random_model};
use pfn_engine::Engine;
use pfn_model::{Batch, ContextCache, PfnConfig, PfnModel, Precision, Workspace};

fn config(query_self: bool) -> PfnConfig {
    PfnConfig {
        query_self_attention: query_self,
        // emsize 64, 4 heads, nhid 96, 3 layers, 40 outputs
        ..PfnConfig::new(2, 64, 4, 96, 3, 40)
    }
}

const B: usize = 3;
const N: usize = 20;
const M: usize = 9;

/// The test batch's inputs (B datasets of N + M points, 2 features).
fn data() -> (Vec<f32>, Vec<f32>) {
    random_batch(B, N + M, 2, 5)
}

/// The test batch over `data()`: N context points and M queries per dataset.
fn batch<'a>(x: &'a [f32], y: &'a [f32]) -> Batch<'a> {
    Batch {
        x,
        y,
        batch: B,
        seq_len: N + M,
        single_eval_pos: N,
    }
}

fn logits(engine: &Engine, model: &PfnModel, ws: &mut Workspace) -> Vec<f32> {
    let (x, y) = data();
    model.forward(engine, ws, &batch(&x, &y)).unwrap().to_vec()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f32::max)
}

/// Mean over queries of KL(softmax(a) || softmax(b)) over the outputs.
fn mean_kl(a: &[f32], b: &[f32], o: usize) -> f64 {
    let log_softmax = |r: &[f32]| -> Vec<f64> {
        let mx = r.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = mx + r.iter().map(|&v| (v as f64 - mx).exp()).sum::<f64>().ln();
        r.iter().map(|&v| v as f64 - lse).collect()
    };
    let rows = a.len() / o;
    let mut total = 0.0;
    for (ra, rb) in a.chunks_exact(o).zip(b.chunks_exact(o)) {
        let (la, lb) = (log_softmax(ra), log_softmax(rb));
        total += la
            .iter()
            .zip(&lb)
            .map(|(p, q)| p.exp() * (p - q))
            .sum::<f64>();
    }
    total / rows as f64
}

#[test]
fn bf16_inference_is_close_to_f32_but_not_identical() {
    let engine = Engine::new(2).unwrap();
    for query_self in [false, true] {
        let mut model = random_model(config(query_self), 11);
        let mut ws = Workspace::inference();
        let exact = logits(&engine, &model, &mut ws);
        model.set_inference_precision(Precision::Bf16);
        assert_eq!(model.inference_precision(), Precision::Bf16);
        let approx = logits(&engine, &model, &mut ws);
        let scale = exact.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = max_diff(&exact, &approx);
        // bf16 keeps 8 significant bits: every product moves by < 2^-7 relative, and the random
        // model has O(1) weights over 3 layers.
        assert!(d > 0.0, "bf16 pass gave the f32 logits exactly");
        assert!(
            d < 0.05 * scale.max(1.0),
            "query_self {query_self}: max logit difference {d} (logit scale {scale})"
        );
        let kl = mean_kl(&exact, &approx, 40);
        assert!(kl < 1e-3, "query_self {query_self}: mean KL {kl}");
        // and back to f32 gives the f32 logits bit for bit
        model.set_inference_precision(Precision::F32);
        assert_eq!(logits(&engine, &model, &mut ws), exact);
    }
}

#[test]
fn bf16_cached_context_matches_the_bf16_full_pass() {
    let engine = Engine::new(2).unwrap();
    for query_self in [false, true] {
        let mut model = random_model(config(query_self), 12);
        model.set_inference_precision(Precision::Bf16);
        let mut ws = Workspace::inference();
        let full = logits(&engine, &model, &mut ws);
        let (x, y) = data();
        let mut cache = ContextCache::new();
        model
            .encode_batch_context(&engine, &mut ws, &batch(&x, &y), &mut cache)
            .unwrap();
        let mut xq = Vec::new();
        for b in 0..B {
            xq.extend_from_slice(&x[(b * (N + M) + N) * 2..(b + 1) * (N + M) * 2]);
        }
        let cached = model
            .forward_queries(&engine, &mut ws, &cache, &xq, M)
            .unwrap()
            .to_vec();
        // The same bf16 roundings of the same values; only f32 summation order may differ (the
        // first layer folds the encoder for many rows but not for few).
        let d = max_diff(&full, &cached);
        assert!(d < 2e-3, "query_self {query_self}: cached vs full {d}");
    }
}

#[test]
fn training_passes_ignore_the_inference_precision() {
    let engine = Engine::new(2).unwrap();
    let mut model = random_model(config(false), 13);
    let mut ws = Workspace::training();
    let exact = logits(&engine, &model, &mut ws);
    model.set_inference_precision(Precision::Bf16);
    assert_eq!(logits(&engine, &model, &mut ws), exact);
}

#[test]
fn changed_weights_are_repacked() {
    let engine = Engine::new(2).unwrap();
    let mut model = random_model(config(false), 14);
    model.set_inference_precision(Precision::Bf16);
    let mut ws = Workspace::inference();
    let before = logits(&engine, &model, &mut ws);
    // change the decoder's output weights through each mutable accessor in turn
    for step in 0..3 {
        match step {
            0 => model
                .param_mut("decoder.output.weight")
                .unwrap()
                .iter_mut()
                .for_each(|v| *v *= 2.0),
            1 => model.params_mut().iter_mut().for_each(|v| *v *= 0.9),
            _ => model.params_and_grads_mut().0[0] += 1.0,
        }
        let after = logits(&engine, &model, &mut ws);
        // a model built fresh from the same parameters gives the same bf16 logits
        let mut fresh = PfnModel::zeros(model.config().clone()).unwrap();
        fresh.params_mut().copy_from_slice(model.params());
        fresh.set_inference_precision(Precision::Bf16);
        assert_eq!(after, logits(&engine, &fresh, &mut ws), "step {step}");
        assert_ne!(after, before, "step {step}");
    }
}

#[test]
fn precision_names_round_trip() {
    for p in [Precision::F32, Precision::Bf16] {
        assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        assert_eq!(p.to_string(), p.name());
    }
    assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
    let err = "fp8".parse::<Precision>().unwrap_err().to_string();
    assert!(err.contains("fp8") && err.contains("bf16"), "{err}");
}
