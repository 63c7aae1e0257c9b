//! The `pfn` command-line tool; all logic lives in the `pfn-cli` crate.

fn main() -> std::process::ExitCode {
    pfn_cli::main()
}
