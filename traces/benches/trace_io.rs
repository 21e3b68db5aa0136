//! Write and read 10 million synthetic `clock_time_get` host-call events and print throughput,
//! size per event, open-plus-random-fetch latency and peak memory.
//!
//! Run: `cargo bench -p wtrace-traces --bench trace_io` (`-- 1000000` for fewer events).
//! Targets on a 2-core machine: write >= 3 M events/s, read >= 10 M events/s, open + random
//! fetch <= 20 ms, <= 8 bytes per event.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use wtrace_traces::{
    Event, Header, HostCall, ImportId, ImportName, MemoryBytes, ModuleEntry, Outcome, RunInfo, Trace,
    TraceWriter, Value, WriterOptions,
};

/// The event a guest's `clock_time_get(MONOTONIC, 1000, ptr)` produces, with a clock that
/// advances by about 100 ns per call, as it does in a tight loop.
fn clock_event(now: u64) -> Event {
    Event::HostCall(HostCall {
        import: ImportId(0),
        params: vec![Value::I32(1), Value::I64(1000), Value::I32(0x1_0400)],
        outcome: Outcome::Returned(vec![Value::I32(0)]),
        writes: vec![MemoryBytes { memory: 0, offset: 0x1_0400, bytes: now.to_le_bytes().to_vec() }],
        reads: vec![],
        printed: None,
        input_hash: None,
    })
}

/// Peak resident set size so far, in MiB (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak RSS counter so each phase reports its own (Linux >= 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss() -> String {
    peak_rss_mib().map_or_else(|| "n/a".into(), |m| format!("{m:.0} MiB"))
}

/// The sequential read a replay does: one event, its buffers reused.
fn read_reusing(path: &std::path::Path, count: u64) -> Duration {
    let start = Instant::now();
    let trace = Trace::open(path).expect("open");
    let mut read = 0u64;
    let mut events = trace.events();
    let mut event = Event::Exit { code: 0 };
    while let Some(seq) = events.next_into(&mut event) {
        seq.expect("read");
        read += u64::from(matches!(event, Event::HostCall(_)));
    }
    assert_eq!(read, count);
    start.elapsed()
}

/// The same through the `Iterator`, one owned event at a time.
fn read_owned(path: &std::path::Path, count: u64) -> Duration {
    let start = Instant::now();
    let trace = Trace::open(path).expect("open");
    let mut read = 0u64;
    for item in trace.events() {
        let (_, event) = item.expect("read");
        read += u64::from(matches!(event, Event::HostCall(_)));
    }
    assert_eq!(read, count);
    start.elapsed()
}

fn main() {
    let count: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let keep = std::env::var_os("TRACE_IO_KEEP");
    let path = keep.map_or_else(|| dir.path().join("bench.zst"), std::path::PathBuf::from);
    let run = RunInfo {
        modules: vec![ModuleEntry::new("bench.wasm", b"\0asm\x01\0\0\0")],
        imports: vec![ImportName { module: "wasi_snapshot_preview1".into(), name: "clock_time_get".into() }],
        ..RunInfo::default()
    };

    // Build the events first so the write phase measures the writer, not event construction.
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut now = 1_700_000_000_000_000_000u64;
    let events: Vec<Event> = (0..count.min(1 << 16))
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            now += 90 + rng % 21;
            clock_event(now)
        })
        .collect();

    reset_peak_rss();
    let start = Instant::now();
    let mut writer =
        TraceWriter::create(&path, Header::new(run), &[], WriterOptions::default()).expect("create trace");
    for i in 0..count {
        writer.append(&events[(i % events.len() as u64) as usize]).expect("append");
    }
    let summary = writer.finish().expect("finish");
    let write_time = start.elapsed();
    let write_rss = rss();
    drop(events);

    reset_peak_rss();
    let read_time = read_reusing(&path, count);
    let read_rss = rss();
    let owned_read_time = read_owned(&path, count);

    reset_peak_rss();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..200 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let seq = (seed >> 11) % count;
        let start = Instant::now();
        let trace = Trace::open(&path).expect("open");
        trace.event(seq).expect("fetch");
        cold.push(start.elapsed());
        let other = (seq + count / 2) % count;
        let start = Instant::now();
        trace.event(other).expect("fetch");
        warm.push(start.elapsed());
    }
    cold.sort();
    warm.sort();
    let fetch_rss = rss();

    let per_sec = |n: u64, t: Duration| n as f64 / t.as_secs_f64() / 1e6;
    println!("trace_io: {count} clock_time_get events, {} data frames", summary.data_frames);
    println!(
        "write:            {:>8.2} M events/s  ({:.2} s; target >= 3)   peak RSS {write_rss}",
        per_sec(count, write_time),
        write_time.as_secs_f64()
    );
    println!(
        "sequential read:  {:>8.2} M events/s  ({:.2} s; target >= 10)  peak RSS {read_rss}",
        per_sec(count, read_time),
        read_time.as_secs_f64()
    );
    println!(
        "  owned events:   {:>8.2} M events/s  ({:.2} s; Iterator, one allocation set per event)",
        per_sec(count, owned_read_time),
        owned_read_time.as_secs_f64()
    );
    println!(
        "size:             {:>8.2} bytes/event compressed (target <= 8); {:.1} bytes/event raw; file {:.1} MiB",
        summary.file_bytes as f64 / count as f64,
        summary.event_bytes as f64 / count as f64,
        summary.file_bytes as f64 / f64::from(1 << 20)
    );
    println!(
        "open + fetch:     p50 {:.2} ms, p99 {:.2} ms (target <= 20 ms)   peak RSS {fetch_rss}",
        percentile(&cold, 0.5).as_secs_f64() * 1e3,
        percentile(&cold, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "jump (open trace): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&warm, 0.5).as_secs_f64() * 1e3,
        percentile(&warm, 0.99).as_secs_f64() * 1e3
    );
}
