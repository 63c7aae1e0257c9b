//! Inference with trained PFN models:
//!
//! * [`predictor`]: the inference API. A [`Predictor`] loads a model artifact; given a dataset's
//!   context `(x, y)` and query inputs it returns a [`PosteriorPredictive`] per query, applying
//!   (and undoing) the normalisation the model was trained with;
//! * [`batch`]: many datasets (any context sizes) answered in batched forward passes
//!   ([`Predictor::predict_many`]);
//! * [`predictive`]: the per-query predictive distribution (mean, median, mode, std, quantiles,
//!   intervals, pdf, cdf, samples; or class probabilities) in original units;
//! * [`table`]: CSV input for `pfn predict --train train.csv --test test.csv`: numeric feature
//!   columns, a numeric target or class labels, one-line errors naming the file, line, data row
//!   and column;
//! * [`ensemble`]: class probabilities averaged over feature orders and class renamings;
//! * [`calibration`]: class probabilities tempered by a temperature fitted on the context by
//!   cross-validation, which also chooses the input view;
//! * [`principal_components`]: the leading principal components of a context's columns, an input
//!   view for wide tables with correlated columns;
//! * [`labels`]: class labels (integers or words) of a classification table and their order;
//! * [`missing`]: missing feature values imputed with the context's column means;
//! * [`model_search`]: where a model name is looked up (`$PFN_MODELS`, `./models`, beside the
//!   executable, and extra directories such as the Python package's);
//! * [`model_catalogue`]: what the model files of a directory are (`pfn models`, `pfn.models()`);
//! * [`normalise`] (re-exported from `pfn-artifact`, shared with training): mapping user data into
//!   the model's range using the context rows, and the inverse transform of predictions.
#![warn(missing_docs)]

pub mod batch;
pub mod calibration;
pub mod ensemble;
pub mod labels;
pub mod missing;
pub mod model_catalogue;
pub mod model_search;
pub mod predictive;
pub mod predictor;
pub mod principal_components;
pub mod table;

pub use batch::{Task, DEFAULT_DATASET_BATCH, MAX_PASS_TOKENS};
pub use calibration::{ContextCalibration, Tempered};
pub use ensemble::{ClassEnsemble, ClassTask};
pub use labels::{ClassLabels, LabelError};
pub use missing::{count_missing, impute_with_context_means};
pub use model_catalogue::{list_models, summarise, CatalogueError, Listing, ModelSummary};
pub use model_search::{ModelSearch, ModelSearchError};
pub use pfn_artifact::normalise;
pub use pfn_artifact::{FeatureScaler, NormaliseError, TargetScaler};
pub use pfn_model::Precision;
pub use predictive::{ClassPredictive, PosteriorPredictive, RegressionPredictive};
pub use predictor::{Context, PredictError, Predictor, DEFAULT_QUERY_BATCH};
pub use principal_components::{InputView, PrincipalComponents, ViewData};
pub use table::{
    load_predict_data, load_predict_data_with, match_text_tables, match_train_test, parse_csv,
    parse_csv_text, read_csv, read_csv_text, PredictData, ReadOptions, Table, TableError,
    TargetKind, TextTable,
};
