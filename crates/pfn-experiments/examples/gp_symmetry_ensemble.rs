//! Does averaging a regression PFN's predictive density over the GP prior's exact symmetries lower
//! its gap to the exact GP?
//!
//! The `gp-hyper-5d` prior is invariant under reflecting every input (`x → −x`, which the context's
//! min-max scaling turns into `x' → 1 − x'`), under flipping the sign of every target (`y → −y`:
//! zero-mean GP), and under permuting the used features (ARD lengthscales drawn i.i.d.). A model
//! that had learnt the Bayes predictive exactly would give the same answer to every transformed
//! copy of a dataset; averaging the densities of the copies (a mixture) only helps where it has not.
//!
//! `cargo run --release -p pfn-experiments --example gp_symmetry_ensemble -- MODEL DATASETS`
//!
//! Scores the query point 50 of DATASETS held-out `gp-hyper-5d` datasets with the seed of the
//! `pfn eval` reports (`docs/results/gp-hyper/eval.md`) at the same context sizes, and prints the
//! mean gap to the exact GP of one member, of 2 (x reflected), 4 (x reflected, y flipped) and 8
//! members (also the feature order reversed).

use pfn_experiments::datasets::{dataset_seed, Dataset, HeldOut};
use pfn_experiments::prior_nll::exact_gp_scores;
use pfn_infer::{Predictor, Task};

/// One ensemble member: reflect the inputs, flip the targets, reverse the feature order.
#[derive(Clone, Copy)]
struct Member {
    reflect_x: bool,
    flip_y: bool,
    reverse_features: bool,
}

impl Member {
    fn row(self, row: &[f64]) -> Vec<f64> {
        let mut r: Vec<f64> = row
            .iter()
            .map(|&v| if self.reflect_x { -v } else { v })
            .collect();
        if self.reverse_features {
            r.reverse();
        }
        r
    }

    fn target(self, y: f64) -> f64 {
        if self.flip_y {
            -y
        } else {
            y
        }
    }

    /// The member's context rows, targets and query row of dataset `d` with `n` context points.
    fn view(self, d: &Dataset, n: usize, q: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let f = d.features;
        let x = d.x[..n * f].chunks(f).flat_map(|r| self.row(r)).collect();
        let y = d.y[..n].iter().map(|&v| self.target(v)).collect();
        (x, y, self.row(&d.x[q * f..(q + 1) * f]))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, datasets] = args.as_slice() else {
        return Err("usage: gp_symmetry_ensemble MODEL DATASETS".into());
    };
    let predictor = Predictor::load(model)?;
    let datasets: usize = datasets.parse()?;
    let prior = pfn_prior::prior_by_name("gp-hyper-5d")?;
    let sizes = [1usize, 2, 3, 5, 10, 20, 30, 40, 50];
    let q = 50;
    let held = HeldOut::sample(
        prior.as_ref(),
        "gp-hyper-5d",
        dataset_seed(0),
        datasets,
        q + 1,
        5,
    )?;
    let gp = exact_gp_scores(&held, &sizes, q)?.ok_or("the prior records no GP hyperparameters")?;
    let data: Vec<Dataset> = (0..datasets).filter_map(|i| held.get(i)).collect();
    let members: Vec<Member> = (0..8)
        .map(|k| Member {
            reflect_x: k & 1 == 1,
            flip_y: k & 2 == 2,
            reverse_features: k & 4 == 4,
        })
        .collect();
    let counts = [1usize, 2, 4, 8];
    let mut mean_gap = [0.0f64; 4];
    println!("| n | 1 member | 2 (x reflected) | 4 (and y flipped) | 8 (and features reversed) |");
    println!("|---:|---:|---:|---:|---:|");
    for (si, &n) in sizes.iter().enumerate() {
        // density[m][i]: member m's predictive density of dataset i's query target.
        let mut density = vec![vec![0.0f64; data.len()]; members.len()];
        for (m, &member) in members.iter().enumerate() {
            let views: Vec<_> = data.iter().map(|d| member.view(d, n, q)).collect();
            let tasks: Vec<Task<'_>> = views
                .iter()
                .zip(&data)
                .map(|((x, y, x_query), d)| Task {
                    x,
                    y,
                    x_query,
                    features: d.features,
                })
                .collect();
            for (i, answer) in predictor.predict_many(&tasks)?.iter().enumerate() {
                density[m][i] = (-answer[0].nll(member.target(data[i].target_y[q]))).exp();
            }
        }
        let gaps: Vec<f64> = counts
            .iter()
            .map(|&k| {
                (0..data.len())
                    .map(|i| {
                        let mixture = density[..k].iter().map(|d| d[i]).sum::<f64>() / k as f64;
                        -mixture.ln() - gp[si][i]
                    })
                    .sum::<f64>()
                    / data.len() as f64
            })
            .collect();
        for (total, g) in mean_gap.iter_mut().zip(&gaps) {
            *total += g / sizes.len() as f64;
        }
        println!(
            "| {n} | {:.3} | {:.3} | {:.3} | {:.3} |",
            gaps[0], gaps[1], gaps[2], gaps[3]
        );
    }
    println!(
        "| mean | {:.3} | {:.3} | {:.3} | {:.3} |",
        mean_gap[0], mean_gap[1], mean_gap[2], mean_gap[3]
    );
    Ok(())
}
