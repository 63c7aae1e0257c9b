//! Input-point samplers shared by the priors.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::rng::PriorRng;

/// Fills `x` with i.i.d. `U[0, 1)` values (drawn in f64, stored as f32).
pub fn fill_uniform(rng: &mut PriorRng, x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = rng.random::<f64>() as f32;
    }
}

/// Fills `x` with i.i.d. standard-normal values (drawn in f64, stored as f32).
pub fn fill_standard_normal(rng: &mut PriorRng, x: &mut [f32]) {
    for v in x.iter_mut() {
        let z: f64 = StandardNormal.sample(rng);
        *v = z as f32;
    }
}

/// One standard-normal draw in f64.
#[inline]
pub(crate) fn std_normal(rng: &mut PriorRng) -> f64 {
    StandardNormal.sample(rng)
}
