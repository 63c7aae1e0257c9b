//! Convergence diagnostics of Markov chains: split R-hat and the effective sample size (ESS).
//!
//! Both estimators take `chains`, one slice of draws per chain, all of the same length `N >= 4`,
//! and work on **split chains**: every chain is cut into its first and last `h = floor(N / 2)`
//! draws (the middle draw of an odd-length chain is dropped), giving `M = 2 x chains` sequences of
//! length `h`. Splitting makes a single chain checkable (a drift between its halves shows up as
//! between-sequence variance).
//!
//! With sequence means `m_j`, unbiased within-sequence variances `s_j^2`, their average `W`, and
//! `B = h / (M - 1) * sum_j (m_j - mean(m))^2`, the pooled variance estimate is
//! `V = (h - 1) / h * W + B / h`.
//!
//! * **Split R-hat** is `sqrt(V / W)` (Gelman et al., *Bayesian Data Analysis*, 3rd ed., §11.4).
//!   It is about 1 for chains that sample the same distribution and grows above 1 when they do
//!   not. It is NaN when `W = 0` (every sequence is constant).
//! * **ESS** is `M h / tau` with the integrated autocorrelation time `tau = -1 + 2 sum_k P_k`.
//!   The combined autocorrelation at lag `t` is `rho_t = 1 - (W - mean_j c_j(t)) / V`, where
//!   `c_j(t)` is the (biased, divided by `h`) autocovariance of sequence `j`, computed with an FFT.
//!   `P_k = rho_{2k} + rho_{2k+1}` are Geyer's paired sums, summed up to (not including) the first
//!   pair that is not positive, and made non-increasing (Geyer's *initial monotone sequence*
//!   estimator, 1992; the multi-chain form of BDA3 §11.5). As in Stan, `tau` is bounded below by
//!   `1 / log10(M h)`, so the ESS of anti-correlated chains is at most `M h log10(M h)`.
//!   There is no rank normalisation: this is the classic ("bulk" without ranks) ESS of the
//!   parameter itself. For independent draws the ESS is close to `M h`; for an AR(1) chain with
//!   coefficient `phi` it is close to `M h (1 - phi) / (1 + phi)`.

use crate::error::{check_finite, BaselineError};

/// Minimum draws per chain for the split diagnostics (two halves of at least two draws).
pub const MIN_DRAWS: usize = 4;

/// Split R-hat of one scalar quantity (see the module documentation).
pub fn split_rhat(chains: &[&[f64]]) -> Result<f64, BaselineError> {
    let seqs = split_chains(chains)?;
    let stats = PooledStats::new(&seqs);
    Ok((stats.var_plus / stats.within).sqrt())
}

/// Effective sample size of one scalar quantity (see the module documentation). NaN when every
/// split sequence is constant.
pub fn effective_sample_size(chains: &[&[f64]]) -> Result<f64, BaselineError> {
    let seqs = split_chains(chains)?;
    let stats = PooledStats::new(&seqs);
    let m = seqs.len();
    let h = seqs[0].len();
    let total = (m * h) as f64;
    if stats.within.is_nan() || stats.within <= 0.0 {
        return Ok(f64::NAN);
    }
    let acov: Vec<Vec<f64>> = seqs.iter().map(|s| autocovariance(s)).collect();
    let rho = |t: usize| -> f64 {
        let mean_acov = acov.iter().map(|c| c[t]).sum::<f64>() / m as f64;
        1.0 - (stats.within - mean_acov) / stats.var_plus
    };
    // Geyer's initial positive sequence of paired sums, made monotone.
    let mut sum_pairs = 0.0;
    let mut previous = f64::INFINITY;
    let mut k = 0;
    while 2 * k + 1 < h {
        let pair = if k == 0 {
            1.0 + rho(1)
        } else {
            rho(2 * k) + rho(2 * k + 1)
        };
        if pair.is_nan() || pair <= 0.0 {
            break;
        }
        let pair = pair.min(previous);
        sum_pairs += pair;
        previous = pair;
        k += 1;
    }
    let tau = (2.0 * sum_pairs - 1.0).max(1.0 / total.log10());
    Ok(total / tau)
}

