//! Stub round trips on aarch64 Linux (run under `qemu-aarch64` by the test script), the same
//! as the x86_64 ones: patterns in x0–x30, NZCV and q0–q31; fault; check the callback saw
//! exactly those values; resume at a test-only address; check every register came back.

use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

use crate::test_harness::{Patterns, prepare};
use crate::test_support::{Labels, labels};
use crate::{Capture, RawRegisters, Strategy, arm_with};

#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Regs {
    x: [u64; 31],
    sp: u64,
    nzcv: u64,
    _pad: u64,
    q: [u128; 32],
    /// Offset 784.
    fpsr: u64,
    /// Offset 792.
    fpcr: u64,
}

static SAVED_SP: AtomicU64 = AtomicU64::new(0);
static RESULTS: AtomicU64 = AtomicU64::new(0);

macro_rules! fault_function {
    ($name:literal, $fault:literal) => {
        std::arch::global_asm!(
            ".pushsection .text.wtrace_inject_test,\"ax\",@progbits",
            ".p2align 4",
            concat!(".globl wtrace_test_", $name),
            concat!("wtrace_test_", $name, ":"),
            "stp x29, x30, [sp, #-96]!",
            "stp x19, x20, [sp, #16]",
            "stp x21, x22, [sp, #32]",
            "stp x23, x24, [sp, #48]",
            "stp x25, x26, [sp, #64]",
            "stp x27, x28, [sp, #80]",
            "stp d8, d9, [sp, #-64]!",
            "stp d10, d11, [sp, #16]",
            "stp d12, d13, [sp, #32]",
            "stp d14, d15, [sp, #48]",
            "adrp x2, {saved_sp}",
            "add x2, x2, :lo12:{saved_sp}",
            "mov x3, sp",
            "str x3, [x2]",
            "adrp x2, {results}",
            "add x2, x2, :lo12:{results}",
            "str x1, [x2]",
            "ldr x2, [x0, #256]",
            "msr nzcv, x2",
            "ldr x2, [x0, #784]",
            "msr fpsr, x2",
            "ldr x2, [x0, #792]",
            "msr fpcr, x2",
            "ldp q0, q1, [x0, #272]",
            "ldp q2, q3, [x0, #304]",
            "ldp q4, q5, [x0, #336]",
            "ldp q6, q7, [x0, #368]",
            "ldp q8, q9, [x0, #400]",
            "ldp q10, q11, [x0, #432]",
            "ldp q12, q13, [x0, #464]",
            "ldp q14, q15, [x0, #496]",
            "ldp q16, q17, [x0, #528]",
            "ldp q18, q19, [x0, #560]",
            "ldp q20, q21, [x0, #592]",
            "ldp q22, q23, [x0, #624]",
            "ldp q24, q25, [x0, #656]",
            "ldp q26, q27, [x0, #688]",
            "ldp q28, q29, [x0, #720]",
            "ldp q30, q31, [x0, #752]",
            "ldr x1, [x0, #8]",
            "ldp x2, x3, [x0, #16]",
            "ldp x4, x5, [x0, #32]",
            "ldp x6, x7, [x0, #48]",
            "ldp x8, x9, [x0, #64]",
            "ldp x10, x11, [x0, #80]",
            "ldp x12, x13, [x0, #96]",
            "ldp x14, x15, [x0, #112]",
            "ldp x16, x17, [x0, #128]",
            "ldp x18, x19, [x0, #144]",
            "ldp x20, x21, [x0, #160]",
            "ldp x22, x23, [x0, #176]",
            "ldp x24, x25, [x0, #192]",
            "ldp x26, x27, [x0, #208]",
            "ldp x28, x29, [x0, #224]",
            "ldr x30, [x0, #240]",
            "ldr x0, [x0]",
            concat!(".globl wtrace_test_", $name, "_fault"),
            concat!("wtrace_test_", $name, "_fault:"),
            $fault,
            concat!(".globl wtrace_test_", $name, "_resume"),
            concat!("wtrace_test_", $name, "_resume:"),
            "stp x0, x1, [sp, #-16]!",
            "adrp x0, {results}",
            "add x0, x0, :lo12:{results}",
            "ldr x0, [x0]",
            "stp x2, x3, [x0, #16]",
            "stp x4, x5, [x0, #32]",
            "stp x6, x7, [x0, #48]",
            "stp x8, x9, [x0, #64]",
            "stp x10, x11, [x0, #80]",
            "stp x12, x13, [x0, #96]",
            "stp x14, x15, [x0, #112]",
            "stp x16, x17, [x0, #128]",
            "stp x18, x19, [x0, #144]",
            "stp x20, x21, [x0, #160]",
            "stp x22, x23, [x0, #176]",
            "stp x24, x25, [x0, #192]",
            "stp x26, x27, [x0, #208]",
            "stp x28, x29, [x0, #224]",
            "str x30, [x0, #240]",
            "ldp x2, x3, [sp], #16",
            "stp x2, x3, [x0, #0]",
            "mov x2, sp",
            "str x2, [x0, #248]",
            "mrs x2, nzcv",
            "str x2, [x0, #256]",
            "mrs x2, fpsr",
            "str x2, [x0, #784]",
            "mrs x2, fpcr",
            "str x2, [x0, #792]",
            // Back to the default FP control for the Rust code after the test function.
            "msr fpcr, xzr",
            "stp q0, q1, [x0, #272]",
            "stp q2, q3, [x0, #304]",
            "stp q4, q5, [x0, #336]",
            "stp q6, q7, [x0, #368]",
            "stp q8, q9, [x0, #400]",
            "stp q10, q11, [x0, #432]",
            "stp q12, q13, [x0, #464]",
            "stp q14, q15, [x0, #496]",
            "stp q16, q17, [x0, #528]",
            "stp q18, q19, [x0, #560]",
            "stp q20, q21, [x0, #592]",
            "stp q22, q23, [x0, #624]",
            "stp q24, q25, [x0, #656]",
            "stp q26, q27, [x0, #688]",
            "stp q28, q29, [x0, #720]",
            "stp q30, q31, [x0, #752]",
            "adrp x2, {saved_sp}",
            "add x2, x2, :lo12:{saved_sp}",
            "ldr x2, [x2]",
            "mov sp, x2",
            "ldp d10, d11, [sp, #16]",
            "ldp d12, d13, [sp, #32]",
            "ldp d14, d15, [sp, #48]",
            "ldp d8, d9, [sp], #64",
            "ldp x19, x20, [sp, #16]",
            "ldp x21, x22, [sp, #32]",
            "ldp x23, x24, [sp, #48]",
            "ldp x25, x26, [sp, #64]",
            "ldp x27, x28, [sp, #80]",
            "ldp x29, x30, [sp], #96",
            "ret",
            concat!(".globl wtrace_test_", $name, "_end"),
            concat!("wtrace_test_", $name, "_end:"),
            ".popsection",
            saved_sp = sym SAVED_SP,
            results = sym RESULTS,
        );
    };
}

