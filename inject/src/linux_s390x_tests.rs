//! Stub round trips on s390x Linux (run under `qemu-s390x` by the test script, once with the
//! vector facility and once without): patterns in r0–r14, the access registers a2–a15 (a0 and
//! a1 hold the thread pointer the handler's own code needs), the FPC, f0–f15 or v0–v31, and a
//! condition code; fault; check the callback saw exactly those values; resume at a test-only
//! address; check every register came back.

use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

use crate::test_harness::{Patterns, prepare};
use crate::test_support::{Labels, labels};
use crate::{Capture, RawRegisters, Strategy, arm_with};

/// What a test function loads and what it stores after resuming; the offsets are in its text.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Regs {
    r: [u64; 16],
    /// Offset 128.
    a: [u32; 16],
    /// Offset 192.
    fpc: u32,
    _pad: u32,
    /// Offset 200.
    f: [u64; 16],
    _pad2: u64,
    /// Offset 336: v0–v31, big-endian.
    v: [[u8; 16]; 32],
    /// Offset 848: what `ipm` put in the low word after resuming (the condition code is in
    /// bits 28–29).
    ipm: u64,
}

const _: () = assert!(std::mem::offset_of!(Regs, v) == 336 && std::mem::offset_of!(Regs, ipm) == 848);

/// The condition code the test functions set (`cghi` of 1 against 0: high).
const CONDITION_CODE: u64 = 2;

static SAVED_SP: AtomicU64 = AtomicU64::new(0);
static RESULTS: AtomicU64 = AtomicU64::new(0);

macro_rules! fault_function {
    ($name:literal, $fault:literal, [$($fp_setup:literal),*], [$($fp_results:literal),*]) => {
        std::arch::global_asm!(
            ".pushsection .text.wtrace_inject_test,\"ax\",@progbits",
            ".p2align 4",
            ".machine push",
            ".machine z13",
            concat!(".globl wtrace_test_", $name),
            concat!("wtrace_test_", $name, ":"),
            "stmg %r6, %r15, 48(%r15)",
            "lay %r15, -224(%r15)",
            "std %f8, 160(%r15)",
            "std %f9, 168(%r15)",
            "std %f10, 176(%r15)",
            "std %f11, 184(%r15)",
            "std %f12, 192(%r15)",
            "std %f13, 200(%r15)",
            "std %f14, 208(%r15)",
            "std %f15, 216(%r15)",
            "larl %r1, {saved_sp}",
            "stg %r15, 0(%r1)",
            "larl %r1, {results}",
            "stg %r3, 0(%r1)",
            "lfpc 192(%r2)",
            "lam %a2, %a15, 136(%r2)",
            $($fp_setup,)*
            "lghi %r1, 1",
            "cghi %r1, 0",
            "lmg %r0, %r1, 0(%r2)",
            "lmg %r3, %r14, 24(%r2)",
            "lg %r2, 16(%r2)",
            concat!(".globl wtrace_test_", $name, "_fault"),
            concat!("wtrace_test_", $name, "_fault:"),
            $fault,
            concat!(".globl wtrace_test_", $name, "_resume"),
            concat!("wtrace_test_", $name, "_resume:"),
            "stg %r0, 8(%r15)",
            "ipm %r0",
            "stg %r0, 16(%r15)",
            "stg %r1, 0(%r15)",
            "larl %r1, {results}",
            "lg %r1, 0(%r1)",
            "stmg %r2, %r15, 16(%r1)",
            "lg %r0, 8(%r15)",
            "stg %r0, 0(%r1)",
            "lg %r0, 0(%r15)",
            "stg %r0, 8(%r1)",
            "lg %r0, 16(%r15)",
            "stg %r0, 848(%r1)",
            "stam %a0, %a15, 128(%r1)",
            "stfpc 192(%r1)",
            $($fp_results,)*
            "lghi %r0, 0",
            "sfpc %r0",
            "larl %r1, {saved_sp}",
            "lg %r15, 0(%r1)",
            "ld %f8, 160(%r15)",
            "ld %f9, 168(%r15)",
            "ld %f10, 176(%r15)",
            "ld %f11, 184(%r15)",
            "ld %f12, 192(%r15)",
            "ld %f13, 200(%r15)",
            "ld %f14, 208(%r15)",
            "ld %f15, 216(%r15)",
            "lay %r15, 224(%r15)",
            "lmg %r6, %r15, 48(%r15)",
            "br %r14",
            concat!(".globl wtrace_test_", $name, "_end"),
            concat!("wtrace_test_", $name, "_end:"),
            ".machine pop",
            ".popsection",
            saved_sp = sym SAVED_SP,
            results = sym RESULTS,
        );
    };
}

