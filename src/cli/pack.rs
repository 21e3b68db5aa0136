//! `wtrace pack`: make a trace self-contained, as `rr pack` does.

use std::io::Write;
use std::path::PathBuf;

use wtrace::traces::{PackOutcome, pack};

use super::{CliError, open_trace, output, trace_dir};

/// The `wtrace pack` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct PackArgs {
    /// The trace file, or `latest`.
    trace: PathBuf,
    /// Write the packed trace here instead of replacing TRACE.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: &PackArgs) -> Result<(), CliError> {
    let path = trace_dir::resolve(&args.trace)?;
    let trace = open_trace(&path)?;
    let target = args.output.clone().unwrap_or_else(|| path.clone());
    let outcome = pack(&trace, &target).map_err(|e| CliError::from_trace(&e, &path))?;
    let mut out = output::stdout();
    let written = match outcome {
        PackOutcome::AlreadyPacked => {
            writeln!(out, "{}: already self-contained; nothing to do", path.display())
        }
        PackOutcome::Packed { embedded, events } => {
            let names: Vec<&str> =
                embedded.iter().map(|&i| trace.header().run.modules[i].name.as_str()).collect();
            writeln!(
                out,
                "{}: self-contained ({events} events; embedded {})",
                target.display(),
                if names.is_empty() { "nothing new".to_string() } else { names.join(", ") }
            )
        }
    };
    written.map_err(|e| CliError::from_output(&e))?;
    output::finish(out)
}
