//! Events described for people, with what the WASI table knows: a host call's arguments named
//! and decoded (descriptors, flags, clocks), the paths and buffers it handed over, its errno by
//! name, and the values it wrote through its out-pointers. One summary line per event
//! (`fd_write(1, "hello\n") = 6`) and the details behind it.

use std::fmt::Write as _;

use wtrace_traces::display::quote_bytes;
use wtrace_traces::{Event, Frame, HostCall, ImportName, MemoryBytes, Outcome, SourceLocation, Trap, Value};

use crate::introspect::ModuleInfo;
use crate::outcome::function_name;
use crate::wasi::{self, ParamKind, Returns, Span, WasiFunction};

/// WASI preview 1 errno names, by value.
pub const ERRNO_NAMES: [&str; 77] = [
    "SUCCESS",
    "2BIG",
    "ACCES",
    "ADDRINUSE",
    "ADDRNOTAVAIL",
    "AFNOSUPPORT",
    "AGAIN",
    "ALREADY",
    "BADF",
    "BADMSG",
    "BUSY",
    "CANCELED",
    "CHILD",
    "CONNABORTED",
    "CONNREFUSED",
    "CONNRESET",
    "DEADLK",
    "DESTADDRREQ",
    "DOM",
    "DQUOT",
    "EXIST",
    "FAULT",
    "FBIG",
    "HOSTUNREACH",
    "IDRM",
    "ILSEQ",
    "INPROGRESS",
    "INTR",
    "INVAL",
    "IO",
    "ISCONN",
    "ISDIR",
    "LOOP",
    "MFILE",
    "MLINK",
    "MSGSIZE",
    "MULTIHOP",
    "NAMETOOLONG",
    "NETDOWN",
    "NETRESET",
    "NETUNREACH",
    "NFILE",
    "NOBUFS",
    "NODEV",
    "NOENT",
    "NOEXEC",
    "NOLCK",
    "NOLINK",
    "NOMEM",
    "NOMSG",
    "NOPROTOOPT",
    "NOSPC",
    "NOSYS",
    "NOTCONN",
    "NOTDIR",
    "NOTEMPTY",
    "NOTRECOVERABLE",
    "NOTSOCK",
    "NOTSUP",
    "NOTTY",
    "NXIO",
    "OVERFLOW",
    "OWNERDEAD",
    "PERM",
    "PIPE",
    "PROTO",
    "PROTONOSUPPORT",
    "PROTOTYPE",
    "RANGE",
    "ROFS",
    "SPIPE",
    "SRCH",
    "STALE",
    "TIMEDOUT",
    "TXTBSY",
    "XDEV",
    "NOTCAPABLE",
];

/// `E` + the errno's name (`EBADF`), or the number when WASI has no such errno.
pub fn errno_name(errno: i32) -> String {
    match usize::try_from(errno).ok().and_then(|i| ERRNO_NAMES.get(i)) {
        Some(name) => format!("E{name}"),
        None => format!("errno {errno}"),
    }
}

/// The bits of a flags type with their names.
fn flag_names(kind: ParamKind) -> &'static [(u64, &'static str)] {
    match kind {
        ParamKind::LookupFlags => &[(1, "SYMLINK_FOLLOW")],
        ParamKind::OFlags => &[(1, "CREAT"), (2, "DIRECTORY"), (4, "EXCL"), (8, "TRUNC")],
        ParamKind::FdFlags => &[(1, "APPEND"), (2, "DSYNC"), (4, "NONBLOCK"), (8, "RSYNC"), (16, "SYNC")],
        ParamKind::FstFlags => &[(1, "ATIM"), (2, "ATIM_NOW"), (4, "MTIM"), (8, "MTIM_NOW")],
        ParamKind::RiFlags => &[(1, "RECV_PEEK"), (2, "RECV_WAITALL")],
        ParamKind::SdFlags => &[(1, "RD"), (2, "WR")],
        _ => &[],
    }
}

