//! `wtrace record`: run a module for real, as `wasmtime run` would, and write its trace.

use std::path::{Path, PathBuf};

use wtrace::exit_codes;
use wtrace::recorder::{self, Dir, Output, RecordError, RecordOptions, Stdin};
use wtrace::traces::{ModuleStore, StopCause};
use wtrace::{EngineSettings, RunEnd};

use super::flags::CompileFlags;
use super::{CliError, output, trace_dir};

/// The `wtrace record` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct RecordArgs {
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
    /// Write the trace here instead of the trace directory (self-contained: the module is
    /// embedded).
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Embed the module in the trace even in the trace directory.
    #[arg(long, conflicts_with = "no_embed")]
    embed: bool,
    /// With -o: keep the module in a `modules/` store beside PATH instead of embedding it.
    #[arg(long, requires = "output")]
    no_embed: bool,
    #[command(flatten)]
    compile: CompileFlags,
    /// Do not print the closing `wtrace: recorded ...` line or the compiling status.
    #[arg(short, long)]
    quiet: bool,
    /// The module: binary Wasm or WAT text.
    module: PathBuf,
    /// Arguments for the guest (a `--` right after MODULE is a separator).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs `wtrace record`; returns the process exit status (the guest's).
pub(crate) fn run(args: RecordArgs) -> Result<i32, CliError> {
    let mut engine = EngineSettings::default();
    for flag in &args.wasm {
        engine.apply_flag(flag).map_err(|e| CliError::usage(e.to_string()))?;
    }
    let dirs = args.dirs.iter().map(|d| parse_dir(d)).collect::<Result<Vec<_>, _>>()?;
    let env = args.env.iter().map(|e| parse_env(e)).collect::<Result<Vec<_>, _>>()?;
    let module = std::fs::read(&args.module).map_err(|e| {
        CliError::new(
            exit_codes::INPUT_MISSING,
            format!("cannot read module {}: {e}", args.module.display()),
            Some("check the path".to_string()),
        )
    })?;
    let module_name =
        args.module.file_name().map_or_else(|| "module".into(), |n| n.to_string_lossy().into_owned());
    let (path, in_trace_dir) = match &args.output {
        Some(path) => (path.clone(), false),
        None => (trace_dir::new_trace(&args.module)?, true),
    };
    // Traces in the trace directory share its module store; `-o` traces are self-contained.
    let embed = args.embed || (!in_trace_dir && !args.no_embed);
    let module_store = (!embed).then(|| ModuleStore::beside(&path).dir().to_path_buf());
    // A guest argument `--` after MODULE is a separator, as for `wasmtime run`.
    let mut guest_args = args.args;
    if guest_args.first().is_some_and(|a| a == "--") {
        guest_args.remove(0);
    }
    let options = RecordOptions {
        module_name,
        module,
        args: guest_args,
        env,
        dirs,
        invoke: args.invoke,
        engine,
        stdin: Stdin::Inherit,
        output: Output::Inherit,
        command_line: command_line(),
        audit_writes: false,
        host_funcs: Vec::new(),
        compile: args.compile.options(args.quiet),
        module_store,
        interrupt: stop_on_signals()?,
    };
    // `latest` names this trace from the start, so that it still does if the run is killed.
    if in_trace_dir {
        trace_dir::set_latest(&path);
    }
    let recorded = recorder::record(&options, &path).map_err(|e| {
        // What reached the file stays; a trace directory keeps no empty placeholder.
        let empty = std::fs::metadata(&path).is_ok_and(|m| m.len() == 0);
        if in_trace_dir && (empty || !matches!(e, RecordError::Trace { .. })) {
            let _ = std::fs::remove_file(&path);
        }
        record_error(&e, &args.module)
    })?;
    if let Some(report) = &recorded.report {
        output::print_stderr(report);
    }
    if let RunEnd::Returned(values) = &recorded.end {
        let mut out = String::new();
        for value in values {
            out.push_str(&value.to_string());
            out.push('\n');
        }
        output::print_stdout(&out)?;
    }
    if let RunEnd::Interrupted(interruption) = &recorded.end {
        if let StopCause::Failed(reason) = &interruption.cause {
            return Err(CliError::new(
                exit_codes::OUTPUT_FAILED,
                format!(
                    "the recording stopped early: {reason}; {} keeps the {} events before it",
                    path.display(),
                    recorded.events.saturating_sub(1)
                ),
                None,
            ));
        }
        output::note(&format!(
            "interrupted by {}: the trace holds every event before it and where the guest was",
            interruption.cause_name()
        ));
    }
    if !args.quiet {
        output::note(&format!(
            "recorded {} events to {} ({})",
            recorded.events,
            path.display(),
            recorded.end.describe()
        ));
    }
    Ok(recorded.end.exit_status())
}

