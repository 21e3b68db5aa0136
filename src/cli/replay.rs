//! `wtrace replay`: re-execute a trace with no host access, reproduce the guest's output, exit
//! status and trap, and say whether the run matched the recording.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use wtrace::RunEnd;
use wtrace::TrapCode;
use wtrace::replayer::{self, OutputSink, ReplayError, ReplayOptions};

use wtrace::exit_codes;

use super::flags::CompileFlags;
use super::{CliError, open_trace, output};

/// The `wtrace replay` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The trace file, or `latest`.
    trace: PathBuf,
    /// Do not print the guest's stdout and stderr, or the compiling status.
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
    /// Replay this module instead of the one the trace embeds or references (it must be the
    /// recorded one: its SHA-256 is checked).
    #[arg(long, value_name = "PATH")]
    module: Option<PathBuf>,
    /// With --module: replay even if it is not the recorded module, to see where it diverges.
    #[arg(long, requires = "module")]
    allow_modified_module: bool,
    #[command(flatten)]
    compile: CompileFlags,
    /// Stop (exit 211) if the replay has not ended after this long: `30s`, `500ms`, `2m`; a
    /// bare number is seconds. For traces from elsewhere.
    #[arg(long, value_name = "DURATION", value_parser = super::flags::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Stop (exit 211) if the guest would grow a linear memory past this size: `64MiB`,
    /// `1G`, `65536`.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<usize>,
    /// Debug replay: stop at each --break and print the frames there, then at the trap or the
    /// end; or run the --ex commands. Positions print as HOSTCALLS+STEPS (host calls
    /// completed, then instructions since; `+?` when not yet counted).
    #[arg(
        long,
        help_heading = "Debug replay",
        conflicts_with_all = ["expect_trap", "expect_exit", "expect_stdout", "allow_modified_module"]
    )]
    debug: bool,
    #[command(flatten)]
    script: DebugArgs,
}

/// What `--debug` does.
#[derive(Debug, clap::Args)]
struct DebugArgs {
    /// A breakpoint: a function's name or index, a Wasm PC (`0x1a3`), or `FILE:LINE`.
    #[arg(
        long = "break",
        short = 'b',
        value_name = "PLACE",
        requires = "debug",
        help_heading = "Debug replay"
    )]
    breaks: Vec<String>,
    /// Print each frame's locals and operand stack with its types.
    #[arg(long, requires = "debug", help_heading = "Debug replay")]
    print_locals: bool,
    /// Run this command (repeatable, in order) instead of continuing from stop to stop.
    #[arg(
        long = "ex",
        short = 'x',
        value_name = "COMMAND",
        requires = "debug",
        help_heading = "Debug replay",
        long_help = format!("Run this command (repeatable, in order) instead of continuing from stop to stop: {}", super::debug::COMMANDS)
    )]
    commands: Vec<String>,
    /// Print each stop as one line of JSON.
    #[arg(long, requires = "debug", help_heading = "Debug replay")]
    json: bool,
    /// Without --ex: stop after this many stops.
    #[arg(long, value_name = "N", requires = "debug", help_heading = "Debug replay")]
    max_stops: Option<u64>,
}

