//! Debug replay through the library: locals and operand stacks at known points of WAT
//! fixtures, breakpoints by function, PC and `file:line`, stepping forward and back (back N then
//! forward N lands on the same state), reverse-continue, watchpoints both ways, and stops at
//! traps before they unwind.

use std::path::{Path, PathBuf};

use wtrace::Trace;
use wtrace::replayer::debug::{
    BreakAt, CheckpointOptions, Position, RecordedDepth, Session, SessionOptions, StopReason,
};
use wtrace::traces::{TrapCode, Value};

use crate::common::{fixture, guest, text, wtrace};

/// `_start` exits with `sum(4)`: `square(i)` for `i` in `0..4`, added up and stored at 100.
const SUM: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $square (param $x i32) (result i32) (local $r i32)
    (local.set $r (i32.mul (local.get $x) (local.get $x)))
    (local.get $r))
  (func $sum (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $square (local.get $i))))
      (i32.store (i32.const 100) (local.get $acc))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func (export "_start")
    (call $exit (call $sum (i32.const 4)))))"#;

fn record_wat(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let module = dir.join(format!("{name}.wat"));
    std::fs::write(&module, wat).unwrap();
    record(dir, &module, name)
}

fn record(dir: &Path, module: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.zst"));
    wtrace::record(&wtrace::RecordOptions::from_file(module).unwrap(), &path).unwrap();
    path
}

fn open(path: &Path) -> Session {
    Session::open(&Trace::open(path).unwrap(), &SessionOptions::default()).unwrap()
}

fn i32s(values: &[Value]) -> Vec<i32> {
    values.iter().map(|v| if let Value::I32(x) = v { *x } else { panic!("{v:?}") }).collect()
}

#[test]
fn locals_at_breakpoints_equal_what_the_fixture_computes() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&record_wat(dir.path(), "sum", SUM));
    assert_eq!(session.stop().reason, StopReason::Start);
    session.set_breakpoints(&[BreakAt::Function("square".into())]).unwrap();
    for i in 0..4 {
        let stop = session.continue_().unwrap();
        assert!(matches!(stop.reason, StopReason::Breakpoint { .. }), "{:?}", stop.reason);
        let frames = session.frames();
        assert_eq!(frames[0].name.as_deref(), Some("square"));
        assert_eq!(i32s(&frames[0].locals), vec![i, 0], "x and r on entry to square({i})");
        assert_eq!(frames[1].name.as_deref(), Some("sum"));
        let sum_so_far: i32 = (0..i).map(|k| k * k).sum();
        assert_eq!(i32s(&frames[1].locals), vec![4, i, sum_so_far], "n, i and acc in the caller");
    }
    // Stepping through square(3): the operand stack holds x, x again, then x*x.
    assert_eq!(i32s(&session.frames()[0].stack), Vec::<i32>::new());
    session.step().unwrap();
    assert_eq!(i32s(&session.frames()[0].stack), vec![3]);
    session.step().unwrap();
    assert_eq!(i32s(&session.frames()[0].stack), vec![3, 3]);
    session.step().unwrap();
    assert_eq!(i32s(&session.frames()[0].stack), vec![9]);
    let end = session.continue_().unwrap();
    assert_eq!(end.reason, StopReason::End(wtrace::RunEnd::Exited(14)), "{:?}", end.reason);
}

#[test]
fn stepping_back_n_then_forward_n_returns_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&record_wat(dir.path(), "sum", SUM));
    session.set_breakpoints(&[BreakAt::Function("square".into())]).unwrap();
    session.continue_().unwrap();
    session.continue_().unwrap();
    session.continue_().unwrap();
    for _ in 0..5 {
        session.step().unwrap();
    }
    let here = session.position().unwrap();
    let state = (session.frames().to_vec(), session.read_memory(0, 256).unwrap());
    for _ in 0..7 {
        session.step_back().unwrap();
    }
    assert!(session.position().unwrap() < here);
    for _ in 0..7 {
        session.step().unwrap();
    }
    assert_eq!(session.position().unwrap(), here);
    assert_eq!((session.frames().to_vec(), session.read_memory(0, 256).unwrap()), state);
}

