//! Deterministic re-execution of a trace: every import is bound to a replay shim that checks
//! the call against the next recorded host call, writes the recorded bytes into linear
//! memory and returns the recorded results. Nothing on the host is touched: no files, no
//! environment, no clocks, no randomness. The first mismatch stops the run as a
//! [`Divergence`].

use std::io::Write;

use wasmtime::{Caller, Extern, FuncType, Linker, Module, Store, Val, ValType};
use wiggle::{GuestMemory, GuestPtr};
use wtrace_traces::display::quote_bytes;
use wtrace_traces::{
    Event, Frame, HostCall, ImportId, ImportName, NativeCapture, Outcome, Trace, TraceError, Value, sha256,
};

use crate::engine::{EngineSettings, WASMTIME_VERSION};
use crate::entry::{self, EntryError, value_of};
use crate::error::ReplayError;
use crate::native::{self, NativeCapturer, RegisterComparison};
use crate::outcome::{self, RunEnd, describe_frame, frames_of};

/// Where replayed guest output goes.
#[derive(Default)]
pub enum OutputSink {
    /// Kept in memory and returned in [`Replay`].
    #[default]
    Capture,
    /// Dropped.
    Discard,
    /// Written as the guest writes it (e.g. to the real stdout).
    Stream(Box<dyn Write + Send>),
    /// Both written as the guest writes it and kept.
    Tee(Box<dyn Write + Send>),
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputSink::Capture => "Capture",
            OutputSink::Discard => "Discard",
            OutputSink::Stream(_) => "Stream",
            OutputSink::Tee(_) => "Tee",
        })
    }
}

/// How to replay.
#[derive(Debug, Default)]
pub struct ReplayOptions {
    /// Guest stdout.
    pub stdout: OutputSink,
    /// Guest stderr.
    pub stderr: OutputSink,
    /// Replay this module instead of the one embedded in the trace.
    pub module: Option<Vec<u8>>,
    /// Replay [`ReplayOptions::module`] even when its hash differs from the recorded one; the
    /// replay then reports the first point where the modified module behaves differently.
    pub allow_modified_module: bool,
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
    /// For a trap captured natively in both the recording and the replay: how the replayed
    /// registers compare with the recorded ones.
    pub registers: Option<RegisterComparison>,
}

impl Replay {
    /// True when the replay followed the recording to the same end.
    pub fn matched(&self) -> bool {
        self.divergence.is_none()
            && self.recorded.as_ref().is_some_and(|recorded| ends_match(recorded, &self.end))
    }
}

/// Whether two run ends are the same, ignoring what only a native capture adds.
pub fn ends_match(recorded: &RunEnd, replayed: &RunEnd) -> bool {
    match (recorded, replayed) {
        (RunEnd::Trapped(a), RunEnd::Trapped(b)) => {
            a.code == b.code
                && a.message == b.message
                && a.frames == b.frames
                && a.wasm_fault_address == b.wasm_fault_address
                && a.memory_size == b.memory_size
        }
        (a, b) => a == b,
    }
}

/// Stops the guest at a divergence.
#[derive(Debug, thiserror::Error)]
#[error("replay diverged from the recording")]
struct Diverged;

/// `proc_exit` replayed.
#[derive(Debug, thiserror::Error)]
#[error("exit with status {0}")]
struct ReplayedExit(i32);

/// Store data of a replay.
pub(crate) struct ReplayState {
    events: wtrace_traces::Events,
    /// The next recorded event, decoded into a reused buffer.
    event: Event,
    /// Its seq, or `None` when the recording has no more events.
    seq: Option<u64>,
    imports: Vec<ImportName>,
    stdout: Sink,
    stderr: Sink,
    host_calls: u64,
    divergence: Option<Divergence>,
    failed: Option<TraceError>,
    /// The guest's `memory` export, once a host call has looked it up (one instance per store,
    /// so it never changes; the lookup hashes a string).
    memory: Option<Extern>,
}

