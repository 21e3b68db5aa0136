//! Round trips, damage and recovery of the trace format, through the public API only.

use std::process::Command;

use proptest::prelude::*;
use wtrace_traces::{
    Arch, Completeness, Event, Frame, Header, HostCall, ImportId, ImportName, MemoryBytes, MissingReason,
    ModuleEntry, NativeCapture, NativeFrame, NativeSnapshot, Outcome, Printed, RunInfo, Signal,
    SourceLocation, Stream, Trace, TraceError, TraceWriter, Trap, TrapCode, Value, WriterOptions,
};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::I32),
        any::<i64>().prop_map(Value::I64),
        any::<u32>().prop_map(Value::F32),
        any::<u64>().prop_map(Value::F64),
        any::<u128>().prop_map(Value::V128),
        any::<bool>().prop_map(|null| Value::FuncRef { null }),
        any::<bool>().prop_map(|null| Value::ExternRef { null }),
    ]
}

fn memory_bytes() -> impl Strategy<Value = MemoryBytes> {
    (0u32..3, any::<u64>(), prop::collection::vec(any::<u8>(), 0..40))
        .prop_map(|(memory, offset, bytes)| MemoryBytes { memory, offset, bytes })
}

fn host_call() -> impl Strategy<Value = Event> {
    let outcome = prop_oneof![
        prop::collection::vec(value(), 0..3).prop_map(Outcome::Returned),
        any::<i32>().prop_map(Outcome::Exited),
        ".{0,20}".prop_map(Outcome::Error),
    ];
    (
        0u32..8,
        prop::collection::vec(value(), 0..6),
        outcome,
        prop::collection::vec(memory_bytes(), 0..3),
        prop::collection::vec(memory_bytes(), 0..2),
        prop::option::of((any::<bool>(), any::<u32>())),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(import, params, outcome, writes, reads, printed, input_hash)| {
            let printed = printed.map(|(stderr, len)| Printed {
                stream: if stderr { Stream::Stderr } else { Stream::Stdout },
                len,
            });
            Event::HostCall(HostCall {
                import: ImportId(import),
                params,
                outcome,
                writes,
                reads,
                printed,
                input_hash,
            })
        })
}

fn snapshot() -> impl Strategy<Value = NativeSnapshot> {
    (
        prop_oneof![Just(Arch::X86_64), Just(Arch::Aarch64), Just(Arch::Riscv64), Just(Arch::S390x)],
        prop_oneof![
            Just(Signal::Segv),
            Just(Signal::Ill),
            Just(Signal::Fpe),
            any::<i32>().prop_map(Signal::Other)
        ],
        any::<i32>(),
        any::<Option<u64>>(),
        any::<[u64; 4]>(),
        prop::collection::vec(any::<u64>(), 0..32),
        prop::collection::vec(any::<u128>(), 0..32),
        prop::collection::vec(any::<u64>(), 0..3),
        any::<Option<u32>>(),
        prop::collection::vec((any::<u64>(), any::<u64>(), any::<Option<u32>>()), 0..4),
    )
        .prop_map(
            |(
                arch,
                signal,
                si_code,
                fault_address,
                [pc, sp, fp, flags],
                gprs,
                vregs,
                extra,
                wasm_pc,
                stack,
            )| {
                NativeSnapshot {
                    arch,
                    signal,
                    si_code,
                    fault_address,
                    pc,
                    sp,
                    fp,
                    flags,
                    gprs,
                    vregs,
                    extra,
                    wasm_pc,
                    stack: stack
                        .into_iter()
                        .map(|(pc, fp, wasm_pc)| NativeFrame { pc, fp, wasm_pc })
                        .collect(),
                }
            },
        )
}