#[test]
fn reverse_continue_stops_at_the_previous_breakpoint_hit() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&record_wat(dir.path(), "sum", SUM));
    session.set_breakpoints(&[BreakAt::Function("square".into())]).unwrap();
    for _ in 0..3 {
        session.continue_().unwrap();
    }
    assert_eq!(i32s(&session.frames()[0].locals)[0], 2);
    session.step_over().unwrap();
    session.reverse_continue().unwrap();
    assert_eq!(i32s(&session.frames()[0].locals)[0], 2, "back at square(2)");
    assert!(matches!(session.stop().reason, StopReason::Breakpoint { .. }), "{:?}", session.stop().reason);
    session.reverse_continue().unwrap();
    assert_eq!(i32s(&session.frames()[0].locals)[0], 1, "back at square(1)");
    session.reverse_continue().unwrap();
    session.reverse_continue().unwrap();
    assert_eq!(session.stop().position, Position { seq: 0, steps: 0 }, "before square(0): the start");
}

#[test]
fn watchpoints_find_the_store_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&record_wat(dir.path(), "sum", SUM));
    // acc is stored at 100 after each square: 0 (no change), 1, 5, 14.
    let stop = session.watch(100, 4).continue_().unwrap();
    let StopReason::Watch { old, new, by_host_call, .. } = &stop.reason else { panic!("{:?}", stop.reason) };
    assert_eq!(
        (old.as_slice(), new.as_slice(), *by_host_call),
        (&[0u8, 0, 0, 0][..], &[1u8, 0, 0, 0][..], None)
    );
    let store_pc = stop.writer_pc.expect("the instruction that wrote them");
    let listing = session.module_info().disassemble(session.frames()[0].func_index).unwrap();
    let line = listing.iter().find(|l| l.offset == Some(store_pc)).expect("the writer is in sum");
    assert!(line.text.contains("i32.store"), "{line:?}");
    let stop = session.watch(100, 4).continue_().unwrap();
    assert!(
        matches!(&stop.reason, StopReason::Watch { new, .. } if new[..] == [5, 0, 0, 0]),
        "{:?}",
        stop.reason
    );

    // From the end, back to the store of 14: the instruction itself, about to run.
    session.continue_().unwrap();
    assert!(matches!(session.stop().reason, StopReason::End(_)));
    session.watch(100, 4).reverse_continue().unwrap();
    assert_eq!(session.stop().pc, Some(store_pc), "at the store of the last value");
    assert_eq!(
        session.stop().reason,
        StopReason::LastChange {
            address: 100,
            old: vec![5, 0, 0, 0],
            new: vec![14, 0, 0, 0],
            by_host_call: None
        }
    );
    assert_eq!(session.stop().writer_pc, Some(store_pc));
    assert_eq!(i32s(&session.frames()[0].stack).last(), Some(&14), "about to store 14");
    assert_eq!(session.read_memory(100, 4).unwrap().unwrap(), vec![5, 0, 0, 0], "before it runs");
    session.watch(100, 4).reverse_continue().unwrap();
    assert_eq!(i32s(&session.frames()[0].stack).last(), Some(&5), "the store before it");
}

/// Records the bundled example (which traps), and says which host call read its file.
fn record_example(dir: &Path) -> (PathBuf, u64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = dir.join("example.zst");
    let options = wtrace::RecordOptions::from_file(root.join("examples/header_parser.wat"))
        .unwrap()
        .dir(root.join("examples/data"), "/data");
    wtrace::record(&options, &path).unwrap();
    let trace = Trace::open(&path).unwrap();
    let read = (0..trace.len())
        .find(|&seq| matches!(trace.event(seq).unwrap(), wtrace::Event::HostCall(c) if trace.header().run.imports[c.import.0 as usize].name == "fd_read"))
        .unwrap();
    (path, read)
}

