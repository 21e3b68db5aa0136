//! Every trap kind, recorded by the real `wtrace record` from a WAT fixture: the recorded trap
//! code and innermost Wasm PC must equal what Wasmtime's own `WasmBacktrace` reports for the
//! same module run without wtrace, `record` must print Wasmtime's report and exit 134, and
//! `replay` must reproduce the trap.

use crate::common::{fixture, text, wtrace};
use wasmtime::{Linker, Module, Store, Trap as WasmtimeTrap, WasmBacktrace};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wtrace::EngineSettings;

/// Every frame's function index and Wasm PC, innermost first.
type Frames = Vec<(u64, Option<u64>)>;

/// What plain Wasmtime (same engine settings — recording's epoch checks included — real
/// WASI) reports for a fixture's trap: the trap, or for a host error its message, and the
/// frames. With `checks_fire`, every epoch check takes its slow path: Cranelift keeps a second
/// copy of a trap that directly follows a check, attributed to the next Wasm instruction, and
/// a recording whose epoch ticked just before the trap reports that one (see
/// `replayer::moved_trap`).
fn wasmtime_reference(
    path: &std::path::Path,
    flags: &[&str],
    checks_fire: bool,
) -> (Option<WasmtimeTrap>, String, Frames) {
    let mut settings = EngineSettings::default();
    for flag in flags {
        settings.apply_flag(flag).unwrap();
    }
    let engine = settings.interruptible().engine().unwrap();
    let module = Module::from_file(&engine, path).unwrap();
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |cx| cx).unwrap();
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build_p1());
    if checks_fire {
        store.set_epoch_deadline(0);
        store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Continue(0)));
    } else {
        store.set_epoch_deadline(1 << 40);
    }
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
    let error = start.call(&mut store, ()).expect_err("the fixture must trap");
    let backtrace = error.downcast_ref::<WasmBacktrace>().expect("a Wasm backtrace");
    let frames = backtrace
        .frames()
        .iter()
        .map(|f| (u64::from(f.func_index()), f.module_offset().map(|pc| pc as u64)))
        .collect();
    (error.downcast_ref::<WasmtimeTrap>().copied(), error.root_cause().to_string(), frames)
}