fn trap() -> impl Strategy<Value = Event> {
    let code = prop_oneof![
        (0..TrapCode::NAMED.len()).prop_map(|i| TrapCode::NAMED[i].clone()),
        "[a-z]{1,12}".prop_map(TrapCode::Other),
    ];
    let frame = (
        0u32..2,
        any::<u32>(),
        proptest::option::of("[a-z_]{1,10}"),
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        proptest::option::of(("[a-z/.]{1,12}", any::<u32>(), any::<u32>())),
    )
        .prop_map(|(module, func_index, func_name, module_offset, func_offset, source)| Frame {
            module,
            func_index,
            func_name,
            module_offset,
            func_offset,
            source: source.map(|(file, line, column)| SourceLocation { file, line, column }),
        });
    let native = prop_oneof![
        snapshot().prop_map(|s| NativeCapture::Captured(Box::new(s))),
        Just(NativeCapture::Missing(MissingReason::NoSignal)),
        ".{0,10}".prop_map(|why| NativeCapture::Missing(MissingReason::Failed(why))),
    ];
    (
        code,
        ".{0,30}",
        prop::collection::vec(frame, 0..4),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        native,
        proptest::option::of(memory_bytes()),
    )
        .prop_map(|(code, message, frames, wasm_fault_address, memory_size, native, memory_window)| {
            Event::Trap(Box::new(Trap {
                code,
                message,
                frames,
                wasm_fault_address,
                memory_size,
                native,
                memory_window,
            }))
        })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => host_call(),
        1 => trap(),
        1 => any::<i32>().prop_map(|code| Event::Exit { code }),
        1 => prop::collection::vec(value(), 0..4).prop_map(|values| Event::Returned { values }),
    ]
}

const MODULE: &[u8] = b"\0asm\x01\0\0\0 pretend module bytes for the module table";

fn header() -> Header {
    let mut run = RunInfo {
        wasmtime_version: "48.0.0".into(),
        target: "x86_64-unknown-linux-gnu".into(),
        engine_config: vec![("signals_based_traps".into(), "true".into())],
        created_unix_ms: 1_700_000_000_000,
        command_line: vec!["wtrace".into(), "record".into(), "app.wasm".into()],
        args: vec!["app.wasm".into()],
        modules: vec![ModuleEntry::new("app.wasm", MODULE)],
        ..RunInfo::default()
    };
    for name in ["fd_write", "fd_read", "clock_time_get", "random_get", "proc_exit", "args_get", "x", "y"] {
        run.imports.push(ImportName { module: "wasi_snapshot_preview1".into(), name: name.into() });
    }
    Header::new(run)
}

/// Writes `events` into an in-memory trace with small frames so that most tests see many.
fn write_trace(events: &[Event], batch_bytes: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.zst");
    let options = WriterOptions { batch_bytes, ..WriterOptions::default() };
    let mut writer = TraceWriter::create(&path, header(), &[(0, MODULE)], options).unwrap();
    for (seq, event) in events.iter().enumerate() {
        assert_eq!(writer.append(event).unwrap(), seq as u64);
    }
    let summary = writer.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(summary.file_bytes, bytes.len() as u64);
    assert_eq!(summary.events, events.len() as u64);
    bytes
}

fn all_events(trace: &Trace) -> Result<Vec<Event>, TraceError> {
    trace.events().map(|r| r.map(|(_, e)| e)).collect()
}

fn sample_events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| match i % 7 {
            6 => Event::Exit { code: i as i32 },
            _ => Event::HostCall(HostCall {
                import: ImportId((i % 4) as u32),
                params: vec![Value::I32(i as i32), Value::I64(-(i as i64))],
                outcome: Outcome::Returned(vec![Value::I32(0)]),
                writes: vec![MemoryBytes {
                    memory: 0,
                    offset: 1024,
                    bytes: (i as u64).to_le_bytes().to_vec(),
                }],
                reads: vec![],
                printed: None,
                input_hash: None,
            }),
        })
        .collect()
}

