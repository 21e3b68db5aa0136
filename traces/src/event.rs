//! The event model: what a trace records about one run.
//!
//! Events carry no sequence number of their own: an event's *seq* is its position in the
//! trace, implied by the frame index, so it costs no bytes on disk.

use bincode::{Decode, Encode};

use crate::native::NativeSnapshot;

/// Index into [`crate::Header::imports`]: import names are interned once in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct ImportId(pub u32);

/// One recorded event.
///
/// On disk each event is a record `len, kind, body` (see [`crate::codec`]), so a reader can
/// skip event kinds added by a later minor format version.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The guest called an import and the host answered.
    HostCall(HostCall),
    /// The guest trapped.
    Trap(Box<Trap>),
    /// The guest exited through `proc_exit` or by returning from `_start`.
    Exit {
        /// The exit status.
        code: i32,
    },
    /// An `--invoke`d export returned these values.
    Returned {
        /// The values returned.
        values: Vec<Value>,
    },
    /// The recording was interrupted (Ctrl-C, `kill`) before the run ended (format 1.1 on).
    Interrupted(Box<Interruption>),
}

/// Where the guest was when its recording stopped before the run ended: interrupted by a
/// signal, or failed (the trace could not take the next event).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Interruption {
    /// Why the recording stopped.
    pub cause: StopCause,
    /// The Wasm backtrace at that point, innermost frame first.
    pub frames: Vec<Frame>,
    /// The import whose call the guest was in (not recorded: it never returned, or could not
    /// be written), or `None` when it was running Wasm code.
    pub in_host_call: Option<ImportId>,
    /// Milliseconds the guest ran after its last recorded event before it stopped; a replay
    /// runs about as long before it stops there.
    pub after_ms: u64,
}

/// Why a recording stopped before the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum StopCause {
    /// This signal (1 SIGHUP, 2 SIGINT, 15 SIGTERM) interrupted it.
    Signal(i32),
    /// The recorder could not go on: an event too large to record, a failed write.
    Failed(String),
}

impl Interruption {
    /// A run that could not go on for `reason` (a recording failure, the cut-off end of a
    /// replayed recording), stopped where `frames` say, in the call to `in_host_call` if any.
    pub fn failed(
        reason: impl Into<String>,
        frames: Vec<Frame>,
        in_host_call: Option<ImportId>,
    ) -> Interruption {
        Interruption { cause: StopCause::Failed(reason.into()), frames, in_host_call, after_ms: 0 }
    }

    /// `SIGINT`, `SIGTERM`, ... for a signal; `a recording failure (...)` for a failure.
    pub fn cause_name(&self) -> String {
        match &self.cause {
            StopCause::Signal(1) => "SIGHUP".into(),
            StopCause::Signal(2) => "SIGINT".into(),
            StopCause::Signal(15) => "SIGTERM".into(),
            StopCause::Signal(n) => format!("signal {n}"),
            StopCause::Failed(reason) => format!("a recording failure ({reason})"),
        }
    }
}

/// The kinds of event, in the order their counts are kept in the frame index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// [`Event::HostCall`]
    HostCall,
    /// [`Event::Trap`]
    Trap,
    /// [`Event::Exit`]
    Exit,
    /// [`Event::Returned`]
    Returned,
    /// [`Event::Interrupted`]
    Interrupted,
}

impl EventKind {
    /// Every kind, in index order.
    pub const ALL: [EventKind; 5] =
        [EventKind::HostCall, EventKind::Trap, EventKind::Exit, EventKind::Returned, EventKind::Interrupted];

    /// The stable lower-case name used by `dump`, `info` and filters.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::HostCall => "host_call",
            EventKind::Trap => "trap",
            EventKind::Exit => "exit",
            EventKind::Returned => "returned",
            EventKind::Interrupted => "interrupted",
        }
    }

    /// Position of this kind in [`EventKind::ALL`] and in index count arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Event {
    /// This event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::HostCall(_) => EventKind::HostCall,
            Event::Trap(_) => EventKind::Trap,
            Event::Exit { .. } => EventKind::Exit,
            Event::Returned { .. } => EventKind::Returned,
            Event::Interrupted(_) => EventKind::Interrupted,
        }
    }
}

/// A Wasm value crossing the host boundary. Floats are kept as bits so NaN payloads survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Value {
    /// `i32`
    I32(i32),
    /// `i64`
    I64(i64),
    /// `f32`, as its bit pattern.
    F32(u32),
    /// `f64`, as its bit pattern.
    F64(u64),
    /// `v128`
    V128(u128),
    /// A `funcref`; only whether it was null is meaningful across runs.
    FuncRef {
        /// Whether the reference was null.
        null: bool,
    },
    /// An `externref`; only whether it was null is meaningful across runs.
    ExternRef {
        /// Whether the reference was null.
        null: bool,
    },
}

impl Value {
    /// The Wasm type's name: `i32`, `f64`, `funcref`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::I32(_) => "i32",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::V128(_) => "v128",
            Value::FuncRef { .. } => "funcref",
            Value::ExternRef { .. } => "externref",
        }
    }
}