/// The value of a parameter of `kind` as people read it: `1 (stdout)`, `MONOTONIC`,
/// `CREAT|TRUNC`, `0x1040`.
pub fn param_value(kind: ParamKind, value: &Value) -> String {
    let raw = match *value {
        Value::I32(_) | Value::I64(_) => wasi::raw(value),
        other => return other.to_string(),
    };
    let enumerated = |names: &[&str]| {
        usize::try_from(raw)
            .ok()
            .and_then(|i| names.get(i))
            .map_or_else(|| raw.to_string(), |n| (*n).to_owned())
    };
    match kind {
        ParamKind::Fd => match raw {
            0 => "0 (stdin)".into(),
            1 => "1 (stdout)".into(),
            2 => "2 (stderr)".into(),
            _ => raw.to_string(),
        },
        ParamKind::Ptr | ParamKind::Rights => format!("{raw:#x}"),
        ParamKind::FileDelta => (raw as i64).to_string(),
        ParamKind::ClockId => {
            enumerated(&["REALTIME", "MONOTONIC", "PROCESS_CPUTIME_ID", "THREAD_CPUTIME_ID"])
        }
        ParamKind::Whence => enumerated(&["SET", "CUR", "END"]),
        ParamKind::Advice => {
            enumerated(&["NORMAL", "SEQUENTIAL", "RANDOM", "WILLNEED", "DONTNEED", "NOREUSE"])
        }
        ParamKind::LookupFlags
        | ParamKind::OFlags
        | ParamKind::FdFlags
        | ParamKind::FstFlags
        | ParamKind::RiFlags
        | ParamKind::SdFlags => {
            let names = flag_names(kind);
            let mut parts: Vec<String> =
                names.iter().filter(|(bit, _)| raw & bit != 0).map(|(_, n)| (*n).to_owned()).collect();
            let known: u64 = names.iter().map(|(bit, _)| bit).sum();
            if raw & !known != 0 {
                parts.push(format!("{:#x}", raw & !known));
            }
            if parts.is_empty() { "0".into() } else { parts.join("|") }
        }
        ParamKind::Len
        | ParamKind::Count
        | ParamKind::Timestamp
        | ParamKind::FileSize
        | ParamKind::SiFlags
        | ParamKind::Signal
        | ParamKind::ExitCode
        | ParamKind::DirCookie => raw.to_string(),
    }
}

/// A host call, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDescription {
    /// `fd_write`, or `env::log` for an import outside WASI.
    pub name: String,
    /// Each argument: its name (from the WASI table, else `argN`) and value.
    pub args: Vec<(String, String)>,
    /// `0 (SUCCESS)`, `8 (EBADF)`, `exit 3`, `error: ...`, or the returned values.
    pub outcome: String,
    /// Whether the call failed (a non-zero errno or a host error).
    pub failed: bool,
    /// Values written through out-pointers of 4 or 8 bytes: name and value.
    pub outs: Vec<(String, String)>,
    /// Each written span with the name of the argument that points at it, when one does.
    pub writes: Vec<(Option<&'static str>, MemoryBytes)>,
    /// Each span read, with the name of the argument that points at it, when one does.
    pub reads: Vec<(Option<&'static str>, MemoryBytes)>,
    /// The whole call on one line.
    pub summary: String,
}

/// The WASI row of an import, if it is one.
fn row_of(imports: &[ImportName], call: &HostCall) -> (Option<&'static WasiFunction>, String) {
    match imports.get(call.import.0 as usize) {
        Some(import) => match wasi::function_of(import) {
            Some(row) => (Some(row), row.name.to_owned()),
            None => (None, import.to_string()),
        },
        None => (None, format!("import #{}", call.import.0)),
    }
}

/// Describes a host call, given the trace's import table.
pub fn call(imports: &[ImportName], call: &HostCall) -> CallDescription {
    let (row, name) = row_of(imports, call);
    let arg = |i: u8| call.params.get(usize::from(i)).map(wasi::raw);
    let args: Vec<(String, String)> = call
        .params
        .iter()
        .enumerate()
        .map(|(i, value)| match row.and_then(|r| r.params.get(i)) {
            Some(param) => (param.name.to_owned(), param_value(param.kind, value)),
            None => (format!("arg{i}"), value.to_string()),
        })
        .collect();
    let (outcome, failed, errno) = match &call.outcome {
        Outcome::Returned(values) if row.is_some_and(|r| r.returns == Returns::Errno) => match values.first()
        {
            Some(Value::I32(0)) => ("0 (SUCCESS)".to_owned(), false, Some(0)),
            Some(Value::I32(e)) => (format!("{e} ({})", errno_name(*e)), true, Some(*e)),
            _ => (format!("{values:?}"), false, None),
        },
        Outcome::Returned(values) => {
            let shown: Vec<String> = values.iter().map(ToString::to_string).collect();
            (shown.join(", "), false, None)
        }
        Outcome::Exited(code) => (format!("exit {code}"), false, None),
        Outcome::Error(message) => {
            (format!("error: {}", message.lines().last().unwrap_or_default()), true, None)
        }
    };
    let pointer_name = |offset: u64, spans: &[Span]| -> Option<&'static str> {
        let row = row?;
        spans.iter().find_map(|span| {
            let ptr = match *span {
                Span::Fixed { ptr, .. }
                | Span::Sized { ptr, .. }
                | Span::Records { ptr, .. }
                | Span::Array { ptr, .. } => ptr,
                Span::Used { buf, .. } | Span::Strings { buf, .. } => buf,
                Span::Iovecs { iovs, .. } => iovs,
            };
            (arg(ptr) == Some(offset) && !matches!(span, Span::Iovecs { .. }))
                .then(|| row.params.get(usize::from(ptr)).map(|p| p.name))
                .flatten()
        })
    };
    let mut outs = Vec::new();
    if let Some(row) = row {
        for span in row.writes {
            if let Span::Fixed { ptr, len: 4 | 8 } = *span
                && let Some(write) = call.writes.iter().find(|w| Some(w.offset) == arg(ptr))
            {
                let mut bytes = [0u8; 8];
                let n = write.bytes.len().min(8);
                bytes[..n].copy_from_slice(&write.bytes[..n]);
                let name = row.params.get(usize::from(ptr)).map_or("out", |p| p.name);
                outs.push((name.to_owned(), u64::from_le_bytes(bytes).to_string()));
            }
        }
    }
    let label = |spans: &[Span], list: &[MemoryBytes]| -> Vec<(Option<&'static str>, MemoryBytes)> {
        list.iter().map(|m| (pointer_name(m.offset, spans), m.clone())).collect()
    };
    let writes = label(row.map_or(&[], |r| r.writes), &call.writes);
    let reads = label(row.map_or(&[], |r| r.reads), &call.reads);
    let summary = summary_line(&name, row, call, &outs, &outcome, errno);
    CallDescription { name, args, outcome, failed, outs, writes, reads, summary }
}

