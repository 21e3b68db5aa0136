//! Stub round trips on x86_64 Linux, independent of Wasmtime: load every GPR, the flags and
//! every xmm register with known patterns, fault, check the callback saw exactly those values,
//! resume past the fault at a test-only address, and check every register came back
//! bit-exact.

use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

use crate::test_harness::{Patterns, prepare};
use crate::test_support::{Labels, labels};
use crate::{Capture, RawRegisters, Strategy, arm, arm_with};

/// Register file as the test functions load and store it.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Regs {
    /// `rax rbx rcx rdx rsi rdi rbp rsp r8 … r15` (rsp: ignored on input).
    gprs: [u64; 16],
    rflags: u64,
    /// MXCSR in the low 32 bits (offset 136).
    mxcsr: u64,
    xmm: [u128; 16],
}

static SAVED_RSP: AtomicU64 = AtomicU64::new(0);
static RESULTS: AtomicU64 = AtomicU64::new(0);

macro_rules! fault_function {
    ($name:literal, $fault:literal) => {
        std::arch::global_asm!(
            ".pushsection .text.wtrace_inject_test,\"ax\",@progbits",
            ".p2align 4",
            concat!(".globl wtrace_test_", $name),
            concat!("wtrace_test_", $name, ":"),
            "push rbx",
            "push rbp",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "mov [rip + {saved_rsp}], rsp",
            "mov [rip + {results}], rsi",
            "push qword ptr [rdi + 128]",
            "popfq",
            "ldmxcsr [rdi + 136]",
            "movdqu xmm0, [rdi + 144]",
            "movdqu xmm1, [rdi + 160]",
            "movdqu xmm2, [rdi + 176]",
            "movdqu xmm3, [rdi + 192]",
            "movdqu xmm4, [rdi + 208]",
            "movdqu xmm5, [rdi + 224]",
            "movdqu xmm6, [rdi + 240]",
            "movdqu xmm7, [rdi + 256]",
            "movdqu xmm8, [rdi + 272]",
            "movdqu xmm9, [rdi + 288]",
            "movdqu xmm10, [rdi + 304]",
            "movdqu xmm11, [rdi + 320]",
            "movdqu xmm12, [rdi + 336]",
            "movdqu xmm13, [rdi + 352]",
            "movdqu xmm14, [rdi + 368]",
            "movdqu xmm15, [rdi + 384]",
            "mov rax, [rdi]",
            "mov rbx, [rdi + 8]",
            "mov rcx, [rdi + 16]",
            "mov rdx, [rdi + 24]",
            "mov rsi, [rdi + 32]",
            "mov rbp, [rdi + 48]",
            "mov r8, [rdi + 64]",
            "mov r9, [rdi + 72]",
            "mov r10, [rdi + 80]",
            "mov r11, [rdi + 88]",
            "mov r12, [rdi + 96]",
            "mov r13, [rdi + 104]",
            "mov r14, [rdi + 112]",
            "mov r15, [rdi + 120]",
            "mov rdi, [rdi + 40]",
            concat!(".globl wtrace_test_", $name, "_fault"),
            concat!("wtrace_test_", $name, "_fault:"),
            $fault,
            concat!(".globl wtrace_test_", $name, "_resume"),
            concat!("wtrace_test_", $name, "_resume:"),
            "push rax",
            "mov rax, [rip + {results}]",
            "mov [rax + 8], rbx",
            "mov [rax + 16], rcx",
            "mov [rax + 24], rdx",
            "mov [rax + 32], rsi",
            "mov [rax + 40], rdi",
            "mov [rax + 48], rbp",
            "mov [rax + 64], r8",
            "mov [rax + 72], r9",
            "mov [rax + 80], r10",
            "mov [rax + 88], r11",
            "mov [rax + 96], r12",
            "mov [rax + 104], r13",
            "mov [rax + 112], r14",
            "mov [rax + 120], r15",
            "pop rbx",
            "mov [rax], rbx",
            "mov [rax + 56], rsp",
            "pushfq",
            "pop rbx",
            "mov [rax + 128], rbx",
            "stmxcsr [rax + 136]",
            // Back to the default SSE control for the Rust code after the test function.
            "push 0x1f80",
            "ldmxcsr [rsp]",
            "add rsp, 8",
            "movdqu [rax + 144], xmm0",
            "movdqu [rax + 160], xmm1",
            "movdqu [rax + 176], xmm2",
            "movdqu [rax + 192], xmm3",
            "movdqu [rax + 208], xmm4",
            "movdqu [rax + 224], xmm5",
            "movdqu [rax + 240], xmm6",
            "movdqu [rax + 256], xmm7",
            "movdqu [rax + 272], xmm8",
            "movdqu [rax + 288], xmm9",
            "movdqu [rax + 304], xmm10",
            "movdqu [rax + 320], xmm11",
            "movdqu [rax + 336], xmm12",
            "movdqu [rax + 352], xmm13",
            "movdqu [rax + 368], xmm14",
            "movdqu [rax + 384], xmm15",
            "cld",
            "mov rsp, [rip + {saved_rsp}]",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbp",
            "pop rbx",
            "ret",
            concat!(".globl wtrace_test_", $name, "_end"),
            concat!("wtrace_test_", $name, "_end:"),
            ".popsection",
            saved_rsp = sym SAVED_RSP,
            results = sym RESULTS,
        );
    };
}

