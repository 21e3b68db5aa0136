//! The recording shims for `wasi_snapshot_preview1`: one typed host function per WASI
//! function, which calls `wasmtime-wasi`'s implementation directly — the same generated entry
//! point its own linker uses, so behaviour is identical — and then records the call.
//!
//! Calling the generated function directly, rather than the `Func` that `add_to_linker_sync`
//! defines, avoids both the "missing required memory export" failure of calling a WASI `Func`
//! from the host and the helper-module detour DESIGN §4 describes; the per-call path does one
//! export lookup (as Wasmtime's own WASI linker does), no allocation once the scratch buffers
//! have grown, and no locking.

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::{WasiP1Ctx, wasi_snapshot_preview1 as p1};
use wiggle::GuestMemory;
use wtrace_traces::{ImportId, Value};

use crate::record::RecordState;
use crate::write_sets::{WriteSet, write_set};

/// The import module name of WASI preview 1.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// A WASI argument: its raw value for the write-set table and its recorded form.
trait Arg: Copy {
    fn raw(self) -> u64;
    fn value(self) -> Value;
}

impl Arg for i32 {
    fn raw(self) -> u64 {
        u64::from(self as u32)
    }
    fn value(self) -> Value {
        Value::I32(self)
    }
}

impl Arg for i64 {
    fn raw(self) -> u64 {
        self as u64
    }
    fn value(self) -> Value {
        Value::I64(self)
    }
}

macro_rules! call {
    (async $e:expr) => {
        wasmtime_wasi::runtime::in_tokio($e)
    };
    ($e:expr) => {
        $e
    };
}

macro_rules! wasi_functions {
    ($($name:ident($($arg:ident: $ty:ident),*) $($asyncness:ident)?;)*) => {
        /// Every function with its core Wasm parameter types, for tests and `info`.
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) const SIGNATURES: &[(&str, &[&str])] = &[
            $((stringify!($name), &[$(stringify!($ty)),*]),)*
            ("proc_exit", &["i32"]),
        ];

        /// Defines a recording shim for each WASI function the module imports; `import_id`
        /// gives the trace's import number for a function name.
        pub(crate) fn link(
            linker: &mut Linker<RecordState>,
            import_id: &dyn Fn(&str) -> Option<ImportId>,
        ) -> wasmtime::Result<()> {
            $(
                if let Some(import) = import_id(stringify!($name)) {
                    let row = write_set(stringify!($name)).expect("every WASI function has a write set");
                    linker.func_wrap(
                        MODULE,
                        stringify!($name),
                        move |mut caller: Caller<'_, RecordState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                            let args: &[u64] = &[$($arg.raw()),*];
                            let params: &[Value] = &[$($arg.value()),*];
                            record_call(&mut caller, row, import, args, params, |ctx, memory| {
                                call!($($asyncness)? p1::$name(ctx, memory $(, $arg)*))
                            })
                        },
                    )?;
                }
            )*
            if let Some(import) = import_id("proc_exit") {
                linker.func_wrap(MODULE, "proc_exit", move |mut caller: Caller<'_, RecordState>, code: i32| {
                    let state = caller.data_mut();
                    let error = {
                        let mut memory = GuestMemory::Unshared(&mut []);
                        match p1::proc_exit(&mut state.wasi, &mut memory, code) {
                            Ok(()) => return Ok(()),
                            Err(error) => error,
                        }
                    };
                    state.record_exit(import, code, &error)?;
                    Err(error)
                })?;
            }
            Ok(())
        }
    };
}