#[test]
fn a_reverse_watch_on_the_bundled_example_finds_the_read_that_stored_the_bad_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (path, read) = record_example(dir.path());
    let trace = Trace::open(&path).unwrap();
    let mut session = Session::open(&trace, &SessionOptions::default()).unwrap();
    let stop = session.continue_().unwrap();
    assert_eq!(
        stop.reason,
        StopReason::Trap(TrapCode::MemoryOutOfBounds),
        "stops at the trap before unwinding"
    );
    let frame = &session.frames()[0];
    assert_eq!(frame.name.as_deref(), Some("parse_header"));
    assert_eq!(i32s(&frame.locals), vec![1024], "the header's address");
    assert_eq!(i32s(&frame.stack), vec![0x10_0400], "the faulting load's address operand");
    // The offset at header + 4: who stored it? The fd_read that read the file.
    session.watch(1028, 4).reverse_continue().unwrap();
    assert_eq!(
        session.stop().reason,
        StopReason::LastChange {
            address: 1028,
            old: vec![0; 4],
            new: vec![0, 0, 0x10, 0],
            by_host_call: Some(read)
        }
    );
    assert_eq!(session.read_memory(1028, 4).unwrap().unwrap(), vec![0, 0, 0, 0], "before the read");
    session.step_over().unwrap();
    assert_eq!(session.read_memory(1028, 4).unwrap().unwrap(), vec![0, 0, 0x10, 0], "after it");
}

#[test]
fn every_trap_kind_stops_before_unwinding_with_the_faulting_frame() {
    let dir = tempfile::tempdir().unwrap();
    let kinds = [
        ("unreachable", TrapCode::UnreachableCodeReached),
        ("div_by_zero", TrapCode::IntegerDivisionByZero),
        ("oob_memory", TrapCode::MemoryOutOfBounds),
        ("stack_overflow", TrapCode::StackOverflow),
    ];
    for (name, code) in kinds {
        let trace = record(dir.path(), &fixture(&format!("traps/{name}.wat")), name);
        let mut session = open(&trace);
        let stop = session.continue_().unwrap();
        assert_eq!(stop.reason, StopReason::Trap(code.clone()), "{name}");
        assert!(!stop.frames.is_empty(), "{name}: the faulting frame is there");
    }
}

#[test]
fn line_breakpoints_in_a_rust_guest_and_frames_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = record(dir.path(), &guest("trap_in_source"), "source");
    let mut session = open(&trace);
    session.set_breakpoints(&[BreakAt::Line { file: "trap_in_source.rs".into(), line: 6 }]).unwrap();
    let stop = session.continue_().unwrap();
    assert!(matches!(stop.reason, StopReason::Breakpoint { .. }), "{:?}", stop.reason);
    let frame = &session.frames()[0];
    let source = frame.source.as_ref().expect("a frame's file:line");
    assert!(source.file.ends_with("trap_in_source.rs") && source.line == 6, "{source:?}");
    assert!(frame.name.as_deref().is_some_and(|n| n.contains("check_length")), "{frame:?}");
    assert!(
        session
            .frames()
            .iter()
            .any(|f| f.name.as_deref().is_some_and(|n| n.ends_with("trap_in_source::main")))
    );
}

/// Calls the clock 120 times, adding up squares; keeps the sum at 100, and at 300 the sum as it
/// was at `i == 60`, which it then uses as an address: out of bounds. At `i == 80` it counts to
/// 3000 at 400 with no host call: a long stretch.
const CLOCKED: &str = r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func $square (param $x i32) (result i32)
    (i32.mul (local.get $x) (local.get $x)))
  (func (export "_start") (local $i i32) (local $acc i32) (local $j i32)
    (loop $l
      (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 200)))
      (local.set $acc (i32.add (local.get $acc) (call $square (local.get $i))))
      (i32.store (i32.const 100) (local.get $acc))
      (if (i32.eq (local.get $i) (i32.const 60))
        (then (i32.store (i32.const 300) (local.get $acc))))
      (if (i32.eq (local.get $i) (i32.const 80))
        (then (loop $busy
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (i32.store (i32.const 400) (local.get $j))
          (br_if $busy (i32.lt_u (local.get $j) (i32.const 3000))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 120))))
    (drop (i32.load (i32.load (i32.const 300))))))"#;

/// What a test compares at a stop.
type Seen = (Position, StopReason, Vec<wtrace::replayer::debug::DebugFrame>, Option<Vec<u8>>);

fn seen(session: &mut Session) -> Seen {
    let position = session.position().unwrap();
    let stop = session.stop().clone();
    (position, stop.reason, stop.frames, session.read_memory(100, 304).unwrap())
}

