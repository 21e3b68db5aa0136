//! Traces assembled from parts, for fuzz targets that must reach the decoders: every checksum
//! (frame checks, zstd content checksums) and every size (seek table, index) is computed for
//! the parts given, so arbitrary bytes in one part are decoded as that part rather than stopped
//! at the first check. [`Parts::seed`] is a trace holding every event kind, a native register
//! snapshot among them; the `structures` fuzz target replaces one part at a time.

use crate::codec::{self, RecordEncoder};
use crate::container::{self, IndexEntry, TAG_HEADER, TAG_MODULE};
use crate::event::{
    Event, EventKind, Frame, HostCall, ImportId, Interruption, MemoryBytes, NativeCapture, Outcome, Printed,
    StopCause, Stream, Trap, TrapCode, Value,
};
use crate::header::{Header, ImportName, ModuleEntry, RunInfo};
use crate::native::{Arch, NativeFrame, NativeSnapshot, Signal};

/// The parts of a trace, each as the bytes its frame holds.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The header frame's body: version preamble, then the run information.
    pub header: Vec<u8>,
    /// Embedded module frames' bodies: module index (u32), then the compressed module.
    pub modules: Vec<Vec<u8>>,
    /// Data frames' contents, decompressed: concatenated event records.
    pub data: Vec<Vec<u8>>,
    /// The index frame's body; `None` computes it from `data` (when its records split).
    pub index: Option<Vec<u8>>,
    /// The seek table, whole; `None` computes it.
    pub seek_table: Option<Vec<u8>>,
    /// Whether the trace has a tail (index and seek table) at all: without, readers recover.
    pub finished: bool,
}

/// The module the seed embeds: an empty module.
const MODULE: &[u8] = b"\0asm\x01\0\0\0";

impl Parts {
    /// A finished trace with every event kind, in format 1.1, or with `newer_minor` as written
    /// by a later minor version (whose additions a reader skips).
    pub fn seed(newer_minor: bool) -> Parts {
        let mut header = Header::new(RunInfo {
            wasmtime_version: "48.0.8".into(),
            target: "x86_64-linux".into(),
            engine_config: vec![("strategy".into(), "cranelift".into())],
            command_line: vec!["wtrace".into(), "record".into(), "app.wasm".into()],
            args: vec!["app.wasm".into()],
            modules: vec![ModuleEntry::new("app.wasm", MODULE)],
            imports: ["fd_write", "clock_time_get", "poll_oneoff"]
                .iter()
                .map(|n| ImportName { module: "wasi_snapshot_preview1".into(), name: (*n).into() })
                .collect(),
            ..RunInfo::default()
        });
        if newer_minor {
            header.format.minor += 1;
        }
        header.run.modules[0].embedded = true;
        let compressed = crate::writer::zstd_compress(MODULE, 1).unwrap_or_default();
        let mut module = 0u32.to_le_bytes().to_vec();
        module.extend_from_slice(&compressed);
        let events = sample_events();
        let mut data = Vec::new();
        for chunk in events.chunks(3) {
            let mut content = Vec::new();
            let mut encoder = RecordEncoder::default();
            for event in chunk {
                let _ = encoder.encode(event, &mut content);
            }
            data.push(content);
        }
        Parts {
            header: Self::header_body(&header),
            modules: vec![module],
            data,
            index: None,
            seek_table: None,
            finished: true,
        }
    }

    /// The body of a header frame for `header` (its version preamble included).
    pub fn header_body(header: &Header) -> Vec<u8> {
        header.encode().unwrap_or_default()
    }

    /// The trace's bytes.
    pub fn assemble(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut frames = Vec::new();
        let mut push = |out: &mut Vec<u8>, frame: &[u8], content: usize| {
            frames.push((frame.len() as u32, content as u32));
            out.extend_from_slice(frame);
        };
        if let Ok(frame) = container::wtrace_frame(TAG_HEADER, &self.header) {
            push(&mut out, &frame, 0);
        }
        for module in &self.modules {
            if let Ok(frame) = container::wtrace_frame(TAG_MODULE, module) {
                push(&mut out, &frame, 0);
            }
        }
        let mut entries = Vec::new();
        let mut next_seq = 0u64;
        for content in &self.data {
            let offset = out.len() as u64;
            let Ok(frame) = crate::writer::zstd_compress(content, 1) else { continue };
            push(&mut out, &frame, content.len());
            let (events, kind_counts) = count_kinds(content);
            entries.push(IndexEntry {
                offset,
                compressed_len: frame.len() as u32,
                content_len: content.len() as u32,
                first_seq: next_seq,
                events,
                kind_counts,
            });
            next_seq += u64::from(events);
        }
        if !self.finished {
            return out;
        }
        let index = match &self.index {
            Some(body) => container::wtrace_frame(container::TAG_INDEX, body),
            None => container::index_frame(&entries),
        };
        let Ok(index) = index else { return out };
        push(&mut out, &index, 0);
        match &self.seek_table {
            Some(table) => out.extend_from_slice(table),
            None => out.extend_from_slice(&container::seek_table(&frames).unwrap_or_default()),
        }
        out
    }
}