/// `fd_write(1, "hello\n") = 6`: the arguments that are not pointers or lengths, the bytes the
/// host read in place of their pointer, and the first value written out (else the errno).
fn summary_line(
    name: &str,
    row: Option<&WasiFunction>,
    call: &HostCall,
    outs: &[(String, String)],
    outcome: &str,
    errno: Option<i32>,
) -> String {
    let Some(row) = row else {
        let params: Vec<String> = call.params.iter().map(ToString::to_string).collect();
        return match &call.outcome {
            Outcome::Returned(values) if values.is_empty() => format!("{name}({})", params.join(", ")),
            _ => format!("{name}({}) = {outcome}", params.join(", ")),
        };
    };
    let mut shown = Vec::new();
    let mut read_index = 0;
    for (i, param) in row.params.iter().enumerate() {
        let i = i as u8;
        let read_here = row.reads.iter().any(|span| match *span {
            Span::Sized { ptr, .. } | Span::Fixed { ptr, .. } => ptr == i,
            Span::Iovecs { iovs, .. } => iovs == i,
            _ => false,
        });
        if read_here {
            let iovecs = row.reads.iter().any(|s| matches!(s, Span::Iovecs { iovs, .. } if *iovs == i));
            let bytes: Vec<u8> = if iovecs {
                // An iovec array: everything it handed over, in order.
                call.reads.iter().flat_map(|r| r.bytes.iter().copied()).collect()
            } else {
                let bytes = call.reads.get(read_index).map(|r| r.bytes.clone()).unwrap_or_default();
                read_index += 1;
                bytes
            };
            shown.push(quote_bytes(&bytes, 40));
            continue;
        }
        if matches!(param.kind, ParamKind::Ptr | ParamKind::Len | ParamKind::Count | ParamKind::Rights) {
            continue;
        }
        if let Some(value) = call.params.get(usize::from(i)) {
            let flags = flag_names(param.kind);
            if !flags.is_empty() && wasi::raw(value) == 0 {
                // No flags set: nothing worth a place on one line.
                continue;
            }
            let text = param_value(param.kind, value);
            // In a summary, `1` says `stdout` well enough.
            shown.push(text.split(' ').next().unwrap_or_default().to_owned());
        }
    }
    let result = match (&call.outcome, errno) {
        (Outcome::Exited(code), _) => return format!("{name}({code})"),
        (Outcome::Error(_), _) => format!("! {outcome}"),
        (_, Some(e)) if e != 0 => format!("= {}", errno_name(e)),
        _ => match outs.first() {
            // What a read brought in, after the count.
            Some((_, value))
                if row.writes.iter().any(|s| matches!(s, Span::Iovecs { .. } | Span::Used { .. })) =>
            {
                let data = data_read(row, call);
                format!("= {value} {}", quote_bytes(&data, 32))
            }
            Some((_, value)) => format!("= {value}"),
            None if row.name == "random_get" || row.name == "fd_prestat_dir_name" => {
                let bytes = call.writes.first().map(|w| w.bytes.as_slice()).unwrap_or_default();
                format!("= {}", quote_bytes(bytes, 24))
            }
            None => "= 0".into(),
        },
    };
    format!("{name}({}) {result}", shown.join(", "))
}

