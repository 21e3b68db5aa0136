//! What each `wasi_snapshot_preview1` function writes into linear memory and which of the bytes
//! it consumes are worth showing, as data: one row per function, computed from the call's
//! arguments and, after the call, the counts the host stored (bytes read, entries used).
//!
//! Out-pointers are written only when the call returns errno 0 (`ESUCCESS`), so a failed call
//! records no writes. Recording a span the host did not change is harmless (replay writes
//! back the bytes that were already there) but a span it changed and that is missing breaks
//! replay, so every row errs on the side of covering.

use wiggle::{GuestMemory, GuestPtr};

/// A region of linear memory, computed from a call's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Span {
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
}

/// Which string list `args_get`/`environ_get` copy out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringList {
    Args,
    Env,
}

/// Sizes of the string lists the guest was given, for [`Span::Strings`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StringSizes {
    pub(crate) args: (u32, u32),
    pub(crate) env: (u32, u32),
}

impl StringSizes {
    /// `(count, total bytes including NULs)` of each list.
    pub(crate) fn new(args: &[String], env: &[(String, String)]) -> StringSizes {
        let size = |lens: &mut dyn Iterator<Item = usize>| {
            lens.fold((0u32, 0u32), |(n, b), l| (n + 1, b + l as u32 + 1))
        };
        StringSizes {
            args: size(&mut args.iter().map(String::len)),
            env: size(&mut env.iter().map(|(k, v)| k.len() + 1 + v.len())),
        }
    }
}

/// Whether a WASI function may wait for the outside world (so the trace is flushed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocking {
    Never,
    /// Only when its first argument is descriptor 0 (reading stdin).
    OnStdin,
    Always,
}

/// One WASI function: what it may write, and what it consumes that people want to see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteSet {
    pub(crate) name: &'static str,
    pub(crate) writes: &'static [Span],
    pub(crate) reads: &'static [Span],
    pub(crate) blocking: Blocking,
}

const fn row(name: &'static str, writes: &'static [Span], reads: &'static [Span]) -> WriteSet {
    WriteSet { name, writes, reads, blocking: Blocking::Never }
}

const fn blocking(row: WriteSet, blocking: Blocking) -> WriteSet {
    WriteSet { blocking, ..row }
}

use Span::{Fixed, Iovecs, Records, Sized, Strings, Used};

