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

pub(crate) use exit::{CliError, ExitCode};

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  0-125  `record` and `replay`: the guest's own exit status
  134  `record` and `replay`: the guest trapped (as `wasmtime run` exits on a trap)
  200  usage error: bad flags, arguments or event range
  201  an input file is missing or unreadable
  202  an input is not a wtrace trace
  203  the trace is damaged (truncated, bad checksum, corrupt); `wtrace repair` may help
  204  the trace needs a newer wtrace (newer format major version)
  205  `replay`: the run diverged from the recording
  206  `replay`: an --expect-* check failed
  207  an output could not be written (disk full, permissions)
  208  internal error (a bug: please report it)
  209  the module cannot be run: not valid Wasm/WAT, an unknown import, no such --invoke
       function, a Wasm feature switched off (-W)
  210  `replay`: the trace was refused (recorded with another module, engine config or Wasmtime)";

/// Record/replay trace debugger for WebAssembly on Wasmtime.
#[derive(Debug, Parser)]
#[command(name = "wtrace", version, about, after_help = EXIT_CODES_HELP, propagate_version = true)]
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
    #[command(after_help = EXIT_CODES_HELP)]
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
    #[command(after_help = EXIT_CODES_HELP)]
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
        Ok(Ok(status)) => return status,
        Ok(Err(error)) => error,
        Err(_) => CliError::internal("a panic occurred (see the message above)"),
    };
    if error.code != ExitCode::Quiet {
        output::report_error(&error);
    }
    error.code.process_code()
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