/// One record around a host-call body, as the writer frames it.
fn host_call_record(body: &[u8]) -> Vec<u8> {
    let mut record = Vec::new();
    let mut len = body.len() as u64 + 1;
    while len >= 0x80 {
        record.push((len as u8) | 0x80);
        len >>= 7;
    }
    record.push(len as u8);
    record.push(1);
    record.extend_from_slice(body);
    record
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The hand-written host-call decoder reads exactly what bincode writes...
    #[test]
    fn host_call_decoder_matches_bincode_on_values(event in host_call()) {
        let Event::HostCall(call) = &event else { unreachable!() };
        let body = bincode::encode_to_vec(call, bincode::config::standard()).unwrap();
        prop_assert_eq!(wtrace_traces::parse_event_stream(&host_call_record(&body)).unwrap(), vec![event.clone()]);
    }

    /// ...and accepts arbitrary bytes exactly when bincode does, with the same result.
    #[test]
    fn host_call_decoder_matches_bincode_on_bytes(body in prop::collection::vec(any::<u8>(), 1..48)) {
        let ours = wtrace_traces::parse_event_stream(&host_call_record(&body));
        // bincode itself needs a limit here, or a garbage length makes it allocate without bound.
        let theirs = bincode::decode_from_slice::<HostCall, _>(&body, bincode::config::standard().with_limit::<65536>());
        match (ours, theirs) {
            (Ok(events), Ok((call, used))) if used == body.len() => prop_assert_eq!(events, vec![Event::HostCall(call)]),
            (Ok(events), theirs) => prop_assert!(false, "we accepted {:?}, bincode said {:?}", events, theirs),
            (Err(error), Ok((call, used))) if used == body.len() => prop_assert!(false, "we refused {:?}: {:?}", call, error),
            (Err(_), _) => {}
        }
    }

    #[test]
    fn round_trip_sequential_and_random(events in prop::collection::vec(event(), 0..120), batch in 64usize..4096, probes in prop::collection::vec(any::<prop::sample::Index>(), 0..20)) {
        let bytes = write_trace(&events, batch);
        let trace = Trace::from_bytes(bytes).unwrap();
        prop_assert_eq!(trace.completeness(), &Completeness::Complete);
        prop_assert_eq!(trace.len(), events.len() as u64);
        prop_assert_eq!(&all_events(&trace).unwrap(), &events);
        // Decoding into one reused event must give the same events, whatever kinds and
        // buffer sizes the previous one left behind.
        let mut reused = Event::Exit { code: 0 };
        let mut iter = trace.events();
        let mut seen = 0usize;
        while let Some(seq) = iter.next_into(&mut reused) {
            prop_assert_eq!(seq.unwrap(), seen as u64);
            prop_assert_eq!(&reused, &events[seen]);
            seen += 1;
        }
        prop_assert_eq!(seen, events.len());
        for probe in probes {
            if events.is_empty() { break; }
            let seq = probe.index(events.len());
            prop_assert_eq!(&trace.event(seq as u64).unwrap(), &events[seq]);
        }
        let counts = trace.kind_counts();
        for kind in wtrace_traces::EventKind::ALL {
            prop_assert_eq!(counts[kind.index()], events.iter().filter(|e| e.kind() == kind).count() as u64);
        }
        prop_assert_eq!(trace.module_bytes(0).unwrap(), MODULE);
    }

    #[test]
    fn ranges_match_slices(events in prop::collection::vec(event(), 1..60), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let bytes = write_trace(&events, 256);
        let trace = Trace::from_bytes(bytes).unwrap();
        let (lo, hi) = { let (x, y) = (a.index(events.len() + 1), b.index(events.len() + 1)); (x.min(y), x.max(y)) };
        let got: Vec<(u64, Event)> = trace.range(lo as u64..hi as u64).collect::<Result<_, _>>().unwrap();
        let want: Vec<(u64, Event)> = (lo..hi).map(|i| (i as u64, events[i].clone())).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn header_round_trips() {
    let bytes = write_trace(&[], 1024);
    let trace = Trace::from_bytes(bytes).unwrap();
    assert_eq!(trace.header(), &{
        let mut h = header();
        h.run.modules[0].embedded = true;
        h
    });
    assert!(trace.is_empty());
    assert_eq!(
        trace.event(0).unwrap_err().to_string(),
        "event 0 does not exist: the trace has 0 events (0..0)"
    );
}

#[test]
fn stock_zstd_decodes_the_event_stream() {
    let events = sample_events(5000);
    let bytes = write_trace(&events, 4096);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.zst");
    std::fs::write(&path, &bytes).unwrap();
    let out =
        Command::new("zstd").arg("-d").arg("-c").arg(&path).output().expect(
            "the `zstd` command must be installed (Debian package zstd; scripts/test.sh installs it)",
        );
    assert!(out.status.success(), "zstd -d failed: {}", String::from_utf8_lossy(&out.stderr));
    let parsed = wtrace_traces::parse_event_stream(&out.stdout).unwrap();
    assert_eq!(parsed, events);
}

/// Cutting the file at every byte keeps exactly the complete frames before the cut.
#[test]
fn truncation_at_every_offset_recovers_exactly_the_complete_frames() {
    let events = sample_events(60);
    let bytes = write_trace(&events, 300);
    let full = Trace::from_bytes(bytes.clone()).unwrap();
    assert!(full.frames().len() >= 5, "want several data frames, got {}", full.frames().len());
    let header_end = 8 + u64::from(u32::from_le_bytes(bytes[4..8].try_into().unwrap()));
    for cut in 0..bytes.len() {
        let result = Trace::from_bytes(bytes[..cut].to_vec());
        let expected: u64 = full
            .frames()
            .iter()
            .filter(|f| f.offset + u64::from(f.compressed_len) <= cut as u64)
            .map(|f| u64::from(f.events))
            .sum();
        match result {
            Err(error) => {
                assert!((cut as u64) < header_end, "cut at {cut} (after the header) failed: {error}");
            }
            Ok(trace) => {
                assert!(cut as u64 >= header_end, "cut at {cut} inside the header was accepted");
                assert!(matches!(trace.completeness(), Completeness::Recovered { .. }), "cut {cut}");
                assert_eq!(trace.len(), expected, "cut at {cut}");
                assert_eq!(all_events(&trace).unwrap(), events[..expected as usize], "cut at {cut}");
            }
        }
    }
}

#[test]
fn flipped_bytes_in_a_data_frame_are_reported_with_the_frame() {
    let events = sample_events(200);
    let bytes = write_trace(&events, 600);
    let full = Trace::from_bytes(bytes.clone()).unwrap();
    let target = 2;
    let frame = full.frames()[target].clone();
    let mut checksum_errors = 0;
    let mut harmless = 0;
    for at in frame.offset..frame.offset + u64::from(frame.compressed_len) {
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= 0x20;
        let trace = Trace::from_bytes(damaged).expect("the index is intact, so open succeeds");
        let error = match all_events(&trace) {
            // A flip in a field zstd does not need for decoding (e.g. the window size) is
            // harmless: the content and its checksum are unchanged. Anything else must fail.
            Ok(read) => {
                assert!(read == events, "flip at {at} produced different events without an error");
                harmless += 1;
                continue;
            }
            Err(error) => error,
        };
        let text = error.to_string();
        assert!(text.contains(&format!("frame {target}")), "flip at {at}: {text}");
        if matches!(&error, TraceError::DamagedFrame { detail, .. } if detail == "checksum mismatch") {
            checksum_errors += 1;
        }
        // Events of other frames still read.
        let first_seq = full.frames()[target + 1].first_seq;
        assert_eq!(trace.event(first_seq).unwrap(), events[first_seq as usize]);
    }
    assert!(checksum_errors > 0, "no flip was caught by the content checksum");
    assert!(harmless <= 2, "{harmless} flips went unnoticed");
    // The checksum itself: the frame's last four bytes.
    let mut damaged = bytes.clone();
    damaged[(frame.offset + u64::from(frame.compressed_len) - 1) as usize] ^= 1;
    let trace = Trace::from_bytes(damaged).unwrap();
    let error = trace.event(frame.first_seq).unwrap_err();
    assert!(
        matches!(&error, TraceError::DamagedFrame { frame: 2, detail, offset } if detail == "checksum mismatch" && *offset == frame.offset),
        "{error}"
    );
}

#[test]
fn damaged_index_falls_back_to_recovery() {
    let events = sample_events(100);
    let mut bytes = write_trace(&events, 400);
    let full = Trace::from_bytes(bytes.clone()).unwrap();
    let last = full.frames().last().unwrap();
    let index_at = (last.offset + u64::from(last.compressed_len)) as usize;
    bytes[index_at + 20] ^= 0xff;
    let trace = Trace::from_bytes(bytes).unwrap();
    match trace.completeness() {
        Completeness::Recovered { index_problem, .. } => {
            assert!(index_problem.contains("checksum mismatch"), "{index_problem}");
        }
        Completeness::Complete => panic!("a damaged index was trusted"),
    }
    assert_eq!(all_events(&trace).unwrap(), events);
}

#[test]
fn bad_inputs_each_get_their_own_error() {
    assert!(matches!(Trace::from_bytes(Vec::new()), Err(TraceError::Empty)));
    let garbage = Trace::from_bytes(b"hello, this is not a trace at all".to_vec()).unwrap_err();
    assert!(
        matches!(&garbage, TraceError::NotATrace { reason } if reason.contains("starts with bytes")),
        "{garbage}"
    );
    let zstd_file = zstd::bulk::compress(b"just some text", 3).unwrap();
    let error = Trace::from_bytes(zstd_file).unwrap_err();
    assert!(matches!(&error, TraceError::NotATrace { reason } if reason.contains("zstd file")), "{error}");
    assert!(matches!(Trace::from_bytes(vec![1, 2]), Err(TraceError::NotATrace { .. })));
    let missing = Trace::open("/nonexistent/dir/trace.zst").unwrap_err();
    assert!(matches!(missing, TraceError::Open { .. }), "{missing}");
}

#[test]
fn newer_major_version_is_refused_naming_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.zst");
    let mut future = header();
    future.format.major = 2;
    future.format.minor = 7;
    future.writer = "9.4.1".into();
    let mut writer = TraceWriter::create(&path, future, &[], WriterOptions::default()).unwrap();
    writer.append(&Event::Exit { code: 0 }).unwrap();
    writer.finish().unwrap();
    let error = Trace::open(&path).unwrap_err();
    assert!(
        matches!(&error, TraceError::NewerFormat { major: 2, minor: 7, writer } if writer == "9.4.1"),
        "{error}"
    );
    assert!(error.to_string().contains("wtrace 9.4.1"), "{error}");
}

#[test]
fn newer_minor_version_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("minor.zst");
    let mut newer = header();
    newer.format.minor = 3;
    let mut writer = TraceWriter::create(&path, newer, &[], WriterOptions::default()).unwrap();
    writer.append(&Event::Exit { code: 4 }).unwrap();
    writer.finish().unwrap();
    let trace = Trace::open(&path).unwrap();
    assert_eq!(trace.event(0).unwrap(), Event::Exit { code: 4 });
}

