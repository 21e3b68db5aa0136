//! `wtrace repair`: rebuild a missing or damaged index, in place or into a copy.

use std::io::Write;
use std::path::PathBuf;

use wtrace::traces::{RepairOutcome, repair};

use super::{CliError, output, trace_dir};

/// The `wtrace repair` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct RepairArgs {
    /// The trace file, or `latest` (a symlink's target is repaired).
    trace: PathBuf,
    /// Write the repaired trace here and leave the original as it is.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: &RepairArgs) -> Result<(), CliError> {
    let path = &trace_dir::resolve(&args.trace)?;
    let outcome = repair(path, args.output.as_deref()).map_err(|e| CliError::from_trace(&e, path))?;
    let mut out = output::stdout();
    let written = match outcome {
        RepairOutcome::AlreadyComplete { events } => match &args.output {
            Some(copy) => writeln!(
                out,
                "{}: already complete ({events} events); copied to {}",
                path.display(),
                copy.display()
            ),
            None => writeln!(out, "{}: already complete ({events} events); nothing to do", path.display()),
        },
        RepairOutcome::Repaired { events, dropped_bytes, index_problem } => writeln!(
            out,
            "{}: repaired ({index_problem}); {events} events kept, {dropped_bytes} trailing bytes dropped{}",
            path.display(),
            args.output.as_ref().map_or_else(String::new, |copy| format!("; written to {}", copy.display()))
        ),
    };
    written.map_err(|e| CliError::from_output(&e))?;
    output::finish(out)
}
