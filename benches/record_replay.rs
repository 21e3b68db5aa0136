//! Recording and replay overhead, measured side by side in one process: each guest runs on
//! plain Wasmtime + WASI (the same engine settings wtrace uses), then under `wtrace::record`,
//! then the trace is replayed. Prints ratios, added nanoseconds per host call, and trace bytes
//! per event. Each figure is the best of several alternating rounds, to damp a shared
//! machine's noise.
//!
//! Run: `cargo bench --bench record_replay` (`-- quick` for a fast, rough pass; any other
//! argument keeps only the guests whose name contains it, e.g. `-- clock`).
//! Targets (README, Benchmarks): compute <= 1.03x, <= 100 ns added per host call, replay <= 1.0x record.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::{Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wtrace::EngineSettings;
use wtrace::runtime::CacheOptions;
use wtrace::runtime::module::CompileOptions;
use wtrace::{RecordOptions, ReplayOptions, Trace};

/// A guest: WAT text, how many host calls it makes, and whether it needs `/data`.
struct Guest {
    name: &'static str,
    wat: String,
    host_calls: u64,
}

fn compute(iterations: u64) -> Guest {
    Guest {
        name: "compute (xorshift loop, 2 host calls)",
        wat: format!(
            r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $x i64) (local $i i64)
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 0)))
    (local.set $x (i64.const 88172645463325252))
    (loop $l
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const {iterations}))))
    (i64.store (i32.const 8) (local.get $x))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 0)))))"#
        ),
        host_calls: 2,
    }
}

fn clock_loop(calls: u64) -> Guest {
    Guest {
        name: "clock_time_get loop",
        wat: format!(
            r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (drop (call $clock (i32.const 1) (i64.const 1000) (i32.const 1024)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {calls}))))))"#
        ),
        host_calls: calls,
    }
}

fn writes(calls: u64) -> Guest {
    Guest {
        name: "fd_write 64 B to stdout",
        wat: format!(
            r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "wtrace benchmark line: the quick brown fox jumps over the dog.\0a")
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 64))
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {calls}))))))"#
        ),
        host_calls: calls,
    }
}

fn file_read(chunk: u32, file_len: u64) -> Guest {
    Guest {
        name: "read a file in 4 KiB chunks",
        wat: format!(
            r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "big.bin")
  (func (export "_start")
    (drop (call $path_open (i32.const 3) (i32.const 1) (i32.const 64) (i32.const 7) (i32.const 0)
                           (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 16)))
    (i32.store (i32.const 32) (i32.const 4096))
    (i32.store (i32.const 36) (i32.const {chunk}))
    (loop $l
      (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 20)))
      (br_if $l (i32.load (i32.const 20))))))"#
        ),
        host_calls: file_len / u64::from(chunk) + 3,
    }
}

/// One run on plain Wasmtime + WASI with the engine wtrace uses, minus the epoch checks
/// recording adds (as `wasmtime run` runs it).
fn plain_run(engine: &wasmtime::Engine, module: &Module, data: &Path) -> Duration {
    let start = Instant::now();
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |cx| cx).expect("link WASI");
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(MemoryOutputPipe::new(usize::MAX)).allow_blocking_current_thread(true);
    wasi.preopened_dir(data, "/data", wasmtime_wasi::FsPerms::ReadWrite).expect("preopen");
    let mut store = Store::new(engine, wasi.build_p1());
    let instance = linker.instantiate(&mut store, module).expect("instantiate");
    instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .and_then(|f| f.call(&mut store, ()))
        .expect("run");
    start.elapsed()
}

struct Figures {
    plain: Duration,
    record: Duration,
    replay: Duration,
    events: u64,
    trace_bytes: u64,
}

