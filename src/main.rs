//! The `wtrace` command: parses the command line, runs one subcommand, and turns any error into
//! one line on stderr and a documented exit code.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
