//! Shared helpers of the integration tests: a dense f64 reference PFN written independently of the
//! crate (sequence order per dataset, explicit attention mask as in the paper's code), and random
//! models and batches.

#![allow(dead_code, clippy::needless_range_loop)]

use pfn_model::{PfnConfig, PfnModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A model whose every parameter is random (so that no gradient is trivially zero).
pub fn random_model(config: PfnConfig, seed: u64) -> PfnModel {
    let mut model = PfnModel::new(config, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1000);
    let layout = model.layout().clone();
    for info in layout.entries() {
        let is_gamma = info.name.contains("norm") && info.name.ends_with("weight");
        for v in model.param_mut(&info.name).unwrap() {
            *v = if is_gamma {
                1.0 + rng.random_range(-0.3..0.3)
            } else {
                rng.random_range(-0.5..0.5)
            };
        }
    }
    model
}

/// Random batch-first inputs x (B, T, F) and labels y (B, T).
pub fn random_batch(b: usize, t: usize, f: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..b * t * f).map(|_| rng.random_range(0.0..1.0)).collect();
    let y = (0..b * t).map(|_| rng.random_range(-2.0..2.0)).collect();
    (x, y)
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

/// The parameters as f64, looked up by our names.
pub struct RefParams<'a> {
    pub layout: &'a pfn_model::ParamLayout,
    pub values: &'a [f64],
}

impl RefParams<'_> {
    fn get(&self, name: &str) -> &[f64] {
        let info = self.layout.get(name).unwrap_or_else(|| panic!("no {name}"));
        &self.values[info.range()]
    }
}

/// y = W x + b for W (out, in) row-major.
fn linear(w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let out = b.len();
    let inp = x.len();
    (0..out)
        .map(|o| b[o] + (0..inp).map(|i| w[o * inp + i] * x[i]).sum::<f64>())
        .collect()
}

fn layer_norm(x: &[f64], g: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    x.iter()
        .zip(g.iter().zip(b))
        .map(|(v, (g, b))| g * (v - mean) / (var + eps).sqrt() + b)
        .collect()
}

/// Dense f64 forward of the PFN: logits (B, T - n, n_out). The mask is an explicit (T, T) matrix:
/// key k is visible from position s iff k < n, or (with query self-attention) s >= n and k == s.
/// A row with no visible key gets a zero attention output (the crate's documented convention).
pub fn reference_logits(
    c: &PfnConfig,
    p: &RefParams<'_>,
    x: &[f64],
    y: &[f64],
    b: usize,
    t: usize,
    n: usize,
) -> Vec<f64> {
    let (f, e, heads) = (c.num_features, c.emsize, c.nhead);
    let dh = e / heads;
    let eps = c.layer_norm_eps as f64;
    let mut logits = Vec::new();
    for bi in 0..b {
        let mut h: Vec<Vec<f64>> = (0..t)
            .map(|s| {
                let xs = &x[(bi * t + s) * f..(bi * t + s + 1) * f];
                let mut v = linear(p.get("encoder.x.weight"), p.get("encoder.x.bias"), xs);
                if s < n {
                    let (wy, by) = (p.get("encoder.y.weight"), p.get("encoder.y.bias"));
                    let ye: Vec<f64> = match c.y_classes {
                        None => linear(wy, by, &[y[bi * t + s]]),
                        // An embedding: the table's entry of the label, looked up directly.
                        Some(k) => {
                            let label = y[bi * t + s] as usize;
                            (0..e).map(|i| wy[i * k + label] + by[i]).collect()
                        }
                    };
                    for (a, bv) in v.iter_mut().zip(ye) {
                        *a += bv;
                    }
                }
                v
            })
            .collect();
        for l in 0..c.nlayers {
            let pre = format!("layers.{l}");
            let g = |s: &str| p.get(&format!("{pre}.{s}"));
            let qkv: Vec<Vec<f64>> = h
                .iter()
                .map(|v| linear(g("attn.in_proj.weight"), g("attn.in_proj.bias"), v))
                .collect();
            let visible =
                |s: usize, k: usize| k < n || (c.query_self_attention && s >= n && k == s);
            let mut attn = vec![vec![0.0; e]; t];
            for s in 0..t {
                for hd in 0..heads {
                    let keys: Vec<usize> = (0..t).filter(|&k| visible(s, k)).collect();
                    if keys.is_empty() {
                        continue;
                    }
                    let logit: Vec<f64> = keys
                        .iter()
                        .map(|&k| {
                            (0..dh)
                                .map(|d| qkv[s][hd * dh + d] * qkv[k][e + hd * dh + d])
                                .sum::<f64>()
                                / (dh as f64).sqrt()
                        })
                        .collect();
                    let mx = logit.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let ex: Vec<f64> = logit.iter().map(|v| (v - mx).exp()).collect();
                    let z: f64 = ex.iter().sum();
                    for (i, &k) in keys.iter().enumerate() {
                        for d in 0..dh {
                            attn[s][hd * dh + d] += ex[i] / z * qkv[k][2 * e + hd * dh + d];
                        }
                    }
                }
            }
            h = (0..t)
                .map(|s| {
                    let a = linear(g("attn.out_proj.weight"), g("attn.out_proj.bias"), &attn[s]);
                    let z: Vec<f64> = h[s].iter().zip(&a).map(|(u, v)| u + v).collect();
                    let h1 = layer_norm(&z, g("norm1.weight"), g("norm1.bias"), eps);
                    let u: Vec<f64> = linear(g("ff.linear1.weight"), g("ff.linear1.bias"), &h1)
                        .into_iter()
                        .map(gelu)
                        .collect();
                    let ff = linear(g("ff.linear2.weight"), g("ff.linear2.bias"), &u);
                    let z2: Vec<f64> = h1.iter().zip(&ff).map(|(u, v)| u + v).collect();
                    layer_norm(&z2, g("norm2.weight"), g("norm2.bias"), eps)
                })
                .collect();
        }
        for s in n..t {
            let u: Vec<f64> = linear(
                p.get("decoder.hidden.weight"),
                p.get("decoder.hidden.bias"),
                &h[s],
            )
            .into_iter()
            .map(gelu)
            .collect();
            logits.extend(linear(
                p.get("decoder.output.weight"),
                p.get("decoder.output.bias"),
                &u,
            ));
        }
    }
    logits
}
