//! Stub round trips on riscv64 Linux (run under `qemu-riscv64` by the test script, once with
//! the V extension and once without): patterns in x1–x31 (but for gp and tp, which the
//! handler's own code needs), f0–f31 and `fcsr`, and with V in v0–v31, `vl`, `vtype`,
//! `vcsr` and `vstart`; fault; check the callback saw exactly those values; resume at a
//! test-only address; check every register came back.

use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

use crate::test_harness::{Patterns, prepare};
use crate::test_support::{Labels, labels};
use crate::{Capture, RawRegisters, Strategy, arm_with};

/// The widest vector registers the tests handle (VLEN 512).
const MAX_VLENB: usize = 64;

/// What a test function loads and what it stores after resuming; the offsets are in its text.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Regs {
    /// `x[n]` is register n; x0 and x2 are unused as inputs.
    x: [u64; 32],
    /// Offset 256.
    f: [u64; 32],
    /// Offset 512.
    fcsr: u64,
    vstart: u64,
    vl: u64,
    vtype: u64,
    vcsr: u64,
    /// Offset 552: written after resuming.
    vlenb: u64,
    /// Offset 560: SP after resuming.
    sp: u64,
    _pad: u64,
    /// Offset 576.
    v: [u8; 32 * MAX_VLENB],
}

const _: () = assert!(std::mem::offset_of!(Regs, v) == 576 && std::mem::offset_of!(Regs, sp) == 560);

static SAVED_SP: AtomicU64 = AtomicU64::new(0);
static RESULTS: AtomicU64 = AtomicU64::new(0);