/// Runs `wtrace replay`; returns the process exit status.
pub(crate) fn run(args: &ReplayArgs) -> Result<i32, CliError> {
    if args.debug {
        return debug(args);
    }
    let expect_trap = args
        .expect_trap
        .as_deref()
        .map(|text| {
            TrapCode::parse(text).ok_or_else(|| {
                CliError::usage(format!(
                    "--expect-trap {text}: unknown trap code; use one of {}",
                    TrapCode::NAMED.iter().map(TrapCode::name).collect::<Vec<_>>().join(", ")
                ))
            })
        })
        .transpose()?;
    let expected_stdout = args
        .expect_stdout
        .as_ref()
        .map(|path| {
            std::fs::read(path).map_err(|e| {
                CliError::new(exit_codes::INPUT_MISSING, format!("cannot read {}: {e}", path.display()), None)
            })
        })
        .transpose()?;
    let module = read_module(args.module.as_deref())?;
    let trace_path = super::trace_dir::resolve(&args.trace)?;
    let trace = open_trace(&trace_path)?;
    let sink = |stream: Box<dyn std::io::Write + Send>| match (args.quiet, expected_stdout.is_some()) {
        (true, true) => OutputSink::Capture,
        (true, false) => OutputSink::Discard,
        (false, true) => OutputSink::Tee(stream),
        (false, false) => OutputSink::Stream(stream),
    };
    let options = ReplayOptions {
        stdout: sink(Box::new(std::io::stdout())),
        stderr: if args.quiet {
            OutputSink::Discard
        } else {
            OutputSink::Stream(Box::new(std::io::stderr()))
        },
        module,
        allow_modified_module: args.allow_modified_module,
        compile: args.compile.options(args.quiet),
        timeout: args.timeout,
        max_memory: args.max_memory,
    };
    let module_name = trace.header().run.modules.first().map_or_else(String::new, |m| m.name.clone());
    if let Some(timeout) = args.timeout {
        start_watchdog(timeout, &trace, &trace_path, &module_name);
    }
    let replay =
        replayer::replay(&trace, options).map_err(|e| replay_error(&e, &trace_path, &module_name))?;

    if let Some(divergence) = &replay.divergence {
        output::print_stderr(&format!("{divergence}\n"));
        return Err(CliError::new(
            exit_codes::DIVERGED,
            format!(
                "replay of {} diverged from the recording at event {}",
                trace_path.display(),
                divergence.seq
            ),
            Some("the module or the trace differs from the recorded run".to_string()),
        ));
    }
    if let Some(report) = &replay.report {
        output::print_stderr(report);
    }
    if let RunEnd::Returned(values) = &replay.end {
        let text = values.iter().fold(String::new(), |text, v| text + &v.to_string() + "\n");
        output::print_stdout(&text)?;
    }
    match &replay.recorded {
        Some(_) => output::note(&format!(
            "replay matched the recording: {} ({} host call{}; {})",
            replay.end.describe(),
            replay.host_calls,
            if replay.host_calls == 1 { "" } else { "s" },
            describe_printed(&replay)
        )),
        None => output::warn(&format!(
            "the recording was cut off (killed, or its disk filled) after {} host calls; the replay matched every one and stops there",
            replay.host_calls,
        )),
    }

    if let Some((recorded, replayed)) =
        replay.recorded.as_ref().and_then(|recorded| replayer::moved_trap(recorded, &replay.end))
    {
        output::note(&format!(
            "the trap was raised at Wasm PC {replayed:#x}, the recording's at {recorded:#x}: the engine keeps a second copy of a trap after an interruption check, and the epoch ticked at a different moment"
        ));
    }
    if let Some(registers) = &replay.registers {
        output::note(&describe_registers(registers));
    }
    let failures = failed_expectations(args, expect_trap.as_ref(), expected_stdout.as_deref(), &replay);
    if !failures.is_empty() {
        return Err(CliError::new(exit_codes::EXPECTATION_FAILED, failures.join("; "), None));
    }
    Ok(replay.end.exit_status())
}

/// `65536`, `64K`, `64KiB`, `16M`, `16MiB`, `1G`, `1GiB` (K, M and G are powers of 1024).
fn parse_bytes(text: &str) -> Result<usize, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: usize = number.parse().map_err(|_| format!("`{text}` is not a size like 64MiB"))?;
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        other => return Err(format!("unknown unit `{other}` in `{text}`: use K, M or G")),
    };
    value.checked_mul(1 << shift).ok_or_else(|| format!("`{text}` is out of range"))
}

/// How much the replay printed, and whether that is what the recording's terminal showed.
fn describe_printed(replay: &replayer::Replay) -> String {
    let (stdout, stderr) = replay.printed;
    let bytes = |n: u64| if n == 1 { "1 byte".to_string() } else { format!("{n} bytes") };
    let how = if replay.printed_as_recorded {
        "as the recording printed them"
    } else {
        "every write to descriptors 1 and 2, as this trace's format records no more"
    };
    format!("{} to stdout and {} to stderr, {how}", bytes(stdout), bytes(stderr))
}

/// `wtrace replay --debug`.
fn debug(args: &ReplayArgs) -> Result<i32, CliError> {
    let module = read_module(args.module.as_deref())?;
    let trace_path = super::trace_dir::resolve(&args.trace)?;
    let trace = open_trace(&trace_path)?;
    let options = replayer::debug::SessionOptions {
        module,
        compile: args.compile.options(args.quiet),
        ..Default::default()
    };
    let script = super::debug::Script {
        breaks: &args.script.breaks,
        commands: &args.script.commands,
        print_locals: args.script.print_locals,
        json: args.script.json,
        max_stops: args.script.max_stops,
    };
    super::debug::run(&trace, &trace_path.display().to_string(), &options, &script)
}