/// A test function that loads and stores f0–f15 (the variant without vector registers).
macro_rules! fp_fault_function {
    ($name:literal, $fault:literal) => {
        fault_function!(
            $name,
            $fault,
            [
                "ld %f0, 200(%r2)",
                "ld %f1, 208(%r2)",
                "ld %f2, 216(%r2)",
                "ld %f3, 224(%r2)",
                "ld %f4, 232(%r2)",
                "ld %f5, 240(%r2)",
                "ld %f6, 248(%r2)",
                "ld %f7, 256(%r2)",
                "ld %f8, 264(%r2)",
                "ld %f9, 272(%r2)",
                "ld %f10, 280(%r2)",
                "ld %f11, 288(%r2)",
                "ld %f12, 296(%r2)",
                "ld %f13, 304(%r2)",
                "ld %f14, 312(%r2)",
                "ld %f15, 320(%r2)"
            ],
            [
                "std %f0, 200(%r1)",
                "std %f1, 208(%r1)",
                "std %f2, 216(%r1)",
                "std %f3, 224(%r1)",
                "std %f4, 232(%r1)",
                "std %f5, 240(%r1)",
                "std %f6, 248(%r1)",
                "std %f7, 256(%r1)",
                "std %f8, 264(%r1)",
                "std %f9, 272(%r1)",
                "std %f10, 280(%r1)",
                "std %f11, 288(%r1)",
                "std %f12, 296(%r1)",
                "std %f13, 304(%r1)",
                "std %f14, 312(%r1)",
                "std %f15, 320(%r1)"
            ]
        );
    };
}

fp_fault_function!("trap", ".short 0");
fp_fault_function!("load", "lg %r1, 0(%r4)");
fp_fault_function!("divide", "dsgr %r2, %r4");
fp_fault_function!("compare_and_trap", "cgrte %r5, %r5");

fault_function!(
    "trap_vector",
    ".short 0",
    ["vlm %v0, %v15, 336(%r2)", "vlm %v16, %v31, 592(%r2)"],
    ["vstm %v0, %v15, 336(%r1)", "vstm %v16, %v31, 592(%r1)"]
);

/// A test function and its labels, whether it loads the vector registers, and the data
/// exception code its fault leaves in the FPC.
#[derive(Clone, Copy)]
struct Site {
    labels: Labels<Regs>,
    vector: bool,
    dxc: u32,
}

const TRAP: Site = Site { labels: labels!("trap", Regs), vector: false, dxc: 0 };
const LOAD: Site = Site { labels: labels!("load", Regs), vector: false, dxc: 0 };
const DIVIDE: Site = Site { labels: labels!("divide", Regs), vector: false, dxc: 0 };
const COMPARE_AND_TRAP: Site = Site { labels: labels!("compare_and_trap", Regs), vector: false, dxc: 0xff };
const TRAP_VECTOR: Site = Site { labels: labels!("trap_vector", Regs), vector: true, dxc: 0 };

/// a0 and a1, which the test functions leave as they are.
fn thread_pointer() -> (u32, u32) {
    let (a0, a1): (u32, u32);
    // SAFETY: reads two access registers.
    unsafe { std::arch::asm!("ear {}, %a0", "ear {}, %a1", out(reg) a0, out(reg) a1) };
    (a0, a1)
}

fn patterns(seed: u64) -> Regs {
    let mut next = Patterns(seed);
    // FPC: round towards zero and the inexact flag; no exception enabled.
    let mut regs = Regs {
        r: [0; 16],
        a: [0; 16],
        fpc: 0x0008_0001,
        _pad: 0,
        f: [0; 16],
        _pad2: 0,
        v: [[0; 16]; 32],
        ipm: 0,
    };
    for r in &mut regs.r {
        *r = next.next_u64();
    }
    regs.r[15] = 0;
    for a in &mut regs.a {
        *a = next.next_u64() as u32;
    }
    (regs.a[0], regs.a[1]) = thread_pointer();
    for v in &mut regs.v {
        *v = next.next_u128().to_be_bytes();
    }
    for (i, f) in regs.f.iter_mut().enumerate() {
        *f = next.next_u64();
        // The vector test function loads v0–v15, whose left halves are f0–f15.
        regs.v[i][..8].copy_from_slice(&f.to_be_bytes());
    }
    regs
}

/// Leaves the FPC and a vector register changed, as ordinary code may: the stub must put the
/// interrupted state back.
fn disturb(vector: bool) {
    // SAFETY: changes only the FPC, f1 and, with the vector facility, v17, which the stub
    // restores.
    unsafe {
        std::arch::asm!("lghi {0}, 0", "sfpc {0}", "lzdr %f1", out(reg) _);
        if vector {
            std::arch::asm!(".machine push", ".machine z13", "vzero %v17", ".machine pop");
        }
    }
}

