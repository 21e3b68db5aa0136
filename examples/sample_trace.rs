//! Writes a small sample trace through the library: a program that prints two lines, reads
//! the clock a few times, and traps on an out-of-bounds load.
//!
//! The events are made up and written directly rather than recorded, so writing it needs no
//! Wasm module; the file is a real trace in every other respect (the fuzzers start from it, and
//! `wtrace info`, `dump` and `repair` can be tried on it).
//!
//! `cargo run --example sample_trace -- OUT.zst`
#![allow(clippy::print_stdout)]

use wtrace::traces::{
    Event, Frame, Header, HostCall, ImportId, ImportName, MemoryBytes, MissingReason, ModuleEntry,
    NativeCapture, Outcome, Printed, RunInfo, Stream, TraceWriter, Trap, TrapCode, Value, WriterOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).ok_or("usage: sample_trace OUT.zst")?;
    let module = b"\0asm\x01\0\0\0";
    let imports = ["fd_write", "clock_time_get"]
        .map(|name| ImportName { module: "wasi_snapshot_preview1".into(), name: name.into() });
    let header = Header::new(RunInfo {
        target: format!("{}-unknown-linux-gnu", std::env::consts::ARCH),
        created_unix_ms: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis()
            as u64,
        command_line: vec!["sample_trace".into(), out.clone()],
        args: vec!["sample.wasm".into()],
        modules: vec![ModuleEntry::new("sample.wasm", module)],
        imports: imports.to_vec(),
        ..RunInfo::default()
    });
    let mut writer = TraceWriter::create(out.as_ref(), header, &[(0, module)], WriterOptions::default())?;
    let print = |text: &str| {
        Event::HostCall(HostCall {
            import: ImportId(0),
            params: vec![Value::I32(1), Value::I32(1024), Value::I32(1), Value::I32(1032)],
            outcome: Outcome::Returned(vec![Value::I32(0)]),
            writes: vec![MemoryBytes {
                memory: 0,
                offset: 1032,
                bytes: (text.len() as u32).to_le_bytes().to_vec(),
            }],
            reads: vec![MemoryBytes { memory: 0, offset: 2048, bytes: text.as_bytes().to_vec() }],
            printed: Some(Printed { stream: Stream::Stdout, len: text.len() as u32 }),
            input_hash: None,
        })
    };
    writer.append(&print("reading config.txt\n"))?;
    for i in 0..3u64 {
        writer.append(&Event::HostCall(HostCall {
            import: ImportId(1),
            params: vec![Value::I32(1), Value::I64(1000), Value::I32(512)],
            outcome: Outcome::Returned(vec![Value::I32(0)]),
            writes: vec![MemoryBytes {
                memory: 0,
                offset: 512,
                bytes: (1_000_000 + i * 1500).to_le_bytes().to_vec(),
            }],
            reads: vec![],
            printed: None,
            input_hash: None,
        }))?;
    }
    writer.append(&print("parsing header\n"))?;
    writer.append(&Event::Trap(Box::new(Trap {
        code: TrapCode::MemoryOutOfBounds,
        message: "wasm trap: out of bounds memory access".into(),
        frames: vec![Frame {
            module: 0,
            func_index: 2,
            func_name: Some("parse_header".into()),
            module_offset: Some(0x1a3),
            func_offset: Some(0x1f),
            source: None,
        }],
        wasm_fault_address: Some(0x1_0000),
        memory_size: Some(0x1_0000),
        native: NativeCapture::Missing(MissingReason::Unsupported),
        memory_window: None,
    })))?;
    let summary = writer.finish()?;
    println!("wrote {out}: {} events, {} bytes", summary.events, summary.file_bytes);
    Ok(())
}
