//! Command-line definitions (clap) and dispatch to the subcommands.

mod dump;
mod exit;
mod info;
mod json;
mod output;
mod record;
mod repair;
mod replay;
mod trace_dir;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub(crate) use exit::CliError;

/// Record/replay trace debugger for WebAssembly on Wasmtime.
#[derive(Debug, Parser)]
#[command(name = "wtrace", version, about, after_help = wtrace::exit_codes::help(), propagate_version = true)]
struct Cli {
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
    /// `~/.local/share/wtrace`) and `latest` names it.
    #[command(after_help = wtrace::exit_codes::help())]
    Record {
        /// Grant the guest access to a host directory, as GUEST (default: the same path).
        #[arg(long = "dir", value_name = "HOST[::GUEST]")]
        dirs: Vec<String>,
        /// Pass an environment variable; NAME alone passes wtrace's own value.
        #[arg(long = "env", value_name = "NAME[=VALUE]")]
        env: Vec<String>,
        /// Call this exported function (with ARGS as its arguments) instead of `_start`.
        #[arg(long, value_name = "FUNC")]
        invoke: Option<String>,
        /// Wasm features and limits, as `wasmtime run -W`: e.g. `threads=y,shared-memory=y`,
        /// `custom-page-sizes=y`, `max-wasm-stack=1048576`.
        #[arg(short = 'W', value_name = "OPT[=VAL,...]")]
        wasm: Vec<String>,
        /// Write the trace here instead of the trace directory.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Do not print the closing `wtrace: recorded ...` line.
        #[arg(short, long)]
        quiet: bool,
        /// The module: binary Wasm or WAT text.
        module: PathBuf,
        /// Arguments for the guest (a `--` right after MODULE is a separator).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Re-execute a trace with no host access: same output, exit status and trap.
    ///
    /// Exits with the recorded run's status (134 for a trap), so a replay is a drop-in re-run;
    /// a divergence, a refused trace and a failed --expect-* have codes of their own.
    #[command(after_help = wtrace::exit_codes::help())]
    Replay {
        /// The trace file, or `latest`.
        trace: PathBuf,
        /// Do not print the guest's stdout and stderr.
        #[arg(short, long)]
        quiet: bool,
        /// Fail (exit 206) unless the run traps with this code (e.g. `unreachable`,
        /// `memory-out-of-bounds`, `integer-division-by-zero`).
        #[arg(long, value_name = "CODE")]
        expect_trap: Option<String>,
        /// Fail (exit 206) unless the guest exits with this status.
        #[arg(long, value_name = "N")]
        expect_exit: Option<i32>,
        /// Fail (exit 206) unless the guest's stdout equals this file's bytes.
        #[arg(long, value_name = "FILE")]
        expect_stdout: Option<PathBuf>,
        /// Replay this module instead of the one embedded in the trace.
        #[arg(long, value_name = "PATH")]
        module: Option<PathBuf>,
        /// With --module: replay even if it is not the recorded module, to see where it diverges.
        #[arg(long, requires = "module")]
        allow_modified_module: bool,
    },
    /// Describe a trace: header, modules, event counts by kind, sizes.
    #[command(after_help = wtrace::exit_codes::help())]
    Info {
        /// The trace file.
        trace: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print events, one line each.
    #[command(after_help = wtrace::exit_codes::help())]
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
    #[command(after_help = wtrace::exit_codes::help())]
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
    match cli.command {
        Command::Record { dirs, env, invoke, wasm, output, quiet, module, args } => {
            record::run(record::RecordArgs {
                module,
                args,
                dirs,
                env,
                invoke,
                wasm_flags: wasm,
                output,
                quiet,
            })
        }
        Command::Replay {
            trace,
            quiet,
            expect_trap,
            expect_exit,
            expect_stdout,
            module,
            allow_modified_module,
        } => replay::run(&replay::ReplayArgs {
            trace,
            quiet,
            expect_trap,
            expect_exit,
            expect_stdout,
            module,
            allow_modified_module,
        }),
        Command::Info { trace, json } => info::run(&trace_dir::resolve(&trace)?, json).map(|()| 0),
        Command::Dump { trace, range, json } => {
            dump::run(&trace_dir::resolve(&trace)?, range.as_deref(), json).map(|()| 0)
        }
        Command::Repair { trace } => repair::run(&trace_dir::resolve(&trace)?).map(|()| 0),
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
