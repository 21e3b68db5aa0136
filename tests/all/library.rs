//! The library API a Rust test uses: record a module, open the trace, replay it, assert on
//! the trap, the exit status and the output, and walk the events. Failed assertions must
//! explain themselves.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::common::{fixture, guest};
use wtrace::{Event, RecordOptions, RunEnd, Trace, TrapCode};

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_default()
}

#[test]
fn record_replay_and_assert_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oob.zst");
    let options = RecordOptions::from_file(fixture("traps/oob_memory.wat")).unwrap();
    let recorded = wtrace::record(&options, &path).unwrap();
    let RunEnd::Trapped(trap) = &recorded.end else { panic!("expected a trap, got {:?}", recorded.end) };
    let pc = trap.frames[0].module_offset.unwrap();

    let trace = Trace::open(&path).unwrap();
    let run = wtrace::replay(&trace).unwrap();
    run.assert_matched();
    let located = run.assert_trap(TrapCode::MemoryOutOfBounds).in_function("parse_header").at_wasm_pc(pc);
    assert_eq!(located.trap().wasm_fault_address, Some(0x10000));

    let wrong_code = panic_message(|| {
        run.assert_trap(TrapCode::UnreachableCodeReached);
    });
    assert!(
        wrong_code.contains("expected trap unreachable, but the run trapped with memory-out-of-bounds"),
        "{wrong_code}"
    );
    assert!(wrong_code.contains("parse_header at Wasm PC"), "{wrong_code}");
    let wrong_function = panic_message(|| {
        run.assert_trap(TrapCode::MemoryOutOfBounds).in_function("main");
    });
    assert!(
        wrong_function.contains("expected the trap in function `main`, but it is in `parse_header`"),
        "{wrong_function}"
    );
    let wrong_pc = panic_message(|| {
        run.assert_trap(TrapCode::MemoryOutOfBounds).at_wasm_pc(pc + 1);
    });
    assert!(
        wrong_pc.contains(&format!("expected the trap at Wasm PC {:#x}, but it is at {pc:#x}", pc + 1)),
        "{wrong_pc}"
    );
}

#[test]
fn record_with_arguments_stdin_and_assert_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.zst");
    let options = RecordOptions::from_file(guest("stdin_echo")).unwrap().stdin(b"left\nright\n".to_vec());
    let recorded = wtrace::record(&options, &path).unwrap();
    assert_eq!(recorded.stdout, b"stdin: 11 bytes, 2 lines\nright\nleft\n");
    assert_eq!(recorded.end, RunEnd::Exited(0));

    let trace = Trace::open(&path).unwrap();
    let run = wtrace::replay(&trace).unwrap();
    run.assert_matched()
        .assert_exit(0)
        .assert_stdout("stdin: 11 bytes, 2 lines\nright\nleft\n")
        .assert_stderr("");

    let diff = panic_message(|| {
        run.assert_stdout("stdin: 11 bytes, 2 lines\nleft\nright\n");
    });
    assert!(diff.contains("stdout differs from the expected"), "{diff}");
    assert!(diff.contains("@@ line 2 @@\n-left\\n\n+right\\n"), "{diff}");
    assert!(!diff.contains("@@ line 1 @@"), "{diff}");
    let exit = panic_message(|| {
        run.assert_exit(1);
    });
    assert!(exit.contains("expected exit status 1, but the run exited with status 0"), "{exit}");

    // Custom checks over the events: the bytes the guest read from stdin are in the trace.
    let imports = &trace.header().run.imports;
    let stdin_bytes: Vec<u8> = trace
        .events()
        .map(Result::unwrap)
        .filter_map(|(_, event)| match event {
            Event::HostCall(call) if imports[call.import.0 as usize].name == "fd_read" => Some(call.writes),
            _ => None,
        })
        .flatten()
        .filter(|w| w.bytes.len() > 4)
        .flat_map(|w| w.bytes)
        .collect();
    assert_eq!(stdin_bytes, b"left\nright\n");
}

#[test]
fn exit_status_and_environment_through_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("args.zst");
    let options = RecordOptions::from_file(guest("args_env")).unwrap().arg("3").env("MODE", "test");
    let recorded = wtrace::record(&options, &path).unwrap();
    assert_eq!(recorded.end, RunEnd::Exited(3));
    let run = wtrace::replay(&Trace::open(&path).unwrap()).unwrap();
    run.assert_matched()
        .assert_exit(3)
        .assert_stdout("arg[0] = args_env.wasm\narg[1] = 3\nenv MODE = test\n");
    let not_a_trap = panic_message(|| {
        run.assert_trap(TrapCode::UnreachableCodeReached);
    });
    assert!(
        not_a_trap.contains("expected trap unreachable, but the run exited with status 3"),
        "{not_a_trap}"
    );
}

