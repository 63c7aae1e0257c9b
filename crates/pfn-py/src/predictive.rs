//! `Predictive`: the posterior predictive distributions of m queries, vectorised.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pfn_distribution::DistributionError;
use pfn_infer::RegressionPredictive;
use pyo3::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error;

/// The predictive distributions of m queries (one bar distribution each, in the units of y).
#[pyclass(module = "pfn._pfn", name = "Predictive", frozen)]
pub struct Predictive {
    items: Vec<RegressionPredictive>,
}

impl Predictive {
    pub(crate) fn new(items: Vec<RegressionPredictive>) -> Self {
        Self { items }
    }

    /// One value per query.
    fn per_query<'py>(
        &self,
        py: Python<'py>,
        f: impl Fn(&RegressionPredictive) -> f64 + Send + Sync,
    ) -> Bound<'py, PyArray1<f64>> {
        let items = &self.items;
        let out: Vec<f64> = py.detach(|| items.iter().map(&f).collect());
        PyArray1::from_vec(py, out)
    }

    /// Query i evaluated at every value of row i of `values` (m × k).
    fn per_query_grid<'py>(
        &self,
        py: Python<'py>,
        what: &str,
        values: PyReadonlyArray2<'_, f64>,
        f: impl Fn(&RegressionPredictive, f64) -> Result<f64, DistributionError> + Send + Sync,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let view = values.as_array();
        let (m, k) = view.dim();
        if m != self.items.len() {
            return Err(error(format!(
                "{what} has {m} rows but there are {} queries",
                self.items.len()
            )));
        }
        let v: Vec<f64> = view.iter().copied().collect();
        let items = &self.items;
        let out = py
            .detach(|| {
                v.chunks(k.max(1))
                    .zip(items)
                    .flat_map(|(row, p)| row.iter().map(|&y| f(p, y)).collect::<Vec<_>>())
                    .collect::<Result<Vec<f64>, _>>()
            })
            .map_err(error)?;
        PyArray1::from_vec(py, out).reshape([m, k])
    }

    /// Query i evaluated at `values[i]` (length m).
    fn per_query_value<'py>(
        &self,
        py: Python<'py>,
        what: &str,
        values: PyReadonlyArray1<'_, f64>,
        f: impl Fn(&RegressionPredictive, f64) -> Result<f64, DistributionError> + Send + Sync,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let v: Vec<f64> = values.as_array().iter().copied().collect();
        if v.len() != self.items.len() {
            return Err(error(format!(
                "{what} has {} values but there are {} queries",
                v.len(),
                self.items.len()
            )));
        }
        let items = &self.items;
        let out = py
            .detach(|| {
                items
                    .iter()
                    .zip(&v)
                    .map(|(p, &x)| f(p, x))
                    .collect::<Result<Vec<f64>, _>>()
            })
            .map_err(error)?;
        Ok(PyArray1::from_vec(py, out))
    }
}

#[pymethods]
impl Predictive {
    fn __len__(&self) -> usize {
        self.items.len()
    }

    /// Predictive means, (m,).
    fn mean<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.per_query(py, RegressionPredictive::mean)
    }

    /// Medians, (m,).
    fn median<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.per_query(py, RegressionPredictive::median)
    }

    /// Modes, (m,).
    fn mode<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.per_query(py, RegressionPredictive::mode)
    }

    /// Variances, (m,).
    fn variance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.per_query(py, RegressionPredictive::variance)
    }

    /// Standard deviations, (m,).
    fn std<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.per_query(py, RegressionPredictive::std)
    }

    /// Differential entropies in nats, (m,).
    fn entropy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.per_query(py, RegressionPredictive::entropy)
    }

    /// Densities: query i at every value of row i of `y` (m × k).
    fn pdf<'py>(
        &self,
        py: Python<'py>,
        y: PyReadonlyArray2<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_query_grid(py, "y", y, |p, v| Ok(p.pdf(v)))
    }

    /// Log densities (m × k).
    fn logpdf<'py>(
        &self,
        py: Python<'py>,
        y: PyReadonlyArray2<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_query_grid(py, "y", y, |p, v| Ok(p.log_pdf(v)))
    }

    /// Cumulative probabilities (m × k).
    fn cdf<'py>(
        &self,
        py: Python<'py>,
        y: PyReadonlyArray2<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_query_grid(py, "y", y, |p, v| Ok(p.cdf(v)))
    }

    /// Quantiles: query i at every probability of row i of `p` (m × k, values in [0, 1]).
    fn icdf<'py>(
        &self,
        py: Python<'py>,
        p: PyReadonlyArray2<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_query_grid(py, "p", p, RegressionPredictive::quantile)
    }

    /// Expected improvement over `best[i]` (maximisation), (m,).
    fn expected_improvement<'py>(
        &self,
        py: Python<'py>,
        best: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.per_query_value(py, "best", best, RegressionPredictive::expected_improvement)
    }

    /// Probability of improvement over `best[i]`, (m,).
    fn probability_of_improvement<'py>(
        &self,
        py: Python<'py>,
        best: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.per_query_value(
            py,
            "best",
            best,
            RegressionPredictive::probability_of_improvement,
        )
    }

    /// Upper confidence bounds `icdf(1 − rest_probability[i])`, (m,).
    fn upper_confidence_bound<'py>(
        &self,
        py: Python<'py>,
        rest_probability: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.per_query_value(
            py,
            "rest_probability",
            rest_probability,
            RegressionPredictive::upper_confidence_bound,
        )
    }

    /// `n` seeded draws per query, (m, n).
    #[pyo3(signature = (n, seed = 0))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let items = &self.items;
        let out: Vec<f64> = py.detach(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            items.iter().flat_map(|p| p.sample_n(&mut rng, n)).collect()
        });
        PyArray1::from_vec(py, out).reshape([items.len(), n])
    }

    /// Bucket borders in the units of y, (B+1,) (empty without queries).
    fn borders<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_vec(
            py,
            self.items
                .first()
                .map(RegressionPredictive::borders)
                .unwrap_or_default(),
        )
    }

    /// Bucket probabilities, (m, B).
    fn probabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let b = self
            .items
            .first()
            .map_or(0, |p| p.normalised().probabilities().len());
        let out: Vec<f64> = self
            .items
            .iter()
            .flat_map(|p| p.normalised().probabilities().iter().copied())
            .collect();
        PyArray1::from_vec(py, out).reshape([self.items.len(), b])
    }

    fn __repr__(&self) -> String {
        format!("Predictive({} queries)", self.items.len())
    }
}
