//! Forward and backward against an independent dense f64 reference of the PFN (tests/common).
//!
//! Gradient tolerance: the loss is sum(w * logits) for fixed random w, so d loss / d logits = w. The
//! reference gradient is the central difference of the f64 reference with h = 1e-5 (truncation error
//! ~h^2 * |f'''| ~ 1e-10, rounding ~1e-16 / h ~ 1e-11: exact for our purpose). Our gradient is
//! computed in f32 through a few layers, so it carries rounding errors of about 1e-6 of the typical
//! gradient magnitude; we allow |g - fd| <= 2e-4 |fd| + 2e-5 * rms(fd of that tensor). A wrong
//! formula (missing term, transposed weight, wrong mask) gives errors of order |fd| and fails.

mod common;

use common::{random_batch, random_model, reference_logits, RefParams};
use pfn_engine::Engine;
use pfn_model::{Batch, PfnConfig, PfnModel, Workspace};
use rand::{Rng, SeedableRng};

fn tiny(query_self: bool, nlayers: usize) -> PfnConfig {
    PfnConfig {
        query_self_attention: query_self,
        ..PfnConfig::new(3, 8, 2, 12, nlayers, 5)
    }
}

fn params64(model: &PfnModel) -> Vec<f64> {
    model.params().iter().map(|&v| v as f64).collect()
}

fn reference(
    model: &PfnModel,
    values: &[f64],
    x: &[f32],
    y: &[f32],
    b: usize,
    t: usize,
    n: usize,
) -> Vec<f64> {
    let p = RefParams {
        layout: model.layout(),
        values,
    };
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let y64: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    reference_logits(model.config(), &p, &x64, &y64, b, t, n)
}

/// Checks logits against the reference and every parameter gradient against central differences.
fn check(config: PfnConfig, b: usize, t: usize, n: usize, seed: u64) {
    let engine = Engine::new(2).unwrap();
    let mut model = random_model(config.clone(), seed);
    let (x, mut y) = random_batch(b, t, config.num_features, seed + 1);
    if let Some(k) = config.y_classes {
        // Class labels 0..k for a label embedding (y was uniform in [-2, 2)).
        for v in &mut y {
            *v = (((*v + 2.0) / 4.0 * k as f32) as usize).min(k - 1) as f32;
        }
    }
    let batch = Batch {
        x: &x,
        y: &y,
        batch: b,
        seq_len: t,
        single_eval_pos: n,
    };
    let mut ws = Workspace::training();
    let logits = model.forward(&engine, &mut ws, &batch).unwrap().to_vec();
    let theta = params64(&model);
    let want = reference(&model, &theta, &x, &y, b, t, n);
    assert_eq!(logits.len(), want.len());
    for (i, (g, w)) in logits.iter().zip(&want).enumerate() {
        assert!(
            (*g as f64 - w).abs() < 2e-5,
            "logit {i}: {g} vs {w} ({config:?}, n={n})"
        );
    }
    // inference mode gives the same logits
    let mut inf = Workspace::inference();
    let again = model.forward(&engine, &mut inf, &batch).unwrap();
    assert_eq!(again, &logits[..], "inference and training forward differ");

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 2);
    let w: Vec<f32> = (0..logits.len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    model.zero_grad();
    model.backward(&engine, &mut ws, &w).unwrap();
    let loss = |values: &[f64]| -> f64 {
        reference(&model, values, &x, &y, b, t, n)
            .iter()
            .zip(&w)
            .map(|(l, w)| l * *w as f64)
            .sum()
    };
    let h = 1e-5;
    let mut worst = 0.0f64;
    for info in model.layout().entries() {
        let fd: Vec<f64> = info
            .range()
            .map(|i| {
                let mut plus = theta.clone();
                plus[i] += h;
                let mut minus = theta.clone();
                minus[i] -= h;
                (loss(&plus) - loss(&minus)) / (2.0 * h)
            })
            .collect();
        let rms = (fd.iter().map(|v| v * v).sum::<f64>() / fd.len() as f64).sqrt();
        let got = model.grad(&info.name).unwrap();
        for (k, (g, f)) in got.iter().zip(&fd).enumerate() {
            let tol = 2e-4 * f.abs() + 2e-5 * rms + 1e-9;
            let err = (*g as f64 - f).abs();
            worst = worst.max(err / tol);
            assert!(
                err <= tol,
                "{}[{k}]: backward {g} vs finite difference {f} ({config:?}, n={n})",
                info.name
            );
        }
    }
    println!("{config:?} n={n}: worst gradient error {worst:.3} of tolerance");
}

#[test]
fn paper_mask_with_query_self_attention() {
    check(tiny(true, 2), 2, 7, 4, 1);
}