/// A host function that is not WASI, registered through the library: recorded by the generic
/// memory diff, replayed exactly, and named in `wtrace info`.
#[test]
fn custom_host_functions_are_recorded_generically() {
    use wtrace::runtime::wasmtime::{Val, ValType};
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("custom.wat");
    std::fs::write(
        &module,
        r#"(module
  (import "env" "fill" (func $fill (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; fill(64, 5) writes five bytes at 64 and returns their count; print them
    (i32.store (i32.const 4) (call $fill (i32.const 64) (i32.const 5)))
    (i32.store (i32.const 0) (i32.const 64))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    )
    .unwrap();
    let path = dir.path().join("custom.zst");
    let options = RecordOptions::from_file(&module).unwrap().host_func(
        "env",
        "fill",
        &[ValType::I32, ValType::I32],
        &[ValType::I32],
        |memory, params, results| {
            let (Val::I32(at), Val::I32(len)) = (&params[0], &params[1]) else { unreachable!() };
            let (at, len) = (*at as usize, *len as usize);
            memory[at..at + len].copy_from_slice(&b"host!"[..len]);
            results[0] = Val::I32(len as i32);
            Ok(())
        },
    );
    let recorded = wtrace::record(&options, &path).unwrap();
    assert_eq!(recorded.stdout, b"host!");

    let trace = Trace::open(&path).unwrap();
    let fill = trace.event(0).unwrap();
    let Event::HostCall(call) = fill else { panic!("expected the fill call first") };
    assert_eq!(call.writes.len(), 1);
    assert_eq!((call.writes[0].offset, &call.writes[0].bytes[..]), (64, &b"host!"[..]));
    wtrace::replay(&trace).unwrap().assert_matched().assert_stdout("host!");

    let info = crate::common::wtrace(&["info", path.to_str().unwrap()]);
    let text = crate::common::text(&info.stdout);
    assert!(
        text.contains("capture:    1 recorded by the generic memory diff (no write-set table): env::fill"),
        "{text}"
    );
}

/// A host function imported twice is attributed, call by call, to the import it went
/// through, when recording as when replaying, so the replay matches.
#[test]
fn host_functions_imported_twice_are_told_apart() {
    use wtrace::runtime::wasmtime::{Val, ValType};
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("twice.wat");
    std::fs::write(
        &module,
        r#"(module
  (import "env" "next" (func $first (result i32)))
  (import "env" "next" (func $second (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $second))
    (drop (call $first))
    (drop (call $second))))"#,
    )
    .unwrap();
    let path = dir.path().join("twice.zst");
    let counter = std::sync::atomic::AtomicI32::new(0);
    let options = RecordOptions::from_file(&module).unwrap().host_func(
        "env",
        "next",
        &[],
        &[ValType::I32],
        move |_, _, results| {
            results[0] = Val::I32(counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            Ok(())
        },
    );
    wtrace::record(&options, &path).unwrap();
    let trace = Trace::open(&path).unwrap();
    let imports: Vec<u32> = trace
        .events()
        .map(Result::unwrap)
        .filter_map(|(_, event)| match event {
            Event::HostCall(call) => Some(call.import.0),
            _ => None,
        })
        .collect();
    assert_eq!(imports, [1, 0, 1], "the import each call went through");
    wtrace::replay(&trace).unwrap().assert_matched();
}

/// Imports of types WASI never uses (floats here) are replayed through Wasmtime's untyped
/// path, which must give the same results.
#[test]
fn float_host_functions_replay_through_the_untyped_path() {
    use wtrace::runtime::wasmtime::{Val, ValType};
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("float.wat");
    std::fs::write(
        &module,
        r#"(module
  (import "env" "scale" (func $scale (param f64 f32) (result f64 i64)))
  (func (export "run") (result i64) (local $count i64)
    (call $scale (f64.const 1.5) (f32.const 2.0))
    (local.set $count)
    (i64.trunc_f64_s)
    (local.get $count)
    (i64.add)))"#,
    )
    .unwrap();
    let path = dir.path().join("float.zst");
    let options = RecordOptions::from_file(&module).unwrap().invoke("run").host_func(
        "env",
        "scale",
        &[ValType::F64, ValType::F32],
        &[ValType::F64, ValType::I64],
        |_, params, results| {
            let (Val::F64(x), Val::F32(y)) = (&params[0], &params[1]) else { unreachable!() };
            results[0] = Val::F64((f64::from_bits(*x) * f64::from(f32::from_bits(*y)) * 10.0).to_bits());
            results[1] = Val::I64(7);
            Ok(())
        },
    );
    let recorded = wtrace::record(&options, &path).unwrap();
    assert_eq!(recorded.end, RunEnd::Returned(vec![wtrace::Value::I64(37)]));
    let run = wtrace::replay(&Trace::open(&path).unwrap()).unwrap();
    run.assert_matched();
    assert_eq!(run.end, RunEnd::Returned(vec![wtrace::Value::I64(37)]));
}
