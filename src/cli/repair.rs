//! `wtrace repair`: rebuild a missing or damaged index in place.

use std::io::Write;
use std::path::PathBuf;

use wtrace::traces::{RepairOutcome, repair};

use super::{CliError, output, trace_dir};

/// The `wtrace repair` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct RepairArgs {
    /// The trace file, or `latest`.
    trace: PathBuf,
}

pub(crate) fn run(args: &RepairArgs) -> Result<(), CliError> {
    let path = &trace_dir::resolve(&args.trace)?;
    let outcome = repair(path).map_err(|e| CliError::from_trace(&e, path))?;
    let mut out = output::stdout();
    let written = match outcome {
        RepairOutcome::AlreadyComplete { events } => {
            writeln!(out, "{}: already complete ({events} events); nothing to do", path.display())
        }
        RepairOutcome::Repaired { events, dropped_bytes, index_problem } => writeln!(
            out,
            "{}: repaired ({index_problem}); {events} events kept, {dropped_bytes} trailing bytes dropped",
            path.display()
        ),
    };
    written.map_err(|e| CliError::from_output(&e))?;
    output::finish(out)
}
