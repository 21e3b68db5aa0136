//! The places where wtrace asks to be trusted: installing a signal hook and loading compiled
//! code that Wasmtime cannot check itself (each an `unsafe fn` of Wasmtime's), and copying the
//! replaying process for debug replay's checkpoints (the C library's process calls). This
//! module holds the only `unsafe` code outside `inject`, each block stating what makes it sound.
#![allow(unsafe_code)]

use std::fs::File;

use wasmtime::{Engine, Module, Store};

/// Makes `wtrace_inject::handle_signal` (on Windows `handle_exception`) the signal hook of
/// `store`: Wasmtime's handler calls it first for every signal or exception that arrives while
/// the store's Wasm is on the thread's stack.
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
    #[cfg(windows)]
    {
        use wasmtime::windows::StoreExt;
        // SAFETY: `handle_exception` allocates nothing, takes no locks and does no I/O, and it
        // declines (returns false) every exception outside the armed code ranges. Wasmtime's
        // vectored exception handler passes the `EXCEPTION_POINTERS` Windows gave it.
        unsafe {
            store.set_signal_handler(|pointers| wtrace_inject::handle_exception(pointers));
        }
    }
    #[cfg(not(any(unix, windows)))]
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

/// Which side of a [`fork`] this is.
#[cfg(unix)]
pub enum Forked {
    /// The copy.
    Child,
    /// The original, with the copy's process id.
    Parent(u32),
}

/// Copies the calling process; only the calling thread runs on in the copy.
#[cfg(unix)]
pub(crate) fn fork() -> std::io::Result<Forked> {
    // SAFETY: `fork` itself touches no Rust state. What it demands of the child — never to wait
    // on a lock another thread held at the moment of the copy, since that thread does not exist
    // there — is the caller's invariant, stated at `process::fork_replay`: the child uses only
    // what the forking thread owns (its store, a detached trace, its socket) and the allocator,
    // which the C library keeps consistent across `fork`.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as u32)),
    }
}

/// Ends this process at once, running no exit handlers and no destructors: right for a copy
/// made by [`fork`], whose buffers and files are the original's too.
#[cfg(unix)]
pub fn exit_now(status: i32) -> ! {
    // SAFETY: `_exit` takes no locks and runs nothing of this process's; it cannot return.
    unsafe { libc::_exit(status) }
}

/// Lets the children of this process be reaped by the system as they end.
#[cfg(unix)]
pub(crate) fn ignore_children() {
    // SAFETY: setting a signal's disposition to `SIG_IGN` installs no handler code; for
    // `SIGCHLD` it only tells the kernel to reap this process's children itself. Only forked
    // copies call this, which never wait for a child.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
}

/// Waits for child `pid` to end, when it is a child of this process (else returns at once).
#[cfg(unix)]
pub fn reap(pid: u32) {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable `c_int` for the duration of the call.
        let result = unsafe { libc::waitpid(pid as libc::pid_t, &raw mut status, 0) };
        if result != -1 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Ends process `pid` (a copy this session made) with `SIGKILL`.
#[cfg(unix)]
pub fn kill(pid: u32) {
    // SAFETY: `kill` only sends a signal; `pid` is a process the caller made and owns, and a
    // positive value, so it never names a process group.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Whether process `pid` still exists.
#[cfg(unix)]
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 sends nothing; `kill` only checks that the process exists and may be
    // signalled.
    let result = unsafe { libc::kill(pid as libc::pid_t, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
