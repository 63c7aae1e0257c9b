//! The PFN model file and the rules it fixes for every user of a model.
//!
//! * [`normalise`]: how data are mapped into a model's range with the statistics of the context
//!   rows, and predictions mapped back. Training applies the same rules to prior data (so a model
//!   is trained the way it is used) and inference applies them to user data; this module is the
//!   one implementation both call.
#![warn(missing_docs)]

pub mod normalise;

pub use normalise::{FeatureScaler, NormaliseError, TargetScaler};