fault_function!("ud2", "ud2");
fault_function!("load", "mov r11, qword ptr [r10]");
fault_function!("div", "div r9");

fn patterns(seed: u64) -> Regs {
    let mut next = Patterns(seed);
    let mut regs = Regs { gprs: [0; 16], rflags: 0, mxcsr: 0, xmm: [0; 16] };
    for gpr in &mut regs.gprs {
        *gpr = next.next_u64();
    }
    for xmm in &mut regs.xmm {
        *xmm = next.next_u128();
    }
    // CF PF AF ZF SF DF OF and the always-one bit 1.
    regs.rflags = 0x0cd7;
    // All exceptions masked (the default), rounding towards zero, flush-to-zero.
    regs.mxcsr = 0xff80;
    regs
}

/// A test function and its labels.
type Site = Labels<Regs>;

const UD2: Site = labels!("ud2", Regs);
const LOAD: Site = labels!("load", Regs);
const DIV: Site = labels!("div", Regs);

/// The status flags and DF: what the test sets and checks (IF is always set in user mode).
const FLAGS: u64 = 0x0cd5;

/// Runs one round trip; returns the registers after resuming, what the callback saw, and the
/// stack pointer at the fault (read while the test functions' statics are still ours).
fn round_trip(strategy: Strategy, site: Site, input: &Regs) -> (Regs, Vec<Capture>, u64) {
    let Site { function, fault, resume, .. } = site;
    let _serial = prepare(fault, resume);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = std::rc::Rc::clone(&seen);
    let _armed = arm_with(
        vec![site.range()],
        Box::new(move |c: &Capture| {
            sink.borrow_mut().push(c.clone());
            // Ordinary code may leave MXCSR changed: the stub must put the interrupted one back.
            let default: u32 = 0x1f80;
            // SAFETY: loads MXCSR from a valid u32; the stub restores it.
            unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &raw const default) };
        }),
        strategy,
    )
    .expect("x86_64 Linux is supported");
    let mut output = Regs { gprs: [0; 16], rflags: 0, mxcsr: 0, xmm: [0; 16] };
    // SAFETY: the test function follows the C ABI, preserves callee-saved registers and the
    // stack, reads `input` and writes `output`.
    unsafe { function(input, &raw mut output) };
    let captures = seen.borrow().clone();
    (output, captures, SAVED_RSP.load(Ordering::SeqCst))
}