macro_rules! fault_function {
    ($name:literal, $fault:literal, [$($vector_setup:literal),*], [$($vector_results:literal),*]) => {
        std::arch::global_asm!(
            ".pushsection .text.wtrace_inject_test,\"ax\",@progbits",
            ".p2align 4",
            ".option push",
            ".option arch, +v",
            concat!(".globl wtrace_test_", $name),
            concat!("wtrace_test_", $name, ":"),
            "addi sp, sp, -208",
            "sd x1, 0(sp)",
            "sd x8, 8(sp)",
            "sd x9, 16(sp)",
            "sd x18, 24(sp)",
            "sd x19, 32(sp)",
            "sd x20, 40(sp)",
            "sd x21, 48(sp)",
            "sd x22, 56(sp)",
            "sd x23, 64(sp)",
            "sd x24, 72(sp)",
            "sd x25, 80(sp)",
            "sd x26, 88(sp)",
            "sd x27, 96(sp)",
            "fsd f8, 104(sp)",
            "fsd f9, 112(sp)",
            "fsd f18, 120(sp)",
            "fsd f19, 128(sp)",
            "fsd f20, 136(sp)",
            "fsd f21, 144(sp)",
            "fsd f22, 152(sp)",
            "fsd f23, 160(sp)",
            "fsd f24, 168(sp)",
            "fsd f25, 176(sp)",
            "fsd f26, 184(sp)",
            "fsd f27, 192(sp)",
            "lla t0, {saved_sp}",
            "sd sp, 0(t0)",
            "lla t0, {results}",
            "sd a1, 0(t0)",
            "ld t0, 512(a0)",
            "fscsr t0",
            "fld f0, 256(a0)",
            "fld f1, 264(a0)",
            "fld f2, 272(a0)",
            "fld f3, 280(a0)",
            "fld f4, 288(a0)",
            "fld f5, 296(a0)",
            "fld f6, 304(a0)",
            "fld f7, 312(a0)",
            "fld f8, 320(a0)",
            "fld f9, 328(a0)",
            "fld f10, 336(a0)",
            "fld f11, 344(a0)",
            "fld f12, 352(a0)",
            "fld f13, 360(a0)",
            "fld f14, 368(a0)",
            "fld f15, 376(a0)",
            "fld f16, 384(a0)",
            "fld f17, 392(a0)",
            "fld f18, 400(a0)",
            "fld f19, 408(a0)",
            "fld f20, 416(a0)",
            "fld f21, 424(a0)",
            "fld f22, 432(a0)",
            "fld f23, 440(a0)",
            "fld f24, 448(a0)",
            "fld f25, 456(a0)",
            "fld f26, 464(a0)",
            "fld f27, 472(a0)",
            "fld f28, 480(a0)",
            "fld f29, 488(a0)",
            "fld f30, 496(a0)",
            "fld f31, 504(a0)",
            $($vector_setup,)*
            "ld x1, 8(a0)",
            "ld x5, 40(a0)",
            "ld x6, 48(a0)",
            "ld x7, 56(a0)",
            "ld x8, 64(a0)",
            "ld x9, 72(a0)",
            "ld x11, 88(a0)",
            "ld x12, 96(a0)",
            "ld x13, 104(a0)",
            "ld x14, 112(a0)",
            "ld x15, 120(a0)",
            "ld x16, 128(a0)",
            "ld x17, 136(a0)",
            "ld x18, 144(a0)",
            "ld x19, 152(a0)",
            "ld x20, 160(a0)",
            "ld x21, 168(a0)",
            "ld x22, 176(a0)",
            "ld x23, 184(a0)",
            "ld x24, 192(a0)",
            "ld x25, 200(a0)",
            "ld x26, 208(a0)",
            "ld x27, 216(a0)",
            "ld x28, 224(a0)",
            "ld x29, 232(a0)",
            "ld x30, 240(a0)",
            "ld x31, 248(a0)",
            "ld x10, 80(a0)",
            concat!(".globl wtrace_test_", $name, "_fault"),
            concat!("wtrace_test_", $name, "_fault:"),
            $fault,
            concat!(".globl wtrace_test_", $name, "_resume"),
            concat!("wtrace_test_", $name, "_resume:"),
            "addi sp, sp, -16",
            "sd t0, 0(sp)",
            "lla t0, {results}",
            "ld t0, 0(t0)",
            "sd x1, 8(t0)",
            "sd x3, 24(t0)",
            "sd x4, 32(t0)",
            "sd x6, 48(t0)",
            "sd x7, 56(t0)",
            "sd x8, 64(t0)",
            "sd x9, 72(t0)",
            "sd x10, 80(t0)",
            "sd x11, 88(t0)",
            "sd x12, 96(t0)",
            "sd x13, 104(t0)",
            "sd x14, 112(t0)",
            "sd x15, 120(t0)",
            "sd x16, 128(t0)",
            "sd x17, 136(t0)",
            "sd x18, 144(t0)",
            "sd x19, 152(t0)",
            "sd x20, 160(t0)",
            "sd x21, 168(t0)",
            "sd x22, 176(t0)",
            "sd x23, 184(t0)",
            "sd x24, 192(t0)",
            "sd x25, 200(t0)",
            "sd x26, 208(t0)",
            "sd x27, 216(t0)",
            "sd x28, 224(t0)",
            "sd x29, 232(t0)",
            "sd x30, 240(t0)",
            "sd x31, 248(t0)",
            "ld t1, 0(sp)",
            "sd t1, 40(t0)",
            "addi t1, sp, 16",
            "sd t1, 560(t0)",
            "addi sp, sp, 16",
            "frcsr t1",
            "sd t1, 512(t0)",
            "fsd f0, 256(t0)",
            "fsd f1, 264(t0)",
            "fsd f2, 272(t0)",
            "fsd f3, 280(t0)",
            "fsd f4, 288(t0)",
            "fsd f5, 296(t0)",
            "fsd f6, 304(t0)",
            "fsd f7, 312(t0)",
            "fsd f8, 320(t0)",
            "fsd f9, 328(t0)",
            "fsd f10, 336(t0)",
            "fsd f11, 344(t0)",
            "fsd f12, 352(t0)",
            "fsd f13, 360(t0)",
            "fsd f14, 368(t0)",
            "fsd f15, 376(t0)",
            "fsd f16, 384(t0)",
            "fsd f17, 392(t0)",
            "fsd f18, 400(t0)",
            "fsd f19, 408(t0)",
            "fsd f20, 416(t0)",
            "fsd f21, 424(t0)",
            "fsd f22, 432(t0)",
            "fsd f23, 440(t0)",
            "fsd f24, 448(t0)",
            "fsd f25, 456(t0)",
            "fsd f26, 464(t0)",
            "fsd f27, 472(t0)",
            "fsd f28, 480(t0)",
            "fsd f29, 488(t0)",
            "fsd f30, 496(t0)",
            "fsd f31, 504(t0)",
            "fscsr zero",
            $($vector_results,)*
            "lla t1, {saved_sp}",
            "ld sp, 0(t1)",
            "ld x1, 0(sp)",
            "ld x8, 8(sp)",
            "ld x9, 16(sp)",
            "ld x18, 24(sp)",
            "ld x19, 32(sp)",
            "ld x20, 40(sp)",
            "ld x21, 48(sp)",
            "ld x22, 56(sp)",
            "ld x23, 64(sp)",
            "ld x24, 72(sp)",
            "ld x25, 80(sp)",
            "ld x26, 88(sp)",
            "ld x27, 96(sp)",
            "fld f8, 104(sp)",
            "fld f9, 112(sp)",
            "fld f18, 120(sp)",
            "fld f19, 128(sp)",
            "fld f20, 136(sp)",
            "fld f21, 144(sp)",
            "fld f22, 152(sp)",
            "fld f23, 160(sp)",
            "fld f24, 168(sp)",
            "fld f25, 176(sp)",
            "fld f26, 184(sp)",
            "fld f27, 192(sp)",
            "addi sp, sp, 208",
            "ret",
            concat!(".globl wtrace_test_", $name, "_end"),
            concat!("wtrace_test_", $name, "_end:"),
            ".option pop",
            ".popsection",
            saved_sp = sym SAVED_SP,
            results = sym RESULTS,
        );
    };
}

