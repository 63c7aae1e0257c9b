//! Per-dataset wall time and test BCE of the BNN baselines (spec 4.3, Fig. 5) on data drawn from
//! the BNN prior they assume: SVI (Bayes-by-backprop, `s` steps and `s` predictive samples) and
//! NUTS (`s` warm-up + `s` draws) for budgets `s`, against the true weights.
//!
//! ```text
//! cargo run --release -p pfn-baselines --example bnn_timing -- [--datasets 5] [--seed 0]
//! ```
//!
//! Each dataset has 300 points: the first 100 are revealed, the other 200 are test points (the
//! paper's setup). BCE is reported under the paper's rule (fraction of posterior samples whose
//! sampled label is 1, with PyTorch's log clamp at -100) and with the averaged probability. For
//! NUTS, "max R-hat" and "min ESS" are the worst values over the weights, averaged over datasets.

use pfn_baselines::bnn::{
    binary_cross_entropy, class1_probabilities, fit_bnn_nuts, fit_svi, BnnArchitecture,
    BnnClassificationPrior, BnnDatasetSplit, PredictiveRule, SviOptions,
};
use pfn_baselines::NutsOptions;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn median(v: &[f64]) -> f64 {
    let mut t = v.to_vec();
    t.sort_by(f64::total_cmp);
    let k = t.len();
    if k % 2 == 1 {
        t[k / 2]
    } else {
        0.5 * (t[k / 2 - 1] + t[k / 2])
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut datasets = 5usize;
    let mut seed = 0u64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--datasets" => datasets = value.parse()?,
            "--seed" => seed = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if datasets == 0 {
        return Err("--datasets must be at least 1".into());
    }
    println!("BNN baselines, {datasets} datasets, n = 100 revealed, 200 test points, 1 thread");
    println!(
        "{:<8} {:<6} {:>6} {:>12} {:>11} {:>11} {:>9} {:>9}",
        "model", "method", "s", "median s/ds", "BCE paper", "BCE avg-p", "max R-hat", "min ESS"
    );
    for (label, arch) in [
        ("small", BnnArchitecture::SMALL),
        ("big", BnnArchitecture::BIG),
    ] {
        let prior = BnnClassificationPrior::new(arch)?;
        let data: Vec<_> = (0..datasets)
            .map(|k| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed * 1_000_003 + k as u64);
                prior.sample(&mut rng, 300)
            })
            .collect();
        let mut oracle = Vec::new();
        for ds in &data {
            let (_, x_test, y_test) = ds.split(100)?;
            let p = class1_probabilities(&arch, &ds.weights, &x_test)?;
            oracle.push(binary_cross_entropy(&p, &y_test)?);
        }
        println!(
            "{label:<8} {:<6} {:>6} {:>12} {:>11.3}",
            "truth",
            "-",
            "-",
            mean(&oracle)
        );
        for s in [16usize, 64, 256, 1024] {
            for method in ["SVI", "NUTS"] {
                let (mut times, mut paper, mut avg, mut rhat, mut ess) =
                    (vec![], vec![], vec![], vec![], vec![]);
                for (k, ds) in data.iter().enumerate() {
                    let (ctx, x_test, y_test) = ds.split(100)?;
                    let run_seed = seed * 1_000_003 + k as u64;
                    let (predictive, secs) = if method == "SVI" {
                        let r = fit_svi(&arch, &ctx, &x_test, &SviOptions::budget(s, run_seed))?;
                        (r.predictive, r.wall_time.as_secs_f64())
                    } else {
                        let r = fit_bnn_nuts(
                            &arch,
                            &ctx,
                            &x_test,
                            &NutsOptions::steps(s as u64, run_seed),
                        )?;
                        rhat.push(r.run.diagnostics.max_rhat());
                        ess.push(r.run.diagnostics.min_ess());
                        (r.predictive, r.wall_time.as_secs_f64())
                    };
                    times.push(secs);
                    paper.push(predictive.bce(
                        &y_test,
                        PredictiveRule::SampledLabelFraction,
                        run_seed,
                    )?);
                    avg.push(predictive.bce(&y_test, PredictiveRule::AveragedProbability, 0)?);
                }
                let diag = |v: &[f64], f: fn(&[f64]) -> f64| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        format!("{:.2}", f(v))
                    }
                };
                println!(
                    "{label:<8} {method:<6} {s:>6} {:>12.5} {:>11.3} {:>11.3} {:>9} {:>9}",
                    median(&times),
                    mean(&paper),
                    mean(&avg),
                    diag(&rhat, mean),
                    diag(&ess, mean)
                );
            }
        }
    }
    Ok(())
}
