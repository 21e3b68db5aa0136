//! The recording shims for WASI preview 1, generated from the runtime's table: one typed host
//! function per WASI function, which calls `wasmtime-wasi`'s implementation directly — the same
//! generated entry point its own linker uses, so behaviour is identical — and then records the
//! call.
//!
//! Calling the generated function directly, rather than the `Func` that `add_to_linker_sync`
//! defines, avoids both the "missing required memory export" failure of calling a WASI `Func`
//! from the host and a detour through a helper module; the per-call path looks the memory
//! export up once per store, and allocates nothing and takes no lock once its buffers have grown.

use wasmtime::{Caller, Extern, Linker, WasmBacktrace};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::GuestMemory;
use wtrace_runtime::GuestExit;
use wtrace_runtime::imports::Attribution;
use wtrace_runtime::memory;
use wtrace_runtime::outcome::frames_of;
use wtrace_runtime::wasi::{self, Arg, WasiFunction};
use wtrace_traces::{ImportId, StopCause, Value};

use crate::interrupt::{Interrupt, Interrupted};
use crate::state::RecordState;

/// Calls a `wasmtime-wasi` function, running it to completion when it is `async` — unless the
/// recording is interrupted while it waits.
macro_rules! call_host {
    (async $interrupt:ident, $e:expr) => {
        match $interrupt {
            Some(interrupt) => {
                wasmtime_wasi::runtime::in_tokio(crate::interrupt::unless_raised(interrupt, $e))
                    .unwrap_or_else(|interrupted| Err(interrupted.into()))
            }
            // Wrapping moves the (large) future once more: only calls that may wait pay that.
            None => wasmtime_wasi::runtime::in_tokio($e),
        }
    };
    (sync $interrupt:ident, $e:expr) => {{
        let _ = $interrupt;
        $e
    }};
}

/// Defines the recording shim of one function: `errno` functions are recorded after the call,
/// `proc_exit` is recorded as the run's exit.
macro_rules! shim {
    (errno $host:ident $name:ident($($arg:ident: $ty:ident),*), $linker:ident, $import:ident) => {{
        let row = row(stringify!($name));
        $linker.func_wrap(
            wasi::MODULE,
            stringify!($name),
            move |mut caller: Caller<'_, RecordState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                let args: &[u64] = &[$($arg.raw()),*];
                let params: &[Value] = &[$($arg.value()),*];
                let import = $import.resolve(&caller);
                record_call(&mut caller, row, import, args, params, |ctx, memory, interrupt| {
                    call_host!($host interrupt, p1::$name(ctx, memory $(, $arg)*))
                })
            },
        )?;
    }};
    (exit $host:ident $name:ident($code:ident: $ty:ident), $linker:ident, $import:ident) => {{
        $linker.func_wrap(wasi::MODULE, stringify!($name), move |mut caller: Caller<'_, RecordState>, $code: $ty| {
            let import = $import.resolve(&caller);
            let state = caller.data_mut();
            let error = {
                let mut memory = GuestMemory::Unshared(&mut []);
                match p1::$name(&mut state.wasi, &mut memory, $code) {
                    Ok(()) => return Ok(()),
                    Err(error) => error,
                }
            };
            state.record_exit(import, $code, &error)?;
            Err(match error.downcast_ref::<I32Exit>() {
                Some(exit) => GuestExit(exit.0).into(),
                None => error,
            })
        })?;
    }};
}

macro_rules! recording_shims {
    ($(
        $name:ident($($arg:ident: $ty:ident as $kind:ident),* $(,)?) -> $returns:ident $host:ident { $($data:tt)* }
    )*) => {
        /// Defines a recording shim for each WASI function the module imports; `attribution`
        /// gives, for a function name, how its calls map to the trace's import numbers.
        pub(crate) fn link(
            linker: &mut Linker<RecordState>,
            attribution: &dyn Fn(&str) -> Option<Attribution>,
        ) -> wasmtime::Result<()> {
            $(
                if let Some(import) = attribution(stringify!($name)) {
                    shim!($returns $host $name($($arg: $ty),*), linker, import);
                }
            )*
            Ok(())
        }
    };
}

wtrace_runtime::wasi_preview1!(recording_shims);

fn row(name: &str) -> &'static WasiFunction {
    wasi::function(name).expect("the shims are generated from the table")
}

/// Calls a WASI function with the caller's memory, as Wasmtime's WASI linker does, and
/// records the call.
fn record_call(
    caller: &mut Caller<'_, RecordState>,
    row: &'static WasiFunction,
    import: ImportId,
    args: &[u64],
    params: &[Value],
    call: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>, Option<&Interrupt>) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let fuel = wasmtime::AsContextMut::as_context_mut(&mut *caller).hostcall_fuel();
    let export = memory::export(caller, true);
    if !matches!(export, Some(Extern::Memory(_) | Extern::SharedMemory(_))) {
        wasmtime::bail!("missing required memory export");
    }
    let (mut memory, state) = memory::split(caller, export.as_ref());
    WasiSnapshotPreview1::set_hostcall_fuel(&mut state.wasi, fuel);
    let may_wait = state.before_call(row, args)?;
    state.scratch.input_hash = wasi::hash_inputs(row.inputs, args, &memory, &mut state.regions);
    let before = state.audit.is_some().then(|| memory::copy_all(&memory));
    let result = call(&mut state.wasi, &mut memory, may_wait.then_some(&state.interrupt));
    if let Err(error) = &result
        && let Some(Interrupted(signal)) = error.downcast_ref::<Interrupted>().copied()
    {
        // The call never returned: it is not recorded; the interruption says it was waiting.
        let frames = frames_of(&WasmBacktrace::capture(&*caller));
        caller.data_mut().interrupted(StopCause::Signal(signal), frames, Some(import));
        return result;
    }
    if let Err(error) = state.record_call(row, import, args, params, &result, &memory) {
        let frames = frames_of(&WasmBacktrace::capture(&*caller));
        caller.data_mut().failed_in = Some((frames, Some(import)));
        return Err(error);
    }
    if let Some(before) = before {
        state.audit_writes(row, &before, &memory::copy_all(&memory));
    }
    result
}