fault_function!("udf", "udf #0x1234");
fault_function!("load", "ldr x11, [x10]");

fn patterns(seed: u64) -> Regs {
    let mut next = Patterns(seed);
    // FPSR: the cumulative IOC, DZC and QC flags; FPCR: round towards zero (RMode = 0b11).
    let mut regs = Regs {
        x: [0; 31],
        sp: 0,
        nzcv: 0xa000_0000,
        _pad: 0,
        q: [0; 32],
        fpsr: 0x0800_0003,
        fpcr: 0x00c0_0000,
    };
    for r in &mut regs.x {
        *r = next.next_u64();
    }
    for q in &mut regs.q {
        *q = next.next_u128();
    }
    regs
}

/// A test function and its labels.
type Site = Labels<Regs>;

const UDF: Site = labels!("udf", Regs);
const LOAD: Site = labels!("load", Regs);

fn check(strategy: Strategy, name: &str, site: Site, input: &Regs, signal: c_int) -> Capture {
    let Site { function, fault, resume, .. } = site;
    let _serial = prepare(fault, resume);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = std::rc::Rc::clone(&seen);
    let linked = std::rc::Rc::new(std::cell::Cell::new(false));
    let linked_sink = std::rc::Rc::clone(&linked);
    let armed = arm_with(
        vec![site.range()],
        Box::new(move |c: &Capture| {
            sink.borrow_mut().push(c.clone());
            linked_sink.set(frame_chain_reaches(c.fp(), c.pc()));
            // Ordinary code may leave the FP control and status registers changed: the stub
            // must put the interrupted ones back.
            // SAFETY: writes only FPCR and FPSR, which the stub restores.
            unsafe { std::arch::asm!("msr fpcr, xzr", "msr fpsr, xzr") };
        }),
        strategy,
    )
    .expect("aarch64 Linux is supported");
    let mut output = Regs { x: [0; 31], sp: 0, nzcv: 0, _pad: 0, q: [0; 32], fpsr: 0, fpcr: 0 };
    // SAFETY: the test function follows the C ABI, preserves callee-saved registers and the
    // stack, reads `input` and writes `output`.
    unsafe { function(input, &raw mut output) };
    drop(armed);
    let captures = seen.borrow().clone();
    let name = &format!("{name} ({strategy:?})");
    assert_eq!(captures.len(), 1, "{name}: exactly one capture");
    assert!(linked.get(), "{name}: the callback's frame chain reaches the interrupted frame");
    let capture = captures[0].clone();
    assert_eq!(capture.signal, signal, "{name}");
    let sp = SAVED_SP.load(Ordering::SeqCst);
    let RawRegisters::Aarch64 { x, sp: seen_sp, pc, nzcv, q, fpsr, fpcr } = capture.registers else {
        panic!("{name}: not aarch64")
    };
    assert_eq!(pc, fault as *const () as usize as u64, "{name}: pc");
    assert_eq!(seen_sp, sp, "{name}: sp");
    assert_eq!(x, input.x, "{name}: callback saw x0-x30");
    assert_eq!(nzcv, input.nzcv, "{name}: callback saw nzcv");
    assert_eq!(q, input.q, "{name}: callback saw q0-q31");
    assert_eq!(u64::from(fpsr), input.fpsr, "{name}: callback saw fpsr");
    assert_eq!(u64::from(fpcr), input.fpcr, "{name}: callback saw fpcr");
    assert_eq!(output.x, input.x, "{name}: x0-x30 after resuming");
    assert_eq!(output.sp, sp, "{name}: sp after resuming");
    assert_eq!(output.nzcv, input.nzcv, "{name}: nzcv after resuming");
    assert_eq!(output.q, input.q, "{name}: q0-q31 after resuming");
    assert_eq!(output.fpsr, input.fpsr, "{name}: fpsr after resuming");
    assert_eq!(output.fpcr, input.fpcr, "{name}: fpcr after resuming");
    capture
}

