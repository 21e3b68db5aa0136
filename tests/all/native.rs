//! Native capture wired into Wasmtime's signal hook, tested against Wasmtime itself: the fault
//! address minus the memory base is Wasmtime's Wasm address, many threads capture many traps
//! at once, a thread that is not armed sees plain Wasmtime behaviour, and a fault in host code
//! is left alone.
// The host-fault child reports on stderr what its parent checks.
#![allow(clippy::print_stderr)]

use std::os::unix::process::ExitStatusExt;

use wasmtime::{Engine, Instance, Module, Store};
use wtrace::EngineSettings;
use wtrace::runtime::NativeCapturer;
use wtrace::runtime::outcome::{no_native_capture, trap_from_error};
use wtrace::traces::{NativeCapture, Signal, TrapCode};

const OOB: &str = r#"(module
  (memory (export "memory") 1)
  (func $parse_header (export "parse") (param $at i32) (result i32)
    (i32.load (local.get $at))))"#;

fn engine() -> Engine {
    EngineSettings::default().engine().unwrap()
}

/// Calls `parse(at)` and returns the trap with its native state completed.
fn trap_at(
    store: &mut Store<()>,
    instance: Instance,
    native: &NativeCapturer,
    at: i32,
) -> wtrace::traces::Trap {
    let parse = instance.get_typed_func::<i32, i32>(&mut *store, "parse").unwrap();
    let error = parse.call(&mut *store, at).expect_err("out of bounds");
    let mut trap = trap_from_error(&error, no_native_capture());
    let memory = instance.get_memory(&mut *store, "memory").unwrap();
    native.complete(&mut trap, Some((memory.data_ptr(&*store) as u64, memory.data(&*store))));
    trap
}

#[test]
fn fault_address_minus_memory_base_is_the_wasm_address() {
    let engine = engine();
    let module = Module::new(&engine, OOB).unwrap();
    let mut store = Store::new(&engine, ());
    let native = NativeCapturer::install(&mut store, &module);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let base = instance.get_memory(&mut store, "memory").unwrap().data_ptr(&store) as u64;
    for at in [0x10000, 0x1_0000 + 4096, 0x7fff_fff0] {
        let trap = trap_at(&mut store, instance, &native, at);
        assert_eq!(trap.code, TrapCode::MemoryOutOfBounds);
        let NativeCapture::Captured(snapshot) = &trap.native else { panic!("no capture: {:?}", trap.native) };
        assert_eq!(snapshot.signal, Signal::Segv);
        let wasm_address = snapshot.fault_address.unwrap() - base;
        assert_eq!(Some(wasm_address), trap.wasm_fault_address, "at {at:#x}");
        assert_eq!(wasm_address, at as u64);
        assert_eq!(snapshot.wasm_pc, trap.frames[0].module_offset);
    }
}

#[test]
fn eight_threads_each_capture_a_thousand_traps() {
    let engine = engine();
    let module = Module::new(&engine, OOB).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (engine, module) = (engine.clone(), module.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let native = NativeCapturer::install(&mut store, &module);
                let instance = Instance::new(&mut store, &module, &[]).unwrap();
                let mut captured = 0;
                for i in 0..1000 {
                    let at = 0x10000 + (t * 1000 + i) * 4;
                    let trap = trap_at(&mut store, instance, &native, at);
                    if let NativeCapture::Captured(snapshot) = &trap.native {
                        assert_eq!(snapshot.wasm_pc, trap.frames[0].module_offset);
                        captured += 1;
                    }
                }
                captured
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 1000);
    }
}

#[test]
fn a_thread_that_is_not_armed_sees_plain_wasmtime() {
    let engine = engine();
    let module = Module::new(&engine, OOB).unwrap();
    // Arm and disarm this thread first, so a leftover arming would show.
    {
        let mut store = Store::new(&engine, ());
        let native = NativeCapturer::install(&mut store, &module);
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        assert!(matches!(trap_at(&mut store, instance, &native, 0x10000).native, NativeCapture::Captured(_)));
    }
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let parse = instance.get_typed_func::<i32, i32>(&mut store, "parse").unwrap();
    let error = parse.call(&mut store, 0x10000).expect_err("out of bounds");
    assert_eq!(error.downcast_ref::<wasmtime::Trap>(), Some(&wasmtime::Trap::MemoryOutOfBounds));
    assert_eq!(parse.call(&mut store, 16).unwrap(), 0, "the instance still works after the trap");
}

/// Recurses until the stack overflows, in host code (safe Rust: the guard page faults).
fn overflow_host_stack(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let frame = std::hint::black_box([depth; 64]);
    overflow_host_stack(depth + 1).wrapping_add(frame[7])
}

/// A fault in host code while Wasm is on the stack is not intercepted: the hook declines it
/// (its PC is outside the module's code) and the process dies as it would without wtrace. Run
/// in a child process, which this test starts from its own binary.
#[test]
fn a_fault_in_host_code_is_not_intercepted() {
    const CHILD: &str = "WTRACE_HOST_FAULT_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let engine = engine();
        let module = Module::new(
            &engine,
            r#"(module (import "host" "work" (func $work)) (func (export "run") (call $work)))"#,
        )
        .unwrap();
        let mut store = Store::new(&engine, ());
        let _native = NativeCapturer::install(&mut store, &module);
        let work = wasmtime::Func::wrap(&mut store, || {
            eprintln!("host function entered");
            std::hint::black_box(overflow_host_stack(0));
        });
        let instance = Instance::new(&mut store, &module, &[work.into()]).unwrap();
        let run = instance.get_typed_func::<(), ()>(&mut store, "run").unwrap();
        let _ = run.call(&mut store, ());
        eprintln!("the host fault was swallowed");
        std::process::exit(0);
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "native::a_fault_in_host_code_is_not_intercepted",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("host function entered"), "{stderr}");
    assert!(!stderr.contains("the host fault was swallowed"), "{stderr}");
    let signal = out.status.signal();
    assert!(
        matches!(signal, Some(libc::SIGSEGV | libc::SIGABRT | libc::SIGBUS)),
        "{:?}: {stderr}",
        out.status
    );
}