#[test]
fn repair_rewrites_the_index_atomically() {
    let events = sample_events(300);
    let bytes = write_trace(&events, 500);
    let full = Trace::from_bytes(bytes.clone()).unwrap();
    let third = &full.frames()[3];
    // Cut in the middle of the fourth data frame, as a killed recorder would leave it.
    let cut = (third.offset + u64::from(third.compressed_len) / 2) as usize;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.zst");
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let outcome = wtrace_traces::repair(&path, None).unwrap();
    let kept = third.first_seq;
    match outcome {
        wtrace_traces::RepairOutcome::Repaired { events: n, dropped_bytes, .. } => {
            assert_eq!(n, kept);
            assert_eq!(dropped_bytes, cut as u64 - third.offset);
        }
        other @ wtrace_traces::RepairOutcome::AlreadyComplete { .. } => panic!("{other:?}"),
    }
    let repaired = Trace::open(&path).unwrap();
    assert_eq!(repaired.completeness(), &Completeness::Complete);
    assert_eq!(all_events(&repaired).unwrap(), events[..kept as usize]);
    assert_eq!(repaired.module_bytes(0).unwrap(), MODULE);
    // Only the repaired file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert!(matches!(
        wtrace_traces::repair(&path, None).unwrap(),
        wtrace_traces::RepairOutcome::AlreadyComplete { events: n } if n == kept
    ));
}