/// Whether the frame-record chain from the caller of this function reaches a record
/// `[fp, pc]`: what an unwinder in the callback finds, through the stub's own record, when the
/// stub links it to the interrupted frame. Reads only inside this thread's stack.
#[inline(never)]
fn frame_chain_reaches(fp: u64, pc: u64) -> bool {
    let mut record: u64;
    // SAFETY: reads the frame pointer register.
    unsafe { std::arch::asm!("mov {}, x29", out(reg) record) };
    let (low, high) = crate::thread_stack();
    for _ in 0..64 {
        if record < low || record.saturating_add(16) > high || !record.is_multiple_of(8) {
            return false;
        }
        // SAFETY: `record` and `record + 8` lie inside this thread's stack (checked above).
        let (next, return_address) = unsafe { (*(record as *const u64), *((record + 8) as *const u64)) };
        if (next, return_address) == (fp, pc) {
            return true;
        }
        record = next;
    }
    false
}

/// Both strategies: the state in the thread's slot, or pushed onto the guest stack (the macOS
/// approach, run here from the same signal hook).
const STRATEGIES: [Strategy; 2] = [Strategy::RegisterOnly, Strategy::StackPush];

#[test]
fn undefined_instruction_round_trip() {
    for strategy in STRATEGIES {
        for seed in [0x9e37_79b9_7f4a_7c15, 0x2545_f491_4f6c_dd1d] {
            check(strategy, "udf", UDF, &patterns(seed), libc::SIGILL);
        }
    }
}

#[test]
fn bad_load_round_trip() {
    for strategy in STRATEGIES {
        let mut input = patterns(0x1234_5678_9abc_def1);
        input.x[10] = 0x10;
        let capture = check(strategy, "load", LOAD, &input, libc::SIGSEGV);
        assert_eq!(capture.fault_address, 0x10, "{strategy:?}");
        assert_eq!(capture.fp(), input.x[29], "{strategy:?}");
    }
}
