//! Deterministic re-execution of a trace: every import is bound to a replay shim that checks
//! the call against the next recorded host call, writes the recorded bytes into linear
//! memory and returns the recorded results. Nothing on the host is touched: no files, no
//! environment, no clocks, no randomness. The first mismatch stops the run as a
//! [`Divergence`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wtrace_runtime::cache::Lookup;
use wtrace_runtime::engine::EpochTicker;
use wtrace_runtime::imports::Attribution;
use wtrace_runtime::module::{CompileOptions, Compiled};
use wtrace_runtime::native::{self, RegisterComparison};
use wtrace_runtime::outcome::describe_frame;
use wtrace_runtime::{EngineSettings, NativeCapturer, RunEnd, WASMTIME_VERSION, entry, module};
use wtrace_traces::{Event, Frame, Interruption, NativeCapture, Trace, TraceError, Trap, sha256};

use crate::error::ReplayError;
use crate::state::{MemoryLimit, OutputSink, ReplayState, Stopped};

/// How to replay.
#[derive(Debug, Default)]
pub struct ReplayOptions {
    /// Guest stdout.
    pub stdout: OutputSink,
    /// Guest stderr.
    pub stderr: OutputSink,
    /// Replay this module (binary or WAT) instead of the one the trace embeds or references.
    pub module: Option<Vec<u8>>,
    /// Replay [`ReplayOptions::module`] even when its hash differs from the recorded one; the
    /// replay then reports the first point where the modified module behaves differently.
    pub allow_modified_module: bool,
    /// Where compiled code is cached (the same cache recording uses: replay runs the same
    /// engine configuration), and who hears when a module must be compiled.
    pub compile: CompileOptions,
    /// Stop the replay with [`ReplayError::TimedOut`] after this long (for a trace someone
    /// sent you). Checked at every host call, and while the guest computes when the trace was
    /// recorded with epoch checks (every recording since format 1.1).
    pub timeout: Option<Duration>,
    /// Stop the replay with [`ReplayError::MemoryLimit`] when the guest would grow a linear
    /// memory or table past this many bytes (elements, for tables) in all.
    pub max_memory: Option<usize>,
}

/// The first point where the replayed run left the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Seq of the recorded event the run failed to match.
    pub seq: u64,
    /// What the recording has there.
    pub expected: String,
    /// What the replayed guest did instead.
    pub actual: String,
    /// The Wasm backtrace of the replayed guest at that point, innermost first.
    pub frames: Vec<Frame>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "replay diverged at event {}", self.seq)?;
        writeln!(f, "  expected: {}", self.expected)?;
        write!(f, "  actual:   {}", self.actual)?;
        for (i, frame) in self.frames.iter().enumerate() {
            write!(f, "\n  {i:>3}: {}", describe_frame(frame))?;
        }
        Ok(())
    }
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct Replay {
    /// How the replayed run ended.
    pub end: RunEnd,
    /// How the recorded run ended; `None` when the recording stopped before its end.
    pub recorded: Option<RunEnd>,
    /// For a trap, the report `wasmtime run` prints.
    pub report: Option<String>,
    /// The first divergence, if any.
    pub divergence: Option<Divergence>,
    /// Host calls replayed.
    pub host_calls: u64,
    /// Captured stdout ([`OutputSink::Capture`], [`OutputSink::Tee`]).
    pub stdout: Vec<u8>,
    /// Captured stderr ([`OutputSink::Capture`], [`OutputSink::Tee`]).
    pub stderr: Vec<u8>,
    /// Bytes printed to stdout and to stderr, wherever they went.
    pub printed: (u64, u64),
    /// Whether the trace says what each call printed (format 1.1 on), so that `printed` is
    /// exactly what reached the recording's terminal; older traces print every `fd_write` to
    /// descriptors 1 and 2.
    pub printed_as_recorded: bool,
    /// For a trap captured natively in both the recording and the replay: how the replayed
    /// registers compare with the recorded ones.
    pub registers: Option<RegisterComparison>,
    /// Whether the module's compiled code came from the cache.
    pub compiled: Lookup,
}

impl Replay {
    /// True when the replay followed the recording to the same end.
    pub fn matched(&self) -> bool {
        self.divergence.is_none()
            && self.recorded.as_ref().is_some_and(|recorded| ends_match(recorded, &self.end))
    }
}