/// The same requests, answered by a session of each kind of checkpointing.
fn script(session: &mut Session) -> Vec<Seen> {
    let mut out = Vec::new();
    session.continue_().unwrap();
    out.push(seen(session));
    session.step_back().unwrap();
    session.step_back().unwrap();
    out.push(seen(session));
    session.step().unwrap();
    session.step().unwrap();
    out.push(seen(session));
    session.watch(300, 4).reverse_continue().unwrap();
    out.push(seen(session));
    session.set_breakpoints(&[BreakAt::Function("square".into())]).unwrap();
    session.reverse_continue().unwrap();
    out.push(seen(session));
    session.reverse_continue().unwrap();
    out.push(seen(session));
    session.goto(Position { seq: 40, steps: 3 }).unwrap();
    out.push(seen(session));
    session.step_over_back().unwrap();
    out.push(seen(session));
    session.step().unwrap();
    session.step().unwrap();
    session.step_out_back().unwrap();
    out.push(seen(session));
    session.run_to(10).unwrap();
    out.push(seen(session));
    // Deep in the long stretch (the one after the 81st host call), and back in it.
    session.goto(Position { seq: 81, steps: 20_000 }).unwrap();
    out.push(seen(session));
    session.step_back().unwrap();
    session.step_back().unwrap();
    out.push(seen(session));
    session.watch(400, 4).reverse_continue().unwrap();
    out.push(seen(session));
    session.continue_().unwrap();
    out.push(seen(session));
    out
}

#[test]
fn checkpoints_answer_as_re_running_from_the_start_does() {
    let dir = tempfile::tempdir().unwrap();
    let trace = Trace::open(record_wat(dir.path(), "clocked", CLOCKED)).unwrap();
    let open_with = |checkpoints| {
        Session::open(&trace, &SessionOptions { checkpoints, ..SessionOptions::default() }).unwrap()
    };
    let mut plain = open_with(CheckpointOptions { enabled: false, ..CheckpointOptions::default() });
    let mut forked = open_with(CheckpointOptions {
        interval: std::time::Duration::from_millis(1),
        max_count: 8,
        ..CheckpointOptions::default()
    });
    let expected = script(&mut plain);
    assert_eq!(plain.checkpoint_stats().count, 0);
    let got = script(&mut forked);
    for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "request {i}");
    }
    let stats = forked.checkpoint_stats();
    assert_eq!(stats.count, 8, "{stats:?}");
    assert!(stats.dropped > 0, "thinned to the cap: {stats:?}");
    assert!(stats.memory.is_some_and(|bytes| bytes > 0), "{stats:?}");
    let positions = forked.checkpoints();
    assert!(positions.iter().any(|p| p.steps == 0), "at host-call boundaries: {positions:?}");
    assert!(positions.iter().any(|p| p.steps > 0), "in the middle of the long stretch: {positions:?}");

    // The answers themselves: the trap, then the store at i == 60.
    assert_eq!(expected[0].1, StopReason::Trap(TrapCode::MemoryOutOfBounds));
    let at_store = &expected[3];
    assert_eq!(i32s(&at_store.2[0].locals)[0], 60, "i when the stored value was computed");
    let sum_to_60: i32 = (0..=60).map(|k| k * k).sum();
    assert_eq!(i32s(&at_store.2[0].stack), vec![300, sum_to_60], "about to store it");
    // Reverse-continue from there: square(60) was entered before the store.
    assert_eq!(i32s(&expected[4].2[0].locals), vec![60]);
    assert_eq!(i32s(&expected[5].2[0].locals), vec![59]);
}

#[test]
fn a_stack_overflow_says_when_the_replay_overflows_at_another_depth() {
    let dir = tempfile::tempdir().unwrap();
    let path = record(dir.path(), &fixture("traps/stack_overflow.wat"), "overflow");
    let trace = Trace::open(&path).unwrap();
    let recorded = match trace.event(trace.len() - 1).unwrap() {
        wtrace::Event::Trap(trap) => trap.frames.len(),
        other => panic!("{other:?}"),
    };
    let mut session = open(&path);
    let stop = session.continue_().unwrap();
    assert_eq!(stop.reason, StopReason::Trap(TrapCode::StackOverflow));
    // The recorded backtrace keeps the innermost frames only; the replay counts them all.
    assert_eq!(recorded, wtrace::runtime::engine::BACKTRACE_FRAMES);
    assert_eq!(stop.recorded_depth, Some(RecordedDepth::AtLeast(recorded)));
    assert!(stop.depth > 1000, "an unbounded recursion overflows deep: {}", stop.depth);
    assert_eq!(stop.frames.len(), 512, "the innermost 512 are shown");
}

