//! The replay shims: one per import, each checking the call against the next recorded host
//! call, writing the recorded bytes into linear memory and returning the recorded results.
//! WASI preview 1 functions get typed shims generated from the runtime's table, which skip
//! Wasmtime's untyped `Func::new` path (boxing every argument and result as a `Val`); any
//! other import is answered through that path.

use std::collections::HashSet;

use std::sync::Arc;
use wasmtime::{AsContextMut, Caller, FuncType, Linker, Module, Val, ValType};
use wiggle::GuestPtr;

use wtrace_runtime::imports::Attribution;
use wtrace_runtime::outcome::frames_of;
use wtrace_runtime::wasi::{self, Arg, Stdio};
use wtrace_runtime::{GuestExit, SetupError, memory};
use wtrace_traces::display::quote_bytes;
use wtrace_traces::{Event, HostCall, ImportName, Outcome, Value};

use crate::replay::Divergence;
use crate::state::ReplayState;

/// Stops the guest at a divergence.
#[derive(Debug, thiserror::Error)]
#[error("replay diverged from the recording")]
struct Diverged;

/// Defines the typed replay shim of one WASI function.
macro_rules! typed_shim {
    (errno $name:ident($($arg:ident: $ty:ident),*), $linker:ident, $shim:ident) => {
        $linker.func_wrap(
            wasi::MODULE,
            stringify!($name),
            move |caller: Caller<'_, ReplayState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                let mut out = 0;
                replay_call(caller, &$shim, &[$($arg.value()),*], ResultSlot::I32(&mut out))?;
                Ok(out)
            },
        )?
    };
    (exit $name:ident($code:ident: $ty:ident), $linker:ident, $shim:ident) => {
        $linker.func_wrap(wasi::MODULE, stringify!($name), move |caller: Caller<'_, ReplayState>, $code: $ty| {
            replay_call(caller, &$shim, &[$code.value()], ResultSlot::Unit)
        })?
    };
}

macro_rules! replay_shims {
    ($(
        $name:ident($($arg:ident: $ty:ident as $kind:ident),* $(,)?) -> $returns:ident $host:ident { $($data:tt)* }
    )*) => {
        /// Defines the typed replay shim of `shim`'s import when it is a WASI preview 1
        /// function; returns whether it did.
        fn link_wasi(linker: &mut Linker<ReplayState>, shim: Shim) -> wasmtime::Result<bool> {
            if shim.name.module != wasi::MODULE {
                return Ok(false);
            }
            match shim.name.name.as_str() {
                $(stringify!($name) => {
                    typed_shim!($returns $name($($arg: $ty),*), linker, shim);
                })*
                _ => return Ok(false),
            }
            Ok(true)
        }
    };
}

wtrace_runtime::wasi_preview1!(replay_shims);

/// A linker with a replay shim for every function the module imports (once per name, however
/// often the module imports it).
/// `module_bytes` are needed only when a name is imported more than once
/// ([`Attribution::needs_module`]), to attribute each call to the import it went through.
pub(crate) fn link(
    engine: &wasmtime::Engine,
    module: &Module,
    recorded_imports: &[ImportName],
    module_bytes: Option<&Arc<[u8]>>,
) -> Result<Linker<ReplayState>, SetupError> {
    let mut linker = Linker::new(engine);
    let mut defined = HashSet::new();
    for import in module.imports() {
        let Some(ty) = import.ty().func().cloned() else { continue };
        let name = ImportName { module: import.module().to_owned(), name: import.name().to_owned() };
        if !defined.insert(name.clone()) {
            continue;
        }
        let attribution = Attribution::of(recorded_imports, &name, module_bytes);
        let shim = Shim::new(name, attribution);
        if !link_wasi(&mut linker, shim.clone()).map_err(|e| internal(&e))? {
            linker
                .func_new(import.module(), import.name(), ty.clone(), move |caller, params, results| {
                    let params: Vec<Value> = params.iter().map(wtrace_runtime::entry::value_of).collect();
                    replay_call(caller, &shim, &params, ResultSlot::Vals(results, &ty))
                })
                .map_err(|e| internal(&e))?;
        }
    }
    Ok(linker)
}

/// Defining a function in a fresh linker under a name not yet defined cannot fail.
fn internal(error: &wasmtime::Error) -> SetupError {
    SetupError::EngineRejected { detail: format!("{error:#}") }
}

/// What a replay shim knows about the import it answers, worked out once when linking.
#[derive(Debug, Clone)]
pub(crate) struct Shim {
    pub(crate) name: ImportName,
    /// Its number in the trace header (for a name imported several times, found per call),
    /// when the recording had it.
    pub(crate) attribution: Option<Attribution>,
    /// Its row of the WASI table, when it is a WASI function.
    row: Option<&'static wasi::WasiFunction>,
    /// Whether its spans find buffers through an iovec array in memory: the one place that
    /// arguments equal to the recorded ones do not pin down (see [`same_places`]).
    through_iovecs: bool,
}