/// One call of an import.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct HostCall {
    /// Which import (see [`crate::Header::imports`]).
    pub import: ImportId,
    /// The arguments, pointers included (execution is deterministic, so they must match on replay).
    pub params: Vec<Value>,
    /// How the call ended.
    pub outcome: Outcome,
    /// Bytes the host wrote into linear memory: what replay re-applies.
    pub writes: Vec<MemoryBytes>,
    /// Bytes the host consumed that a person wants to see (what `fd_write` printed, the path opened).
    pub reads: Vec<MemoryBytes>,
    /// What of `reads` reached the recording's stdout or stderr (format 1.1 on; `None` in
    /// older traces, whose replay prints every `fd_write` to descriptors 1 and 2).
    pub printed: Option<Printed>,
    /// A hash of the other bytes the host read through the arguments (WASI iovec arrays and
    /// subscriptions; format 1.1 on): replay compares it, so a call whose inputs differ
    /// diverges there, not calls later.
    pub input_hash: Option<u64>,
}

/// The bytes of a call that reached the recording's own stdout or stderr: the first `len`
/// bytes of the call's `reads`, in order. A write reached them when it succeeded, for the
/// bytes the host reported written, on a descriptor that then referred to the stream —
/// whatever number the guest had renumbered it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Printed {
    /// Which stream.
    pub stream: Stream,
    /// How many bytes.
    pub len: u32,
}

/// One of the recording's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl HostCall {
    /// A call of import 0 with no arguments, no results and no memory traffic: a starting
    /// point for decoding into (see [`crate::Events::next_into`]).
    #[must_use]
    pub fn empty() -> HostCall {
        HostCall {
            import: ImportId(0),
            params: Vec::new(),
            outcome: Outcome::Returned(Vec::new()),
            writes: Vec::new(),
            reads: Vec::new(),
            printed: None,
            input_hash: None,
        }
    }

    /// The bytes that reached `printed`'s stream, span by span.
    pub fn printed_bytes(&self) -> impl Iterator<Item = &[u8]> {
        let mut left = self.printed.map_or(0, |p| p.len as usize);
        self.reads.iter().map_while(move |read| {
            let take = left.min(read.bytes.len());
            left -= take;
            (take > 0).then(|| &read.bytes[..take])
        })
    }
}

/// How a host call ended.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Outcome {
    /// It returned these results.
    Returned(Vec<Value>),
    /// It ended the program with this exit status (`proc_exit`).
    Exited(i32),
    /// It failed with a host error, which traps the guest: the error's cause chain, outermost
    /// first, one cause a line.
    Error(String),
}

/// A run of bytes at an address of one linear memory.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MemoryBytes {
    /// Memory index within the module.
    pub memory: u32,
    /// Byte address within that memory.
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A trap: what Wasmtime reported, plus what wtrace captured at the fault.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Trap {
    /// The trap code.
    pub code: TrapCode,
    /// Wasmtime's message (`wasm trap: ...`).
    pub message: String,
    /// The Wasm backtrace, innermost frame first.
    pub frames: Vec<Frame>,
    /// For memory faults: the Wasm address that was accessed.
    pub wasm_fault_address: Option<u64>,
    /// Size in bytes of the faulting memory (memory 0 when unknown) at the trap.
    pub memory_size: Option<u64>,
    /// The native machine state at the fault, or why there is none.
    pub native: NativeCapture,
    /// Bytes of linear memory around the fault address, when it was in bounds.
    pub memory_window: Option<MemoryBytes>,
}

/// One frame of a Wasm backtrace, in the terms of Wasmtime's `FrameInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Frame {
    /// Index of the module in [`crate::Header::modules`].
    pub module: u32,
    /// Module function index (imports included, as in `WasmBacktrace`).
    pub func_index: u32,
    /// The function's name from the name section, if any.
    pub func_name: Option<String>,
    /// Byte offset of the instruction in the module (the *Wasm PC*).
    pub module_offset: Option<u32>,
    /// Byte offset of the instruction within the function body.
    pub func_offset: Option<u32>,
    /// Source location from DWARF, when the module has it.
    pub source: Option<SourceLocation>,
}

/// A file, line and column from DWARF.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SourceLocation {
    /// Source file path as DWARF names it.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
}

/// Whether the native state was captured at a trap, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum NativeCapture {
    /// Registers captured by call injection at the signal.
    Captured(Box<NativeSnapshot>),
    /// No snapshot; the reason says why (e.g. the trap raised no signal).
    Missing(MissingReason),
}

/// Why a trap has no native snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum MissingReason {
    /// The trap was raised by runtime code (a libcall, a host error, fuel, epochs), not by a signal.
    NoSignal,
    /// Capture is not available on this platform or was turned off.
    Unsupported,
    /// The capture was attempted and failed; the text says how.
    Failed(String),
}