#[test]
fn flush_makes_events_durable_before_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.zst");
    let mut writer = TraceWriter::create(&path, header(), &[], WriterOptions::default()).unwrap();
    let events = sample_events(10);
    for event in &events {
        writer.append(event).unwrap();
    }
    writer.flush().unwrap();
    // The file is readable by recovery while the writer is still open.
    let trace = Trace::open(&path).unwrap();
    assert!(matches!(trace.completeness(), Completeness::Recovered { .. }));
    assert_eq!(all_events(&trace).unwrap(), events);
    writer.finish().unwrap();
    assert_eq!(Trace::open(&path).unwrap().completeness(), &Completeness::Complete);
}

#[test]
fn time_based_flush_writes_a_batch_without_explicit_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timed.zst");
    let options =
        WriterOptions { flush_interval: std::time::Duration::from_millis(20), ..WriterOptions::default() };
    let mut writer = TraceWriter::create(&path, header(), &[], options).unwrap();
    writer.append(&Event::Exit { code: 1 }).unwrap();
    // Wait (bounded) for the interval to pass; the next append then hands the batch over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = 0;
    while seen == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(30));
        writer.append(&Event::Exit { code: 2 }).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        seen = Trace::open(&path).unwrap().len();
    }
    assert!(seen >= 2, "no batch reached the file without an explicit flush");
    drop(writer);
    assert_eq!(Trace::open(&path).unwrap().completeness(), &Completeness::Complete);
}

