//! Debug replay through the library: locals and operand stacks at known points of WAT
//! fixtures, breakpoints by function, PC and `file:line`, stepping forward and back (back N then
//! forward N lands on the same state), reverse-continue, watchpoints both ways, and stops at
//! traps before they unwind.

use std::path::{Path, PathBuf};

use wtrace::Trace;
use wtrace::replayer::debug::{BreakAt, Position, Session, SessionOptions, StopReason};
use wtrace::traces::{TrapCode, Value};

use crate::common::{fixture, guest};

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
    assert_eq!(i32s(&session.frames()[0].stack).last(), Some(&14), "about to store 14");
    assert_eq!(session.read_memory(100, 4).unwrap().unwrap(), vec![5, 0, 0, 0], "before it runs");
    session.watch(100, 4).reverse_continue().unwrap();
    assert_eq!(i32s(&session.frames()[0].stack).last(), Some(&5), "the store before it");
}

#[test]
fn a_reverse_watch_on_the_bundled_example_finds_the_read_that_stored_the_bad_offset() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = dir.path().join("example.zst");
    let options = wtrace::RecordOptions::from_file(root.join("examples/header_parser.wat"))
        .unwrap()
        .dir(root.join("examples/data"), "/data");
    wtrace::record(&options, &path).unwrap();
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
    // The offset at header + 4: who stored it? The fd_read that read the file.
    session.watch(1028, 4).reverse_continue().unwrap();
    let read = (0..trace.len())
        .find(|&seq| matches!(trace.event(seq).unwrap(), wtrace::Event::HostCall(c) if trace.header().run.imports[c.import.0 as usize].name == "fd_read"))
        .unwrap();
    assert_eq!(session.stop().reason, StopReason::HostCall { seq: read });
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
