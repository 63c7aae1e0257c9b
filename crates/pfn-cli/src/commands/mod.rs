//! One module per subcommand.

pub mod sample_prior;
