//! Helpers shared by the end-to-end tests: building traces through the library and running
//! the real `wtrace` binary.
// Each test module uses some of the helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use wtrace::traces::{
    Arch, Event, Frame, Header, HostCall, ImportId, ImportName, MemoryBytes, ModuleEntry, NativeCapture,
    NativeFrame, NativeSnapshot, Outcome, Printed, RunInfo, Signal, Stream, TraceWriter, Trap, TrapCode,
    Value, WriterOptions,
};

pub(crate) const MODULE: &[u8] = b"\0asm\x01\0\0\0";

pub(crate) fn header() -> Header {
    let imports = ["fd_write", "clock_time_get", "proc_exit"]
        .iter()
        .map(|name| ImportName { module: "wasi_snapshot_preview1".into(), name: (*name).into() })
        .collect();
    Header::new(RunInfo {
        wasmtime_version: "48.0.0".into(),
        target: "x86_64-unknown-linux-gnu".into(),
        engine_config: vec![("signals_based_traps".into(), "true".into())],
        created_unix_ms: 1_795_542_506_000,
        command_line: vec!["wtrace".into(), "record".into(), "app.wasm".into()],
        args: vec!["app.wasm".into()],
        modules: vec![ModuleEntry::new("app.wasm", MODULE)],
        imports,
        ..RunInfo::default()
    })
}

pub(crate) fn fd_write(text: &[u8]) -> Event {
    Event::HostCall(HostCall {
        import: ImportId(0),
        params: vec![Value::I32(1), Value::I32(1024), Value::I32(1), Value::I32(2048)],
        outcome: Outcome::Returned(vec![Value::I32(0)]),
        writes: vec![MemoryBytes {
            memory: 0,
            offset: 2048,
            bytes: (text.len() as u32).to_le_bytes().to_vec(),
        }],
        reads: vec![MemoryBytes { memory: 0, offset: 4096, bytes: text.to_vec() }],
        printed: Some(Printed { stream: Stream::Stdout, len: text.len() as u32 }),
        input_hash: None,
    })
}

pub(crate) fn clock(i: u64) -> Event {
    Event::HostCall(HostCall {
        import: ImportId(1),
        params: vec![Value::I32(1), Value::I64(1000), Value::I32(512)],
        outcome: Outcome::Returned(vec![Value::I32(0)]),
        writes: vec![MemoryBytes {
            memory: 0,
            offset: 512,
            bytes: (1_700_000_000_000 + i * 97).to_le_bytes().to_vec(),
        }],
        reads: vec![],
        printed: None,
        input_hash: None,
    })
}

pub(crate) fn trap() -> Event {
    let mut gprs: Vec<u64> = (0..16).map(|i| 0x1111_1111_1111_1111 * i).collect();
    gprs[7] = 0x7ffd_0000_1000;
    Event::Trap(Box::new(Trap {
        code: TrapCode::MemoryOutOfBounds,
        message: "wasm trap: out of bounds memory access".into(),
        frames: vec![
            Frame {
                module: 0,
                func_index: 3,
                func_name: Some("parse_header".into()),
                module_offset: Some(0x1a3),
                func_offset: Some(0x21),
                source: None,
            },
            Frame {
                module: 0,
                func_index: 5,
                func_name: None,
                module_offset: Some(0x2b0),
                func_offset: Some(0x9),
                source: None,
            },
        ],
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
    }))
}

/// The events of the sample run: some output, many clock reads, a trap.
pub(crate) fn sample_events(clock_reads: u64) -> Vec<Event> {
    let mut events = vec![fd_write(b"hello\n")];
    events.extend((0..clock_reads).map(clock));
    events.push(fd_write(b"about to fail\n"));
    events.push(trap());
    events
}

pub(crate) fn write_trace(path: &Path, events: &[Event], options: WriterOptions) {
    let mut writer = TraceWriter::create(path, header(), &[(0, MODULE)], options).unwrap();
    for event in events {
        writer.append(event).unwrap();
    }
    writer.finish().unwrap();
}

/// The real binary, with its compiled-code cache under `target/` rather than the user's.
pub(crate) fn wtrace_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wtrace"));
    command.env("WTRACE_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("wtrace-cache"));
    command
}

pub(crate) fn wtrace(args: &[&str]) -> Output {
    wtrace_command().args(args).output().expect("run wtrace")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A WAT fixture under `tests/fixtures/`.
pub(crate) fn fixture(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

/// A guest program from `tests/guests/src/bin/NAME.rs`, built for `wasm32-wasip1` on first use
/// (once per test process; cargo's lock serializes concurrent builds).
pub(crate) fn guest(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = root.join("target/guests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip1", "--manifest-path"])
            .arg(root.join("tests/guests/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo to build the guest programs");
        assert!(
            status.success(),
            "building the guest programs failed; is the wasm32-wasip1 target installed?"
        );
        target.join("wasm32-wasip1/release")
    });
    dir.join(format!("{name}.wasm"))
}

/// Runs the real binary with stdin and extra environment variables.
pub(crate) fn wtrace_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = wtrace_command()
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wtrace");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for wtrace")
}
