//! `wtrace completions` and `wtrace man`: shell completion scripts and the manual page,
//! generated from the same clap definitions as the command line itself.

use super::{CliError, output};

/// The `wtrace completions` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

pub(crate) fn run(args: &CompletionsArgs, mut command: clap::Command) -> Result<(), CliError> {
    let mut out = output::stdout();
    clap_complete::generate(args.shell, &mut command, "wtrace", &mut out);
    output::finish(out)
}

/// The `wtrace man` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// The subcommand whose page to print (`wtrace-record(1)`); `wtrace(1)` by default.
    subcommand: Option<String>,
}

/// Prints a manual page, in roff.
pub(crate) fn man(args: &ManArgs, command: clap::Command) -> Result<(), CliError> {
    let page = match &args.subcommand {
        None => command,
        Some(name) => command
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| CliError::usage(format!("`{name}` is not a wtrace subcommand")))?
            .name(format!("wtrace-{name}")),
    };
    let mut out = output::stdout();
    clap_mangen::Man::new(page).render(&mut out).map_err(|e| CliError::from_output(&e))?;
    output::finish(out)
}