wasi_functions! {
    args_get(argv: i32, argv_buf: i32);
    args_sizes_get(argc: i32, argv_buf_size: i32);
    environ_get(environ: i32, environ_buf: i32);
    environ_sizes_get(count: i32, buf_size: i32);
    clock_res_get(id: i32, resolution: i32);
    clock_time_get(id: i32, precision: i64, time: i32);
    fd_advise(fd: i32, offset: i64, len: i64, advice: i32) async;
    fd_allocate(fd: i32, offset: i64, len: i64);
    fd_close(fd: i32) async;
    fd_datasync(fd: i32) async;
    fd_fdstat_get(fd: i32, stat: i32) async;
    fd_fdstat_set_flags(fd: i32, flags: i32);
    fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64);
    fd_filestat_get(fd: i32, stat: i32) async;
    fd_filestat_set_size(fd: i32, size: i64) async;
    fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32) async;
    fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nread: i32) async;
    fd_prestat_get(fd: i32, prestat: i32);
    fd_prestat_dir_name(fd: i32, path: i32, path_len: i32);
    fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nwritten: i32) async;
    fd_read(fd: i32, iovs: i32, iovs_len: i32, nread: i32) async;
    fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, bufused: i32) async;
    fd_renumber(fd: i32, to: i32) async;
    fd_seek(fd: i32, offset: i64, whence: i32, newoffset: i32) async;
    fd_sync(fd: i32) async;
    fd_tell(fd: i32, offset: i32);
    fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) async;
    path_create_directory(fd: i32, path: i32, path_len: i32) async;
    path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, stat: i32) async;
    path_filestat_set_times(fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32) async;
    path_link(old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32) async;
    path_open(fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32, rights_base: i64, rights_inheriting: i64, fdflags: i32, opened: i32) async;
    path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, bufused: i32) async;
    path_remove_directory(fd: i32, path: i32, path_len: i32) async;
    path_rename(fd: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32) async;
    path_symlink(old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32) async;
    path_unlink_file(fd: i32, path: i32, path_len: i32) async;
    poll_oneoff(subscriptions: i32, events: i32, nsubscriptions: i32, nevents: i32) async;
    proc_raise(sig: i32);
    sched_yield();
    random_get(buf: i32, buf_len: i32);
    sock_accept(fd: i32, flags: i32, accepted: i32);
    sock_recv(fd: i32, ri_data: i32, ri_data_len: i32, ri_flags: i32, ro_datalen: i32, ro_flags: i32);
    sock_send(fd: i32, si_data: i32, si_data_len: i32, si_flags: i32, so_datalen: i32);
    sock_shutdown(fd: i32, how: i32);
}

/// Calls a WASI function with the caller's memory, as Wasmtime's WASI linker does, and
/// records the call.
fn record_call(
    caller: &mut Caller<'_, RecordState>,
    row: &'static WriteSet,
    import: ImportId,
    args: &[u64],
    params: &[Value],
    call: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let fuel = wasmtime::AsContextMut::as_context_mut(&mut *caller).hostcall_fuel();
    let export = memory_export(caller);
    let (mut memory, state) = match &export {
        Some(Extern::Memory(m)) => {
            let (bytes, state) = m.data_and_store_mut(&mut *caller);
            (GuestMemory::Unshared(bytes), state)
        }
        Some(Extern::SharedMemory(m)) => (GuestMemory::Shared(m.data()), caller.data_mut()),
        _ => wasmtime::bail!("missing required memory export"),
    };
    wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1::set_hostcall_fuel(&mut state.wasi, fuel);
    state.before_call(row, args)?;
    let before = state.audit.is_some().then(|| whole_memory(&memory));
    let result = call(&mut state.wasi, &mut memory);
    state.record_call(row, import, args, params, &result, &memory)?;
    if let Some(before) = before {
        state.audit_writes(row, &before, &whole_memory(&memory));
    }
    result
}

/// The guest's `memory` export, looked up on the first call and then kept: a store runs one
/// guest instance, whose exports never change, and the lookup (a string hash) is a large part
/// of a host call's cost.
fn memory_export(caller: &mut Caller<'_, RecordState>) -> Option<Extern> {
    if let Some(export) = &caller.data().memory {
        return Some(export.clone());
    }
    let export = caller.get_export("memory")?;
    caller.data_mut().memory = Some(export.clone());
    Some(export)
}

/// A copy of all of linear memory, for [`crate::RecordOptions::audit_writes`].
fn whole_memory(memory: &GuestMemory<'_>) -> Vec<u8> {
    let len = match memory {
        GuestMemory::Unshared(bytes) => bytes.len(),
        GuestMemory::Shared(cells) => cells.len(),
    };
    u32::try_from(len)
        .ok()
        .and_then(|len| memory.as_cow(wiggle::GuestPtr::<[u8]>::new((0, len))).ok())
        .map(std::borrow::Cow::into_owned)
        .unwrap_or_default()
}
