//! How much of a regression PFN's gap to the exact GP is the resolution of its Riemann head?
//!
//! A model with a bar-distribution head answers with one probability per bucket, flat within each
//! bucket. Trained on posterior targets, its best answer for a dataset is the exact GP predictive
//! `N(μ, σ²)` with its mass collected per bucket: `p_k = Φ((b_{k+1} − μ)/σ) − Φ((b_k − μ)/σ)`,
//! spread evenly over the bucket. Even that answer loses to the Gaussian where σ is small against
//! the bucket width (a noiseless, well-determined function; targets far from the bulk of the
//! prior, where the equal-mass buckets are wide). Its mean gap to the exact GP is the *bucket
//! floor*: what the head costs with perfect learning.
//!
//! `cargo run --release -p pfn-experiments --example bucket_floor -- MODEL PRIOR DATASETS`
//!
//! Scores the query point 50 of DATASETS held-out datasets of the registry prior PRIOR, with the
//! seed of the `pfn eval` reports, at its context sizes. For each size it prints the mean gap of
//! MODEL and the bucket floor, both in nats, through the user's path: the model's own
//! normalisation, so the borders are the context-scaled ones of each dataset. Queries beyond the
//! outer borders, where the head has tails, count as no loss and are counted.

use pfn_distribution::normal;
use pfn_experiments::datasets::{dataset_seed, HeldOut};
use pfn_gp::sequential_predictive;
use pfn_infer::{Predictor, Task};

/// Standard-normal mass between `a <= b`, from the side of the nearer tail (no cancellation).
fn normal_mass(a: f64, b: f64) -> f64 {
    if a >= 0.0 {
        normal::upper_tail(a) - normal::upper_tail(b)
    } else if b <= 0.0 {
        normal::upper_tail(-b) - normal::upper_tail(-a)
    } else {
        1.0 - normal::upper_tail(b) - normal::upper_tail(-a)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, prior_name, datasets] = args.as_slice() else {
        return Err("usage: bucket_floor MODEL PRIOR DATASETS".into());
    };
    let predictor = Predictor::load(model)?;
    let count: usize = datasets.parse()?;
    if count == 0 {
        return Err("DATASETS must be at least 1".into());
    }
    let prior = pfn_prior::prior_by_name(prior_name)?;
    let q = 50;
    let held = HeldOut::sample(
        prior.as_ref(),
        prior_name,
        dataset_seed(0),
        count,
        q + 1,
        predictor.num_features(),
    )?;
    let data: Vec<_> = (0..held.len()).filter_map(|i| held.get(i)).collect();
    println!("| n | model gap | bucket floor | queries beyond the outer borders |");
    println!("|---:|---:|---:|---:|");
    let (mut model_total, mut floor_total, mut sizes) = (0.0, 0.0, 0usize);
    for n in [1usize, 2, 3, 5, 10, 20, 30, 40, 50] {
        let tasks: Vec<Task<'_>> = data
            .iter()
            .map(|d| Task {
                x: &d.x[..n * d.features],
                y: &d.y[..n],
                x_query: &d.x[q * d.features..(q + 1) * d.features],
                features: d.features,
            })
            .collect();
        let answers = predictor.predict_many(&tasks)?;
        let (mut model_gap, mut floor_gap, mut outside) = (0.0, 0.0, 0usize);
        for (d, answer) in data.iter().zip(&answers) {
            let hyper =
                d.gp.as_ref()
                    .ok_or("the prior records no GP hyperparameters")?;
            let f = d.features;
            let mut x = d.x[..n * f].to_vec();
            x.extend_from_slice(&d.x[q * f..(q + 1) * f]);
            let mut y = d.y[..n].to_vec();
            let target = d.target_y[q];
            y.push(target);
            let exact = sequential_predictive(&x, &y, f, hyper)?;
            let (mu, sd) = (exact.mean[n], exact.var_y[n].sqrt());
            let exact_nll = -exact.log_density[n];
            model_gap += answer[0].nll(target) - exact_nll;
            let borders = answer[0]
                .as_regression()
                .ok_or("MODEL is not a regression model")?
                .borders();
            let k = borders.partition_point(|&b| b <= target);
            if k == 0 || k == borders.len() {
                outside += 1;
                continue;
            }
            let (lo, hi) = (borders[k - 1], borders[k]);
            let mass = normal_mass((lo - mu) / sd, (hi - mu) / sd);
            let floor_nll = -(mass.max(f64::MIN_POSITIVE) / (hi - lo)).ln();
            floor_gap += floor_nll - exact_nll;
        }
        let m = data.len() as f64;
        let (model_gap, floor_gap) = (model_gap / m, floor_gap / m);
        model_total += model_gap;
        floor_total += floor_gap;
        sizes += 1;
        println!("| {n} | {model_gap:.3} | {floor_gap:.3} | {outside} |");
    }
    println!(
        "| mean | {:.3} | {:.3} | |",
        model_total / sizes as f64,
        floor_total / sizes as f64
    );
    Ok(())
}