/// Whether two run ends are the same, ignoring what only a native capture adds, and where in
/// its function the engine raised the same trap (see [`moved_trap`]).
pub fn ends_match(recorded: &RunEnd, replayed: &RunEnd) -> bool {
    match (recorded, replayed) {
        (RunEnd::Trapped(a), RunEnd::Trapped(b)) => {
            same_trap_but_frames(a, b) && (a.frames == b.frames || moved_trap(recorded, replayed).is_some())
        }
        (a, b) => a == b,
    }
}

/// Whether two traps agree in all but their frames and what only a native capture adds.
fn same_trap_but_frames(a: &Trap, b: &Trap) -> bool {
    a.code == b.code
        && a.message == b.message
        && a.wasm_fault_address == b.wasm_fault_address
        && a.memory_size == b.memory_size
}

/// The innermost Wasm PCs `(recorded, replayed)` of one trap that the engine raised at two
/// places in the same function, every other frame the same. Cranelift keeps a second copy of
/// a trap that directly follows an interruption (epoch) check, after the check's slow path,
/// and attributes it to the next Wasm instruction; whether a run passes through that slow
/// path depends on when the epoch last ticked, which recording and replay cannot share. Both
/// runs are deterministic up to the trap, so within one function this is the only way the
/// same trap moves.
pub fn moved_trap(recorded: &RunEnd, replayed: &RunEnd) -> Option<(u32, u32)> {
    let (RunEnd::Trapped(a), RunEnd::Trapped(b)) = (recorded, replayed) else { return None };
    if !same_trap_but_frames(a, b) {
        return None;
    }
    let ([first_a, rest_a @ ..], [first_b, rest_b @ ..]) = (&a.frames[..], &b.frames[..]) else {
        return None;
    };
    let moved =
        (first_a.module, first_a.func_index) == (first_b.module, first_b.func_index) && rest_a == rest_b;
    match (first_a.module_offset, first_b.module_offset) {
        (Some(pc_a), Some(pc_b)) if moved && pc_a != pc_b => Some((pc_a, pc_b)),
        _ => None,
    }
}

/// Replays `trace`.
pub fn replay(trace: &Trace, options: ReplayOptions) -> Result<Replay, ReplayError> {
    let run = &trace.header().run;
    let settings = recorded_settings(run)?;
    let engine = settings.engine()?;
    // A name imported more than once is attributed call by call, from the module's bytes.
    let (mut compiled, module_bytes) =
        module_to_replay(trace, &engine, &settings, &options, Attribution::needs_module(&run.imports))?;
    let module = compiled.module.clone();

    let linker = crate::shims::link(&engine, &module, &run.imports, module_bytes.as_ref())?;

    let recorded = recorded_end(trace)?;
    let mut state = ReplayState::new(trace, trace.events(), options.stdout, options.stderr);
    state.cut_off = recorded.is_none();
    state.deadline = options.timeout.map(|timeout| Instant::now() + timeout);
    state.memory_limit = options.max_memory.map(MemoryLimit::new);
    let mut store = Store::new(&engine, state);
    if store.data().memory_limit.is_some() {
        store.limiter(|state| state.memory_limit.as_mut().expect("set above"));
    }
    let ticker = settings.is_interruptible().then(|| EpochTicker::drive(&mut store, ReplayState::on_tick));
    let native = NativeCapturer::install(&mut store, &module);
    let module_name = run.modules.first().map_or_else(String::new, |m| m.name.clone());
    let started = entry::run(&mut store, &linker, &module, run.invoke.as_deref(), &invoke_args(run))?;
    drop(ticker);
    if let Some(failure) = store.data_mut().failed.take() {
        return Err(failure.into());
    }
    let ended = started.ended(&mut store, run.invoke.is_some(), &native, &module_name);
    let (end, report) = (ended.end, ended.report);
    let mut state = store.into_data();
    if let Some(failure) = state.failed.take() {
        return Err(failure.into());
    }
    if let Some(MemoryLimit { max, exceeded: Some(wanted) }) = state.memory_limit {
        return Err(ReplayError::MemoryLimit { max, wanted });
    }
    let (end, report) = match state.stopped {
        Some(Stopped::TimedOut) => {
            return Err(ReplayError::TimedOut { after: options.timeout.unwrap_or_default() });
        }
        Some(Stopped::AtInterruption) => match &state.event {
            Event::Interrupted(interruption) => (RunEnd::Interrupted(interruption.clone()), None),
            _ => (end, report),
        },
        Some(Stopped::AtCut) => {
            let (frames, import) = state.at_cut.take().unwrap_or_default();
            let cut = Interruption::failed(CUT_OFF, frames, import);
            (RunEnd::Interrupted(Box::new(cut)), None)
        }
        None => (end, report),
    };
    if state.divergence.is_none() {
        let seq = state.seq;
        let continues = matches!(state.event, Event::HostCall(_)) && seq.is_some();
        let differs = recorded.as_ref().is_some_and(|r| !ends_match(r, &end));
        if continues || differs {
            let frames = match &end {
                RunEnd::Trapped(trap) => trap.frames.clone(),
                _ => Vec::new(),
            };
            state.divergence = Some(Divergence {
                seq: seq.unwrap_or(0),
                expected: state.describe_next(),
                actual: format!("the run {}", end.describe()),
                frames,
            });
        }
    }
    let registers = compare_registers(recorded.as_ref(), &end);
    compiled.finish_caching();
    Ok(Replay {
        compiled: compiled.lookup,
        registers,
        end,
        recorded,
        report,
        divergence: state.divergence,
        host_calls: state.host_calls,
        printed: (state.stdout.printed, state.stderr.printed),
        printed_as_recorded: state.printed_recorded,
        stdout: state.stdout.captured,
        stderr: state.stderr.captured,
    })
}