/// The bytes a read brought into the guest's buffers: every write but those through the
/// function's fixed-size out-pointers (the counts).
fn data_read(row: &WasiFunction, call: &HostCall) -> Vec<u8> {
    let counts: Vec<u64> = row
        .writes
        .iter()
        .filter_map(|span| match *span {
            Span::Fixed { ptr, .. } => call.params.get(usize::from(ptr)).map(wasi::raw),
            _ => None,
        })
        .collect();
    call.writes
        .iter()
        .filter(|w| !counts.contains(&w.offset))
        .flat_map(|w| w.bytes.iter().copied())
        .take(64)
        .collect()
}

/// One line for a trap: `TRAP out of bounds memory access in parse_header +0x2a`.
pub fn trap_line(trap: &Trap) -> String {
    let message = trap.message.strip_prefix("wasm trap: ").unwrap_or(&trap.message);
    let mut text = format!("TRAP {message}");
    if let Some(frame) = trap.frames.first() {
        let name = function_name(frame.func_name.as_deref(), frame.func_index);
        let _ = write!(text, " in {name}");
        if let Some(offset) = frame.func_offset {
            let _ = write!(text, " +{offset:#x}");
        }
    }
    text
}

/// A frame as Wasmtime writes a backtrace line — `  0:    0x1a3 - app.wasm!parse_header` —
/// with ` at src/lib.rs:12` when the frame records a source location or the module's DWARF has
/// one. Names come from the frame, else from the module's name section, demangled.
pub fn frame_line(index: usize, frame: &Frame, module_name: &str, module: Option<&ModuleInfo>) -> String {
    let raw = frame.func_name.as_deref().or_else(|| module.and_then(|m| m.raw_name(frame.func_index)));
    let name = function_name(raw, frame.func_index);
    let pc = frame.module_offset.map_or_else(|| " ".repeat(8), |pc| format!("{pc:>#8x}"));
    let mut text = format!("{index:>3}: {pc} - {module_name}!{name}");
    if let Some(location) = frame_location(frame, module) {
        let _ = write!(text, " at {}:{}", location.file, location.line);
    }
    text
}

/// Where a frame is in the source: as recorded, else from the module's DWARF.
pub fn frame_location(frame: &Frame, module: Option<&ModuleInfo>) -> Option<SourceLocation> {
    frame.source.clone().or_else(|| module?.location(frame.module_offset?))
}