fault_function!("unimp", "unimp", [], []);
fault_function!("load", "ld t1, 0(t0)", [], []);
fault_function!(
    "unimp_vector",
    "unimp",
    [
        "csrr t0, vlenb",
        "addi t2, a0, 576",
        "vl1re8.v v0, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v1, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v2, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v3, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v4, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v5, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v6, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v7, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v8, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v9, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v10, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v11, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v12, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v13, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v14, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v15, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v16, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v17, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v18, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v19, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v20, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v21, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v22, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v23, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v24, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v25, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v26, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v27, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v28, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v29, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v30, (t2)",
        "add t2, t2, t0",
        "vl1re8.v v31, (t2)",
        "add t2, t2, t0",
        "ld t0, 528(a0)",
        "ld t1, 536(a0)",
        "vsetvl zero, t0, t1",
        "ld t0, 544(a0)",
        "csrw vcsr, t0",
        "ld t0, 520(a0)",
        "csrw vstart, t0"
    ],
    [
        "csrr t1, vstart",
        "sd t1, 520(t0)",
        "csrr t1, vl",
        "sd t1, 528(t0)",
        "csrr t1, vtype",
        "sd t1, 536(t0)",
        "csrr t1, vcsr",
        "sd t1, 544(t0)",
        "csrr t3, vlenb",
        "sd t3, 552(t0)",
        "csrw vstart, zero",
        "addi t2, t0, 576",
        "vs1r.v v0, (t2)",
        "add t2, t2, t3",
        "vs1r.v v1, (t2)",
        "add t2, t2, t3",
        "vs1r.v v2, (t2)",
        "add t2, t2, t3",
        "vs1r.v v3, (t2)",
        "add t2, t2, t3",
        "vs1r.v v4, (t2)",
        "add t2, t2, t3",
        "vs1r.v v5, (t2)",
        "add t2, t2, t3",
        "vs1r.v v6, (t2)",
        "add t2, t2, t3",
        "vs1r.v v7, (t2)",
        "add t2, t2, t3",
        "vs1r.v v8, (t2)",
        "add t2, t2, t3",
        "vs1r.v v9, (t2)",
        "add t2, t2, t3",
        "vs1r.v v10, (t2)",
        "add t2, t2, t3",
        "vs1r.v v11, (t2)",
        "add t2, t2, t3",
        "vs1r.v v12, (t2)",
        "add t2, t2, t3",
        "vs1r.v v13, (t2)",
        "add t2, t2, t3",
        "vs1r.v v14, (t2)",
        "add t2, t2, t3",
        "vs1r.v v15, (t2)",
        "add t2, t2, t3",
        "vs1r.v v16, (t2)",
        "add t2, t2, t3",
        "vs1r.v v17, (t2)",
        "add t2, t2, t3",
        "vs1r.v v18, (t2)",
        "add t2, t2, t3",
        "vs1r.v v19, (t2)",
        "add t2, t2, t3",
        "vs1r.v v20, (t2)",
        "add t2, t2, t3",
        "vs1r.v v21, (t2)",
        "add t2, t2, t3",
        "vs1r.v v22, (t2)",
        "add t2, t2, t3",
        "vs1r.v v23, (t2)",
        "add t2, t2, t3",
        "vs1r.v v24, (t2)",
        "add t2, t2, t3",
        "vs1r.v v25, (t2)",
        "add t2, t2, t3",
        "vs1r.v v26, (t2)",
        "add t2, t2, t3",
        "vs1r.v v27, (t2)",
        "add t2, t2, t3",
        "vs1r.v v28, (t2)",
        "add t2, t2, t3",
        "vs1r.v v29, (t2)",
        "add t2, t2, t3",
        "vs1r.v v30, (t2)",
        "add t2, t2, t3",
        "vs1r.v v31, (t2)",
        "add t2, t2, t3"
    ]
);