fn check(name: &str, site: Site, input: &Regs, signals: &[c_int]) -> Capture {
    let vector = crate::linux_s390x::has_vector();
    let _serial = prepare(site.labels.fault, site.labels.resume);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = std::rc::Rc::clone(&seen);
    let armed = arm_with(
        vec![site.labels.range()],
        Box::new(move |c: &Capture| {
            sink.borrow_mut().push(c.clone());
            disturb(vector);
        }),
        Strategy::RegisterOnly,
    )
    .expect("s390x Linux is supported");
    let mut output =
        Box::new(Regs { r: [0; 16], a: [0; 16], f: [0; 16], v: [[0; 16]; 32], ipm: 0, ..*input });
    output.fpc = 0;
    // SAFETY: the test function follows the C ABI, preserves callee-saved registers and the
    // stack, reads `input` and writes `output`.
    unsafe { (site.labels.function)(input, &raw mut *output) };
    drop(armed);
    let captures = seen.borrow().clone();
    assert_eq!(captures.len(), 1, "{name}: exactly one capture");
    let capture = captures[0].clone();
    assert!(signals.contains(&capture.signal), "{name}: signal {}", capture.signal);
    let sp = SAVED_SP.load(Ordering::SeqCst);
    let RawRegisters::S390x { r, psw_mask, psw_addr, a, fpc, f, vector: seen_vector } = &capture.registers
    else {
        panic!("{name}: not s390x")
    };
    let mut expected = input.r;
    expected[15] = sp;
    assert_eq!(*psw_addr, site.labels.fault as *const () as usize as u64, "{name}: PSW address");
    assert_eq!((psw_mask >> 44) & 3, CONDITION_CODE, "{name}: callback saw the condition code");
    assert_eq!(*r, expected, "{name}: callback saw r0-r15");
    assert_eq!(*a, input.a, "{name}: callback saw a0-a15");
    // The exception writes its data exception code into the FPC.
    let fpc_at_fault = input.fpc | site.dxc << 8;
    assert_eq!(*fpc, fpc_at_fault, "{name}: callback saw the FPC");
    assert_eq!(*f, input.f, "{name}: callback saw f0-f15");
    assert_eq!(output.r, expected, "{name}: r0-r15 after resuming");
    assert_eq!(output.a, input.a, "{name}: a0-a15 after resuming");
    assert_eq!(output.fpc, fpc_at_fault, "{name}: FPC after resuming");
    assert_eq!((output.ipm >> 28) & 3, CONDITION_CODE, "{name}: condition code after resuming");
    if site.vector {
        assert_eq!(output.v, input.v, "{name}: v0-v31 after resuming");
    } else {
        assert_eq!(output.f, input.f, "{name}: f0-f15 after resuming");
    }
    match seen_vector {
        Some(seen) if site.vector => {
            assert_eq!(seen.v, input.v.map(u128::from_be_bytes), "{name}: callback saw v0-v31");
        }
        seen => assert_eq!(seen.is_some(), vector, "{name}: vector state present"),
    }
    capture
}

#[test]
fn trap_round_trip() {
    for seed in [0x9e37_79b9_7f4a_7c15, 0x2545_f491_4f6c_dd1d] {
        check("trap", TRAP, &patterns(seed), &[libc::SIGILL]);
    }
}

#[test]
fn vector_state_round_trip() {
    if !crate::linux_s390x::has_vector() {
        // The run without the vector facility checks the variant without it (above).
        return;
    }
    check("trap with vector registers", TRAP_VECTOR, &patterns(0x5851_f42d_4c95_7f2d), &[libc::SIGILL]);
}

#[test]
fn bad_load_round_trip() {
    let mut input = patterns(0x1234_5678_9abc_def1);
    input.r[4] = 0x10;
    let capture = check("load", LOAD, &input, &[libc::SIGSEGV]);
    // s390x reports the page of a translation exception, not the byte.
    assert_eq!(capture.fault_address & !0xfff, 0, "{:#x}", capture.fault_address);
}

#[test]
fn divide_by_zero_round_trip() {
    // A divide exception reports the PSW after the four-byte DSGR.
    let mut input = patterns(0x0bad_cafe_f00d_0001);
    input.r[4] = 0;
    check("divide", DIVIDE, &input, &[libc::SIGFPE]);
}

#[test]
fn compare_and_trap_round_trip() {
    // Cranelift's stack-limit and bounds checks: a data exception, which the kernel reports as
    // SIGFPE with si_code 0 and qemu-user as SIGILL, the PSW after the instruction either way.
    check(
        "compare and trap",
        COMPARE_AND_TRAP,
        &patterns(0x0bad_cafe_f00d_0002),
        &[libc::SIGILL, libc::SIGFPE],
    );
}

#[test]
fn the_stack_push_is_not_offered_here() {
    assert!(arm_with(Vec::new(), Box::new(|_| {}), Strategy::StackPush).is_err());
}

#[test]
fn a_sent_sigfpe_is_told_from_a_compare_and_trap() {
    use crate::linux_s390x::raised_by_fault;
    // The kernel's compare-and-trap: si_code 0, DXC 0xff in the FPC.
    assert!(raised_by_fault(libc::SIGFPE, 0, 0x0008_ff01));
    // kill(2), sigqueue(3): si_code 0 or below, no data exception.
    assert!(!raised_by_fault(libc::SIGFPE, libc::SI_USER, 0x0008_0001));
    assert!(!raised_by_fault(libc::SIGFPE, libc::SI_QUEUE, 0x0000_ff00));
    assert!(!raised_by_fault(libc::SIGILL, libc::SI_USER, 0x0000_ff00));
    // A divide exception: a positive si_code.
    assert!(raised_by_fault(libc::SIGFPE, 1, 0));
}