/// Records `name` with the CLI and checks the trace, the report and the replay.
fn check_trap(name: &str, code: &str, flags: &[&str]) {
    let path = fixture(&format!("traps/{name}.wat"));
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.zst");
    let trace_arg = trace.to_str().unwrap();
    let mut args = vec!["record", "-o", trace_arg];
    let w_flags: Vec<String> = flags.iter().map(|f| format!("-W{f}")).collect();
    args.extend(w_flags.iter().map(String::as_str));
    args.push(path.to_str().unwrap());
    let recorded = wtrace(&args);
    let stderr = text(&recorded.stderr);
    assert_eq!(
        recorded.status.code(),
        Some(134),
        "{name}: record should exit as wasmtime does on a trap\n{stderr}"
    );

    let (reference_trap, reference_message, quiet_frames) = wasmtime_reference(&path, flags, false);
    let expected_line = match reference_trap {
        Some(trap) => trap.to_string(),
        None => reference_message.clone(),
    };
    assert!(stderr.contains(&format!("Error: failed to run main module `{name}.wat`")), "{name}: {stderr}");
    assert!(stderr.contains("error while executing at wasm backtrace:"), "{name}: {stderr}");
    assert!(stderr.contains(&expected_line), "{name}: no `{expected_line}` in\n{stderr}");

    let dump = wtrace(&["dump", trace_arg, "end", "--json"]);
    assert_eq!(dump.status.code(), Some(0), "{name}: {}", text(&dump.stderr));
    let event: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    assert_eq!(event["kind"], "trap", "{name}: {event}");
    assert_eq!(event["code"], code, "{name}: {event}");
    let recorded_frames: Frames = event["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["func_index"].as_u64().unwrap(), f["module_offset"].as_u64()))
        .collect();
    assert!(!recorded_frames.is_empty(), "{name}: no frames recorded");
    assert!(
        recorded_frames.iter().any(|(_, pc)| pc.is_some()),
        "{name}: no frame has a Wasm PC: {recorded_frames:?}"
    );
    // Wasmtime's backtrace, with the epoch checks quiet or, when one ticked just before the
    // trap, firing: the recording's frames are one of the two.
    let reference_frames =
        if recorded_frames == quiet_frames { quiet_frames } else { wasmtime_reference(&path, flags, true).2 };
    assert_eq!(recorded_frames, reference_frames, "{name}: frames differ from Wasmtime's backtrace");
    if reference_trap.is_none() {
        assert_eq!(event["message"], reference_message.as_str(), "{name}");
    }
    check_native(name, &event, &reference_frames);

    let replayed = wtrace(&["replay", trace_arg, "--expect-trap", code]);
    let replay_stderr = text(&replayed.stderr);
    assert_eq!(replayed.status.code(), Some(134), "{name}: {replay_stderr}");
    assert!(replay_stderr.contains(&expected_line), "{name}: {replay_stderr}");
    assert!(
        replay_stderr.contains("wtrace: replay matched the recording: trapped"),
        "{name}: {replay_stderr}"
    );
    // The same report as the recording's, line for line (wtrace's own lines aside), but for
    // the innermost frame's Wasm PC when replay says the engine raised the trap at its second
    // copy (an epoch tick before it; see `replayer::moved_trap`).
    let moved = replay_stderr.contains("wtrace: the trap was raised at Wasm PC");
    let report = |text: &str| {
        text.lines()
            .filter(|l| {
                let innermost = moved && l.trim_start().starts_with("0:");
                !(l.starts_with("wtrace: ") || innermost)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(report(&replay_stderr), report(&stderr), "{name}: replay's report differs from record's");
}

/// The native snapshot: present for every signal-based trap, its Wasm PC and frame walk equal
/// to Wasmtime's backtrace, its registers plausible; absent with a reason for a host error.
fn check_native(name: &str, event: &serde_json::Value, reference: &Frames) {
    let native = &event["native"];
    if name.starts_with("host_error") {
        assert!(native.is_null(), "{name}: {event}");
        assert_eq!(event["native_missing"], "the trap was raised by the runtime without a signal", "{name}");
        return;
    }
    assert!(native.is_object(), "{name}: no native snapshot: {event}");
    let signal = native["signal"].as_str().unwrap();
    assert!(["SIGILL", "SIGSEGV", "SIGFPE", "SIGBUS"].contains(&signal), "{name}: {signal}");
    let arch = crate::common::arch_under_test();
    assert_eq!(native["arch"], arch.as_str(), "{name}");
    // The Wasm PC of the faulting instruction, and of every frame of the walk Wasmtime's
    // backtrace also has (it stops at 20 frames), are Wasmtime's.
    let walk: Vec<Option<u64>> =
        native["stack"].as_array().unwrap().iter().map(|f| f["wasm_pc"].as_u64()).collect();
    assert_eq!(native["wasm_pc"].as_u64(), reference[0].1, "{name}: snapshot Wasm PC");
    let expected: Vec<Option<u64>> = reference.iter().map(|(_, pc)| *pc).collect();
    assert!(walk.len() >= expected.len(), "{name}: walk {walk:?} shorter than {expected:?}");
    assert_eq!(walk[..expected.len()], expected[..], "{name}: frame walk");
    // Registers: every GPR, the PC, the flags and the vector registers, as 0x hex strings.
    let registers = native["registers"].as_object().unwrap();
    let hex = |key: &str| {
        u64::from_str_radix(registers[key].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    // Each architecture's first and last GPR, PC, SP, flags and vector registers.
    let (keys, pc, sp): (&[&str], &str, &str) = match arch.as_str() {
        "x86_64" => {
            (&["rax", "rbx", "rdi", "rbp", "r8", "r15", "rflags", "xmm0", "xmm15", "mxcsr"], "rip", "rsp")
        }
        "aarch64" => (&["x0", "x29", "x30", "nzcv", "q0", "q31", "fpsr", "fpcr"], "pc", "sp"),
        "riscv64" => (&["ra", "gp", "tp", "s0", "a0", "t6", "f0", "f31", "fcsr"], "pc", "sp"),
        "s390x" => (&["r0", "r2", "r14", "pswm", "fpc", "acr0", "acr15", "f0", "f15"], "pswa", "r15"),
        other => panic!("{name}: no register names for {other}"),
    };
    for key in keys.iter().chain([&pc, &sp]) {
        assert!(registers[*key].as_str().is_some_and(|v| v.starts_with("0x")), "{name}: {key}");
    }
    assert_eq!(format!("{:#x}", hex(pc)), native["pc"].as_str().unwrap(), "{name}");
    // SP lies in the thread's stack: below every frame of the walk, which climbs upwards.
    let fps: Vec<u64> = native["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| u64::from_str_radix(f["fp"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect();
    let sp = hex(sp);
    assert!(sp != 0 && fps.iter().all(|fp| *fp >= sp), "{name}: sp {sp:#x} above a frame: {fps:x?}");
    assert!(fps.windows(2).all(|w| w[1] > w[0]), "{name}: frames do not climb: {fps:x?}");
    // PC inside the module's code: the walk's return addresses are near it (one code object).
    let pcs: Vec<u64> = native["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| u64::from_str_radix(f["pc"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert!(pcs.iter().all(|p| p.abs_diff(hex(pc)) < 1 << 20), "{name}: {pcs:x?}");
}

#[test]
fn unreachable() {
    check_trap("unreachable", "unreachable", &[]);
}

#[test]
fn integer_divide_by_zero() {
    check_trap("div_by_zero", "integer-division-by-zero", &[]);
}

#[test]
fn integer_overflow() {
    check_trap("int_overflow", "integer-overflow", &[]);
}

#[test]
fn invalid_conversion_to_integer() {
    check_trap("bad_conversion", "bad-conversion-to-integer", &[]);
}

#[test]
fn out_of_bounds_memory() {
    check_trap("oob_memory", "memory-out-of-bounds", &[]);
}

#[test]
fn out_of_bounds_table() {
    check_trap("oob_table", "table-out-of-bounds", &[]);
}

#[test]
fn indirect_call_type_mismatch() {
    check_trap("bad_signature", "bad-signature", &[]);
}

#[test]
fn uninitialized_element() {
    check_trap("uninitialized_element", "indirect-call-to-null", &[]);
}

#[test]
fn null_reference() {
    check_trap("null_reference", "null-reference", &["function-references=y"]);
}

#[test]
fn call_stack_exhausted() {
    check_trap("stack_overflow", "stack-overflow", &[]);
}

#[test]
fn error_returned_by_a_host_function() {
    check_trap("host_error", "host-error", &[]);
}

/// A host error with a chain of causes replays with the same chain.
#[test]
fn host_error_with_a_chain_of_causes() {
    check_trap("host_error_chain", "host-error", &[]);
}

/// The memory fault records the Wasm address and the memory size Wasmtime reports.
#[test]
fn memory_fault_records_address_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("oob.zst");
    let path = fixture("traps/oob_memory.wat");
    wtrace(&["record", "-q", "-o", trace.to_str().unwrap(), path.to_str().unwrap()]);
    let dump = wtrace(&["dump", trace.to_str().unwrap(), "end", "--json"]);
    let event: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    assert_eq!(event["wasm_fault_address"], 0x10000, "{event}");
    assert_eq!(event["memory_size"], 0x10000, "{event}");
    // The native fault address minus the memory base is the Wasm address: the window of bytes
    // around it, cut there from linear memory, ends at the end of memory, 32 bytes after it.
    assert_eq!(event["native"]["signal"], "SIGSEGV", "{event}");
    assert_eq!(event["memory_window"]["offset"], 0x10000 - 32, "{event}");
    assert_eq!(event["memory_window"]["len"], 32, "{event}");
    assert_eq!(event["frames"][0]["func_name"], "parse_header", "{event}");
}
