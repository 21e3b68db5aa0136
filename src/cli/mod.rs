//! Command-line definitions (clap) and dispatch to the subcommands.

mod dump;
mod exit;
mod info;
mod json;
mod output;
mod repair;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub(crate) use exit::{CliError, ExitCode};

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  200  usage error: bad flags, arguments or event range
  201  an input file is missing or unreadable
  202  an input is not a wtrace trace
  203  the trace is damaged (truncated, bad checksum, corrupt); `wtrace repair` may help
  204  the trace needs a newer wtrace (newer format major version)
  207  an output could not be written (disk full, permissions)
  208  internal error (a bug: please report it)";

/// Record/replay trace debugger for WebAssembly on Wasmtime.
#[derive(Debug, Parser)]
#[command(name = "wtrace", version, about, after_help = EXIT_CODES_HELP, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe a trace: header, modules, event counts by kind, sizes.
    #[command(after_help = EXIT_CODES_HELP)]
    Info {
        /// The trace file.
        trace: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print events, one line each.
    #[command(after_help = EXIT_CODES_HELP)]
    Dump {
        /// The trace file.
        trace: PathBuf,
        /// Which events: `N`, `N-M` (inclusive), `N-` or `N-end`, `end` (the last); all by default.
        range: Option<String>,
        /// Print JSON lines (one object per event) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the index of a trace whose recording did not finish, in place and atomically.
    #[command(after_help = EXIT_CODES_HELP)]
    Repair {
        /// The trace file.
        trace: PathBuf,
    },
}

/// Runs the command line of this process and returns the exit code.
pub(crate) fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { ExitCode::Usage } else { ExitCode::Success };
            let _ = error.print();
            return code as i32;
        }
    };
    let result = std::panic::catch_unwind(|| run(cli));
    let error = match result {
        Ok(Ok(())) => return ExitCode::Success as i32,
        Ok(Err(error)) => error,
        Err(_) => CliError::internal("a panic occurred (see the message above)"),
    };
    if error.code != ExitCode::Quiet {
        output::report_error(&error);
    }
    error.code.process_code()
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Info { trace, json } => info::run(&trace, json),
        Command::Dump { trace, range, json } => dump::run(&trace, range.as_deref(), json),
        Command::Repair { trace } => repair::run(&trace),
    }
}

/// Opens a trace for reading, warning on stderr when it had to be recovered.
fn open_trace(path: &std::path::Path) -> Result<wtrace::Trace, CliError> {
    let trace = wtrace::Trace::open(path).map_err(|e| CliError::from_trace(&e, path))?;
    if let wtrace::Completeness::Recovered { index_problem, .. } = trace.completeness() {
        output::warn(&format!(
            "incomplete trace: {} events recovered ({index_problem}); `wtrace repair {}` rewrites its index",
            trace.len(),
            path.display()
        ));
    }
    Ok(trace)
}
