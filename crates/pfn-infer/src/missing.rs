//! Missing feature values: imputation with the context's column means (`pfn predict --impute
//! mean`, and `pfn reproduce tabular` on tables with empty cells).
//!
//! A missing value is a NaN in a row-major feature matrix. Only the context (training) rows
//! decide what replaces it, so a query's answer never depends on the other queries.

/// Replaces every NaN of `context_x` and `query_x` (row-major, `n_features` columns) by the mean
/// of its column over the context rows that have a value there, and returns the number of cells
/// replaced.
///
/// A column with no value in any context row carries no information the model could use: all its
/// cells, in the context and in the queries (observed query values included), become 0, so the
/// model sees a constant, uninformative feature. Only NaN marks a missing value; infinities are
/// left for the caller's validation. Panics if a matrix's length is not a multiple of
/// `n_features` (or `n_features` is 0 with a non-empty matrix).
pub fn impute_with_context_means(
    context_x: &mut [f64],
    query_x: &mut [f64],
    n_features: usize,
) -> usize {
    if context_x.is_empty() && query_x.is_empty() {
        return 0;
    }
    assert!(
        n_features > 0
            && context_x.len().is_multiple_of(n_features)
            && query_x.len().is_multiple_of(n_features),
        "impute_with_context_means: {} context and {} query values are not whole rows of {n_features} features",
        context_x.len(),
        query_x.len()
    );
    let mut sum = vec![0.0f64; n_features];
    let mut count = vec![0usize; n_features];
    for row in context_x.chunks_exact(n_features) {
        for (j, &v) in row.iter().enumerate() {
            if !v.is_nan() {
                sum[j] += v;
                count[j] += 1;
            }
        }
    }
    let fill: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| if c == 0 { 0.0 } else { s / c as f64 })
        .collect();
    let mut replaced = 0;
    for row in context_x
        .chunks_exact_mut(n_features)
        .chain(query_x.chunks_exact_mut(n_features))
    {
        for (j, v) in row.iter_mut().enumerate() {
            if v.is_nan() {
                *v = fill[j];
                replaced += 1;
            } else if count[j] == 0 {
                *v = 0.0;
            }
        }
    }
    replaced
}

/// Number of NaN cells of a matrix (the missing values [`impute_with_context_means`] replaces).
pub fn count_missing(x: &[f64]) -> usize {
    x.iter().filter(|v| v.is_nan()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_of_the_context_only() {
        let nan = f64::NAN;
        // Two features; context column means 2 and 10 (the NaN rows do not count).
        let mut ctx = vec![1.0, 10.0, 3.0, nan, nan, 10.0];
        let mut qry = vec![nan, nan, 100.0, 5.0];
        assert_eq!(count_missing(&ctx) + count_missing(&qry), 4);
        assert_eq!(impute_with_context_means(&mut ctx, &mut qry, 2), 4);
        assert_eq!(ctx, vec![1.0, 10.0, 3.0, 10.0, 2.0, 10.0]);
        assert_eq!(qry, vec![2.0, 10.0, 100.0, 5.0]);
    }

    #[test]
    fn a_column_missing_in_the_whole_context_becomes_zero() {
        let nan = f64::NAN;
        let mut ctx = vec![nan, 1.0, nan, 2.0];
        let mut qry = vec![7.0, nan];
        assert_eq!(impute_with_context_means(&mut ctx, &mut qry, 2), 3);
        assert_eq!(ctx, vec![0.0, 1.0, 0.0, 2.0]);
        assert_eq!(qry, vec![0.0, 1.5]);
        let (mut a, mut b) = (vec![1.0], vec![]);
        assert_eq!(impute_with_context_means(&mut a, &mut b, 1), 0);
        assert_eq!(impute_with_context_means(&mut [], &mut [], 0), 0);
    }
}
