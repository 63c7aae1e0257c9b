//! Inference-side helpers for PFN models that do not need the model itself:
//!
//! * [`table`]: numeric CSV input for `pfn predict --train train.csv --test test.csv`, with
//!   one-line errors naming the file, line, data row and column;
//! * [`normalize`]: mapping user data into the model's range using the context rows, and the
//!   inverse transform of predictions (locations, scales, densities and NLL).
#![warn(missing_docs)]

pub mod normalize;
pub mod table;

pub use normalize::{FeatureScaler, NormaliseError, TargetScaler};
pub use table::{
    load_predict_data, match_train_test, parse_csv, read_csv, PredictData, Table, TableError,
};
