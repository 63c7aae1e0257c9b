//! Numerically stable logistic helpers shared by the BNN likelihood and the noise transform.

/// `log sigmoid(z) = -softplus(-z)`, stable for large `|z|`.
#[inline]
pub(crate) fn log_sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        -(-z).exp().ln_1p()
    } else {
        z - z.exp().ln_1p()
    }
}

/// `sigmoid(z) = 1 / (1 + e^-z)`, stable for large `|z|`.
#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let t = z.exp();
        t / (1.0 + t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_at_extremes_and_consistent() {
        for z in [-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0] {
            let s = sigmoid(z);
            assert!((0.0..=1.0).contains(&s));
            assert!((sigmoid(z) + sigmoid(-z) - 1.0).abs() < 1e-15);
            assert!(log_sigmoid(z).is_finite());
            if z.abs() < 30.0 {
                assert!((log_sigmoid(z) - s.ln()).abs() < 1e-13);
            }
        }
        assert!((log_sigmoid(-800.0) + 800.0).abs() < 1e-12);
    }
}