/// How many records `content` holds, by kind (in [`EventKind::ALL`] order; records that do
/// not decode count under no kind, so the index then disagrees and the reader says so).
fn count_kinds(content: &[u8]) -> (u32, Vec<u32>) {
    let mut counts = vec![0u32; EventKind::ALL.len()];
    let Ok(bodies) = codec::record_bodies(content, None) else { return (0, counts) };
    for &(start, end) in &bodies {
        if let Ok(codec::Record::Event(event)) =
            codec::decode_record(&content[start as usize..end as usize], true)
        {
            counts[event.kind().index()] += 1;
        }
    }
    (bodies.len() as u32, counts)
}

/// A trap with a native register snapshot, as the recorder writes one for an out-of-bounds
/// load two frames deep: what tests of the readers and the fuzzing seed use.
pub fn sample_trap() -> Trap {
    let mut gprs: Vec<u64> = (0..16).map(|i| 0x1111_1111_1111_1111 * i).collect();
    gprs[7] = 0x7ffd_0000_1000;
    let frame = |func_index, func_name: Option<&str>, pc, offset| Frame {
        module: 0,
        func_index,
        func_name: func_name.map(Into::into),
        module_offset: Some(pc),
        func_offset: Some(offset),
        source: None,
    };
    Trap {
        code: TrapCode::MemoryOutOfBounds,
        message: "wasm trap: out of bounds memory access".into(),
        frames: vec![frame(3, Some("parse_header"), 0x1a3, 0x21), frame(5, None, 0x2b0, 0x9)],
        wasm_fault_address: Some(0x10_0000),
        memory_size: Some(0x10_0000),
        native: NativeCapture::Captured(Box::new(NativeSnapshot {
            arch: Arch::X86_64,
            signal: Signal::Segv,
            si_code: 1,
            fault_address: Some(0x7f00_0010_0000),
            pc: 0x5555_0000_1234,
            sp: 0x7ffd_0000_1000,
            fp: 0x7ffd_0000_1040,
            flags: 0x246,
            gprs,
            vregs: (0..16).map(|i| u128::MAX - i).collect(),
            extra: vec![0x1f80, 0x37f, 0],
            wasm_pc: Some(0x1a3),
            stack: vec![NativeFrame { pc: 0x5555_0000_1234, fp: 0x7ffd_0000_1040, wasm_pc: Some(0x1a3) }],
        })),
        memory_window: None,
    }
}

/// One event of every kind, with every optional part filled.
fn sample_events() -> Vec<Event> {
    let frame = sample_trap().frames[0].clone();
    vec![
        Event::HostCall(HostCall {
            import: ImportId(0),
            params: vec![Value::I32(1), Value::I32(1024), Value::I32(1), Value::I32(2048)],
            outcome: Outcome::Returned(vec![Value::I32(0)]),
            writes: vec![MemoryBytes { memory: 0, offset: 2048, bytes: 6u32.to_le_bytes().to_vec() }],
            reads: vec![MemoryBytes { memory: 0, offset: 4096, bytes: b"hello\n".to_vec() }],
            printed: Some(Printed { stream: Stream::Stdout, len: 6 }),
            input_hash: None,
        }),
        Event::HostCall(HostCall {
            import: ImportId(2),
            params: vec![Value::I32(0), Value::I32(64), Value::I32(1), Value::I32(8)],
            outcome: Outcome::Returned(vec![Value::I32(0)]),
            writes: vec![MemoryBytes { memory: 0, offset: 64, bytes: vec![7; 32] }],
            reads: vec![],
            printed: None,
            input_hash: Some(0x0123_4567_89ab_cdef),
        }),
        Event::HostCall(HostCall {
            import: ImportId(1),
            params: vec![Value::I64(-1), Value::F32(1), Value::F64(2), Value::V128(3)],
            outcome: Outcome::Error("host failed\nbecause".into()),
            writes: vec![],
            reads: vec![],
            printed: None,
            input_hash: None,
        }),
        Event::HostCall(HostCall {
            import: ImportId(1),
            params: vec![Value::FuncRef { null: true }, Value::ExternRef { null: false }],
            outcome: Outcome::Exited(3),
            writes: vec![],
            reads: vec![],
            printed: None,
            input_hash: None,
        }),
        Event::Trap(Box::new(Trap {
            memory_window: Some(MemoryBytes { memory: 0, offset: 0xfff0, bytes: vec![1; 16] }),
            ..sample_trap()
        })),
        Event::Exit { code: 3 },
        Event::Returned { values: vec![Value::I32(7), Value::I64(-7)] },
        Event::Interrupted(Box::new(Interruption {
            cause: StopCause::Signal(2),
            frames: vec![frame.clone()],
            in_host_call: Some(ImportId(0)),
            after_ms: 50,
        })),
        Event::Interrupted(Box::new(Interruption {
            cause: StopCause::Failed("disk full".into()),
            frames: vec![frame],
            in_host_call: None,
            after_ms: 0,
        })),
    ]
}
