//! The symmetries of the PFN: invariance to the order of the context, independence of the queries.

mod common;

use common::{random_batch, random_model};
use pfn_engine::Engine;
use pfn_model::{Batch, PfnConfig, Workspace};

const TOL: f32 = 1e-5;

fn config(query_self: bool) -> PfnConfig {
    PfnConfig {
        query_self_attention: query_self,
        ..PfnConfig::new(2, 16, 4, 24, 3, 10)
    }
}

fn logits(
    model: &pfn_model::PfnModel,
    x: &[f32],
    y: &[f32],
    b: usize,
    t: usize,
    n: usize,
) -> Vec<f32> {
    let engine = Engine::new(2).unwrap();
    let batch = Batch {
        x,
        y,
        batch: b,
        seq_len: t,
        single_eval_pos: n,
    };
    model
        .forward(&engine, &mut Workspace::inference(), &batch)
        .unwrap()
        .to_vec()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

/// Reorders the points of every dataset: new point s is old point `order[s]`.
fn reorder(
    x: &[f32],
    y: &[f32],
    b: usize,
    t: usize,
    f: usize,
    order: &[usize],
) -> (Vec<f32>, Vec<f32>) {
    let mut nx = Vec::with_capacity(x.len());
    let mut ny = Vec::with_capacity(y.len());
    for bi in 0..b {
        for &s in order {
            nx.extend_from_slice(&x[(bi * t + s) * f..(bi * t + s + 1) * f]);
            ny.push(y[bi * t + s]);
        }
    }
    (nx, ny)
}

#[test]
fn permuting_the_context_leaves_every_query_output_unchanged() {
    for query_self in [true, false] {
        let model = random_model(config(query_self), 21);
        let (b, t, n, f) = (3, 12, 7, 2);
        let (x, y) = random_batch(b, t, f, 22);
        let base = logits(&model, &x, &y, b, t, n);
        // reverse and rotate the context, keep the queries in place
        let order: Vec<usize> = [4, 6, 0, 5, 1, 3, 2].into_iter().chain(n..t).collect();
        let (px, py) = reorder(&x, &y, b, t, f, &order);
        let d = max_diff(&base, &logits(&model, &px, &py, b, t, n));
        assert!(
            d <= TOL,
            "context permutation changed outputs by {d} (self={query_self})"
        );
        // and the context order does matter for nothing else: changing one label does change outputs
        let mut y2 = y.clone();
        y2[0] += 1.0;
        assert!(max_diff(&base, &logits(&model, &x, &y2, b, t, n)) > 1e-3);
    }
}

#[test]
fn other_queries_do_not_influence_a_query() {
    for query_self in [true, false] {
        let model = random_model(config(query_self), 31);
        let (b, t, n, f, k) = (2, 11, 5, 2, 10);
        let m = t - n;
        let (x, y) = random_batch(b, t, f, 32);
        let base = logits(&model, &x, &y, b, t, n);
        let row = |l: &[f32], mm: usize, bi: usize, j: usize| {
            l[(bi * mm + j) * k..(bi * mm + j + 1) * k].to_vec()
        };

        // reorder the queries: output rows move with them
        let qorder: Vec<usize> = (0..n).chain([9, 5, 10, 6, 8, 7]).collect();
        let (rx, ry) = reorder(&x, &y, b, t, f, &qorder);
        let re = logits(&model, &rx, &ry, b, t, n);
        for bi in 0..b {
            for (j, &src) in qorder[n..].iter().enumerate() {
                let d = max_diff(&row(&re, m, bi, j), &row(&base, m, bi, src - n));
                assert!(d <= TOL, "reordering queries changed query {src} by {d}");
            }
        }

        // remove all queries but one (old query 3)
        let keep: Vec<usize> = (0..n).chain([n + 3]).collect();
        let (kx, ky) = reorder(&x, &y, b, t, f, &keep);
        let one = logits(&model, &kx, &ky, b, n + 1, n);
        for bi in 0..b {
            let d = max_diff(&row(&one, 1, bi, 0), &row(&base, m, bi, 3));
            assert!(d <= TOL, "removing queries changed query 3 by {d}");
        }

        // add queries: duplicate the query block with altered inputs
        let t2 = t + m;
        let mut ax = Vec::new();
        let mut ay = Vec::new();
        for bi in 0..b {
            ax.extend_from_slice(&x[bi * t * f..(bi + 1) * t * f]);
            ay.extend_from_slice(&y[bi * t..(bi + 1) * t]);
            for s in n..t {
                ax.extend(
                    x[(bi * t + s) * f..(bi * t + s + 1) * f]
                        .iter()
                        .map(|v| v * 0.5 + 0.3),
                );
                ay.push(0.0);
            }
        }
        let added = logits(&model, &ax, &ay, b, t2, n);
        for bi in 0..b {
            for j in 0..m {
                let d = max_diff(&row(&added, 2 * m, bi, j), &row(&base, m, bi, j));
                assert!(d <= TOL, "adding queries changed query {j} by {d}");
            }
        }

        // query labels are ignored
        let mut y3 = y.clone();
        for bi in 0..b {
            for s in n..t {
                y3[bi * t + s] = 100.0;
            }
        }
        assert_eq!(
            base,
            logits(&model, &x, &y3, b, t, n),
            "query labels influenced outputs"
        );
    }
}

#[test]
fn datasets_in_a_batch_are_independent() {
    let model = random_model(config(true), 41);
    let (b, t, n, f, k) = (3, 9, 4, 2, 10);
    let m = t - n;
    let (x, y) = random_batch(b, t, f, 42);
    let all = logits(&model, &x, &y, b, t, n);
    for bi in 0..b {
        let single = logits(
            &model,
            &x[bi * t * f..(bi + 1) * t * f],
            &y[bi * t..(bi + 1) * t],
            1,
            t,
            n,
        );
        let d = max_diff(&single, &all[bi * m * k..(bi + 1) * m * k]);
        assert!(d <= TOL, "dataset {bi} depends on the others ({d})");
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let model = random_model(config(true), 51);
    let (b, t, n, f) = (4, 40, 25, 2);
    let (x, y) = random_batch(b, t, f, 52);
    let batch = Batch {
        x: &x,
        y: &y,
        batch: b,
        seq_len: t,
        single_eval_pos: n,
    };
    let one = Engine::new(1).unwrap();
    let two = Engine::new(2).unwrap();
    let a = model
        .forward(&one, &mut Workspace::inference(), &batch)
        .unwrap()
        .to_vec();
    let c = model
        .forward(&two, &mut Workspace::inference(), &batch)
        .unwrap()
        .to_vec();
    let d = max_diff(&a, &c);
    assert!(d <= TOL, "1 vs 2 threads differ by {d}");
}