#[test]
fn writer_reports_a_failing_sink() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let error = TraceWriter::new(Full, header(), &[], WriterOptions::default()).err().unwrap();
    assert!(error.to_string().contains("No space left"), "{error}");
}

#[test]
fn writer_reports_a_sink_that_fills_up_later() {
    struct Fills(usize);
    impl std::io::Write for Fills {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() {
                return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = TraceWriter::new(
        Fills(2000),
        header(),
        &[],
        WriterOptions { batch_bytes: 512, ..Default::default() },
    )
    .unwrap();
    let error = sample_events(100_000)
        .iter()
        .find_map(|e| writer.append(e).err())
        .or_else(|| writer.finish().err())
        .expect("a full sink must surface as an error");
    assert!(matches!(error, TraceError::Io { .. }), "{error}");
    assert!(error.to_string().contains("No space left"), "{error}");
}

/// The fuzzing seed is a valid trace with every event kind, in both minor-version modes, and
/// assembles without its tail into one that recovers the same events.
#[test]
fn the_fuzzing_seed_holds_every_event_kind() {
    use wtrace_traces::fuzzing::Parts;
    for newer_minor in [false, true] {
        let parts = Parts::seed(newer_minor);
        let trace = Trace::from_bytes(parts.assemble()).unwrap();
        assert!(matches!(trace.completeness(), Completeness::Complete), "{:?}", trace.completeness());
        assert!(trace.kind_counts().iter().all(|n| *n > 0), "{:?}", trace.kind_counts());
        let events: Vec<Event> = trace.events().map(|e| e.unwrap().1).collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Trap(t) if matches!(t.native, NativeCapture::Captured(_))))
        );
        let unfinished = Trace::from_bytes(Parts { finished: false, ..parts.clone() }.assemble()).unwrap();
        assert!(matches!(unfinished.completeness(), Completeness::Recovered { .. }));
        let recovered: Vec<Event> = unfinished.events().map(|e| e.unwrap().1).collect();
        assert_eq!(recovered, events);
        assert_eq!(trace.module_bytes(0).unwrap(), b"\0asm\x01\0\0\0");
    }
}