/// The summary line of any event.
pub fn summary(imports: &[ImportName], event: &Event) -> String {
    match event {
        Event::HostCall(c) => call(imports, c).summary,
        Event::Trap(trap) => trap_line(trap),
        Event::Exit { code } => format!("EXIT status {code}"),
        Event::Returned { values } => {
            let values: Vec<String> = values.iter().map(ToString::to_string).collect();
            format!("RETURNED [{}]", values.join(", "))
        }
        Event::Interrupted(interruption) => {
            let mut text = format!("INTERRUPTED by {}", interruption.cause_name());
            if let Some(frame) = interruption.frames.first() {
                let name = function_name(frame.func_name.as_deref(), frame.func_index);
                let _ = write!(text, " in {name}");
            }
            if let Some(import) = interruption.in_host_call.and_then(|i| imports.get(i.0 as usize)) {
                let _ = write!(text, " waiting in {}", import.name);
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use wtrace_traces::ImportId;

    use super::*;

    fn imports() -> Vec<ImportName> {
        ["fd_write", "path_open", "clock_time_get", "fd_read", "proc_exit"]
            .iter()
            .map(|n| ImportName { module: wasi::MODULE.into(), name: (*n).into() })
            .chain([ImportName { module: "env".into(), name: "log".into() }])
            .collect()
    }

    fn host_call(
        import: u32,
        params: Vec<Value>,
        errno: i32,
        writes: Vec<MemoryBytes>,
        reads: Vec<MemoryBytes>,
    ) -> HostCall {
        HostCall {
            import: ImportId(import),
            params,
            outcome: Outcome::Returned(vec![Value::I32(errno)]),
            writes,
            reads,
            printed: None,
            input_hash: None,
        }
    }

    fn bytes(offset: u64, bytes: &[u8]) -> MemoryBytes {
        MemoryBytes { memory: 0, offset, bytes: bytes.to_vec() }
    }

    #[test]
    fn summaries_read_like_calls() {
        let write = host_call(
            0,
            vec![Value::I32(1), Value::I32(16), Value::I32(1), Value::I32(32)],
            0,
            vec![bytes(32, &6u32.to_le_bytes())],
            vec![bytes(100, b"hello\n")],
        );
        assert_eq!(call(&imports(), &write).summary, r#"fd_write(1, "hello\n") = 6"#);
        let open = host_call(
            1,
            vec![
                Value::I32(3),
                Value::I32(1),
                Value::I32(64),
                Value::I32(11),
                Value::I32(9),
                Value::I64(0),
                Value::I64(0),
                Value::I32(0),
                Value::I32(80),
            ],
            0,
            vec![bytes(80, &4u32.to_le_bytes())],
            vec![bytes(64, b"data/in.txt")],
        );
        let described = call(&imports(), &open);
        assert_eq!(described.summary, r#"path_open(3, SYMLINK_FOLLOW, "data/in.txt", CREAT|TRUNC) = 4"#);
        assert_eq!(described.outs, vec![("opened".to_owned(), "4".to_owned())]);
        assert_eq!(described.reads[0].0, Some("path"));
        assert!(described.args.contains(&("oflags".to_owned(), "CREAT|TRUNC".to_owned())));
        let bad = host_call(
            0,
            vec![Value::I32(9), Value::I32(16), Value::I32(1), Value::I32(32)],
            8,
            vec![],
            vec![],
        );
        let described = call(&imports(), &bad);
        assert_eq!(described.summary, r#"fd_write(9, "") = EBADF"#);
        assert!(described.failed);
        assert_eq!(described.outcome, "8 (EBADF)");
        let clock = host_call(
            2,
            vec![Value::I32(1), Value::I64(1000), Value::I32(8)],
            0,
            vec![bytes(8, &42u64.to_le_bytes())],
            vec![],
        );
        assert_eq!(call(&imports(), &clock).summary, "clock_time_get(MONOTONIC, 1000) = 42");
        let read = host_call(
            3,
            vec![Value::I32(4), Value::I32(16), Value::I32(1), Value::I32(40)],
            0,
            vec![bytes(200, b"HDR\x01"), bytes(40, &4u32.to_le_bytes())],
            vec![],
        );
        assert_eq!(call(&imports(), &read).summary, r#"fd_read(4) = 4 "HDR\x01""#);
        let exit = HostCall {
            import: ImportId(4),
            params: vec![Value::I32(3)],
            outcome: Outcome::Exited(3),
            writes: vec![],
            reads: vec![],
            printed: None,
            input_hash: None,
        };
        assert_eq!(call(&imports(), &exit).summary, "proc_exit(3)");
        let other = HostCall {
            import: ImportId(5),
            params: vec![Value::I32(7)],
            outcome: Outcome::Returned(vec![]),
            writes: vec![],
            reads: vec![],
            printed: None,
            input_hash: None,
        };
        assert_eq!(call(&imports(), &other).summary, "env::log(7)");
    }

    #[test]
    fn flags_and_errnos_have_names() {
        assert_eq!(param_value(ParamKind::FdFlags, &Value::I32(1 | 4 | 64)), "APPEND|NONBLOCK|0x40");
        assert_eq!(param_value(ParamKind::OFlags, &Value::I32(0)), "0");
        assert_eq!(param_value(ParamKind::Whence, &Value::I32(2)), "END");
        assert_eq!(param_value(ParamKind::Fd, &Value::I32(2)), "2 (stderr)");
        assert_eq!(errno_name(44), "ENOENT");
        assert_eq!(errno_name(76), "ENOTCAPABLE");
        assert_eq!(errno_name(900), "errno 900");
    }
}