/// A module's bytes, shared.
type ModuleBytes = Arc<[u8]>;

/// The module to replay, compiled: the recorded one — from the compiled-code cache by the hash
/// the trace records, without reading the module at all, else from the bytes the trace embeds
/// or references — or the one `options` gives, when it is the recorded one (or
/// `allow_modified_module`). With `want_bytes`, also the module's bytes (read once), which
/// attributing the calls of a name imported more than once needs.
fn module_to_replay(
    trace: &Trace,
    engine: &wasmtime::Engine,
    settings: &EngineSettings,
    options: &ReplayOptions,
    want_bytes: bool,
) -> Result<(Compiled, Option<ModuleBytes>), ReplayError> {
    let recorded = trace.header().run.modules.first().ok_or(ReplayError::NoModule)?;
    let Some(given) = &options.module else {
        if let Some(module) = module::cached(engine, settings, &recorded.sha256, &options.compile.cache) {
            // The module's bytes are not needed unless asked for, but a damaged trace is
            // reported as damaged.
            let bytes = if want_bytes { Some(trace.module_bytes(0)?.into()) } else { None };
            if bytes.is_none() {
                trace.verify_module_frame(0)?;
            }
            return Ok((Compiled::cached(module, recorded.sha256), bytes));
        }
        let bytes = trace.module_bytes(0)?;
        let compiled =
            module::compile(engine, settings, &recorded.name, &bytes, recorded.sha256, &options.compile)?;
        return Ok((compiled, want_bytes.then(|| bytes.into())));
    };
    let bytes = module::to_binary(&recorded.name, given)?;
    let hash = sha256(&bytes);
    if hash != recorded.sha256 && !options.allow_modified_module {
        return Err(ReplayError::ModuleMismatch {
            recorded: recorded.name.clone(),
            recorded_sha256: recorded.sha256_hex(),
            given_sha256: wtrace_traces::hex(&hash),
        });
    }
    let compiled = module::compile(engine, settings, &recorded.name, &bytes, hash, &options.compile)?;
    Ok((compiled, want_bytes.then(|| bytes.into_owned().into())))
}

/// The register comparison, when both the recorded and the replayed run trapped with a
/// native capture.
fn compare_registers(recorded: Option<&RunEnd>, replayed: &RunEnd) -> Option<RegisterComparison> {
    let (Some(RunEnd::Trapped(before)), RunEnd::Trapped(after)) = (recorded, replayed) else { return None };
    match (&before.native, &after.native) {
        (NativeCapture::Captured(a), NativeCapture::Captured(b)) => Some(native::compare(a, b)),
        _ => None,
    }
}

