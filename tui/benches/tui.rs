//! The terminal UI on a 10-million-event trace: time to the first drawn screen (open the trace,
//! build the app, draw), going to a random event (update and draw), drawing a frame, the
//! background jobs a session starts (the markers scan, a filter over every event), and the peak
//! resident memory of the browsing process.
//!
//! Run: `cargo bench -p wtrace-tui --bench tui` (`-- 1000000` for fewer events). Targets on a
//! 2-core machine: first screen <= 300 ms, goto <= 20 ms, a frame <= 5 ms, RSS <= 200 MB.
//! The trace is written by this process; the measurements run in a child process of the same
//! binary, so that its peak memory is the UI's alone.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use wtrace_traces::{
    Event, Frame, Header, HostCall, ImportId, ImportName, MemoryBytes, MissingReason, ModuleEntry,
    NativeCapture, Outcome, RunInfo, Trace, TraceWriter, Trap, TrapCode, Value, WriterOptions,
};
use wtrace_tui::{App, Filter, Jobs, Msg, Request, Theme};

const CHILD: &str = "WTRACE_TUI_BENCH_TRACE";
const SIZE: (u16, u16) = (160, 48);

fn write(path: &std::path::Path, count: u64) {
    let imports = ["clock_time_get", "fd_write", "fd_read"]
        .iter()
        .map(|n| ImportName { module: "wasi_snapshot_preview1".into(), name: (*n).into() })
        .collect();
    let run = RunInfo {
        modules: vec![ModuleEntry::new("bench.wasm", b"\0asm\x01\0\0\0")],
        imports,
        ..RunInfo::default()
    };
    let mut writer =
        TraceWriter::create(path, Header::new(run), &[], WriterOptions::default()).expect("create");
    let mut now = 1_700_000_000_000_000_000u64;
    for i in 0..count - 1 {
        now += 97;
        let event = if i % 1000 == 999 {
            Event::HostCall(HostCall {
                import: ImportId(1),
                params: vec![Value::I32(1), Value::I32(0x100), Value::I32(1), Value::I32(0x200)],
                outcome: Outcome::Returned(vec![Value::I32(0)]),
                writes: vec![MemoryBytes { memory: 0, offset: 0x200, bytes: 12u32.to_le_bytes().to_vec() }],
                reads: vec![MemoryBytes { memory: 0, offset: 0x300, bytes: b"tick number\n".to_vec() }],
                printed: None,
                input_hash: None,
            })
        } else {
            Event::HostCall(HostCall {
                import: ImportId(0),
                params: vec![Value::I32(1), Value::I64(1000), Value::I32(0x1_0400)],
                outcome: Outcome::Returned(vec![Value::I32(0)]),
                writes: vec![MemoryBytes { memory: 0, offset: 0x1_0400, bytes: now.to_le_bytes().to_vec() }],
                reads: vec![],
                printed: None,
                input_hash: None,
            })
        };
        writer.append(&event).expect("append");
    }
    writer
        .append(&Event::Trap(Box::new(Trap {
            code: TrapCode::UnreachableCodeReached,
            message: "wasm trap: wasm `unreachable` instruction executed".into(),
            frames: vec![Frame {
                module: 0,
                func_index: 1,
                func_name: Some("main".into()),
                module_offset: Some(0x40),
                func_offset: Some(3),
                source: None,
            }],
            wasm_fault_address: None,
            memory_size: None,
            native: NativeCapture::Missing(MissingReason::NoSignal),
            memory_window: None,
        })))
        .expect("append");
    writer.finish().expect("finish");
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn draw(terminal: &mut Terminal<TestBackend>, app: &App) -> Duration {
    let start = Instant::now();
    terminal.draw(|frame| wtrace_tui::draw(app, frame)).expect("draw");
    start.elapsed()
}

fn measure(path: &std::path::Path) {
    let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("terminal");
    let start = Instant::now();
    let trace = Trace::open(path).expect("open");
    let (mut app, _) = App::new(trace.clone(), "bench.zst".into(), SIZE, Theme { color: true });
    draw(&mut terminal, &app);
    let first = start.elapsed();
    println!("events: {}", app.len);
    println!("first screen (open, build, draw):     {} (target <= 300 ms)", ms(first));

    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut gotos = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..200 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let seq = rng % app.len;
        let start = Instant::now();
        for c in format!(":{seq}").chars() {
            app.update(Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
        }
        app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert_eq!(app.selected, seq);
        draw(&mut terminal, &app);
        gotos.push(start.elapsed());
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE)));
        frames.push(draw(&mut terminal, &app));
    }
    println!(
        "go to a random event (keys, update, draw): p50 {}  p99 {} (target <= 20 ms)",
        ms(percentile(&mut gotos, 0.5)),
        ms(percentile(&mut gotos, 0.99))
    );
    println!(
        "draw a frame after j:                  p50 {}  p99 {} (target <= 5 ms)",
        ms(percentile(&mut frames, 0.5)),
        ms(percentile(&mut frames, 0.99))
    );

    // The jobs a session starts in the background, on their own thread as in a session.
    let jobs = Jobs::new(trace, std::sync::Arc::default());
    let start = Instant::now();
    jobs.run(Request::Markers, &mut |_| {});
    println!("worker: markers and timeline colours:  {}", ms(start.elapsed()));
    let start = Instant::now();
    let filter = Filter::parse("name=fd_write").expect("filter");
    let mut matches = 0;
    jobs.run(Request::Filter { id: 1, filter }, &mut |r| {
        if let wtrace_tui::Response::Filtered { set, .. } = r {
            matches = set.len();
        }
    });
    println!("worker: filter name=fd_write:          {} ({matches} matches)", ms(start.elapsed()));
    println!("peak RSS of the browsing process:     {:.0} MiB (target <= 200 MB)", peak_rss_mib());
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD) {
        measure(std::path::Path::new(&path));
        return;
    }
    let count: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.zst");
    let start = Instant::now();
    write(&path, count);
    println!(
        "wrote {count} events in {} ({} bytes)",
        ms(start.elapsed()),
        std::fs::metadata(&path).map_or(0, |m| m.len())
    );
    let status = std::process::Command::new(std::env::current_exe().expect("self"))
        .env(CHILD, &path)
        .status()
        .expect("run the measuring child");
    assert!(status.success());
}
