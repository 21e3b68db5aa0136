//! Helpers shared by the end-to-end tests: building traces through the library and running
//! the real `wtrace` binary.
// Each test module uses some of the helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use wtrace::traces::{
    Event, Header, HostCall, ImportId, ImportName, MemoryBytes, ModuleEntry, Outcome, Printed, RunInfo,
    Stream, TraceWriter, Value, WriterOptions,
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
    Event::Trap(Box::new(wtrace::traces::fuzzing::sample_trap()))
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

/// The real binary, with its compiled-code cache under `target/` rather than the user's. With
/// `WTRACE_TEST_BINARY` set, that binary instead (another architecture's, which
/// `scripts/cross.sh` builds), run through the command in `WTRACE_TEST_RUNNER` (its qemu-user).
pub(crate) fn wtrace_command() -> Command {
    let mut command = match std::env::var_os("WTRACE_TEST_BINARY") {
        Some(binary) => {
            let runner = std::env::var("WTRACE_TEST_RUNNER").unwrap_or_default();
            let mut words = runner.split_whitespace();
            match words.next() {
                Some(program) => {
                    let mut command = Command::new(program);
                    command.args(words).arg(binary);
                    command
                }
                None => Command::new(binary),
            }
        }
        None => Command::new(env!("CARGO_BIN_EXE_wtrace")),
    };
    command.env("WTRACE_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("wtrace-cache"));
    command
}

/// The architecture of the binary under test (see [`wtrace_command`]), as Rust names it.
pub(crate) fn arch_under_test() -> String {
    std::env::var("WTRACE_TEST_ARCH").unwrap_or_else(|_| std::env::consts::ARCH.to_string())
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