fn measure(guest: &Guest, rounds: usize, data: &Path, dir: &Path) -> Figures {
    let engine = EngineSettings::default().engine().expect("engine");
    let binary = wat::parse_str(&guest.wat).expect("valid WAT");
    let module = Module::new(&engine, &binary).expect("compile");
    // Without the compiled-code cache, so that both record and replay compile and the compile
    // time measured apart can be taken out of both.
    let uncached = || CompileOptions { cache: CacheOptions::off(), notice: None };
    let options = RecordOptions {
        module_name: "bench.wasm".into(),
        module: binary.clone(),
        compile: uncached(),
        ..RecordOptions::default()
    }
    .dir(data, "/data");
    let trace_path = dir.join("bench.zst");
    let mut best = Figures {
        plain: Duration::MAX,
        record: Duration::MAX,
        replay: Duration::MAX,
        events: 0,
        trace_bytes: 0,
    };
    for _ in 0..rounds {
        best.plain = best.plain.min(plain_run(&engine, &module, data));
        // Recording compiles the module itself; take the compile time out so that both sides
        // measure the run (the engine and code are identical).
        let compile = {
            let start = Instant::now();
            Module::new(&engine, &binary).expect("compile");
            start.elapsed()
        };
        let start = Instant::now();
        let recorded = wtrace::record(&options, &trace_path).expect("record");
        best.record = best.record.min(start.elapsed().saturating_sub(compile));
        best.events = recorded.events;
        let start = Instant::now();
        let trace = Trace::open(&trace_path).expect("open");
        let replay_options = ReplayOptions { compile: uncached(), ..ReplayOptions::default() };
        let replay = wtrace::replayer::replay(&trace, replay_options).expect("replay");
        best.replay = best.replay.min(start.elapsed().saturating_sub(compile));
        assert!(replay.matched(), "{:?}", replay.divergence);
        best.trace_bytes = std::fs::metadata(&trace_path).expect("trace").len();
    }
    best
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let filters: Vec<String> =
        std::env::args().skip(1).filter(|a| a != "quick" && !a.starts_with('-')).collect();
    let scale = if quick { 10 } else { 1 };
    let rounds = if quick { 2 } else { 5 };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let file_len: u64 = 64 << 20;
    let mut bytes = Vec::with_capacity(file_len as usize / scale as usize);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    while (bytes.len() as u64) < file_len / scale {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Text-like data: compressible, as most files are.
        bytes.extend_from_slice(format!("line {:016x}\n", x % 1_000_000).as_bytes());
    }
    std::fs::write(data.join("big.bin"), &bytes).expect("write data file");

    let guests = [
        compute(400_000_000 / scale),
        clock_loop(1_000_000 / scale),
        writes(200_000 / scale),
        file_read(4096, bytes.len() as u64),
    ];
    println!("record_replay: best of {rounds} rounds; times exclude compilation");
    println!(
        "{:<40} {:>10} {:>10} {:>8} {:>12} {:>10} {:>9} {:>12}",
        "guest", "plain", "record", "ratio", "ns/call", "replay", "rep/rec", "bytes/event"
    );
    for guest in
        guests.iter().filter(|g| filters.is_empty() || filters.iter().any(|f| g.name.contains(f.as_str())))
    {
        let f = measure(guest, rounds, &data, dir.path());
        let added_ns = (f.record.as_secs_f64() - f.plain.as_secs_f64()) * 1e9 / guest.host_calls as f64;
        println!(
            "{:<40} {:>8.1}ms {:>8.1}ms {:>7.3}x {:>12.1} {:>8.1}ms {:>8.3}x {:>12.2}",
            guest.name,
            f.plain.as_secs_f64() * 1e3,
            f.record.as_secs_f64() * 1e3,
            f.record.as_secs_f64() / f.plain.as_secs_f64(),
            added_ns,
            f.replay.as_secs_f64() * 1e3,
            f.replay.as_secs_f64() / f.record.as_secs_f64(),
            f.trace_bytes as f64 / f.events as f64,
        );
    }
    println!("targets: compute ratio <= 1.03x; <= 100 ns added per host call; replay/record <= 1.0x");
}
