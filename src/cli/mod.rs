//! Command-line definitions (clap) and dispatch to the subcommands. Each subcommand's module
//! defines its arguments; flags several subcommands take are defined once, in `flags`.

mod completions;
mod debug;
mod dump;
mod exit;
mod flags;
mod gc;
mod info;
mod json;
mod output;
mod pack;
mod record;
mod repair;
mod replay;
mod trace_dir;
mod tui;

use clap::{CommandFactory, Parser, Subcommand};

pub(crate) use exit::CliError;

/// Record/replay trace debugger for WebAssembly on Wasmtime.
#[derive(Debug, Parser)]
#[command(name = "wtrace", version, about, after_help = wtrace::exit_codes::help(), propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a module for real (WASI preview 1) and record every host call and trap.
    ///
    /// Flags follow `wasmtime run`. The guest's stdin, stdout and stderr pass through; wtrace
    /// exits with the guest's exit status, or 134 on a trap. Without -o, the trace goes to the
    /// trace directory (`$WTRACE_DIR`, else `$XDG_DATA_HOME/wtrace`, else
    /// `~/.local/share/wtrace`), which keeps each module once in its `modules/` store, and
    /// `latest` names it.
    #[command(after_help = wtrace::exit_codes::help())]
    Record(record::RecordArgs),
    /// Re-execute a trace with no host access: same output, exit status and trap.
    ///
    /// Exits with the recorded run's status (134 for a trap), so a replay is a drop-in re-run;
    /// a divergence, a refused trace and a failed --expect-* have codes of their own.
    #[command(after_help = wtrace::exit_codes::help())]
    Replay(replay::ReplayArgs),
    /// Step through a recording in the terminal: events, code, frames, registers, memory.
    ///
    /// With no TRACE, the latest recording. `?` in the UI lists the keys.
    #[command(after_help = wtrace::exit_codes::help())]
    Tui(tui::TuiArgs),
    /// Describe a trace: header, modules, event counts by kind, sizes.
    #[command(after_help = wtrace::exit_codes::help())]
    Info(info::InfoArgs),
    /// Print events, one line each.
    #[command(after_help = wtrace::exit_codes::help())]
    Dump(dump::DumpArgs),
    /// Rebuild the index of a trace whose recording did not finish, in place and atomically.
    #[command(after_help = wtrace::exit_codes::help())]
    Repair(repair::RepairArgs),
    /// Make a trace self-contained: embed the modules it references from its trace directory.
    #[command(after_help = wtrace::exit_codes::help())]
    Pack(pack::PackArgs),
    /// Remove old traces from the trace directory, and the modules no trace references.
    #[command(after_help = wtrace::exit_codes::help())]
    Gc(gc::GcArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print a manual page (roff), e.g. `wtrace man > ~/.local/share/man/man1/wtrace.1`.
    Man(completions::ManArgs),
}

/// Runs the command line of this process and returns the exit code.
pub(crate) fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code =
                if error.use_stderr() { wtrace::exit_codes::USAGE } else { wtrace::exit_codes::SUCCESS };
            let _ = error.print();
            return code;
        }
    };
    let result = std::panic::catch_unwind(|| run(cli));
    let error = match result {
        Ok(Ok(status)) => return status,
        Ok(Err(error)) => error,
        Err(_) => CliError::internal("a panic occurred (see the message above)"),
    };
    if !error.silent {
        output::report_error(&error);
    }
    error.code
}

/// Runs one subcommand; returns the process exit status.
fn run(cli: Cli) -> Result<i32, CliError> {
    let done = |result: Result<(), CliError>| result.map(|()| wtrace::exit_codes::SUCCESS);
    match cli.command {
        Command::Record(args) => record::run(args),
        Command::Replay(args) => replay::run(&args),
        Command::Tui(args) => done(tui::run(&args)),
        Command::Info(args) => done(info::run(&args)),
        Command::Dump(args) => done(dump::run(&args)),
        Command::Repair(args) => done(repair::run(&args)),
        Command::Pack(args) => done(pack::run(&args)),
        Command::Gc(args) => done(gc::run(&args)),
        Command::Completions(args) => done(completions::run(&args, Cli::command())),
        Command::Man(args) => done(completions::man(&args, Cli::command())),
    }
}

/// Opens a trace for reading, warning on stderr when it had to be recovered.
fn open_trace(path: &std::path::Path) -> Result<wtrace::Trace, CliError> {
    let trace = wtrace::Trace::open(path).map_err(|e| CliError::from_trace(&e, path))?;
    if let wtrace::Completeness::Recovered { index_problem, stopped_at, scan_stop } = trace.completeness() {
        // Why the scan stopped short of the file's end (a damaged frame), when it did.
        let stop = scan_stop
            .as_ref()
            .map_or_else(String::new, |why| format!("; stopped at byte {stopped_at}: {why}"));
        output::warn(&format!(
            "incomplete trace: {} events recovered ({index_problem}{stop}); `wtrace repair {}` rewrites its index",
            trace.len(),
            path.display()
        ));
    }
    Ok(trace)
}