/// Biased autocovariance `c(t) = 1/n sum_{i < n - t} (x_i - mean)(x_{i+t} - mean)` for every lag
/// `t = 0..n`, computed with a zero-padded FFT in `O(n log n)`.
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let size = (2 * n).next_power_of_two();
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    for (r, v) in re.iter_mut().zip(x) {
        *r = v - mean;
    }
    fft_in_place(&mut re, &mut im, false);
    for (r, i) in re.iter_mut().zip(im.iter_mut()) {
        *r = *r * *r + *i * *i;
        *i = 0.0;
    }
    fft_in_place(&mut re, &mut im, true);
    // The inverse transform is unscaled: divide by `size`, and by `n` for the biased estimate.
    let scale = 1.0 / (size as f64 * n as f64);
    re.truncate(n);
    re.iter_mut().for_each(|v| *v *= scale);
    re
}

/// Iterative radix-2 Cooley-Tukey FFT on split real/imaginary arrays whose length is a power of
/// two. `inverse` flips the sign of the exponent and does not scale.
fn fft_in_place(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    debug_assert!(n.is_power_of_two() && im.len() == n);
    // Bit-reversal permutation.
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let angle = sign * 2.0 * std::f64::consts::PI / len as f64;
        let (w_im, w_re) = angle.sin_cos();
        for start in (0..n).step_by(len) {
            let (mut cur_re, mut cur_im) = (1.0, 0.0);
            for k in 0..len / 2 {
                let a = start + k;
                let b = a + len / 2;
                let t_re = re[b] * cur_re - im[b] * cur_im;
                let t_im = re[b] * cur_im + im[b] * cur_re;
                re[b] = re[a] - t_re;
                im[b] = im[a] - t_im;
                re[a] += t_re;
                im[a] += t_im;
                let next_re = cur_re * w_re - cur_im * w_im;
                cur_im = cur_re * w_im + cur_im * w_re;
                cur_re = next_re;
            }
        }
        len <<= 1;
    }
}

/// Validates `chains` and returns the split sequences.
fn split_chains<'a>(chains: &[&'a [f64]]) -> Result<Vec<&'a [f64]>, BaselineError> {
    if chains.is_empty() {
        return Err(BaselineError::empty(
            "chains",
            "the diagnostics need at least one chain",
        ));
    }
    let n = chains[0].len();
    for (c, chain) in chains.iter().enumerate() {
        if chain.len() != n {
            return Err(BaselineError::shape(
                format!("chains[{c}]"),
                format!("{n} draws (the length of chains[0])"),
                format!("{} draws", chain.len()),
            ));
        }
        check_finite(&format!("chains[{c}]"), chain)?;
    }
    if n < MIN_DRAWS {
        return Err(BaselineError::shape(
            "chains[0]",
            format!("at least {MIN_DRAWS} draws per chain for split diagnostics"),
            format!("{n} draws"),
        ));
    }
    let h = n / 2;
    Ok(chains.iter().flat_map(|c| [&c[..h], &c[n - h..]]).collect())
}

/// Within-sequence variance `W` and pooled variance `V` of equally long sequences.
struct PooledStats {
    within: f64,
    var_plus: f64,
}

impl PooledStats {
    fn new(seqs: &[&[f64]]) -> Self {
        let m = seqs.len() as f64;
        let h = seqs[0].len() as f64;
        let means: Vec<f64> = seqs.iter().map(|s| s.iter().sum::<f64>() / h).collect();
        let within = seqs
            .iter()
            .zip(&means)
            .map(|(s, mu)| s.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / (h - 1.0))
            .sum::<f64>()
            / m;
        let grand = means.iter().sum::<f64>() / m;
        let between = if seqs.len() > 1 {
            h / (m - 1.0)
                * means
                    .iter()
                    .map(|mu| (mu - grand) * (mu - grand))
                    .sum::<f64>()
        } else {
            0.0
        };
        Self {
            within,
            var_plus: (h - 1.0) / h * within + between / h,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_autocovariance_matches_direct_sum() {
        let x: Vec<f64> = (0..37)
            .map(|i| ((i * 7919) % 101) as f64 / 10.0 - 3.0)
            .collect();
        let n = x.len();
        let mean = x.iter().sum::<f64>() / n as f64;
        let fast = autocovariance(&x);
        assert_eq!(fast.len(), n);
        for (t, c) in fast.iter().enumerate() {
            let direct: f64 = (0..n - t)
                .map(|i| (x[i] - mean) * (x[i + t] - mean))
                .sum::<f64>()
                / n as f64;
            assert!((c - direct).abs() < 1e-10, "lag {t}: {c} vs {direct}");
        }
    }

    #[test]
    fn splitting_drops_the_middle_draw_of_odd_chains() {
        let c = [1.0, 2.0, 3.0, 4.0, 5.0];
        let seqs = split_chains(&[&c]).unwrap();
        assert_eq!(seqs, vec![&c[..2], &c[3..]]);
    }
}