/// Why a replay of a recording that has no end stops at its last event.
pub(crate) const CUT_OFF: &str = "the recording ends here: it was cut off (killed, or its disk filled)";

/// How the recorded run ended: its last event, when that is an end. A recording that was
/// killed has none.
pub fn recorded_end(trace: &Trace) -> Result<Option<RunEnd>, ReplayError> {
    if trace.is_empty() {
        return Ok(None);
    }
    let seq = trace.len() - 1;
    Ok(match trace.event(seq)? {
        Event::Exit { code } => Some(RunEnd::Exited(guest_status(seq, code)?)),
        Event::Trap(trap) => Some(RunEnd::Trapped(trap)),
        Event::Returned { values } => Some(RunEnd::Returned(values)),
        Event::Interrupted(interruption) => Some(RunEnd::Interrupted(interruption)),
        Event::HostCall(_) => None,
    })
}

/// A recorded exit status, which WASI limits to 0–125: anything else is a forged or damaged
/// trace (a recorded 205 would otherwise pass for wtrace's own "diverged").
pub(crate) fn guest_status(seq: u64, code: i32) -> Result<i32, TraceError> {
    if (0..=125).contains(&code) {
        Ok(code)
    } else {
        Err(TraceError::ImpossibleEvent {
            seq,
            detail: format!("exit status {code} is outside WASI's 0–125"),
        })
    }
}

/// The engine settings a trace was recorded with, when this build can replay them: the same
/// Wasmtime version (whose machine code and stack depths the trace reflects) and settings it
/// knows.
pub fn recorded_settings(run: &wtrace_traces::RunInfo) -> Result<EngineSettings, ReplayError> {
    if run.wasmtime_version != WASMTIME_VERSION {
        return Err(ReplayError::WasmtimeVersion {
            recorded: run.wasmtime_version.clone(),
            running: WASMTIME_VERSION,
        });
    }
    Ok(EngineSettings::from_header(&run.engine_config)?)
}

/// The arguments an `--invoke`d function was called with (for a command, `args` is argv).
pub(crate) fn invoke_args(run: &wtrace_traces::RunInfo) -> Vec<String> {
    if run.invoke.is_some() { run.args.clone() } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wtrace_traces::fuzzing::sample_trap;

    fn trapped_at(frames: &[(u32, u32)]) -> RunEnd {
        let mut trap = sample_trap();
        trap.frames = frames
            .iter()
            .map(|&(func_index, pc)| Frame {
                module: 0,
                func_index,
                func_name: None,
                module_offset: Some(pc),
                func_offset: None,
                source: None,
            })
            .collect();
        RunEnd::Trapped(Box::new(trap))
    }

    #[test]
    fn a_trap_moved_within_its_function_matches_and_is_told() {
        let recorded = trapped_at(&[(1, 0x64), (2, 0x72), (3, 0x77)]);
        let moved = trapped_at(&[(1, 0x65), (2, 0x72), (3, 0x77)]);
        assert!(ends_match(&recorded, &moved));
        assert_eq!(moved_trap(&recorded, &moved), Some((0x64, 0x65)));
        assert_eq!(moved_trap(&recorded, &recorded), None);
        // Another function, or other callers, is another trap.
        for other in [
            trapped_at(&[(4, 0x65), (2, 0x72), (3, 0x77)]),
            trapped_at(&[(1, 0x65), (2, 0x73), (3, 0x77)]),
            trapped_at(&[(1, 0x65), (2, 0x72)]),
        ] {
            assert!(!ends_match(&recorded, &other), "{other:?}");
            assert_eq!(moved_trap(&recorded, &other), None);
        }
        // Another trap one instruction on in the same function has not moved.
        let RunEnd::Trapped(mut other) = trapped_at(&[(1, 0x65), (2, 0x72), (3, 0x77)]) else {
            unreachable!()
        };
        other.message = "wasm trap: integer divide by zero".into();
        let other = RunEnd::Trapped(other);
        assert!(!ends_match(&recorded, &other));
        assert_eq!(moved_trap(&recorded, &other), None);
    }
}