/// A test function and its labels.
type Site = Labels<Regs>;

const UNIMP: Site = labels!("unimp", Regs);
const LOAD: Site = labels!("load", Regs);
const UNIMP_VECTOR: Site = labels!("unimp_vector", Regs);

/// The hart's `vlenb`, when it has V.
fn vlenb() -> Option<usize> {
    crate::linux_riscv64::has_vector().then(|| {
        let vlenb: usize;
        // SAFETY: reads a read-only CSR that exists when the hart has V.
        unsafe { std::arch::asm!(".option push", ".option arch, +v", "csrr {}, vlenb", ".option pop", out(reg) vlenb) };
        vlenb
    })
}

/// gp and tp, which the test functions leave as they are.
fn gp_tp() -> (u64, u64) {
    let (gp, tp): (u64, u64);
    // SAFETY: reads two registers.
    unsafe { std::arch::asm!("mv {}, gp", "mv {}, tp", out(reg) gp, out(reg) tp) };
    (gp, tp)
}

fn patterns(seed: u64, vlenb: usize) -> Regs {
    let mut next = Patterns(seed);
    // fcsr: round towards zero (frm = 1) and the inexact and invalid flags. With V: e32, m1,
    // tail agnostic; vl 3; vxrm 2 with vxsat; vstart 2.
    let mut regs = Regs {
        x: [0; 32],
        f: [0; 32],
        fcsr: 0x31,
        vstart: 2,
        vl: 3,
        vtype: 0x50,
        vcsr: 0b101,
        vlenb: 0,
        sp: 0,
        _pad: 0,
        v: [0; 32 * MAX_VLENB],
    };
    for r in &mut regs.x {
        *r = next.next_u64();
    }
    (regs.x[0], regs.x[2]) = (0, 0);
    (regs.x[3], regs.x[4]) = gp_tp();
    for f in &mut regs.f {
        *f = next.next_u64();
    }
    for chunk in regs.v[..32 * vlenb].chunks_mut(16) {
        chunk.copy_from_slice(&next.next_u128().to_le_bytes());
    }
    regs
}

/// Leaves the FP and vector state changed, as ordinary code may: the stub must put the
/// interrupted state back.
fn disturb(vector: bool) {
    // SAFETY: changes only fcsr and, with V, vl, vtype, vstart, vcsr and v1, all of which the
    // stub restores.
    unsafe {
        std::arch::asm!("fscsr zero");
        if vector {
            std::arch::asm!(
                ".option push",
                ".option arch, +v",
                "vsetvli {0}, zero, e8, m1, ta, ma",
                "vmv.v.i v1, 7",
                "csrw vcsr, zero",
                ".option pop",
                out(reg) _,
            );
        }
    }
}