fn check(strategy: Strategy, name: &str, site: Site, input: &Regs, signal: c_int) {
    let fault = site.fault;
    let (output, captures, rsp) = round_trip(strategy, site, input);
    let name = &format!("{name} ({strategy:?})");
    assert_eq!(captures.len(), 1, "{name}: exactly one capture");
    let capture = &captures[0];
    assert_eq!(capture.signal, signal, "{name}");
    let RawRegisters::X86_64 { gprs, rip, rflags, xmm, mxcsr, .. } = capture.registers else {
        panic!("{name}: not x86_64 registers")
    };
    assert_eq!(rip, fault as usize as u64, "{name}: rip");
    for (i, (seen, want)) in gprs.iter().zip(input.gprs).enumerate() {
        let want = if i == 7 { rsp } else { want };
        assert_eq!(*seen, want, "{name}: callback saw gpr {i}");
    }
    assert_eq!(rflags & FLAGS, input.rflags & FLAGS, "{name}: callback saw rflags");
    assert_eq!(xmm, input.xmm, "{name}: callback saw xmm");
    assert_eq!(u64::from(mxcsr), input.mxcsr, "{name}: callback saw mxcsr");
    // Every register came back bit-exact after the injected call.
    for i in 0..16 {
        let want = if i == 7 { rsp } else { input.gprs[i] };
        assert_eq!(output.gprs[i], want, "{name}: gpr {i} after resuming");
    }
    assert_eq!(output.rflags & FLAGS, input.rflags & FLAGS, "{name}: rflags after resuming");
    assert_eq!(output.xmm, input.xmm, "{name}: xmm after resuming");
    assert_eq!(output.mxcsr, input.mxcsr, "{name}: mxcsr after resuming");
}

/// Both strategies: the state in the thread's slot (Linux), or pushed onto the guest stack (the
/// macOS approach, run here from the same signal hook).
const STRATEGIES: [Strategy; 2] = [Strategy::RegisterOnly, Strategy::StackPush];

#[test]
fn illegal_instruction_round_trip() {
    for strategy in STRATEGIES {
        for seed in [0x9e37_79b9_7f4a_7c15, 0x2545_f491_4f6c_dd1d, 1] {
            check(strategy, "ud2", UD2, &patterns(seed), libc::SIGILL);
        }
    }
}

#[test]
fn bad_load_round_trip() {
    for strategy in STRATEGIES {
        let mut input = patterns(0x1234_5678_9abc_def1);
        input.gprs[10] = 0x10; // r10: an unmapped address
        let (_, captures, _) = round_trip(strategy, LOAD, &input);
        assert_eq!(captures[0].fault_address, 0x10, "{strategy:?}");
        check(strategy, "load", LOAD, &input, libc::SIGSEGV);
    }
}

#[test]
fn divide_by_zero_round_trip() {
    for strategy in STRATEGIES {
        let mut input = patterns(0x0fed_cba9_8765_4321);
        input.gprs[9] = 0; // r9: the divisor
        check(strategy, "div", DIV, &input, libc::SIGFPE);
    }
}

/// A fault outside the armed ranges is not touched.
#[test]
fn faults_outside_the_ranges_are_declined() {
    let _serial = prepare(UD2.fault, UD2.resume);
    let seen = std::rc::Rc::new(std::cell::Cell::new(0));
    let sink = std::rc::Rc::clone(&seen);
    // Armed for the load function only: the ud2 fault goes straight to the test handler.
    let _armed = arm(vec![LOAD.range()], Box::new(move |_| sink.set(sink.get() + 1))).unwrap();
    let input = patterns(7);
    let mut output = Regs { gprs: [0; 16], rflags: 0, mxcsr: 0, xmm: [0; 16] };
    // SAFETY: as in `round_trip`.
    unsafe { (UD2.function)(&raw const input, &raw mut output) };
    assert_eq!(seen.get(), 0);
    assert_eq!(output.gprs[0], input.gprs[0]);
}

static YMM_RESULTS: AtomicU64 = AtomicU64::new(0);