/// All 46 functions of `wasi_snapshot_preview1`, in the order of the witx file. Sizes are of
/// the witx types: timestamp 8, filesize 8, fd 4, size 4, fdstat 24, filestat 64, prestat 8,
/// event 32, roflags 2.
pub(crate) const WRITE_SETS: &[WriteSet] = &[
    row("args_get", &[Strings { ptrs: 0, buf: 1, of: StringList::Args }], &[]),
    row("args_sizes_get", &[Fixed { ptr: 0, len: 4 }, Fixed { ptr: 1, len: 4 }], &[]),
    row("environ_get", &[Strings { ptrs: 0, buf: 1, of: StringList::Env }], &[]),
    row("environ_sizes_get", &[Fixed { ptr: 0, len: 4 }, Fixed { ptr: 1, len: 4 }], &[]),
    row("clock_res_get", &[Fixed { ptr: 1, len: 8 }], &[]),
    row("clock_time_get", &[Fixed { ptr: 2, len: 8 }], &[]),
    row("fd_advise", &[], &[]),
    row("fd_allocate", &[], &[]),
    row("fd_close", &[], &[]),
    row("fd_datasync", &[], &[]),
    row("fd_fdstat_get", &[Fixed { ptr: 1, len: 24 }], &[]),
    row("fd_fdstat_set_flags", &[], &[]),
    row("fd_fdstat_set_rights", &[], &[]),
    row("fd_filestat_get", &[Fixed { ptr: 1, len: 64 }], &[]),
    row("fd_filestat_set_size", &[], &[]),
    row("fd_filestat_set_times", &[], &[]),
    row("fd_pread", &[Iovecs { iovs: 1, count: 2, total: 4 }, Fixed { ptr: 4, len: 4 }], &[]),
    row("fd_prestat_get", &[Fixed { ptr: 1, len: 8 }], &[]),
    row("fd_prestat_dir_name", &[Sized { ptr: 1, len: 2 }], &[]),
    row("fd_pwrite", &[Fixed { ptr: 4, len: 4 }], &[Iovecs { iovs: 1, count: 2, total: 4 }]),
    blocking(
        row("fd_read", &[Iovecs { iovs: 1, count: 2, total: 3 }, Fixed { ptr: 3, len: 4 }], &[]),
        Blocking::OnStdin,
    ),
    row("fd_readdir", &[Used { buf: 1, used: 4 }, Fixed { ptr: 4, len: 4 }], &[]),
    row("fd_renumber", &[], &[]),
    row("fd_seek", &[Fixed { ptr: 3, len: 8 }], &[]),
    row("fd_sync", &[], &[]),
    row("fd_tell", &[Fixed { ptr: 1, len: 8 }], &[]),
    row("fd_write", &[Fixed { ptr: 3, len: 4 }], &[Iovecs { iovs: 1, count: 2, total: 3 }]),
    row("path_create_directory", &[], &[Sized { ptr: 1, len: 2 }]),
    row("path_filestat_get", &[Fixed { ptr: 4, len: 64 }], &[Sized { ptr: 2, len: 3 }]),
    row("path_filestat_set_times", &[], &[Sized { ptr: 2, len: 3 }]),
    row("path_link", &[], &[Sized { ptr: 2, len: 3 }, Sized { ptr: 5, len: 6 }]),
    row("path_open", &[Fixed { ptr: 8, len: 4 }], &[Sized { ptr: 2, len: 3 }]),
    row("path_readlink", &[Used { buf: 3, used: 5 }, Fixed { ptr: 5, len: 4 }], &[Sized { ptr: 1, len: 2 }]),
    row("path_remove_directory", &[], &[Sized { ptr: 1, len: 2 }]),
    row("path_rename", &[], &[Sized { ptr: 1, len: 2 }, Sized { ptr: 4, len: 5 }]),
    row("path_symlink", &[], &[Sized { ptr: 0, len: 1 }, Sized { ptr: 3, len: 4 }]),
    row("path_unlink_file", &[], &[Sized { ptr: 1, len: 2 }]),
    blocking(
        row("poll_oneoff", &[Records { ptr: 1, count: 3, size: 32 }, Fixed { ptr: 3, len: 4 }], &[]),
        Blocking::Always,
    ),
    row("proc_exit", &[], &[]),
    row("proc_raise", &[], &[]),
    row("sched_yield", &[], &[]),
    row("random_get", &[Sized { ptr: 0, len: 1 }], &[]),
    blocking(row("sock_accept", &[Fixed { ptr: 2, len: 4 }], &[]), Blocking::Always),
    blocking(
        row(
            "sock_recv",
            &[Iovecs { iovs: 1, count: 2, total: 4 }, Fixed { ptr: 4, len: 4 }, Fixed { ptr: 5, len: 2 }],
            &[],
        ),
        Blocking::Always,
    ),
    row("sock_send", &[Fixed { ptr: 4, len: 4 }], &[Iovecs { iovs: 1, count: 2, total: 4 }]),
    row("sock_shutdown", &[], &[]),
];

/// The row for a function name.
pub(crate) fn write_set(name: &str) -> Option<&'static WriteSet> {
    WRITE_SETS.iter().find(|row| row.name == name)
}

/// Appends to `out` the `(offset, len)` regions `spans` cover for a call with arguments
/// `args` (i32 arguments as their unsigned value). Regions outside memory are left out: the
/// host cannot have written there on a successful call.
pub(crate) fn regions(
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every function of the witx file has exactly one row, and every argument a row names
    /// exists in the function's signature.
    #[test]
    fn table_covers_the_witx_functions() {
        assert_eq!(WRITE_SETS.len(), 46);
        for (name, params) in crate::wasi::SIGNATURES {
            let row = write_set(name).unwrap_or_else(|| panic!("{name} has no row"));
            for span in row.writes.iter().chain(row.reads) {
                let args: Vec<u8> = match *span {
                    Fixed { ptr, .. } => vec![ptr],
                    Sized { ptr, len } => vec![ptr, len],
                    Iovecs { iovs, count, total } => vec![iovs, count, total],
                    Used { buf, used } => vec![buf, used],
                    Records { ptr, count, .. } => vec![ptr, count],
                    Strings { ptrs, buf, .. } => vec![ptrs, buf],
                };
                for a in args {
                    assert!(usize::from(a) < params.len(), "{name}: argument {a} out of range");
                }
            }
        }
        assert_eq!(crate::wasi::SIGNATURES.len(), 46);
    }

    fn regions_of(name: &str, args: &[u64], memory: &mut [u8]) -> Vec<(u32, u32)> {
        let row = write_set(name).unwrap();
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
