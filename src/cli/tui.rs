//! `wtrace tui`: step through a recording in the terminal.

use std::path::PathBuf;

use wtrace::exit_codes;
use wtrace::tui::{TuiError, TuiOptions};

use super::{CliError, open_trace, trace_dir};

/// The `wtrace tui` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct TuiArgs {
    /// The trace file, or `latest` (the default, as for `rr replay`).
    #[arg(default_value = "latest")]
    trace: PathBuf,
}

pub(crate) fn run(args: &TuiArgs) -> Result<(), CliError> {
    let path = trace_dir::resolve(&args.trace)?;
    let trace = open_trace(&path)?;
    let name =
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    wtrace::tui::run(trace, name, TuiOptions { no_color }).map_err(|error| match error {
        TuiError::NotATerminal(_) => CliError::new(
            exit_codes::USAGE,
            error.to_string(),
            Some(format!("run it in a terminal, or print the events with `wtrace dump {}`", path.display())),
        ),
        _ => CliError::new(exit_codes::OUTPUT_FAILED, error.to_string(), None),
    })
}