fn read_module(path: Option<&Path>) -> Result<Option<Vec<u8>>, CliError> {
    path.map(|path| {
        std::fs::read(path).map_err(|e| {
            CliError::new(
                exit_codes::INPUT_MISSING,
                format!("cannot read module {}: {e}", path.display()),
                None,
            )
        })
    })
    .transpose()
}

/// The `--expect-*` checks that failed, one sentence each.
fn failed_expectations(
    args: &ReplayArgs,
    expect_trap: Option<&TrapCode>,
    expected_stdout: Option<&[u8]>,
    replay: &replayer::Replay,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(code) = expect_trap {
        match &replay.end {
            RunEnd::Trapped(trap) if trap.code == *code => {}
            other => {
                failures.push(format!("expected trap {}, but the run {}", code.name(), other.describe()));
            }
        }
    }
    if let Some(status) = args.expect_exit {
        match &replay.end {
            RunEnd::Exited(code) if *code == status => {}
            other => {
                failures.push(format!("expected exit status {status}, but the run {}", other.describe()));
            }
        }
    }
    if let (Some(expected), Some(path)) = (expected_stdout, &args.expect_stdout)
        && *expected != replay.stdout[..]
    {
        failures.push(format!(
            "stdout differs from {} ({} bytes expected, {} replayed{})",
            path.display(),
            expected.len(),
            replay.stdout.len(),
            first_difference(expected, &replay.stdout)
                .map(|at| format!(", first difference at byte {at}"))
                .unwrap_or_default()
        ));
    }
    failures
}

/// One line on how the replayed trap's native state compares with the recorded one.
fn describe_registers(registers: &replayer::RegisterComparison) -> String {
    let mut text = format!(
        "native state: {} signal, {} Wasm PCs; {} of {} address-independent registers match ({} holding addresses not compared)",
        if registers.same_signal { "same" } else { "different" },
        if registers.same_wasm_pcs { "same" } else { "different" },
        registers.compared - registers.differing.len(),
        registers.compared,
        registers.addresses
    );
    if !registers.differing.is_empty() {
        let names: Vec<&str> = registers.differing.iter().map(|(name, _, _)| name.as_str()).collect();
        let _ = write!(text, "; differ: {}", names.join(", "));
    }
    text
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// How long after `--timeout` the watchdog ends a replay the library has not stopped.
const WATCHDOG_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Ends the process with the `--timeout` error a moment after the deadline, for a trace
/// recorded without epoch checks (format 1.0): the library stops such a replay only at its host
/// calls, and a guest can compute forever between two.
fn start_watchdog(timeout: std::time::Duration, trace: &wtrace::Trace, path: &Path, module: &str) {
    // A trace recorded with epoch checks is stopped at its deadline by the library itself.
    if replayer::recorded_settings(&trace.header().run).is_ok_and(|settings| settings.is_interruptible()) {
        return;
    }
    let (trace, module) = (path.to_path_buf(), module.to_string());
    std::thread::spawn(move || {
        std::thread::sleep(timeout + WATCHDOG_GRACE);
        let error = replay_error(&ReplayError::TimedOut { after: timeout }, &trace, &module);
        output::report_error(&error);
        std::process::exit(error.code);
    });
}

pub(crate) fn replay_error(error: &ReplayError, trace: &Path, module: &str) -> CliError {
    match error {
        ReplayError::Trace(e) => CliError::from_trace(e, trace),
        ReplayError::WasmtimeVersion { .. } | ReplayError::Settings(_) => CliError::new(
            exit_codes::REFUSED,
            format!("cannot replay {}: {error}", trace.display()),
            Some("replay it with the wtrace that recorded it".to_string()),
        ),
        ReplayError::ModuleMismatch { .. } => CliError::new(
            exit_codes::REFUSED,
            error.to_string(),
            Some("pass --allow-modified-module to replay it anyway and see where it diverges".to_string()),
        ),
        ReplayError::TimedOut { .. } | ReplayError::MemoryLimit { .. } => CliError::new(
            exit_codes::LIMIT_EXCEEDED,
            format!("stopped the replay of {}: {error}", trace.display()),
            Some("raise --timeout or --max-memory if the trace is one you trust".to_string()),
        ),
        ReplayError::Setup(setup) => {
            let mut cli = CliError::from_setup(setup, module, "replay");
            cli.message = format!("cannot replay {}: {}", trace.display(), cli.message);
            cli
        }
        _ => CliError::new(
            exit_codes::MODULE_UNUSABLE,
            format!("cannot replay {}: {error}", trace.display()),
            None,
        ),
    }
}
