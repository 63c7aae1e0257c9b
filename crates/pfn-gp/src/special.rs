//! Special functions needed by the hyper-priors.

/// Lanczos coefficients for `g = 7`, 9 terms (absolute accuracy about 1e-15 for `x >= 0.5`).
const LANCZOS_G: f64 = 7.0;
const LANCZOS_COEF: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// Natural log of the gamma function for `x > 0` (Lanczos approximation, reflection below 0.5).
/// Returns NaN for `x <= 0` or NaN, and `+inf` for `x = +inf`.
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x), with sin(pi x) > 0 on (0, 0.5).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let z = x - 1.0;
    let mut a = LANCZOS_COEF[0];
    for (i, c) in LANCZOS_COEF.iter().enumerate().skip(1) {
        a += c / (z + i as f64);
    }
    let t = z + LANCZOS_G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (z + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::ln_gamma;

    #[test]
    fn matches_factorials_and_half_integers() {
        let mut fact = 1.0f64;
        for n in 1..30 {
            // Gamma(n) = (n-1)!
            let got = ln_gamma(n as f64);
            assert!(
                (got - fact.ln()).abs() <= 1e-12 * fact.ln().abs().max(1.0),
                "n = {n}"
            );
            fact *= n as f64;
        }
        let sqrt_pi_ln = 0.5 * std::f64::consts::PI.ln();
        assert!((ln_gamma(0.5) - sqrt_pi_ln).abs() < 1e-14);
        // Gamma(1.5) = sqrt(pi) / 2
        assert!((ln_gamma(1.5) - (sqrt_pi_ln - 2f64.ln())).abs() < 1e-14);
        // Gamma(x) ~ 1/x - euler_gamma for tiny x
        let x = 1e-4f64;
        let euler = 0.577_215_664_901_532_9;
        let approx = (1.0 / x - euler + 0.989_055_995_327_972_6 * x).ln();
        assert!((ln_gamma(x) - approx).abs() < 1e-8);
        assert!(ln_gamma(0.0).is_nan() && ln_gamma(-1.0).is_nan());
    }
}