/// An output sink plus what it captured.
struct Sink {
    sink: OutputSink,
    captured: Vec<u8>,
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) {
        match &mut self.sink {
            OutputSink::Capture => self.captured.extend_from_slice(bytes),
            OutputSink::Discard => {}
            OutputSink::Stream(out) => {
                // Output that cannot be shown (a closed pipe) must not change the replay.
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }
            OutputSink::Tee(out) => {
                let _ = out.write_all(bytes).and_then(|()| out.flush());
                self.captured.extend_from_slice(bytes);
            }
        }
    }
}

impl ReplayState {
    /// Reads the next recorded event into `self.event`.
    fn advance(&mut self) {
        self.seq = match self.events.next_into(&mut self.event) {
            Some(Ok(seq)) => Some(seq),
            Some(Err(error)) => {
                self.failed = Some(error);
                None
            }
            None => None,
        };
    }

    fn describe_next(&self) -> String {
        if self.seq.is_none() {
            return "the end of the recording".into();
        }
        match &self.event {
            Event::HostCall(call) => describe_call(&self.imports, call.import, &call.params),
            Event::Trap(trap) => format!("a trap ({})", trap.message),
            Event::Exit { code } => format!("exit with status {code}"),
            Event::Returned { values } => {
                let values: Vec<String> = values.iter().map(ToString::to_string).collect();
                format!("return of [{}]", values.join(", "))
            }
        }
    }
}

fn describe_call(imports: &[ImportName], import: ImportId, params: &[Value]) -> String {
    let name =
        imports.get(import.0 as usize).map_or_else(|| format!("import #{}", import.0), |i| i.name.clone());
    let params: Vec<String> = params.iter().map(ToString::to_string).collect();
    format!("{name}({})", params.join(", "))
}

/// Replays `trace`.
pub fn replay(trace: &Trace, options: ReplayOptions) -> Result<Replay, ReplayError> {
    let header = trace.header();
    let run = &header.run;
    if run.wasmtime_version != WASMTIME_VERSION {
        return Err(ReplayError::Engine(format!(
            "the trace was recorded with Wasmtime {}, this wtrace runs Wasmtime {WASMTIME_VERSION}; machine code and stack depths may differ",
            run.wasmtime_version
        )));
    }
    let settings = EngineSettings::from_header(&run.engine_config).map_err(|e| ReplayError::Engine(e.0))?;
    let engine = settings.engine().map_err(|e| ReplayError::Engine(e.0))?;
    let recorded_module = run.modules.first().ok_or(ReplayError::NoModule)?;
    let wasm = module_to_replay(trace, options.module, options.allow_modified_module)?;
    let module = Module::new(&engine, &wasm).map_err(|e| ReplayError::InvalidModule(format!("{e:#}")))?;

    let linker = link_shims(&engine, &module, &run.imports)?;

    let mut state = ReplayState {
        events: trace.events(),
        event: Event::HostCall(HostCall::empty()),
        seq: None,
        imports: run.imports.clone(),
        stdout: Sink { sink: options.stdout, captured: Vec::new() },
        stderr: Sink { sink: options.stderr, captured: Vec::new() },
        host_calls: 0,
        divergence: None,
        failed: None,
        memory: None,
    };
    state.advance();
    let mut store = Store::new(&engine, state);
    let native = NativeCapturer::install(&mut store, &module);
    let module_name = recorded_module.name.clone();
    let mut instance = None;
    let result =
        entry::run(&mut store, &linker, &module, run.invoke.as_deref(), &invoke_args(run), &mut instance);
    let (end, report) = match result {
        Ok(values) if run.invoke.is_some() => (RunEnd::Returned(values), None),
        Ok(_) => (RunEnd::Exited(0), None),
        Err(EntryError::Setup(message)) => return Err(ReplayError::Setup(message)),
        Err(EntryError::Run(error)) => {
            if let Some(failure) = store.data_mut().failed.take() {
                return Err(failure.into());
            }
            if let Some(exit) = error.downcast_ref::<ReplayedExit>() {
                (RunEnd::Exited(exit.0), None)
            } else {
                let mut trap = outcome::trap_from_error(&error, outcome::no_native_capture());
                let memory = instance.and_then(|i| i.get_memory(&mut store, "memory"));
                native.complete(&mut trap, memory.map(|m| (m.data_ptr(&store) as u64, m.data(&store))));
                (RunEnd::Trapped(Box::new(trap)), Some(outcome::wasmtime_report(&error, &module_name)))
            }
        }
    };
    let mut state = store.into_data();
    if let Some(failure) = state.failed.take() {
        return Err(failure.into());
    }
    let recorded = recorded_end(trace)?;
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
    Ok(Replay {
        registers,
        end,
        recorded,
        report,
        divergence: state.divergence,
        host_calls: state.host_calls,
        stdout: state.stdout.captured,
        stderr: state.stderr.captured,
    })
}

