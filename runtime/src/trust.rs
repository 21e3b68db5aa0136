//! The two places where wtrace asks Wasmtime to trust it: installing a signal hook, and loading
//! compiled code that Wasmtime cannot check itself. Each is an `unsafe fn` of Wasmtime's; this
//! module holds the only `unsafe` code outside `inject`, each block stating what makes it sound.
#![allow(unsafe_code)]

use std::fs::File;

use wasmtime::{Engine, Module, Store};

/// Makes `wtrace_inject::handle_signal` the signal hook of `store`: Wasmtime's handler calls it
/// first for every signal that arrives while the store's Wasm is on the thread's stack.
pub(crate) fn install_signal_hook<T>(store: &mut Store<T>) {
    #[cfg(unix)]
    {
        use wasmtime::unix::StoreExt;
        // SAFETY: `handle_signal` is async-signal-safe: it reads only this thread's slot,
        // allocates nothing, takes no locks and does no I/O, and it declines (returns false)
        // every signal outside the armed code ranges. Wasmtime passes the kernel's own,
        // writable ucontext.
        unsafe {
            store.set_signal_handler(|signum, info, context| {
                wtrace_inject::handle_signal(signum, info, context.cast_mut())
            });
        }
    }
    #[cfg(not(unix))]
    let _ = store;
}

/// Loads the code `Module::serialize` produced, from a compiled-code cache entry, by mapping
/// the file.
pub(crate) fn load_compiled(engine: &Engine, entry: File) -> wasmtime::Result<Module> {
    // SAFETY: the compiled-code cache calls this only with an entry it has just checked: the
    // bytes `Module::serialize` wrote for an engine with the same compatibility hash (it is part
    // of the entry's file name), whose length and CRC-32 match the trailer written with them,
    // in a directory only this user may write to. Entries are only ever replaced by renaming a
    // new file over them or removed, never changed in place, so the mapping Wasmtime makes of
    // this open file keeps these bytes for as long as the module lives. Wasmtime checks its own
    // metadata in them once more.
    unsafe { Module::deserialize_open_file(engine, entry) }
}