#[test]
fn replay_debug_prints_each_stop_with_its_locals() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = record_example(dir.path());
    let out =
        wtrace(&["replay", "--debug", path.to_str().unwrap(), "--break", "parse_header", "--print-locals"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let stops: Vec<&str> = stdout.lines().filter(|l| l.starts_with("stop ")).collect();
    assert_eq!(stops.len(), 2, "{stdout}");
    assert!(stops[0].contains("breakpoint at") && stops[1].contains("trap memory-out-of-bounds"), "{stdout}");
    let at_trap = stdout.split("stop 2").nth(1).unwrap();
    assert!(at_trap.contains("header_parser.wat!parse_header"), "{stdout}");
    assert!(at_trap.contains("locals: [i32 1024]"), "{stdout}");
    assert!(at_trap.contains("stack:  [i32 1049600]"), "the faulting load's operand: {stdout}");
}

#[test]
fn replay_debug_runs_a_script_of_commands_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let (path, read) = record_example(dir.path());
    let script = ["continue", "reverse-watch 1028:4", "x 1028", "next", "x 0x404", "reverse-step", "globals"];
    let mut args = vec!["replay", "--debug", path.to_str().unwrap(), "--json"];
    for command in &script {
        args.extend(["--ex", command]);
    }
    let out = wtrace(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), script.len(), "one line per command: {lines:?}");
    assert_eq!(lines[0]["reason"]["code"], "memory-out-of-bounds");
    assert_eq!(lines[1]["reason"]["kind"], "last_change");
    assert_eq!(lines[1]["reason"]["by_host_call"], read, "the fd_read that stored the bad offset");
    assert_eq!(
        (&lines[1]["reason"]["old"], &lines[1]["reason"]["new"]),
        (&"00 00 00 00".into(), &"00 00 10 00".into())
    );
    assert_eq!(lines[2]["bytes"], "00 00 00 00", "before the read");
    assert_eq!(lines[4]["bytes"], "00 00 10 00", "after it");
    assert_eq!(lines[5]["position"], lines[1]["position"], "a step back undoes the step");
    assert!(lines[6]["globals"].is_array());
}

#[test]
fn replay_debug_refuses_an_unknown_command_or_place_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = record_example(dir.path());
    for args in [["--ex", "jump 3"], ["--break", "no_such_function"]] {
        let mut all = vec!["replay", "--debug", path.to_str().unwrap()];
        all.extend(args);
        let out = wtrace(&all);
        assert_eq!(out.status.code(), Some(wtrace::exit_codes::USAGE), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
}

/// Two long loops with no host call in them, around a clock call: stretches that take long to
/// single-step through.
const LONG_STRETCHES: &str = r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func $spin (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 20000000)))))
  (func (export "_start")
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 200)))
    (call $spin)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 200)))
    (call $spin)))"#;

#[test]
fn a_canceller_stops_a_long_request_and_the_session_stays_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&record_wat(dir.path(), "long", LONG_STRETCHES));
    let cancel_soon = |session: &Session| {
        let canceller = session.canceller();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            canceller.cancel();
        })
    };
    // Single-stepping 50 million instructions takes far longer than the cancel takes to come:
    // first on the run in this process, from the start,
    let here = session.run_to(1).unwrap().position;
    let canceller = cancel_soon(&session);
    let far = Position { seq: 1, steps: 50_000_000 };
    assert!(matches!(session.goto(far), Err(wtrace::replayer::debug::SessionError::Cancelled)));
    canceller.join().unwrap();
    assert_eq!(session.stop().position, here, "still at the stop before");
    // then on a run a checkpoint forked (the end is reached from the start, past them).
    let end = session.continue_().unwrap().position;
    assert!(matches!(session.stop().reason, StopReason::End(_)));
    assert!(!session.checkpoints().is_empty(), "the long stretches leave checkpoints");
    let canceller = cancel_soon(&session);
    assert!(matches!(
        session.goto(Position { seq: 2, steps: 50_000_000 }),
        Err(wtrace::replayer::debug::SessionError::Cancelled)
    ));
    canceller.join().unwrap();
    assert_eq!(session.stop().position, end);
    // The session goes on from there.
    let stop = session.run_to(1).unwrap();
    assert_eq!(stop.reason, StopReason::HostCall { seq: 1 });
}
