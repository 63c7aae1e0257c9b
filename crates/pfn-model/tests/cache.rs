//! Inference against a cached context equals the full forward pass.

mod common;

use common::{random_batch, random_model};
use pfn_engine::Engine;
use pfn_model::{Batch, ContextCache, ModelError, PfnConfig, Workspace};

fn check(query_self: bool, nlayers: usize, n: usize) {
    let config = PfnConfig {
        query_self_attention: query_self,
        ..PfnConfig::new(2, 16, 4, 24, nlayers, 7)
    };
    let model = random_model(config, 61);
    let engine = Engine::new(2).unwrap();
    let (b, m, f) = (3, 6, 2);
    let t = n + m;
    let (x, y) = random_batch(b, t, f, 62);
    let full = model
        .forward(
            &engine,
            &mut Workspace::inference(),
            &Batch {
                x: &x,
                y: &y,
                batch: b,
                seq_len: t,
                single_eval_pos: n,
            },
        )
        .unwrap()
        .to_vec();
    let mut xq = Vec::new();
    for bi in 0..b {
        xq.extend_from_slice(&x[(bi * t + n) * f..(bi + 1) * t * f]);
    }
    let mut cache = ContextCache::new();
    let mut ws = Workspace::inference();
    let batch = Batch {
        x: &x,
        y: &y,
        batch: b,
        seq_len: t,
        single_eval_pos: n,
    };
    model
        .encode_batch_context(&engine, &mut ws, &batch, &mut cache)
        .unwrap();
    // the same cache from the context points alone, with labels (batch, n)
    let mut xc = Vec::new();
    let mut yc = Vec::new();
    for bi in 0..b {
        xc.extend_from_slice(&x[bi * t * f..(bi * t + n) * f]);
        yc.extend_from_slice(&y[bi * t..bi * t + n]);
    }
    let mut cache2 = ContextCache::new();
    model
        .encode_context(&engine, &mut ws, &xc, &yc, b, n, &mut cache2)
        .unwrap();
    let a = model
        .forward_queries(&engine, &mut ws, &cache2, &xq, m)
        .unwrap()
        .to_vec();
    let c = model
        .forward_queries(&engine, &mut ws, &cache, &xq, m)
        .unwrap()
        .to_vec();
    assert_eq!(
        a, c,
        "context-only inputs and the full batch give different caches"
    );
    assert!(cache.is_encoded() && cache.batch() == b && cache.n_ctx() == n);
    let got = model
        .forward_queries(&engine, &mut ws, &cache, &xq, m)
        .unwrap()
        .to_vec();
    let d = full
        .iter()
        .zip(&got)
        .map(|(a, c)| (a - c).abs())
        .fold(0.0f32, f32::max);
    assert_eq!(full.len(), got.len());
    assert!(
        d <= 1e-5,
        "cached queries differ by {d} (self={query_self}, layers={nlayers}, n={n})"
    );
    // one query at a time gives the same rows
    for j in 0..m {
        let one: Vec<f32> = (0..b)
            .flat_map(|bi| xq[(bi * m + j) * f..(bi * m + j + 1) * f].to_vec())
            .collect();
        let l = model
            .forward_queries(&engine, &mut ws, &cache, &one, 1)
            .unwrap()
            .to_vec();
        for bi in 0..b {
            for k in 0..7 {
                let want = full[(bi * m + j) * 7 + k];
                assert!((l[bi * 7 + k] - want).abs() <= 1e-5);
            }
        }
    }
}

#[test]
fn cached_context_matches_the_full_forward() {
    for query_self in [true, false] {
        for nlayers in [1, 3] {
            for n in [0, 1, 5] {
                check(query_self, nlayers, n);
            }
        }
    }
}

#[test]
fn cache_misuse_is_an_error() {
    let engine = Engine::new(1).unwrap();
    let model = random_model(PfnConfig::new(2, 16, 4, 24, 2, 7), 63);
    let mut ws = Workspace::training();
    let empty = ContextCache::new();
    let e = model
        .forward_queries(&engine, &mut ws, &empty, &[0.0; 4], 2)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::InvalidArgument {
                argument: "cache",
                ..
            }
        ),
        "{e:?}"
    );
    let mut cache = ContextCache::new();
    model
        .encode_context(&engine, &mut ws, &[0.5; 6], &[1.0; 3], 1, 3, &mut cache)
        .unwrap();
    let e = model
        .forward_queries(&engine, &mut ws, &cache, &[0.0; 3], 2)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::LengthMismatch {
                expected: 4,
                actual: 3,
                ..
            }
        ),
        "{e:?}"
    );
    let other = random_model(PfnConfig::new(2, 8, 2, 24, 2, 7), 64);
    let e = other
        .forward_queries(&engine, &mut ws, &cache, &[0.0; 4], 2)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::InvalidArgument {
                argument: "cache",
                ..
            }
        ),
        "{e:?}"
    );
    let e = model
        .encode_context(&engine, &mut ws, &[0.5; 5], &[1.0; 3], 1, 3, &mut cache)
        .unwrap_err();
    assert!(matches!(e, ModelError::LengthMismatch { .. }), "{e:?}");
    assert!(
        !cache.is_encoded(),
        "a failed encode leaves a valid-looking cache"
    );
    // backward after an inference-only pass is refused
    model
        .encode_context(&engine, &mut ws, &[0.5; 6], &[1.0; 3], 1, 3, &mut cache)
        .unwrap();
    model
        .forward_queries(&engine, &mut ws, &cache, &[0.0; 4], 2)
        .unwrap();
    let mut model = model;
    let e = model.backward(&engine, &mut ws, &[0.0; 14]).unwrap_err();
    assert!(matches!(e, ModelError::NoForwardState), "{e:?}");
}