impl Shim {
    fn new(name: ImportName, attribution: Option<Attribution>) -> Shim {
        let row = wasi::function_of(&name);
        let through_iovecs = row.is_some_and(|row| {
            row.writes.iter().chain(row.reads).any(|span| matches!(span, wasi::Span::Iovecs { .. }))
        });
        Shim { name, attribution, row, through_iovecs }
    }
}

/// The call's arguments as the WASI table's spans read them.
fn raw_args(call: &HostCall) -> ([u64; 16], usize) {
    let mut args = [0u64; 16];
    for (arg, value) in args.iter_mut().zip(&call.params) {
        *arg = wasi::raw(value);
    }
    (args, call.params.len().min(16))
}

/// Whether the bytes the call reads that its spans do not pin down (`poll_oneoff`'s
/// subscriptions) hash as they did when recorded; a trace from before format 1.1 has no hash.
#[inline(never)]
fn same_inputs(
    shim: &Shim,
    call: &HostCall,
    memory: &wiggle::GuestMemory<'_>,
    scratch: &mut Vec<(u32, u32)>,
) -> bool {
    let (Some(recorded), Some(row)) = (call.input_hash, shim.row) else { return true };
    let (args, n) = raw_args(call);
    wasi::hash_inputs(row.inputs, &args[..n], memory, scratch) == Some(recorded)
}

/// Whether the places the WASI table computes from the guest's arguments and memory (iovec
/// buffers, out-pointers) are where the recorded bytes were written and read: a guest that
/// hands the host other buffers diverges at that call. Run once the recorded writes are in
/// memory, since some spans are sized by what the host stored (bytes read, entries filled).
#[inline(never)]
fn same_places(
    shim: &Shim,
    call: &HostCall,
    memory: &wiggle::GuestMemory<'_>,
    scratch: &mut Vec<(u32, u32)>,
) -> bool {
    let Some(row) = shim.row else { return true };
    let Outcome::Returned(values) = &call.outcome else { return true };
    let (args, n) = raw_args(call);
    let succeeded = values.first() == Some(&Value::I32(0));
    let sets = [(row.writes, &call.writes, succeeded), (row.reads, &call.reads, true)];
    for (spans, recorded, applies) in sets {
        // The string lists' sizes are the recording's; their pointers are arguments.
        if !applies || spans.iter().any(|s| matches!(s, wasi::Span::Strings { .. })) {
            continue;
        }
        scratch.clear();
        wasi::regions(spans, &args[..n], memory, wasi::StringSizes::default(), scratch);
        let mut expected = scratch
            .iter()
            .filter(|&&(offset, len)| len > 0 && memory.as_cow(GuestPtr::<[u8]>::new((offset, len))).is_ok());
        let same = recorded.iter().all(|span| {
            expected.next().is_some_and(|&(offset, len)| {
                u64::from(offset) == span.offset && len as usize == span.bytes.len()
            })
        }) && expected.next().is_none();
        if !same {
            return false;
        }
    }
    true
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
    let name = &shim.name;
    let id = shim.attribution.as_ref().map(|a| a.resolve(&caller));
    if let Some(stopped) = caller.data().must_stop(true) {
        if stopped == crate::state::Stopped::AtCut {
            let frames = frames_of(&wasmtime::WasmBacktrace::capture(&caller));
            caller.data_mut().at_cut = Some((frames, id));
        }
        caller.data_mut().stopped = Some(stopped);
        return Err(stopped.into());
    }
    if caller.data().debug.is_some() {
        crate::debug::at_host_call(&mut caller.as_context_mut());
    }
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
            if state.debug.is_some() {
                crate::debug::after_host_call(&mut caller.as_context_mut());
            }
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
    let export = memory::export(caller, !(call.writes.is_empty() && call.reads.is_empty()));
    let (mut memory, state) = memory::split(caller, export.as_ref());
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
    if call.input_hash.is_some() && !same_inputs(shim, call, &memory, &mut state.regions) {
        return Err((
            format!("{} with the subscriptions it was recorded with", name.name),
            format!("{} with other subscriptions", name.name),
        ));
    }
    if state.printed_recorded {
        if let Some(printed) = call.printed {
            let sink = state.sink(printed.stream);
            for bytes in call.printed_bytes() {
                sink.write(bytes);
            }
        }
    } else if shim.row.is_some_and(|row| row.stdio == Stdio::Writes) {
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
    if shim.through_iovecs && !same_places(shim, call, &memory, &mut state.regions) {
        return Err((
            format!("{} with the buffers it was recorded with", name.name),
            format!("{} with other buffers (the iovecs or out-pointers differ)", name.name),
        ));
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
        Outcome::Exited(code) => match crate::replay::guest_status(state.seq.unwrap_or(0), *code) {
            Ok(code) => Ok(Err(GuestExit(code).into())),
            Err(impossible) => {
                state.failed = Some(impossible);
                Ok(Err(Diverged.into()))
            }
        },
        Outcome::Error(chain) => Ok(Err(host_error(chain))),
    }
}

/// The recorded host error as Wasmtime saw it: the cause chain, outermost first, one cause a
/// line.
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