fn check(name: &str, site: Site, input: &Regs, signal: c_int, vlenb: Option<usize>) -> Capture {
    let Site { function, fault, resume, .. } = site;
    let _serial = prepare(fault, resume);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = std::rc::Rc::clone(&seen);
    let armed = arm_with(
        vec![site.range()],
        Box::new(move |c: &Capture| {
            sink.borrow_mut().push(c.clone());
            disturb(vlenb.is_some());
        }),
        Strategy::RegisterOnly,
    )
    .expect("riscv64 Linux is supported");
    let mut output = Box::new(Regs { x: [0; 32], f: [0; 32], v: [0; 32 * MAX_VLENB], ..*input });
    output.sp = 0;
    // SAFETY: the test function follows the C ABI, preserves callee-saved registers and the
    // stack, reads `input` and writes `output`.
    unsafe { function(input, &raw mut *output) };
    drop(armed);
    let captures = seen.borrow().clone();
    assert_eq!(captures.len(), 1, "{name}: exactly one capture");
    let capture = captures[0].clone();
    assert_eq!(capture.signal, signal, "{name}");
    let sp = SAVED_SP.load(Ordering::SeqCst);
    let RawRegisters::Riscv64 { x, pc, f, fcsr, vector } = &capture.registers else {
        panic!("{name}: not riscv64")
    };
    let mut expected = input.x;
    expected[2] = sp;
    assert_eq!(*pc, fault as *const () as usize as u64, "{name}: pc");
    assert_eq!(x[..], expected[1..], "{name}: callback saw x1-x31");
    assert_eq!(*f, input.f, "{name}: callback saw f0-f31");
    assert_eq!(u64::from(*fcsr), input.fcsr, "{name}: callback saw fcsr");
    assert_eq!(output.sp, sp, "{name}: sp after resuming");
    let mut after = output.x;
    after[2] = output.sp;
    assert_eq!(after[1..], expected[1..], "{name}: x1-x31 after resuming");
    assert_eq!(output.f, input.f, "{name}: f0-f31 after resuming");
    assert_eq!(output.fcsr, input.fcsr, "{name}: fcsr after resuming");
    match (vlenb, vector) {
        (None, None) => {}
        (Some(vlenb), Some(vector)) => {
            assert_eq!((vector.vlenb, vector.v.len()), (vlenb as u64, 32 * vlenb), "{name}: vlenb");
            // Only the vector test function loads vector patterns and stores the state after.
            if site.range() == UNIMP_VECTOR.range() {
                let seen = (vector.vtype, vector.vl, vector.vstart, vector.vcsr);
                let loaded = (input.vtype, input.vl, input.vstart, input.vcsr);
                assert_eq!(seen, loaded, "{name}: callback saw vtype, vl, vstart, vcsr");
                assert!(vector.v[..] == input.v[..32 * vlenb], "{name}: callback saw v0-v31");
                let after = (output.vtype, output.vl, output.vstart, output.vcsr, output.vlenb);
                let before = (input.vtype, input.vl, input.vstart, input.vcsr, vlenb as u64);
                assert_eq!(after, before, "{name}: vtype, vl, vstart, vcsr after resuming");
                assert!(output.v[..32 * vlenb] == input.v[..32 * vlenb], "{name}: v0-v31 after resuming");
            }
        }
        (expected, seen) => {
            panic!("{name}: vector state present: {}, expected vlenb {expected:?}", seen.is_some())
        }
    }
    capture
}

#[test]
fn undefined_instruction_round_trip() {
    let vlenb = vlenb();
    for seed in [0x9e37_79b9_7f4a_7c15, 0x2545_f491_4f6c_dd1d] {
        check("unimp", UNIMP, &patterns(seed, vlenb.unwrap_or(0)), libc::SIGILL, vlenb);
    }
}

#[test]
fn vector_state_round_trip() {
    let Some(vlenb) = vlenb() else {
        // The run without V checks the variant without vector state (above).
        return;
    };
    assert!(vlenb <= MAX_VLENB, "vlenb {vlenb}");
    check("unimp with V", UNIMP_VECTOR, &patterns(0x5851_f42d_4c95_7f2d, vlenb), libc::SIGILL, Some(vlenb));
}

#[test]
fn bad_load_round_trip() {
    let vlenb = vlenb();
    let mut input = patterns(0x1234_5678_9abc_def1, vlenb.unwrap_or(0));
    input.x[5] = 0x10;
    let capture = check("load", LOAD, &input, libc::SIGSEGV, vlenb);
    assert_eq!(capture.fault_address, 0x10);
    assert_eq!(capture.fp(), input.x[8]);
}

#[test]
fn the_stack_push_is_not_offered_here() {
    assert!(arm_with(Vec::new(), Box::new(|_| {}), Strategy::StackPush).is_err());
}
