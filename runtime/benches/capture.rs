//! Cost of native capture, measured side by side in one process: the time of a trapping call
//! with the thread armed (fault, injected call, snapshot stored, second fault, Wasmtime's
//! unwinding) against the same call unarmed, as p50/p99; and a compute loop with no traps,
//! armed against unarmed.
//!
//! Run: `cargo bench -p wtrace-replayer --bench capture`.
//! Targets (README, Benchmarks): <= 20 us per capture; no measurable overhead without traps (<= 1%).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use wasmtime::{Instance, Module, Store};
use wtrace_runtime::outcome::{no_native_capture, trap_from_error};
use wtrace_runtime::{EngineSettings, NativeCapturer};
use wtrace_traces::NativeCapture;

const GUEST: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "parse") (param $at i32) (result i32)
    (i32.load (local.get $at)))
  (func (export "compute") (param $n i64) (result i64) (local $x i64) (local $i i64)
    (local.set $x (i64.const 88172645463325252))
    (loop $l
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
    (local.get $x)))"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let engine = EngineSettings::default().engine().expect("engine");
    let module = Module::new(&engine, GUEST).expect("compile");
    let traps = 20_000;
    let rounds = 5;

    let mut armed_store = Store::new(&engine, ());
    let native = NativeCapturer::install(&mut armed_store, &module);
    let armed_instance = Instance::new(&mut armed_store, &module, &[]).expect("instantiate");
    let armed_parse = armed_instance.get_typed_func::<i32, i32>(&mut armed_store, "parse").unwrap();
    let armed_compute = armed_instance.get_typed_func::<i64, i64>(&mut armed_store, "compute").unwrap();
    let memory = armed_instance.get_memory(&mut armed_store, "memory").unwrap();

    // A second thread runs the unarmed side: arming is per thread.
    let (engine2, module2) = (engine.clone(), module.clone());
    let unarmed = std::thread::spawn(move || {
        let mut store = Store::new(&engine2, ());
        let instance = Instance::new(&mut store, &module2, &[]).expect("instantiate");
        let parse = instance.get_typed_func::<i32, i32>(&mut store, "parse").unwrap();
        let compute = instance.get_typed_func::<i64, i64>(&mut store, "compute").unwrap();
        let mut times = Vec::with_capacity(traps);
        for _ in 0..traps {
            let start = Instant::now();
            let _ = parse.call(&mut store, 0x10000);
            times.push(start.elapsed());
        }
        let mut compute_best = Duration::MAX;
        for _ in 0..rounds {
            let start = Instant::now();
            compute.call(&mut store, 200_000_000).unwrap();
            compute_best = compute_best.min(start.elapsed());
        }
        (times, compute_best)
    })
    .join()
    .expect("unarmed side");

    let mut armed_times = Vec::with_capacity(traps);
    for _ in 0..traps {
        let start = Instant::now();
        let error = armed_parse.call(&mut armed_store, 0x10000).expect_err("trap");
        let mut trap = trap_from_error(&error, no_native_capture());
        native.complete(&mut trap, Some((memory.data_ptr(&armed_store) as u64, memory.data(&armed_store))));
        armed_times.push(start.elapsed());
        assert!(matches!(trap.native, NativeCapture::Captured(_)));
    }
    let mut compute_best = Duration::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        armed_compute.call(&mut armed_store, 200_000_000).unwrap();
        compute_best = compute_best.min(start.elapsed());
    }

    let (mut unarmed_times, unarmed_compute) = unarmed;
    armed_times.sort();
    unarmed_times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("capture: {traps} out-of-bounds traps each way; compute best of {rounds}");
    println!(
        "trap, armed (capture):    p50 {:>7.2} us   p99 {:>7.2} us",
        us(percentile(&armed_times, 0.5)),
        us(percentile(&armed_times, 0.99))
    );
    println!(
        "trap, unarmed (Wasmtime): p50 {:>7.2} us   p99 {:>7.2} us",
        us(percentile(&unarmed_times, 0.5)),
        us(percentile(&unarmed_times, 0.99))
    );
    println!(
        "capture cost:             p50 {:>7.2} us   p99 {:>7.2} us  (target <= 20 us)",
        us(percentile(&armed_times, 0.5).saturating_sub(percentile(&unarmed_times, 0.5))),
        us(percentile(&armed_times, 0.99).saturating_sub(percentile(&unarmed_times, 0.99)))
    );
    println!(
        "no traps: compute armed {:.1} ms, unarmed {:.1} ms, ratio {:.3}x (target <= 1.01x)",
        compute_best.as_secs_f64() * 1e3,
        unarmed_compute.as_secs_f64() * 1e3,
        compute_best.as_secs_f64() / unarmed_compute.as_secs_f64()
    );
}
