//! Per-dataset wall time and test NLL of the GP baselines on data drawn from the GP hyper-prior
//! (spec 4.2): type-II ML/MAP with 1 and 5 starts, NUTS 32+32 and 256+256, and the exact GP with
//! the true hyperparameters (the oracle).
//!
//! ```text
//! cargo run --release -p pfn-baselines --example baseline_timing -- \
//!     [--prior paper|reference-code] [--noise shifted|truncated] [--datasets 16] [--seed 0]
//! ```
//!
//! `--noise` picks the NUTS noise model above the prior's noise floor: `shifted` (default,
//! `NoiseModel::ShiftedGamma`, the data prior's model) or `truncated`
//! (`NoiseModel::TruncatedGamma`, a GPyTorch-style constrained noise with the Gamma prior at the
//! noise).
//!
//! Each setting `d in {1, 5}`, `n in {10, 30}` draws `datasets` datasets of `n + 20` points; the
//! first `n` are the context, the last 20 the test points. Times are medians over datasets (one
//! thread, everything after the data draw: fitting/sampling plus predicting). NLL is the mean over
//! datasets of the mean negative log predictive density of the 20 test targets; the gap is the
//! paired difference to the exact GP with the true hyperparameters (mean ± standard error, and
//! median, over datasets: a single unconverged short chain can dominate the mean).

use std::time::Instant;

use pfn_baselines::{
    exact_gp_baseline, fit_gp_nuts, fit_type2_baseline, GpNutsOptions, NoiseModel, NutsOptions,
};
use pfn_gp::{HyperBounds, HyperPrior, PriorSpace, Type2Options};
use pfn_prior::{GpHyperPrior, GpHyperPriorConfig, Hyperparameters, Prior};

struct Args {
    prior: String,
    noise: String,
    datasets: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        prior: "paper".into(),
        noise: "shifted".into(),
        datasets: 16,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--prior" => args.prior = value,
            "--noise" => args.noise = value,
            "--datasets" => {
                args.datasets = value.parse().map_err(|e| format!("--datasets: {e}"))?
            }
            "--seed" => args.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.datasets == 0 {
        return Err("--datasets must be at least 1".into());
    }
    Ok(args)
}

/// Per-method accumulators over the datasets of one setting.
#[derive(Default)]
struct Tally {
    times: Vec<f64>,
    nll: Vec<f64>,
    gap: Vec<f64>,
    divergences: usize,
    transitions: usize,
}

impl Tally {
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
    fn se(v: &[f64]) -> f64 {
        let m = Self::mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0)).sqrt()
            / (v.len() as f64).sqrt()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let config = match args.prior.as_str() {
        "paper" => GpHyperPriorConfig::paper(),
        "reference-code" => GpHyperPriorConfig::reference_code(),
        other => return Err(format!("unknown --prior {other} (paper | reference-code)").into()),
    };
    let prior = GpHyperPrior::new(config.clone())?;
    // The MAP objective of MLE-II uses the data's hyper-prior in BoTorch's convention.
    let mut nuts_base = GpNutsOptions::from_prior_config(&config, NutsOptions::default());
    nuts_base.noise = match args.noise.as_str() {
        "shifted" => NoiseModel::ShiftedGamma {
            floor: config.noise_floor,
        },
        "truncated" => NoiseModel::TruncatedGamma {
            floor: config.noise_floor,
        },
        other => return Err(format!("unknown --noise {other} (shifted | truncated)").into()),
    };
    let map_prior = HyperPrior {
        space: PriorSpace::Hyperparameter,
        ..nuts_base.prior
    };
    let type2 = |restarts: usize, seed: u64| Type2Options {
        restarts,
        seed,
        prior: Some(map_prior),
        bounds: HyperBounds {
            noise: (config.noise_floor.max(1e-6), 1e4),
            ..HyperBounds::default()
        },
        ..Type2Options::default()
    };
    println!(
        "GP baselines, prior `{}` (noise floor {:e}), NUTS noise model `{}`, {} datasets per setting, \
         20 test points, 1 thread",
        args.prior, config.noise_floor, args.noise, args.datasets
    );
    println!(
        "{:<4} {:<4} {:<18} {:>12} {:>10} {:>18} {:>12} {:>9}",
        "d", "n", "method", "median s/ds", "mean NLL", "mean gap ± se", "median gap", "div rate"
    );
    let m = 20;
    let methods = [
        "ML-II 1 start",
        "ML-II 5 starts",
        "NUTS 32+32",
        "NUTS 256+256",
        "exact GP (truth)",
    ];
    let total = Instant::now();
    for d in [1usize, 5] {
        for n in [10usize, 30] {
            let batch =
                prior.sample_batch(args.seed, (d * 1000 + n) as u64, args.datasets, n + m, d)?;
            let mut tallies: Vec<Tally> = methods.iter().map(|_| Tally::default()).collect();
            for b in 0..args.datasets {
                let x: Vec<f64> = batch.x_of(b).iter().map(|&v| v as f64).collect();
                let y: Vec<f64> = batch.y_of(b).iter().map(|&v| v as f64).collect();
                let (xc, yc, xt, yt) = (&x[..n * d], &y[..n], &x[n * d..], &y[n..]);
                let Hyperparameters::Gp(truth) = &batch.hyperparameters[b] else {
                    return Err("the GP prior must record GP hyperparameters".into());
                };
                let seed = args.seed * 1_000_003 + b as u64;
                let oracle = exact_gp_baseline(xc, yc, d, xt, truth)?;
                let oracle_nll = oracle.predictive.nll(yt)?;
                let record = |t: &mut Tally, secs: f64, nll: f64| {
                    t.times.push(secs);
                    t.nll.push(nll);
                    t.gap.push(nll - oracle_nll);
                };
                for (k, restarts) in [(0usize, 1usize), (1, 5)] {
                    let r = fit_type2_baseline(
                        xc,
                        yc,
                        d,
                        xt,
                        config.kernel,
                        config.ard,
                        &type2(restarts, seed),
                    )?;
                    record(
                        &mut tallies[k],
                        r.wall_time.as_secs_f64(),
                        r.predictive.nll(yt)?,
                    );
                }
                for (k, steps) in [(2usize, 32u64), (3, 256)] {
                    let opts = GpNutsOptions {
                        nuts: NutsOptions::steps(steps, seed),
                        ..nuts_base.clone()
                    };
                    let r = fit_gp_nuts(xc, yc, d, xt, &opts)?;
                    record(
                        &mut tallies[k],
                        r.wall_time.as_secs_f64(),
                        r.predictive.nll(yt)?,
                    );
                    tallies[k].divergences += r.posterior.run.diagnostics.divergences;
                    tallies[k].transitions += steps as usize;
                }
                record(&mut tallies[4], oracle.wall_time.as_secs_f64(), oracle_nll);
            }
            for (name, t) in methods.iter().zip(&tallies) {
                let div = if t.transitions > 0 {
                    format!("{:.3}", t.divergences as f64 / t.transitions as f64)
                } else {
                    "-".into()
                };
                println!(
                    "{:<4} {:<4} {:<18} {:>12.6} {:>10.3} {:>10.3} ± {:<5.3} {:>12.3} {:>9}",
                    d,
                    n,
                    name,
                    Tally::median(&t.times),
                    Tally::mean(&t.nll),
                    Tally::mean(&t.gap),
                    Tally::se(&t.gap),
                    Tally::median(&t.gap),
                    div
                );
            }
        }
    }
    println!("total wall time {:.1} s", total.elapsed().as_secs_f64());
    Ok(())
}