// Loads ymm0-15 from `rdi` (16 x 32 bytes), faults, and at the resume label stores them to
// the buffer in YMM_RESULTS. Touches no other register but RAX at the resume label.
std::arch::global_asm!(
    ".pushsection .text.wtrace_inject_test,\"ax\",@progbits",
    ".p2align 4",
    ".globl wtrace_test_ymm",
    "wtrace_test_ymm:",
    "mov [rip + {results}], rsi",
    "vmovdqu ymm0, [rdi]",
    "vmovdqu ymm1, [rdi + 32]",
    "vmovdqu ymm2, [rdi + 64]",
    "vmovdqu ymm3, [rdi + 96]",
    "vmovdqu ymm4, [rdi + 128]",
    "vmovdqu ymm5, [rdi + 160]",
    "vmovdqu ymm6, [rdi + 192]",
    "vmovdqu ymm7, [rdi + 224]",
    "vmovdqu ymm8, [rdi + 256]",
    "vmovdqu ymm9, [rdi + 288]",
    "vmovdqu ymm10, [rdi + 320]",
    "vmovdqu ymm11, [rdi + 352]",
    "vmovdqu ymm12, [rdi + 384]",
    "vmovdqu ymm13, [rdi + 416]",
    "vmovdqu ymm14, [rdi + 448]",
    "vmovdqu ymm15, [rdi + 480]",
    ".globl wtrace_test_ymm_fault",
    "wtrace_test_ymm_fault:",
    "ud2",
    ".globl wtrace_test_ymm_resume",
    "wtrace_test_ymm_resume:",
    "mov rax, [rip + {results}]",
    "vmovdqu [rax], ymm0",
    "vmovdqu [rax + 32], ymm1",
    "vmovdqu [rax + 64], ymm2",
    "vmovdqu [rax + 96], ymm3",
    "vmovdqu [rax + 128], ymm4",
    "vmovdqu [rax + 160], ymm5",
    "vmovdqu [rax + 192], ymm6",
    "vmovdqu [rax + 224], ymm7",
    "vmovdqu [rax + 256], ymm8",
    "vmovdqu [rax + 288], ymm9",
    "vmovdqu [rax + 320], ymm10",
    "vmovdqu [rax + 352], ymm11",
    "vmovdqu [rax + 384], ymm12",
    "vmovdqu [rax + 416], ymm13",
    "vmovdqu [rax + 448], ymm14",
    "vmovdqu [rax + 480], ymm15",
    "vzeroupper",
    "ret",
    ".globl wtrace_test_ymm_end",
    "wtrace_test_ymm_end:",
    ".popsection",
    results = sym YMM_RESULTS,
);

const YMM: Labels<[u8; 512]> = labels!("ymm", [u8; 512]);

/// The full AVX state survives the injected call, whose Rust code (allocation, copying) is
/// free to use the upper halves of the ymm registers: `xsave`/`xrstor` must bring them back.
#[test]
fn avx_upper_halves_survive_the_injected_call() {
    if !std::arch::is_x86_feature_detected!("avx") {
        return;
    }
    for strategy in STRATEGIES {
        let _serial = prepare(YMM.fault, YMM.resume);
        let mut input = [0u8; 512];
        for (i, byte) in input.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        // The callback clobbers vector registers on purpose: a large copy uses them.
        let _armed = arm_with(
            vec![YMM.range()],
            Box::new(|_: &Capture| {
                let noise = vec![0xa5u8; 1 << 16];
                let copy = noise.clone();
                assert_eq!(std::hint::black_box(copy).len(), 1 << 16);
            }),
            strategy,
        )
        .unwrap();
        let mut output = [0u8; 512];
        // SAFETY: the test function reads 512 bytes from the first pointer, writes 512 to the
        // second, and touches no callee-saved state.
        unsafe { (YMM.function)(&raw const input, &raw mut output) };
        assert_eq!(output, input, "{strategy:?}: ymm0-15 after resuming");
    }
}