impl MissingReason {
    /// A short human explanation.
    pub fn describe(&self) -> String {
        match self {
            MissingReason::NoSignal => "the trap was raised by the runtime without a signal".into(),
            MissingReason::Unsupported => "native capture is not available for this run".into(),
            MissingReason::Failed(why) => format!("native capture failed: {why}"),
        }
    }
}

/// The trap codes, one for each of Wasmtime's `Trap` values plus host errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
#[non_exhaustive]
pub enum TrapCode {
    /// The call stack was exhausted.
    StackOverflow,
    /// Out-of-bounds linear memory access.
    MemoryOutOfBounds,
    /// Misaligned atomic access.
    HeapMisaligned,
    /// Out-of-bounds table access.
    TableOutOfBounds,
    /// `call_indirect` through a null entry (uninitialized element).
    IndirectCallToNull,
    /// `call_indirect` signature mismatch.
    BadSignature,
    /// Integer overflow (`i32.div_s` of `MIN / -1`, ...).
    IntegerOverflow,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// Invalid float-to-integer conversion.
    BadConversionToInteger,
    /// An `unreachable` instruction executed.
    UnreachableCodeReached,
    /// Execution was interrupted (epoch).
    Interrupt,
    /// The guest ran out of fuel.
    OutOfFuel,
    /// A null reference was dereferenced.
    NullReference,
    /// Out-of-bounds array access (GC).
    ArrayOutOfBounds,
    /// An allocation was too large (GC).
    AllocationTooLarge,
    /// A cast failed (GC).
    CastFailure,
    /// `memory.atomic.wait` on non-shared memory.
    AtomicWaitNonSharedMemory,
    /// A host function returned an error.
    HostError,
    /// Any other trap, by Wasmtime's own name for it.
    Other(String),
}

impl TrapCode {
    /// Every named code (without [`TrapCode::Other`]).
    pub const NAMED: [TrapCode; 18] = [
        TrapCode::StackOverflow,
        TrapCode::MemoryOutOfBounds,
        TrapCode::HeapMisaligned,
        TrapCode::TableOutOfBounds,
        TrapCode::IndirectCallToNull,
        TrapCode::BadSignature,
        TrapCode::IntegerOverflow,
        TrapCode::IntegerDivisionByZero,
        TrapCode::BadConversionToInteger,
        TrapCode::UnreachableCodeReached,
        TrapCode::Interrupt,
        TrapCode::OutOfFuel,
        TrapCode::NullReference,
        TrapCode::ArrayOutOfBounds,
        TrapCode::AllocationTooLarge,
        TrapCode::CastFailure,
        TrapCode::AtomicWaitNonSharedMemory,
        TrapCode::HostError,
    ];

    /// The stable kebab-case name used on the command line and in JSON.
    pub fn name(&self) -> &str {
        match self {
            TrapCode::StackOverflow => "stack-overflow",
            TrapCode::MemoryOutOfBounds => "memory-out-of-bounds",
            TrapCode::HeapMisaligned => "heap-misaligned",
            TrapCode::TableOutOfBounds => "table-out-of-bounds",
            TrapCode::IndirectCallToNull => "indirect-call-to-null",
            TrapCode::BadSignature => "bad-signature",
            TrapCode::IntegerOverflow => "integer-overflow",
            TrapCode::IntegerDivisionByZero => "integer-division-by-zero",
            TrapCode::BadConversionToInteger => "bad-conversion-to-integer",
            TrapCode::UnreachableCodeReached => "unreachable",
            TrapCode::Interrupt => "interrupt",
            TrapCode::OutOfFuel => "out-of-fuel",
            TrapCode::NullReference => "null-reference",
            TrapCode::ArrayOutOfBounds => "array-out-of-bounds",
            TrapCode::AllocationTooLarge => "allocation-too-large",
            TrapCode::CastFailure => "cast-failure",
            TrapCode::AtomicWaitNonSharedMemory => "atomic-wait-non-shared-memory",
            TrapCode::HostError => "host-error",
            TrapCode::Other(name) => name,
        }
    }

    /// Parses a name as [`TrapCode::name`] spells it; case, `_` vs `-`, and Wasmtime's
    /// `CamelCase` variant names are accepted too. Unknown names are an error, not `Other`,
    /// so a typo in `--expect-trap` is caught.
    pub fn parse(text: &str) -> Option<TrapCode> {
        let wanted: String =
            text.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect();
        let alias = match wanted.as_str() {
            "unreachablecodereached" => Some(TrapCode::UnreachableCodeReached),
            "oob" | "heapoutofbounds" => Some(TrapCode::MemoryOutOfBounds),
            "divisionbyzero" | "divbyzero" => Some(TrapCode::IntegerDivisionByZero),
            "callstackexhausted" => Some(TrapCode::StackOverflow),
            _ => None,
        };
        alias.or_else(|| {
            TrapCode::NAMED.into_iter().find(|code| {
                let name: String = code.name().chars().filter(|c| *c != '-').collect();
                name == wanted
            })
        })
    }
}

impl std::fmt::Display for TrapCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