/// The command line as the shell passed it, for the trace header, with the values of `--env`
/// left out (the guest's `environ_get` call holds those it read). Bytes that are not UTF-8
/// show as U+FFFD.
fn command_line() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut value_next = false;
    for arg in std::env::args_os().map(|arg| arg.to_string_lossy().into_owned()) {
        let name_only = |text: &str| text.split_once('=').map_or(text, |(name, _)| name).to_string();
        if value_next {
            out.push(name_only(&arg));
            value_next = false;
        } else if arg == "--env" && !out.iter().any(|a| a == "--") {
            out.push(arg);
            value_next = true;
        } else if let Some(setting) = arg.strip_prefix("--env=") {
            out.push(format!("--env={}", name_only(setting)));
        } else {
            out.push(arg);
        }
    }
    out
}

/// An interrupt that SIGINT, SIGTERM and SIGHUP raise: the guest stops and the trace is
/// finished with an `interrupted` event. A second signal exits at once, with the shell's status
/// for it (128 + N); the events written so far stay recoverable.
fn stop_on_signals() -> Result<recorder::Interrupt, CliError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let interrupt = recorder::Interrupt::new();
    let again = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, again.clone())
                .and_then(|_| signal_hook::flag::register(signal, again.clone()))
                .and_then(|_| signal_hook::flag::register_usize(signal, interrupt.cell(), signal as usize));
        registered.map_err(|e| CliError::internal(format!("cannot handle signal {signal}: {e}")))?;
    }
    Ok(interrupt)
}

/// `HOST[::GUEST]`; the guest path defaults to the host path, as in `wasmtime run`.
fn parse_dir(text: &str) -> Result<Dir, CliError> {
    let (host, guest) = text.split_once("::").unwrap_or((text, text));
    if host.is_empty() || guest.is_empty() {
        return Err(CliError::usage(format!("--dir {text}: expected HOST[::GUEST]")));
    }
    let host = PathBuf::from(host);
    if !host.is_dir() {
        return Err(CliError::new(
            exit_codes::INPUT_MISSING,
            format!("--dir {}: no such directory", host.display()),
            Some("create it or fix the path".to_string()),
        ));
    }
    Ok(Dir { host, guest: guest.to_string() })
}

/// `NAME=VALUE`, or `NAME` to pass the variable on from wtrace's own environment.
fn parse_env(text: &str) -> Result<(String, String), CliError> {
    match text.split_once('=') {
        Some(("", _)) => Err(CliError::usage(format!("--env {text}: empty name"))),
        Some((name, value)) => Ok((name.to_string(), value.to_string())),
        None => match std::env::var(text) {
            Ok(value) => Ok((text.to_string(), value)),
            Err(std::env::VarError::NotUnicode(_)) => Err(CliError::usage(format!(
                "--env {text}: its value in wtrace's environment is not UTF-8, which WASI cannot pass; use {text}=VALUE"
            ))),
            Err(std::env::VarError::NotPresent) => Err(CliError::usage(format!(
                "--env {text}: not set in wtrace's environment; use {text}=VALUE"
            ))),
        },
    }
}

fn record_error(error: &RecordError, module: &Path) -> CliError {
    match error {
        RecordError::Settings(setting) => CliError::usage(setting.to_string()),
        RecordError::Setup(setup) => CliError::from_setup(setup, &module.display().to_string(), "record"),
        RecordError::Dir { .. } => CliError::new(exit_codes::INPUT_MISSING, error.to_string(), None),
        RecordError::Trace { source, path } => CliError::new(
            if source.is_damage() { exit_codes::INTERNAL } else { exit_codes::OUTPUT_FAILED },
            error.to_string(),
            Some(if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
                format!(
                    "the events that reached {} stay readable; check free space and permissions",
                    path.display()
                )
            } else {
                "check free space and permissions, or pass -o PATH".to_string()
            }),
        ),
        _ => CliError::internal(error.to_string()),
    }
}
