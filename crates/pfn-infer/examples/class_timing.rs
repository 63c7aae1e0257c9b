//! Times the class-probability ensemble of a tabular classifier on windows shaped like the paper's
//! protocol (`pfn reproduce tabular`, protocol A: 20 windows of 30 context rows and 70 queries):
//! every window and member one at a time through the cached context path, against all of them in
//! shared batched passes (`Predictor::ensemble_class_probabilities_many`), in f32 and bf16.
//!
//! `cargo run --release -p pfn-infer --example class_timing -- MODEL WINDOWS N_CONTEXT N_QUERY FEATURES CLASSES THREADS REPEATS`
//!
//! Prints the median and minimum seconds per dataset (all windows) over REPEATS calls for 1, 4 and
//! 8 members, with inputs and labels drawn from a fixed seed.

use std::time::Instant;

use pfn_infer::{ClassEnsemble, ClassTask, Precision, Predictor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Window = (Vec<f64>, Vec<usize>, Vec<f64>);

/// Median and minimum of `repeats` timings of `f`.
fn time(repeats: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: class_timing MODEL WINDOWS N_CONTEXT N_QUERY FEATURES CLASSES THREADS REPEATS";
    let [model, w, n, m, d, k, threads, repeats] = args.as_slice() else {
        return Err(usage.into());
    };
    let (w, n, m, d, k, threads, repeats): (usize, usize, usize, usize, usize, usize, usize) = (
        w.parse()?,
        n.parse()?,
        m.parse()?,
        d.parse()?,
        k.parse()?,
        threads.parse()?,
        repeats.parse()?,
    );
    let artifact = pfn_artifact::load_model(model)?;
    let mut predictor = Predictor::with_threads(&artifact, threads)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let windows: Vec<Window> = (0..w)
        .map(|_| {
            let x: Vec<f64> = (0..n * d)
                .map(|_| rng.random::<f64>() * 2.0 - 1.0)
                .collect();
            let y: Vec<usize> = x
                .chunks(d)
                .map(|r| usize::from(r[0] + 0.3 * r[d - 1] > 0.0) % k)
                .collect();
            let q: Vec<f64> = (0..m * d)
                .map(|_| rng.random::<f64>() * 2.0 - 1.0)
                .collect();
            (x, y, q)
        })
        .collect();
    let tasks: Vec<ClassTask<'_>> = windows
        .iter()
        .map(|(x, y, q)| ClassTask {
            x,
            labels: y,
            x_query: q,
            features: d,
        })
        .collect();
    for precision in [Precision::F32, Precision::Bf16] {
        predictor.set_precision(precision);
        for members in [1, 4, 8] {
            let e = ClassEnsemble::new(members, 0);
            let one = time(repeats, || {
                for t in &tasks {
                    std::hint::black_box(
                        predictor
                            .ensemble_class_probabilities(t.x, t.labels, d, t.x_query, k, e)
                            .unwrap(),
                    );
                }
            });
            // Member by member through the cached context (the permutations' cost left out).
            let cached = time(repeats, || {
                for t in &tasks {
                    let y: Vec<f64> = t.labels.iter().map(|&l| l as f64).collect();
                    for _ in 0..members {
                        std::hint::black_box(
                            predictor
                                .context_with_features(t.x, &y, d)
                                .unwrap()
                                .class_probabilities(t.x_query, k)
                                .unwrap(),
                        );
                    }
                }
            });
            let many = time(repeats, || {
                std::hint::black_box(
                    predictor
                        .ensemble_class_probabilities_many(&tasks, k, e)
                        .unwrap(),
                );
            });
            println!(
                "{precision:?} {members} member(s), {w} windows of {n}+{m} rows, {d} features, {threads} thread(s): cached member by member median {:.2} ms (min {:.2}), window by window median {:.2} ms (min {:.2}), batched median {:.2} ms (min {:.2})",
                cached.0 * 1e3,
                cached.1 * 1e3,
                one.0 * 1e3,
                one.1 * 1e3,
                many.0 * 1e3,
                many.1 * 1e3
            );
        }
    }
    Ok(())
}
