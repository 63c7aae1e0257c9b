//! The error type of this crate.

/// Errors returned for invalid borders, samples, logits, targets or probabilities.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistributionError {
    /// A border constructor was asked for zero buckets.
    #[error("the number of buckets must be at least 1, got 0")]
    ZeroBuckets,
    /// Fewer than two borders were given, so there is not a single bucket.
    #[error("at least 2 borders are needed (1 bucket), got {got}")]
    TooFewBorders {
        /// Number of borders given.
        got: usize,
    },
    /// The full-support variant needs a left and a right tail bucket.
    #[error(
        "the full-support variant needs at least 2 buckets (a left and a right tail), got {got}"
    )]
    TooFewBucketsForTails {
        /// Number of buckets given.
        got: usize,
    },
    /// A border is NaN or infinite.
    #[error("border {index} is not finite: {value}")]
    NonFiniteBorder {
        /// Index into the borders.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The borders decrease somewhere.
    #[error("borders must be increasing, but borders[{index}] = {value} < borders[{}] = {previous}", index - 1)]
    UnsortedBorders {
        /// Index of the first border smaller than its predecessor.
        index: usize,
        /// `borders[index - 1]`.
        previous: f64,
        /// `borders[index]`.
        value: f64,
    },
    /// Two consecutive borders are equal, so a bucket has zero width.
    #[error(
        "bucket {index} has zero width (borders[{index}] = borders[{}] = {border}); borders must be \
         strictly increasing (the sample-based border constructors remove duplicates)",
        index + 1
    )]
    ZeroWidthBucket {
        /// Index of the bucket.
        index: usize,
        /// The repeated border value.
        border: f64,
    },
    /// A prior sample is infinite (NaN samples are dropped, infinite ones are rejected).
    #[error("sample {index} is infinite: {value}")]
    NonFiniteSample {
        /// Index into the samples.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Not enough (non-NaN) samples to estimate the borders.
    #[error("need more non-NaN samples than buckets: got {samples} samples for {buckets} buckets")]
    TooFewSamples {
        /// Number of non-NaN samples.
        samples: usize,
        /// Number of buckets requested.
        buckets: usize,
    },
    /// All samples are equal, so no bucket of positive width can be formed.
    #[error("all samples are equal to {value}; cannot form a bucket of positive width")]
    DegenerateSamples {
        /// The common value.
        value: f64,
    },
    /// A range is not finite or not increasing.
    #[error("invalid range [{lower}, {upper}]: bounds must be finite with lower < upper")]
    InvalidRange {
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// A user range does not contain all samples.
    #[error("range [{lower}, {upper}] does not contain all samples (sample min {min}, max {max})")]
    RangeExcludesSamples {
        /// Lower bound of the range.
        lower: f64,
        /// Upper bound of the range.
        upper: f64,
        /// Smallest sample.
        min: f64,
        /// Largest sample.
        max: f64,
    },
    /// A row of logits has the wrong length.
    #[error("logits row has length {actual}, expected {expected} (one logit per bucket)")]
    LogitLength {
        /// Number of buckets/classes.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// A logit is NaN or `+inf` (or all logits are `-inf`).
    #[error("logit {index} is invalid: {value} (logits must not be NaN or +inf, and at least one must be finite)")]
    InvalidLogit {
        /// Index of the logit in its row.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// Buffers passed to a batched function have inconsistent lengths.
    #[error("argument `{argument}` has length {actual}, expected {expected}")]
    ShapeMismatch {
        /// Name of the argument.
        argument: &'static str,
        /// Expected length.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// A target lies outside the support of a bounded distribution.
    #[error(
        "target {value} lies outside the support [{lower}, {upper}] of the bounded distribution"
    )]
    TargetOutsideSupport {
        /// The target.
        value: f64,
        /// Smallest border.
        lower: f64,
        /// Largest border.
        upper: f64,
    },
    /// A target is infinite (NaN targets are ignored by the losses, infinite ones are rejected).
    #[error("target is infinite: {value}")]
    InfiniteTarget {
        /// The target.
        value: f64,
    },
    /// A binary-classification target lies outside `[0, 1]`.
    #[error("binary target {value} must lie in [0, 1] (or be NaN to be ignored)")]
    InvalidBinaryTarget {
        /// The target.
        value: f32,
    },
    /// A multi-class target is not a class index in `0..num_classes` (nor -100 / NaN = ignore).
    #[error(
        "class target {value} is not an integer in 0..{num_classes} (nor -100 or NaN to ignore)"
    )]
    InvalidClassTarget {
        /// The target.
        value: f32,
        /// Number of classes.
        num_classes: usize,
    },
    /// A probability or other parameter is outside its domain.
    #[error("argument `{argument}` = {value} is outside its domain {domain}")]
    InvalidParameter {
        /// Name of the argument.
        argument: &'static str,
        /// Value given.
        value: f64,
        /// Allowed values, in words.
        domain: &'static str,
    },
    /// Arguments that do not fit together (lengths, label range), described in words.
    #[error("argument `{argument}`: {reason}")]
    InvalidArgument {
        /// Name of the argument.
        argument: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An error in one row of a batched call.
    #[error("row {row}: {source}")]
    InRow {
        /// Row index.
        row: usize,
        /// The error of that row.
        #[source]
        source: Box<DistributionError>,
    },
}

impl DistributionError {
    /// Wraps `self` with the index of the row it occurred in.
    pub(crate) fn in_row(self, row: usize) -> Self {
        DistributionError::InRow {
            row,
            source: Box::new(self),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DistributionError>;
