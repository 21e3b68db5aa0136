//! The one table of WASI preview 1: for each of its 46 functions the name, the parameters with
//! their core Wasm types, what the host may write into linear memory (the write sets), what it
//! reads that a person wants to see, whether the call may block, and whether it carries the
//! guest's output.
//!
//! The table is written once, as the body of [`wasi_preview1!`](crate::wasi_preview1). That
//! macro hands the whole list to a macro of the caller's, which is how the recording shims,
//! the typed replay shims and any other set of shims are generated from it; this module
//! expands it once more into [`FUNCTIONS`], the same facts as data.
//!
//! Out-pointers are written only when a call returns errno 0 (`ESUCCESS`), so a failed call
//! records no writes. Recording a span the host did not change is harmless (replay writes back
//! the bytes that were already there), but a span it changed and that is missing breaks
//! replay, so every row errs on the side of covering.

use wiggle::{GuestMemory, GuestPtr};
use wtrace_traces::{ImportName, Value};

/// The import module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// Hands every WASI preview 1 function to `$callback!`, in the order of the witx file, as
///
/// ```text
/// name(param: i32 as Kind, param: i64 as Kind, ...) -> errno|exit sync|async {
///     writes: [Span, ...], reads: [Span, ...], blocking: Never|OnStdin|Always, stdio: Untouched|Writes|Closes|Renumbers,
/// }
/// ```
///
/// Each parameter has its core Wasm type and what it means ([`ParamKind`]). `-> errno`
/// functions return their errno as an `i32`; `proc_exit` (`-> exit`) returns nothing. `async` marks the functions `wasmtime-wasi` implements as `async fn` (those that
/// do I/O). The braces hold the data columns of [`WasiFunction`], with [`Span`] variants by
/// their bare names; a callback that does not need them matches them as `{ $($data:tt)* }`.
/// Sizes are those of the witx types: timestamp 8, filesize 8, fd 4, size 4, fdstat 24,
/// filestat 64, prestat 8, event 32, roflags 2.
#[macro_export]
macro_rules! wasi_preview1 {
    ($callback:ident) => {
        $callback! {
            args_get(argv: i32 as Ptr, argv_buf: i32 as Ptr) -> errno sync {
                writes: [Strings { ptrs: 0, buf: 1, of: StringList::Args }], reads: [], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            args_sizes_get(argc: i32 as Ptr, argv_buf_size: i32 as Ptr) -> errno sync {
                writes: [Fixed { ptr: 0, len: 4 }, Fixed { ptr: 1, len: 4 }], reads: [], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            environ_get(environ: i32 as Ptr, environ_buf: i32 as Ptr) -> errno sync {
                writes: [Strings { ptrs: 0, buf: 1, of: StringList::Env }], reads: [], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            environ_sizes_get(count: i32 as Ptr, buf_size: i32 as Ptr) -> errno sync {
                writes: [Fixed { ptr: 0, len: 4 }, Fixed { ptr: 1, len: 4 }], reads: [], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            clock_res_get(id: i32 as ClockId, resolution: i32 as Ptr) -> errno sync {
                writes: [Fixed { ptr: 1, len: 8 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            clock_time_get(id: i32 as ClockId, precision: i64 as Timestamp, time: i32 as Ptr) -> errno sync {
                writes: [Fixed { ptr: 2, len: 8 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_advise(
                fd: i32 as Fd, offset: i64 as FileSize, len: i64 as FileSize, advice: i32 as Advice
            ) -> errno async {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_allocate(fd: i32 as Fd, offset: i64 as FileSize, len: i64 as FileSize) -> errno sync {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_close(fd: i32 as Fd) -> errno async {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Closes,
            }
            fd_datasync(fd: i32 as Fd) -> errno async {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_fdstat_get(fd: i32 as Fd, stat: i32 as Ptr) -> errno async {
                writes: [Fixed { ptr: 1, len: 24 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_fdstat_set_flags(fd: i32 as Fd, flags: i32 as FdFlags) -> errno sync {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_fdstat_set_rights(
                fd: i32 as Fd, base: i64 as Rights, inheriting: i64 as Rights
            ) -> errno sync {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_filestat_get(fd: i32 as Fd, stat: i32 as Ptr) -> errno async {
                writes: [Fixed { ptr: 1, len: 64 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_filestat_set_size(fd: i32 as Fd, size: i64 as FileSize) -> errno async {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_filestat_set_times(
                fd: i32 as Fd, atim: i64 as Timestamp, mtim: i64 as Timestamp, flags: i32 as FstFlags
            ) -> errno async {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_pread(
                fd: i32 as Fd, iovs: i32 as Ptr, iovs_len: i32 as Count, offset: i64 as FileSize,
                nread: i32 as Ptr
            ) -> errno async {
                writes: [Iovecs { iovs: 1, count: 2, total: 4 }, Fixed { ptr: 4, len: 4 }], reads: [], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            fd_prestat_get(fd: i32 as Fd, prestat: i32 as Ptr) -> errno sync {
                writes: [Fixed { ptr: 1, len: 8 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_prestat_dir_name(fd: i32 as Fd, path: i32 as Ptr, path_len: i32 as Len) -> errno sync {
                writes: [Sized { ptr: 1, len: 2 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_pwrite(
                fd: i32 as Fd, iovs: i32 as Ptr, iovs_len: i32 as Count, offset: i64 as FileSize,
                nwritten: i32 as Ptr
            ) -> errno async {
                writes: [Fixed { ptr: 4, len: 4 }], reads: [Iovecs { iovs: 1, count: 2, total: 4 }], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            fd_read(
                fd: i32 as Fd, iovs: i32 as Ptr, iovs_len: i32 as Count, nread: i32 as Ptr
            ) -> errno async {
                writes: [Iovecs { iovs: 1, count: 2, total: 3 }, Fixed { ptr: 3, len: 4 }], reads: [], inputs: [],
                blocking: OnStdin, stdio: Untouched,
            }
            fd_readdir(
                fd: i32 as Fd, buf: i32 as Ptr, buf_len: i32 as Len, cookie: i64 as DirCookie,
                bufused: i32 as Ptr
            ) -> errno async {
                writes: [Used { buf: 1, used: 4 }, Fixed { ptr: 4, len: 4 }], reads: [], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            fd_renumber(fd: i32 as Fd, to: i32 as Fd) -> errno async {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Renumbers,
            }
            fd_seek(
                fd: i32 as Fd, offset: i64 as FileDelta, whence: i32 as Whence, newoffset: i32 as Ptr
            ) -> errno async {
                writes: [Fixed { ptr: 3, len: 8 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_sync(fd: i32 as Fd) -> errno async {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_tell(fd: i32 as Fd, offset: i32 as Ptr) -> errno sync {
                writes: [Fixed { ptr: 1, len: 8 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            fd_write(
                fd: i32 as Fd, iovs: i32 as Ptr, iovs_len: i32 as Count, nwritten: i32 as Ptr
            ) -> errno async {
                writes: [Fixed { ptr: 3, len: 4 }], reads: [Iovecs { iovs: 1, count: 2, total: 3 }], inputs: [],
                blocking: Never, stdio: Writes,
            }
            path_create_directory(fd: i32 as Fd, path: i32 as Ptr, path_len: i32 as Len) -> errno async {
                writes: [], reads: [Sized { ptr: 1, len: 2 }], inputs: [], blocking: Never, stdio: Untouched,
            }
            path_filestat_get(
                fd: i32 as Fd, flags: i32 as LookupFlags, path: i32 as Ptr, path_len: i32 as Len,
                stat: i32 as Ptr
            ) -> errno async {
                writes: [Fixed { ptr: 4, len: 64 }], reads: [Sized { ptr: 2, len: 3 }], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            path_filestat_set_times(
                fd: i32 as Fd, flags: i32 as LookupFlags, path: i32 as Ptr, path_len: i32 as Len,
                atim: i64 as Timestamp, mtim: i64 as Timestamp, fst_flags: i32 as FstFlags
            ) -> errno async {
                writes: [], reads: [Sized { ptr: 2, len: 3 }], inputs: [], blocking: Never, stdio: Untouched,
            }
            path_link(
                old_fd: i32 as Fd, old_flags: i32 as LookupFlags, old_path: i32 as Ptr,
                old_path_len: i32 as Len, new_fd: i32 as Fd, new_path: i32 as Ptr,
                new_path_len: i32 as Len
            ) -> errno async {
                writes: [], reads: [Sized { ptr: 2, len: 3 }, Sized { ptr: 5, len: 6 }], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            path_open(
                fd: i32 as Fd, dirflags: i32 as LookupFlags, path: i32 as Ptr, path_len: i32 as Len,
                oflags: i32 as OFlags, rights_base: i64 as Rights, rights_inheriting: i64 as Rights,
                fdflags: i32 as FdFlags, opened: i32 as Ptr
            ) -> errno async {
                writes: [Fixed { ptr: 8, len: 4 }], reads: [Sized { ptr: 2, len: 3 }], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            path_readlink(
                fd: i32 as Fd, path: i32 as Ptr, path_len: i32 as Len, buf: i32 as Ptr,
                buf_len: i32 as Len, bufused: i32 as Ptr
            ) -> errno async {
                writes: [Used { buf: 3, used: 5 }, Fixed { ptr: 5, len: 4 }],
                reads: [Sized { ptr: 1, len: 2 }], inputs: [], blocking: Never, stdio: Untouched,
            }
            path_remove_directory(fd: i32 as Fd, path: i32 as Ptr, path_len: i32 as Len) -> errno async {
                writes: [], reads: [Sized { ptr: 1, len: 2 }], inputs: [], blocking: Never, stdio: Untouched,
            }
            path_rename(
                fd: i32 as Fd, old_path: i32 as Ptr, old_path_len: i32 as Len, new_fd: i32 as Fd,
                new_path: i32 as Ptr, new_path_len: i32 as Len
            ) -> errno async {
                writes: [], reads: [Sized { ptr: 1, len: 2 }, Sized { ptr: 4, len: 5 }], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            path_symlink(
                old_path: i32 as Ptr, old_path_len: i32 as Len, fd: i32 as Fd, new_path: i32 as Ptr,
                new_path_len: i32 as Len
            ) -> errno async {
                writes: [], reads: [Sized { ptr: 0, len: 1 }, Sized { ptr: 3, len: 4 }], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            path_unlink_file(fd: i32 as Fd, path: i32 as Ptr, path_len: i32 as Len) -> errno async {
                writes: [], reads: [Sized { ptr: 1, len: 2 }], inputs: [], blocking: Never, stdio: Untouched,
            }
            poll_oneoff(
                subscriptions: i32 as Ptr, events: i32 as Ptr, nsubscriptions: i32 as Count,
                nevents: i32 as Ptr
            ) -> errno async {
                writes: [Records { ptr: 1, count: 3, size: 32 }, Fixed { ptr: 3, len: 4 }], reads: [], inputs: [Array { ptr: 0, count: 2, size: 48 }],
                blocking: Always, stdio: Untouched,
            }
            proc_exit(rval: i32 as ExitCode) -> exit sync {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            proc_raise(sig: i32 as Signal) -> errno sync {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            sched_yield() -> errno sync {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            random_get(buf: i32 as Ptr, buf_len: i32 as Len) -> errno sync {
                writes: [Sized { ptr: 0, len: 1 }], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
            sock_accept(fd: i32 as Fd, flags: i32 as FdFlags, accepted: i32 as Ptr) -> errno sync {
                writes: [Fixed { ptr: 2, len: 4 }], reads: [], inputs: [], blocking: Always, stdio: Untouched,
            }
            sock_recv(
                fd: i32 as Fd, ri_data: i32 as Ptr, ri_data_len: i32 as Count, ri_flags: i32 as RiFlags,
                ro_datalen: i32 as Ptr, ro_flags: i32 as Ptr
            ) -> errno sync {
                writes: [
                    Iovecs { iovs: 1, count: 2, total: 4 }, Fixed { ptr: 4, len: 4 }, Fixed { ptr: 5, len: 2 }
                ],
                reads: [], inputs: [], blocking: Always, stdio: Untouched,
            }
            sock_send(
                fd: i32 as Fd, si_data: i32 as Ptr, si_data_len: i32 as Count, si_flags: i32 as SiFlags,
                so_datalen: i32 as Ptr
            ) -> errno sync {
                writes: [Fixed { ptr: 4, len: 4 }], reads: [Iovecs { iovs: 1, count: 2, total: 4 }], inputs: [],
                blocking: Never, stdio: Untouched,
            }
            sock_shutdown(fd: i32 as Fd, how: i32 as SdFlags) -> errno sync {
                writes: [], reads: [], inputs: [], blocking: Never, stdio: Untouched,
            }
        }
    };
}

/// A region of linear memory, computed from a call's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// `len` bytes at the pointer in argument `ptr`.
    Fixed { ptr: u8, len: u32 },
    /// At the pointer in argument `ptr`, as many bytes as argument `len` says.
    Sized { ptr: u8, len: u8 },
    /// The buffers of the iovec array at argument `iovs` (entries in argument `count`), in
    /// order, up to the total byte count the host stored at the pointer in argument `total`.
    Iovecs { iovs: u8, count: u8, total: u8 },
    /// At the pointer in argument `buf`, the number of bytes the host stored as a u32 at the
    /// pointer in argument `used`.
    Used { buf: u8, used: u8 },
    /// `size`-byte records at the pointer in argument `ptr`, as many as the u32 the host stored
    /// at the pointer in argument `count`.
    Records { ptr: u8, count: u8, size: u32 },
    /// `args_get`/`environ_get`: the pointer array at argument `ptrs` (one u32 per string) and
    /// the NUL-terminated strings at argument `buf`.
    Strings { ptrs: u8, buf: u8, of: StringList },
    /// `size`-byte records at the pointer in argument `ptr`, as many as argument `count` says
    /// (an iovec array, subscriptions).
    Array { ptr: u8, count: u8, size: u32 },
}

impl Span {
    /// The arguments the span takes its pointers and sizes from.
    pub fn arguments(&self) -> Vec<u8> {
        match *self {
            Fixed { ptr, .. } => vec![ptr],
            Sized { ptr, len } => vec![ptr, len],
            Iovecs { iovs, count, total } => vec![iovs, count, total],
            Used { buf, used } => vec![buf, used],
            Records { ptr, count, .. } | Array { ptr, count, .. } => vec![ptr, count],
            Strings { ptrs, buf, .. } => vec![ptrs, buf],
        }
    }
}

/// Which string list `args_get`/`environ_get` copy out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringList {
    /// The program's arguments.
    Args,
    /// The environment, as `NAME=VALUE` strings.
    Env,
}

/// Whether a WASI function may wait for the outside world (so the trace is flushed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// It returns at once.
    Never,
    /// Only when its first argument is descriptor 0 (reading stdin).
    OnStdin,
    /// It may always wait (polling, sockets).
    Always,
}

/// How a WASI function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// An `i32` errno.
    Errno,
    /// Never: `proc_exit` ends the run.
    Exit,
}

/// The core Wasm type of a WASI parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// `i32`: pointers, sizes, descriptors, flags.
    I32,
    /// `i64`: offsets, timestamps, rights.
    I64,
}

/// What a parameter means, for showing it to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A file descriptor.
    Fd,
    /// A pointer into linear memory (what the host reads there or writes there).
    Ptr,
    /// A length in bytes, of the buffer the pointer before it points to.
    Len,
    /// A number of entries (iovecs, subscriptions).
    Count,
    /// `clockid`.
    ClockId,
    /// `timestamp`, in nanoseconds.
    Timestamp,
    /// `filesize`: an offset or length in a file.
    FileSize,
    /// `filedelta`: a signed offset in a file.
    FileDelta,
    /// `whence`.
    Whence,
    /// `advice`.
    Advice,
    /// `rights`.
    Rights,
    /// `lookupflags`.
    LookupFlags,
    /// `oflags`.
    OFlags,
    /// `fdflags`.
    FdFlags,
    /// `fstflags`.
    FstFlags,
    /// `riflags`.
    RiFlags,
    /// `siflags`.
    SiFlags,
    /// `sdflags`.
    SdFlags,
    /// `signal`.
    Signal,
    /// `exitcode`.
    ExitCode,
    /// `dircookie`.
    DirCookie,
}

/// A parameter of a WASI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its witx name.
    pub name: &'static str,
    /// Its core Wasm type.
    pub ty: ParamType,
    /// What it means.
    pub kind: ParamKind,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct WasiFunction {
    /// Its import name.
    pub name: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// How it returns.
    pub returns: Returns,
    /// What it may write into linear memory when it succeeds.
    pub writes: &'static [Span],
    /// What it consumes that a person wants to see (bytes written out, paths).
    pub reads: &'static [Span],
    /// What else it reads from linear memory that neither its arguments nor its write and read
    /// spans pin down (`poll_oneoff`'s subscriptions): replay compares a hash of these bytes,
    /// so a call whose inputs differ diverges at once. (Iovec arrays need none: replay
    /// recomputes the write and read spans from them and compares their places.)
    pub inputs: &'static [Span],
    /// Whether it may wait for the outside world.
    pub blocking: Blocking,
    /// What it does to descriptors that may be the recording's stdout and stderr.
    pub stdio: Stdio,
}

/// What a WASI function does to the descriptors that may be the recording's stdout and
/// stderr: what the recorder follows to know which bytes reached them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// Nothing.
    Untouched,
    /// Writes its reads, guest output, to descriptor argument 0.
    Writes,
    /// Closes descriptor argument 0.
    Closes,
    /// Moves descriptor argument 0 to the number argument 1 names.
    Renumbers,
}

macro_rules! table {
    (@ty i32) => { ParamType::I32 };
    (@ty i64) => { ParamType::I64 };
    (@returns errno) => { Returns::Errno };
    (@returns exit) => { Returns::Exit };
    ($(
        $name:ident($($arg:ident: $ty:ident as $kind:ident),* $(,)?) -> $returns:ident $host:ident {
            writes: [$($writes:tt)*], reads: [$($reads:tt)*], inputs: [$($inputs:tt)*],
            blocking: $blocking:ident, stdio: $stdio:ident $(,)?
        }
    )*) => {
        /// Every function of `wasi_snapshot_preview1`, in the order of the witx file.
        pub const FUNCTIONS: &[WasiFunction] = &[$(
            WasiFunction {
                name: stringify!($name),
                params: &[$(Param { name: stringify!($arg), ty: table!(@ty $ty), kind: ParamKind::$kind }),*],
                returns: table!(@returns $returns),
                writes: &[$($writes)*],
                reads: &[$($reads)*],
                inputs: &[$($inputs)*],
                blocking: Blocking::$blocking,
                stdio: Stdio::$stdio,
            },
        )*];
    };
}

use Span::{Array, Fixed, Iovecs, Records, Sized, Strings, Used};
crate::wasi_preview1!(table);

/// The row of a function name.
pub fn function(name: &str) -> Option<&'static WasiFunction> {
    FUNCTIONS.iter().find(|row| row.name == name)
}

/// The row of an import, when it is a WASI preview 1 function.
pub fn function_of(import: &ImportName) -> Option<&'static WasiFunction> {
    if import.module == MODULE { function(&import.name) } else { None }
}

/// Whether an import is one of WASI preview 1's.
pub fn is_wasi(import: &ImportName) -> bool {
    function_of(import).is_some()
}

/// A WASI argument as shims receive it: its raw value for the write-set spans and its
/// recorded form.
pub trait Arg: Copy {
    /// The value as the spans read it (an `i32` as its unsigned value).
    fn raw(self) -> u64;
    /// The value as a trace stores it.
    fn value(self) -> Value;
}

impl Arg for i32 {
    #[inline]
    fn raw(self) -> u64 {
        u64::from(self as u32)
    }
    #[inline]
    fn value(self) -> Value {
        Value::I32(self)
    }
}

impl Arg for i64 {
    #[inline]
    fn raw(self) -> u64 {
        self as u64
    }
    #[inline]
    fn value(self) -> Value {
        Value::I64(self)
    }
}

/// A recorded argument as the spans read it: an `i32` as its unsigned value (as [`Arg::raw`]),
/// an `i64` as its bits; other types carry no pointer or size (0).
pub fn raw(value: &Value) -> u64 {
    match *value {
        Value::I32(v) => u64::from(v as u32),
        Value::I64(v) => v as u64,
        _ => 0,
    }
}

/// Sizes of the string lists the guest was given, for [`Span::Strings`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSizes {
    /// `(count, total bytes including NULs)` of the arguments.
    pub args: (u32, u32),
    /// `(count, total bytes including NULs)` of the environment.
    pub env: (u32, u32),
}

impl StringSizes {
    /// The sizes of these lists.
    pub fn new(args: &[String], env: &[(String, String)]) -> StringSizes {
        let size = |lens: &mut dyn Iterator<Item = usize>| {
            lens.fold((0u32, 0u32), |(n, b), l| (n + 1, b + l as u32 + 1))
        };
        StringSizes {
            args: size(&mut args.iter().map(String::len)),
            env: size(&mut env.iter().map(|(k, v)| k.len() + 1 + v.len())),
        }
    }
}

/// Appends to `out` the `(offset, len)` regions `spans` cover for a call with arguments
/// `args` (i32 arguments as their unsigned value). Regions outside memory are left out: the
/// host cannot have written there on a successful call.
pub fn regions(
    spans: &[Span],
    args: &[u64],
    memory: &GuestMemory<'_>,
    sizes: StringSizes,
    out: &mut Vec<(u32, u32)>,
) {
    let arg = |i: u8| args.get(usize::from(i)).map_or(0, |v| *v as u32);
    let read_u32 = |at: u32| memory.read(GuestPtr::<u32>::new(at)).ok();
    for span in spans {
        match *span {
            Fixed { ptr, len } => out.push((arg(ptr), len)),
            Sized { ptr, len } => out.push((arg(ptr), arg(len))),
            Used { buf, used } => {
                if let Some(n) = read_u32(arg(used)) {
                    out.push((arg(buf), n));
                }
            }
            Records { ptr, count, size } => {
                if let Some(n) = read_u32(arg(count)) {
                    out.push((arg(ptr), n.saturating_mul(size)));
                }
            }
            Iovecs { iovs, count, total } => {
                let Some(mut left) = read_u32(arg(total)) else { continue };
                for i in 0..arg(count) {
                    if left == 0 {
                        break;
                    }
                    let at = arg(iovs).wrapping_add(i.wrapping_mul(8));
                    let (Some(buf), Some(len)) = (read_u32(at), read_u32(at.wrapping_add(4))) else { break };
                    let take = len.min(left);
                    if take > 0 {
                        out.push((buf, take));
                    }
                    left -= take;
                }
            }
            Strings { ptrs, buf, of } => {
                let (count, bytes) = match of {
                    StringList::Args => sizes.args,
                    StringList::Env => sizes.env,
                };
                out.push((arg(ptrs), count.saturating_mul(4)));
                out.push((arg(buf), bytes));
            }
            Array { ptr, count, size } => out.push((arg(ptr), arg(count).saturating_mul(size))),
        }
    }
}

/// A hash of the bytes a call's `inputs` spans cover, with each region's place and length
/// mixed in, or `None` when the function has none; a word at a time (`FxHash`'s step). A region outside memory hashes as its place alone: the host failed on
/// it, and replay must fail the same way. `scratch` is reused for the regions.
pub fn hash_inputs(
    spans: &[Span],
    args: &[u64],
    memory: &GuestMemory<'_>,
    scratch: &mut Vec<(u32, u32)>,
) -> Option<u64> {
    const SEED: u64 = 0x517c_c1b7_2722_0a95;
    if spans.is_empty() {
        return None;
    }
    let mix = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    scratch.clear();
    regions(spans, args, memory, StringSizes::default(), scratch);
    let mut hash = 0;
    for &(offset, len) in scratch.iter() {
        hash = mix(hash, u64::from(offset) << 32 | u64::from(len));
        if let Ok(bytes) = memory.as_cow(GuestPtr::<[u8]>::new((offset, len))) {
            let mut words = bytes.chunks_exact(8);
            for word in &mut words {
                hash = mix(hash, u64::from_le_bytes(word.try_into().unwrap_or_default()));
            }
            let mut last = [0u8; 8];
            last[..words.remainder().len()].copy_from_slice(words.remainder());
            hash = mix(hash, u64::from_le_bytes(last));
        }
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every function of the witx file has exactly one row, and every argument a row names
    /// exists in the function's signature.
    #[test]
    fn table_covers_the_witx_functions() {
        assert_eq!(FUNCTIONS.len(), 46);
        for row in FUNCTIONS {
            let rows = FUNCTIONS.iter().filter(|other| other.name == row.name).count();
            assert_eq!(rows, 1, "{} has {rows} rows", row.name);
            for span in row.writes.iter().chain(row.reads) {
                for a in span.arguments() {
                    assert!(usize::from(a) < row.params.len(), "{}: argument {a} out of range", row.name);
                }
            }
        }
        let outputs: Vec<&str> =
            FUNCTIONS.iter().filter(|f| f.stdio == Stdio::Writes).map(|f| f.name).collect();
        assert_eq!(outputs, ["fd_write"]);
        let exits: Vec<&str> =
            FUNCTIONS.iter().filter(|f| f.returns == Returns::Exit).map(|f| f.name).collect();
        assert_eq!(exits, ["proc_exit"]);
    }

    fn regions_of(name: &str, args: &[u64], memory: &mut [u8]) -> Vec<(u32, u32)> {
        let row = function(name).unwrap();
        let memory = GuestMemory::Unshared(memory);
        let mut out = Vec::new();
        let sizes = StringSizes::new(&["a.wasm".into(), "xy".into()], &[("K".into(), "v".into())]);
        regions(row.writes, args, &memory, sizes, &mut out);
        out
    }

    #[test]
    fn iovecs_cover_exactly_the_bytes_read() {
        let mut memory = vec![0u8; 256];
        // Two iovecs: 10 bytes at 100, 20 bytes at 150; the host read 15 bytes.
        memory[16..20].copy_from_slice(&100u32.to_le_bytes());
        memory[20..24].copy_from_slice(&10u32.to_le_bytes());
        memory[24..28].copy_from_slice(&150u32.to_le_bytes());
        memory[28..32].copy_from_slice(&20u32.to_le_bytes());
        memory[40..44].copy_from_slice(&15u32.to_le_bytes());
        let got = regions_of("fd_read", &[3, 16, 2, 40], &mut memory);
        assert_eq!(got, vec![(100, 10), (150, 5), (40, 4)]);
    }

    #[test]
    fn strings_cover_pointer_array_and_buffer() {
        let mut memory = vec![0u8; 64];
        assert_eq!(regions_of("args_get", &[8, 32], &mut memory), vec![(8, 8), (32, 10)]);
        assert_eq!(regions_of("environ_get", &[8, 32], &mut memory), vec![(8, 4), (32, 4)]);
    }

    #[test]
    fn counted_records_and_used_bytes() {
        let mut memory = vec![0u8; 256];
        memory[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(regions_of("poll_oneoff", &[0, 64, 3, 4], &mut memory), vec![(64, 96), (4, 4)]);
        assert_eq!(regions_of("fd_readdir", &[3, 64, 128, 0, 4], &mut memory), vec![(64, 3), (4, 4)]);
        assert_eq!(regions_of("random_get", &[64, 17], &mut memory), vec![(64, 17)]);
    }
}
