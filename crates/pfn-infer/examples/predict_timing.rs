//! Times one regression call of the Rust predictor (context encoding plus the predictive of every
//! query), the baseline of the Python package's per-call overhead (`scripts/bench_python.py`).
//!
//! `cargo run --release -p pfn-infer --example predict_timing -- MODEL N_CONTEXT N_QUERY FEATURES REPEATS`
//!
//! Prints the median and minimum seconds over REPEATS calls (without and with each query's mean) on one thread, with inputs drawn from a
//! fixed seed (the same formula as the Python benchmark: x uniform, y = sin(6 x0) + sum of x).

use std::time::Instant;

use pfn_infer::Predictor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: predict_timing MODEL N_CONTEXT N_QUERY FEATURES REPEATS";
    let [model, n, m, d, repeats] = args.as_slice() else {
        return Err(usage.into());
    };
    let (n, m, d, repeats): (usize, usize, usize, usize) =
        (n.parse()?, m.parse()?, d.parse()?, repeats.parse()?);
    let artifact = pfn_artifact::load_model(model)?;
    let predictor = Predictor::with_threads(&artifact, 1)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
    let y: Vec<f64> = x
        .chunks(d)
        .map(|r| (6.0 * r[0]).sin() + r.iter().sum::<f64>())
        .collect();
    let xq: Vec<f64> = (0..m * d).map(|_| rng.random::<f64>()).collect();
    // The predictive of every query (what `Model.predict` returns), and the same plus each
    // query's mean (what `PFNRegressor.predict` returns).
    for with_means in [false, true] {
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            let out = predictor.context_with_features(&x, &y, d)?.predict(&xq)?;
            if with_means {
                let means: Vec<f64> = out
                    .iter()
                    .filter_map(|p| p.as_regression().map(|r| r.mean()))
                    .collect();
                std::hint::black_box(&means);
            }
            std::hint::black_box(&out);
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "rust predictor{}: {n} context rows, {m} queries, {d} features: median {:.6} s, min {:.6} s over {} calls",
            if with_means { " + means" } else { "" },
            times[times.len() / 2],
            times[0],
            times.len()
        );
    }
    Ok(())
}