#[test]
fn library_mask_without_query_self_attention() {
    check(tiny(false, 2), 2, 7, 4, 2);
}

#[test]
fn single_layer_models() {
    check(tiny(true, 1), 3, 5, 2, 3);
    check(tiny(false, 1), 3, 5, 2, 4);
}

#[test]
fn no_context_with_and_without_self_attention() {
    // Without self-attention the queries attend to nothing: attention output 0, never NaN.
    check(tiny(true, 2), 2, 4, 0, 5);
    check(tiny(false, 2), 2, 4, 0, 6);
}

#[test]
fn one_query_and_one_context_point() {
    check(tiny(true, 2), 1, 2, 1, 7);
    check(tiny(false, 2), 1, 2, 1, 8);
}

#[test]
fn first_layer_projection_folded_into_the_encoder() {
    // With one feature (encoder input width 4) and emsize 16, the first layer's Q/K/V come from the
    // encoder input through the folded weight once a layer has more than 16 projected rows (here 36);
    // the backward forms that layer's weight gradient from the encoder input in every case.
    for (query_self, seed) in [(true, 10), (false, 11)] {
        let config = PfnConfig {
            query_self_attention: query_self,
            ..PfnConfig::new(1, 16, 2, 12, 2, 5)
        };
        check(config, 3, 8, 4, seed);
    }
}

#[test]
fn class_label_embedding() {
    for (query_self, nlayers) in [(true, 2), (false, 1), (false, 0)] {
        let config = PfnConfig {
            y_classes: Some(4),
            ..tiny(query_self, nlayers)
        };
        check(config.clone(), 2, 7, 4, 41);
        check(config, 1, 5, 0, 43);
    }
    // The folded first projection (narrow input, many rows) with an embedding.
    let config = PfnConfig {
        y_classes: Some(3),
        ..PfnConfig::new(1, 32, 4, 16, 1, 3)
    };
    check(config, 4, 40, 30, 47);
}

#[test]
fn a_label_outside_the_embedding_is_an_error() {
    let engine = Engine::new(1).unwrap();
    let config = PfnConfig {
        y_classes: Some(3),
        ..tiny(false, 1)
    };
    let model = random_model(config, 5);
    let (x, _) = random_batch(1, 4, 3, 6);
    for bad in [3.0f32, -1.0, 0.5] {
        let y = [0.0, 1.0, bad, 2.0];
        let batch = Batch {
            x: &x,
            y: &y,
            batch: 1,
            seq_len: 4,
            single_eval_pos: 3,
        };
        let e = model
            .forward(&engine, &mut Workspace::training(), &batch)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a class in 0..3"), "{e}");
    }
    // Query targets are not read: any value there is fine.
    let y = [0.0, 1.0, 2.0, 7.5];
    let batch = Batch {
        x: &x,
        y: &y,
        batch: 1,
        seq_len: 4,
        single_eval_pos: 3,
    };
    assert!(model
        .forward(&engine, &mut Workspace::training(), &batch)
        .is_ok());
}

#[test]
fn zero_layers_is_encoder_plus_decoder() {
    check(tiny(true, 0), 2, 5, 3, 9);
}

#[test]
fn no_queries_gives_empty_logits_and_zero_gradients() {
    let engine = Engine::new(1).unwrap();
    let mut model = random_model(tiny(true, 2), 10);
    let (x, y) = random_batch(2, 4, 3, 11);
    let batch = Batch {
        x: &x,
        y: &y,
        batch: 2,
        seq_len: 4,
        single_eval_pos: 4,
    };
    let mut ws = Workspace::training();
    assert!(model.forward(&engine, &mut ws, &batch).unwrap().is_empty());
    model.zero_grad();
    model.backward(&engine, &mut ws, &[]).unwrap();
    assert!(model.grads().iter().all(|&g| g == 0.0));
}

#[test]
fn the_two_mask_variants_differ() {
    let engine = Engine::new(1).unwrap();
    let with = random_model(tiny(true, 2), 12);
    let mut without = PfnModel::zeros(tiny(false, 2)).unwrap();
    without.params_mut().copy_from_slice(with.params());
    let (x, y) = random_batch(1, 6, 3, 13);
    let batch = Batch {
        x: &x,
        y: &y,
        batch: 1,
        seq_len: 6,
        single_eval_pos: 3,
    };
    let a = with
        .forward(&engine, &mut Workspace::inference(), &batch)
        .unwrap()
        .to_vec();
    let b = without
        .forward(&engine, &mut Workspace::inference(), &batch)
        .unwrap()
        .to_vec();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(diff > 1e-3, "self-attention switch had no effect ({diff})");
}