/// The module to replay: the embedded one, or `given` when it is the recorded one (or
/// `allow_modified`).
fn module_to_replay(
    trace: &Trace,
    given: Option<Vec<u8>>,
    allow_modified: bool,
) -> Result<Vec<u8>, ReplayError> {
    let recorded_module = trace.header().run.modules.first().ok_or(ReplayError::NoModule)?;
    let Some(bytes) = given else { return Ok(trace.module_bytes(0)?) };
    let bytes = wat::parse_bytes(&bytes).map_err(|e| ReplayError::InvalidModule(e.to_string()))?.into_owned();
    if sha256(&bytes) != recorded_module.sha256 && !allow_modified {
        return Err(ReplayError::ModuleMismatch {
            recorded: recorded_module.name.clone(),
            recorded_sha256: recorded_module.sha256_hex(),
            given_sha256: wtrace_traces::hex(&sha256(&bytes)),
        });
    }
    Ok(bytes)
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

/// A linker with a replay shim for every function the module imports.
fn link_shims(
    engine: &wasmtime::Engine,
    module: &Module,
    recorded_imports: &[ImportName],
) -> Result<Linker<ReplayState>, ReplayError> {
    let mut linker = Linker::new(engine);
    for import in module.imports() {
        let Some(ty) = import.ty().func().cloned() else { continue };
        let name = ImportName { module: import.module().to_owned(), name: import.name().to_owned() };
        let id = recorded_imports.iter().position(|i| *i == name).map(|i| ImportId(i as u32));
        let shim = Shim::new(name, id);
        let typed =
            crate::typed::link(&mut linker, &ty, &shim).map_err(|e| ReplayError::Setup(format!("{e:#}")))?;
        if typed {
            continue;
        }
        linker
            .func_new(import.module(), import.name(), ty.clone(), move |caller, params, results| {
                let params: Vec<Value> = params.iter().map(value_of).collect();
                replay_call(caller, &shim, &params, ResultSlot::Vals(results, &ty))
            })
            .map_err(|e| ReplayError::Setup(format!("{e:#}")))?;
    }
    Ok(linker)
}

/// How the recorded run ended: its last event, when that is an end. A recording that was
/// killed has none.
pub fn recorded_end(trace: &Trace) -> Result<Option<RunEnd>, ReplayError> {
    if trace.is_empty() {
        return Ok(None);
    }
    Ok(match trace.event(trace.len() - 1)? {
        Event::Exit { code } => Some(RunEnd::Exited(code)),
        Event::Trap(trap) => Some(RunEnd::Trapped(trap)),
        Event::Returned { values } => Some(RunEnd::Returned(values)),
        Event::HostCall(_) => None,
    })
}

/// The arguments an `--invoke`d function was called with (for a command, `args` is argv).
fn invoke_args(run: &wtrace_traces::RunInfo) -> Vec<String> {
    if run.invoke.is_some() { run.args.clone() } else { Vec::new() }
}

/// What a replay shim knows about the import it answers, worked out once when linking.
#[derive(Debug, Clone)]
pub(crate) struct Shim {
    pub(crate) name: ImportName,
    /// Its number in the trace header, when the recording had it.
    pub(crate) id: Option<ImportId>,
    /// WASI's `fd_write`: what it wrote to descriptors 1 and 2 is the guest's output.
    prints: bool,
}

impl Shim {
    fn new(name: ImportName, id: Option<ImportId>) -> Shim {
        let prints = name.module == "wasi_snapshot_preview1" && name.name == "fd_write";
        Shim { name, id, prints }
    }
}

/// Where a replayed call's results go.
pub(crate) enum ResultSlot<'a> {
    /// Wasmtime's untyped results, of the function's result types.
    Vals(&'a mut [Val], &'a FuncType),
    /// A single `i32` result (every WASI function's errno).
    I32(&'a mut i32),
    /// No result (`proc_exit`).
    Unit,
}

/// One replayed host call.
pub(crate) fn replay_call(
    mut caller: Caller<'_, ReplayState>,
    shim: &Shim,
    params: &[Value],
    results: ResultSlot<'_>,
) -> wasmtime::Result<()> {
    let (name, id) = (&shim.name, shim.id);
    let state = caller.data_mut();
    let seq = state.seq;
    let matches = match (&state.event, seq, id) {
        (Event::HostCall(call), Some(_), Some(id)) => call.import == id && call.params == params,
        _ => false,
    };
    if !matches {
        let expected = state.describe_next();
        let shown: Vec<String> = params.iter().map(ToString::to_string).collect();
        return Err(diverge(&mut caller, seq, expected, format!("{}({})", name.name, shown.join(", "))));
    }
    let Event::HostCall(call) = std::mem::replace(&mut state.event, Event::Exit { code: 0 }) else {
        return Err(Diverged.into());
    };
    let result = apply_call(&mut caller, shim, &call, results);
    let state = caller.data_mut();
    state.event = Event::HostCall(call);
    state.host_calls += 1;
    match result {
        Ok(Ok(())) => {
            state.advance();
            Ok(())
        }
        Ok(Err(error)) => {
            state.advance();
            Err(error)
        }
        Err((expected, actual)) => Err(diverge(&mut caller, seq, expected, actual)),
    }
}

/// Applies a matching recorded call: checks the bytes the guest handed over, writes the
/// recorded bytes, sets the results. The outer error is a divergence (expected, actual).
#[allow(clippy::type_complexity)]
fn apply_call(
    caller: &mut Caller<'_, ReplayState>,
    shim: &Shim,
    call: &HostCall,
    results: ResultSlot<'_>,
) -> Result<wasmtime::Result<()>, (String, String)> {
    let name = &shim.name;
    let export = match &caller.data().memory {
        Some(export) => Some(export.clone()),
        None if call.writes.is_empty() && call.reads.is_empty() => None,
        None => {
            let export = caller.get_export("memory");
            caller.data_mut().memory.clone_from(&export);
            export
        }
    };
    let (mut memory, state) = match &export {
        Some(Extern::Memory(m)) => {
            let (bytes, state) = m.data_and_store_mut(&mut *caller);
            (GuestMemory::Unshared(bytes), state)
        }
        Some(Extern::SharedMemory(m)) => (GuestMemory::Shared(m.data()), caller.data_mut()),
        _ => (GuestMemory::Unshared(&mut []), caller.data_mut()),
    };
    for read in &call.reads {
        let actual = memory.as_cow(GuestPtr::<[u8]>::new((read.offset as u32, read.bytes.len() as u32)));
        if actual.as_deref().ok() != Some(&read.bytes[..]) {
            let shown = actual.map_or_else(|_| "out of bounds".into(), |b| quote_bytes(&b, 64));
            return Err((
                format!("{} with {} at {:#x}", name.name, quote_bytes(&read.bytes, 64), read.offset),
                format!("{} with {shown}", name.name),
            ));
        }
    }
    if shim.prints {
        let fd = call.params.first();
        let sink = match fd {
            Some(Value::I32(1)) => Some(&mut state.stdout),
            Some(Value::I32(2)) => Some(&mut state.stderr),
            _ => None,
        };
        if let Some(sink) = sink {
            for read in &call.reads {
                sink.write(&read.bytes);
            }
        }
    }
    for write in &call.writes {
        let target = GuestPtr::<[u8]>::new((write.offset as u32, write.bytes.len() as u32));
        if u32::try_from(write.offset).is_err() || memory.copy_from_slice(&write.bytes, target).is_err() {
            return Err((
                format!("{} writing {} bytes at {:#x}", name.name, write.bytes.len(), write.offset),
                "that address is outside the guest's memory".into(),
            ));
        }
    }
    match &call.outcome {
        Outcome::Returned(values) => {
            let expected = match &results {
                ResultSlot::Vals(slots, _) => slots.len(),
                ResultSlot::I32(_) => 1,
                ResultSlot::Unit => 0,
            };
            if values.len() != expected {
                return Err((
                    format!("{} returning {} values", name.name, values.len()),
                    format!("{expected} results expected"),
                ));
            }
            match results {
                ResultSlot::Vals(slots, ty) => {
                    for ((slot, value), ty) in slots.iter_mut().zip(values).zip(ty.results()) {
                        *slot = val_of(value, &ty).ok_or_else(|| {
                            (format!("{} returning {value}", name.name), format!("a result of type {ty}"))
                        })?;
                    }
                }
                ResultSlot::I32(slot) => match values[0] {
                    Value::I32(v) => *slot = v,
                    other => {
                        return Err((format!("{} returning {other}", name.name), "an i32 result".into()));
                    }
                },
                ResultSlot::Unit => {}
            }
            Ok(Ok(()))
        }
        Outcome::Exited(code) => Ok(Err(ReplayedExit(*code).into())),
        Outcome::Error(chain) => Ok(Err(host_error(chain))),
    }
}

/// The recorded host error as Wasmtime saw it: the cause chain, outermost first, one cause a
/// line (older traces hold just the root cause).
fn host_error(chain: &str) -> wasmtime::Error {
    let mut causes = chain.lines().rev();
    let root = wasmtime::Error::msg(causes.next().unwrap_or_default().to_owned());
    causes.fold(root, |error, context| error.context(context.to_owned()))
}

/// Records a divergence and returns the error that stops the guest.
fn diverge(
    caller: &mut Caller<'_, ReplayState>,
    seq: Option<u64>,
    expected: String,
    actual: String,
) -> wasmtime::Error {
    let frames = frames_of(&wasmtime::WasmBacktrace::force_capture(&mut *caller));
    let state = caller.data_mut();
    if state.divergence.is_none() {
        state.divergence = Some(Divergence { seq: seq.unwrap_or(0), expected, actual, frames });
    }
    Diverged.into()
}

/// A recorded value as a Wasmtime value of type `ty`; `None` when it cannot be one (a
/// non-null reference cannot be recreated).
fn val_of(value: &Value, ty: &ValType) -> Option<Val> {
    Some(match (value, ty) {
        (Value::I32(v), ValType::I32) => Val::I32(*v),
        (Value::I64(v), ValType::I64) => Val::I64(*v),
        (Value::F32(v), ValType::F32) => Val::F32(*v),
        (Value::F64(v), ValType::F64) => Val::F64(*v),
        (Value::V128(v), ValType::V128) => Val::V128((*v).into()),
        (Value::FuncRef { null: true } | Value::ExternRef { null: true }, ValType::Ref(r)) => {
            Val::null_ref(r.heap_type())
        }
        _ => return None,
    })
}
