//! Record, then replay, random modules and check the replay follows every recorded event and
//! ends the same way: valid modules from wasm-smith, arbitrary code that may call WASI (clocks,
//! random bytes, output, arguments, the environment, stdin, polling, exit) and traps in every
//! way; and, since random code seldom reaches a call, random sequences of WASI calls with
//! arbitrary arguments (out-of-bounds pointers, closed and unknown descriptors, stdout closed
//! part-way, iovecs built by random stores). `WTRACE_DIFFERENTIAL_CASES` sets how many of each
//! (300 by default; CI runs the default).

use std::fmt::Write as _;

use arbitrary::Unstructured;
use wtrace::RecordOptions;
use wtrace::replayer::{ReplayOptions, ends_match};

/// The WASI functions the random modules may import.
const IMPORTS: &str = r#"(module
    (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
)"#;

/// What every module exports: a command's entry point and its memory.
const EXPORTS: &str = r#"(module (func (export "_start")) (memory (export "memory") 1))"#;

/// A xorshift stream.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Records `module` and replays it: they must agree on every event, the end and the output.
/// Returns the events recorded, or `None` for a module Wasmtime refuses by default.
fn record_and_replay(dir: &std::path::Path, case: &str, module: Vec<u8>) -> Option<u64> {
    let options = RecordOptions { module_name: format!("{case}.wasm"), module, ..RecordOptions::default() };
    let path = dir.join(format!("{case}.zst"));
    let recorded = match wtrace::record(&options, &path) {
        Ok(recorded) => recorded,
        Err(wtrace::recorder::RecordError::Setup(_)) => return None,
        Err(error) => panic!("{case}: {error}"),
    };
    let trace = wtrace::Trace::open(&path).unwrap();
    let replay =
        wtrace::replayer::replay(&trace, ReplayOptions::default()).unwrap_or_else(|e| panic!("{case}: {e}"));
    assert!(replay.divergence.is_none(), "{case}: {}", replay.divergence.unwrap());
    assert!(
        ends_match(&recorded.end, &replay.end),
        "{case}: recorded {:?}, replayed {:?}",
        recorded.end,
        replay.end
    );
    assert_eq!(replay.stdout, recorded.stdout, "{case}");
    assert_eq!(replay.stderr, recorded.stderr, "{case}");
    Some(recorded.events)
}

fn cases() -> u64 {
    std::env::var("WTRACE_DIFFERENTIAL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300)
}

/// A module whose `_start` makes `calls` WASI calls with arbitrary arguments, with random
/// stores between them (which build iovecs and subscriptions out of whatever lands there).
fn call_sequence(random: &mut Random, calls: u64) -> String {
    let mut body = String::new();
    let arg = |random: &mut Random| -> u64 {
        match random.below(4) {
            0 => random.below(6),       // a descriptor, a small count or size
            1 => random.below(70_000),  // a pointer, sometimes past the 64 KiB memory
            2 => 16 + random.below(64), // a pointer into the low area the stores fill
            _ => random.below(256),
        }
    };
    for _ in 0..calls {
        for _ in 0..random.below(4) {
            let at = random.below(256) & !3;
            let value = match random.below(3) {
                0 => 16 + random.below(64),
                1 => random.below(40),
                _ => random.next() & 0xffff_ffff,
            };
            let _ = writeln!(body, "(i32.store (i32.const {at}) (i32.const {}))", value as u32 as i32);
        }
        let call = match random.below(9) {
            0 => format!(
                "(call $clock (i32.const {}) (i64.const {}) (i32.const {}))",
                random.below(5),
                arg(random),
                arg(random)
            ),
            1 => format!("(call $random (i32.const {}) (i32.const {}))", arg(random), arg(random)),
            2 | 3 => format!(
                "(call $write (i32.const {}) (i32.const {}) (i32.const {}) (i32.const {}))",
                random.below(5),
                arg(random),
                random.below(4),
                arg(random)
            ),
            4 => format!(
                "(call $read (i32.const {}) (i32.const {}) (i32.const {}) (i32.const {}))",
                random.below(4),
                arg(random),
                random.below(4),
                arg(random)
            ),
            5 => format!("(call $args_sizes (i32.const {}) (i32.const {}))", arg(random), arg(random)),
            6 => format!("(call $environ (i32.const {}) (i32.const {}))", arg(random), arg(random)),
            7 => format!("(call $close (i32.const {}))", random.below(6)),
            _ => format!("(call $renumber (i32.const {}) (i32.const {}))", random.below(5), random.below(8)),
        };
        let _ = writeln!(body, "(drop {call})");
    }
    if random.below(3) == 0 {
        let _ = writeln!(body, "(call $exit (i32.const {}))", random.below(126));
    }
    format!(
        r#"(module
    (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "environ_get" (func $environ (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start")
{body}))"#
    )
}

#[test]
fn random_call_sequences_replay_as_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut calls_made = 0;
    for case in 0..cases() {
        let calls = 1 + random.below(40);
        let module = wat::parse_str(call_sequence(&mut random, calls)).unwrap();
        let events =
            record_and_replay(dir.path(), &format!("calls-{case}"), module).expect("plain WASI runs");
        calls_made += events - 1;
    }
    assert!(calls_made > cases(), "{calls_made} host calls in all");
}

#[test]
fn random_modules_replay_as_recorded() {
    let cases = cases();
    let imports = wat::parse_str(IMPORTS).unwrap();
    let exports = wat::parse_str(EXPORTS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut ran = 0u64;
    for case in 0..cases {
        let bytes: Vec<u8> = (0..8192)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let config = wasm_smith::Config {
            available_imports: Some(imports.clone()),
            exports: Some(exports.clone()),
            min_funcs: 4,
            max_instructions: 2000,
            max_memory32_bytes: 16 << 20,
            memory64_enabled: false,
            threads_enabled: false,
            gc_enabled: false,
            exceptions_enabled: false,
            custom_page_sizes_enabled: false,
            wide_arithmetic_enabled: false,
            compact_imports_enabled: false,
            simd_enabled: false,
            relaxed_simd_enabled: false,
            reference_types_enabled: false,
            tail_call_enabled: false,
            allowed_instructions: wasm_smith::InstructionKinds::new(&[
                wasm_smith::InstructionKind::Control,
                wasm_smith::InstructionKind::Variable,
                wasm_smith::InstructionKind::Memory,
            ]),
            ..wasm_smith::Config::default()
        };
        let Ok(mut module) = wasm_smith::Module::new(config, &mut Unstructured::new(&bytes)) else {
            continue;
        };
        if module.ensure_termination(20_000).is_err() {
            continue;
        }
        if record_and_replay(dir.path(), &format!("smith-{case}"), module.to_bytes()).is_some() {
            ran += 1;
        }
    }
    assert!(ran * 2 > cases, "{ran} of {cases} modules ran");
}
