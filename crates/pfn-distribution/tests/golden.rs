//! Golden fixtures: the maintained PFNs library's `FullSupportBarDistribution` statistics
//! (nll, mean, median, variance, icdf) computed in PyTorch from given logits. See
//! `tests/fixtures/golden/README.md` at the workspace root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pfn_distribution::{BarDistribution, IcdfConvention};
use safetensors::{Dtype, SafeTensors};

const ICDF_PROBS: [f64; 5] = [0.05, 0.159, 0.5, 0.841, 0.95];
const REL_TOL: f64 = 1e-4;
/// Absolute floor for values near 0 (as the fixture README allows for tiny entries).
const ABS_FLOOR: f64 = 1e-6;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden")
}

fn load_f32(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let tensors = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{name} is not f32");
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, (view.shape().to_vec(), data))
        })
        .collect()
}

/// Tracks the largest relative error of one statistic.
#[derive(Default)]
struct ErrorStat {
    worst: f64,
    count: usize,
    failures: Vec<String>,
}

impl ErrorStat {
    fn check(&mut self, got: f64, expected: f64, what: impl FnOnce() -> String) {
        let err = (got - expected).abs();
        self.worst = self.worst.max(err / expected.abs().max(ABS_FLOOR));
        self.count += 1;
        // Written so that a NaN error counts as a failure.
        let within = err <= REL_TOL * expected.abs() + ABS_FLOOR;
        if !within {
            self.failures
                .push(format!("{}: got {got}, expected {expected}", what()));
        }
    }
}

#[test]
fn golden_fixtures_reproduce_the_maintained_library() {
    let root = fixture_root();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("no golden fixtures at {}: {e}", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.join("cases.safetensors").is_file())
        .collect();
    folders.sort();
    assert!(
        !folders.is_empty(),
        "no fixture folder with cases.safetensors in {}",
        root.display()
    );

    let names = ["nll", "nll (batched)", "mean", "median", "variance", "icdf"];
    let mut stats: HashMap<&str, ErrorStat> =
        names.iter().map(|&n| (n, ErrorStat::default())).collect();
    let mut exact_icdf = ErrorStat::default();
    let mut edge_quantiles = 0;
    let mut cases_seen = 0;

    for folder in &folders {
        let tensors = load_f32(&folder.join("cases.safetensors"));
        let borders: Vec<f64> = tensors["borders"].1.iter().map(|&b| f64::from(b)).collect();
        let dist = BarDistribution::full_support(borders).unwrap();
        assert_eq!(dist.icdf_convention(), IcdfConvention::LinearInBuckets);
        let k = dist.num_buckets();
        let fixture = folder.file_name().unwrap().to_string_lossy().to_string();

        for case in 0.. {
            let Some((shape, logits)) = tensors.get(&format!("case{case}_logits")) else {
                break;
            };
            cases_seen += 1;
            assert_eq!(*shape.last().unwrap(), k);
            let rows = logits.len() / k;
            let get = |name: &str| &tensors[&format!("case{case}_{name}")].1;
            let (targets, nll, mean, median, variance, icdf) = (
                get("target"),
                get("nll"),
                get("mean"),
                get("median"),
                get("variance"),
                get("icdf"),
            );
            assert_eq!(targets.len(), rows);
            assert_eq!(icdf.len(), rows * ICDF_PROBS.len());

            let mut grad = vec![0.0f32; logits.len()];
            let total = dist.nll_and_grad(logits, targets, &mut grad, 1.0).unwrap();
            let expected_total: f64 = nll.iter().map(|&v| f64::from(v)).sum();
            stats
                .get_mut("nll (batched)")
                .unwrap()
                .check(total, expected_total, || {
                    format!("{fixture} case{case} total")
                });

            for r in 0..rows {
                let z = &logits[r * k..(r + 1) * k];
                let at = || format!("{fixture} case{case} row {r}");
                let pred = dist.predict(z).unwrap();
                let y = f64::from(targets[r]);
                stats
                    .get_mut("nll")
                    .unwrap()
                    .check(dist.nll(z, y).unwrap(), f64::from(nll[r]), at);
                stats
                    .get_mut("mean")
                    .unwrap()
                    .check(pred.mean(), f64::from(mean[r]), at);
                stats
                    .get_mut("median")
                    .unwrap()
                    .check(pred.median(), f64::from(median[r]), at);
                stats.get_mut("variance").unwrap().check(
                    pred.variance(),
                    f64::from(variance[r]),
                    at,
                );
                let cum_edge_left = pred.probabilities()[0];
                let cum_edge_right = 1.0 - pred.probabilities()[k - 1];
                for (j, &p) in ICDF_PROBS.iter().enumerate() {
                    let expected = f64::from(icdf[r * ICDF_PROBS.len() + j]);
                    let what = || format!("{fixture} case{case} row {r} icdf({p})");
                    stats
                        .get_mut("icdf")
                        .unwrap()
                        .check(pred.icdf(p).unwrap(), expected, what);
                    exact_icdf.check(pred.icdf_exact(p).unwrap(), expected, what);
                    if p <= cum_edge_left || p >= cum_edge_right {
                        edge_quantiles += 1;
                    }
                }
            }
        }
    }
    assert!(cases_seen > 0, "no cases found in the fixtures");

    println!(
        "golden fixtures: {} folders, {cases_seen} cases",
        folders.len()
    );
    for name in names {
        let s = &stats[name];
        println!(
            "  {name:14} {:5} values, worst relative error {:.2e}",
            s.count, s.worst
        );
    }
    println!(
        "  icdf convention: linear-in-buckets (default) worst {:.2e} ({} mismatches); exact tails worst {:.2e} ({} mismatches); {edge_quantiles} of the fixture quantiles lie in an edge bucket",
        stats["icdf"].worst,
        stats["icdf"].failures.len(),
        exact_icdf.worst,
        exact_icdf.failures.len()
    );
    let failures: Vec<&String> = names
        .iter()
        .flat_map(|n| stats[n].failures.iter())
        .collect();
    assert!(
        failures.is_empty(),
        "{} golden mismatches, first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
}
