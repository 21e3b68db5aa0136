//! Stub round trips on Windows x86_64 (run under Wine by the test script), as on Linux: load
//! every GPR, the flags and every xmm register with known patterns, fault, check the callback
//! saw exactly those values, resume past the fault at a test-only address, and check every
//! register came back bit-exact. The test functions follow the Windows x64 convention.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use windows_sys::Win32::Foundation::{
    EXCEPTION_ACCESS_VIOLATION, EXCEPTION_ILLEGAL_INSTRUCTION, EXCEPTION_INT_DIVIDE_BY_ZERO,
};
use windows_sys::Win32::System::Diagnostics::Debug::{
    AddVectoredExceptionHandler, EXCEPTION_CONTINUE_EXECUTION, EXCEPTION_CONTINUE_SEARCH, EXCEPTION_POINTERS,
};

use crate::test_support::{Labels, Patterns, labels};
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
static FAULT_SITE: AtomicUsize = AtomicUsize::new(0);
static RESUME: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

macro_rules! fault_function {
    ($name:literal, $fault:literal) => {
        std::arch::global_asm!(
            ".p2align 4",
            concat!(".globl wtrace_test_", $name),
            concat!("wtrace_test_", $name, ":"),
            "push rbx",
            "push rbp",
            "push rdi",
            "push rsi",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "sub rsp, 168",
            "movdqu [rsp], xmm6",
            "movdqu [rsp + 16], xmm7",
            "movdqu [rsp + 32], xmm8",
            "movdqu [rsp + 48], xmm9",
            "movdqu [rsp + 64], xmm10",
            "movdqu [rsp + 80], xmm11",
            "movdqu [rsp + 96], xmm12",
            "movdqu [rsp + 112], xmm13",
            "movdqu [rsp + 128], xmm14",
            "movdqu [rsp + 144], xmm15",
            "mov [rip + {saved_rsp}], rsp",
            "mov [rip + {results}], rdx",
            "push qword ptr [rcx + 128]",
            "popfq",
            "ldmxcsr [rcx + 136]",
            "movdqu xmm0, [rcx + 144]",
            "movdqu xmm1, [rcx + 160]",
            "movdqu xmm2, [rcx + 176]",
            "movdqu xmm3, [rcx + 192]",
            "movdqu xmm4, [rcx + 208]",
            "movdqu xmm5, [rcx + 224]",
            "movdqu xmm6, [rcx + 240]",
            "movdqu xmm7, [rcx + 256]",
            "movdqu xmm8, [rcx + 272]",
            "movdqu xmm9, [rcx + 288]",
            "movdqu xmm10, [rcx + 304]",
            "movdqu xmm11, [rcx + 320]",
            "movdqu xmm12, [rcx + 336]",
            "movdqu xmm13, [rcx + 352]",
            "movdqu xmm14, [rcx + 368]",
            "movdqu xmm15, [rcx + 384]",
            "mov rax, [rcx]",
            "mov rbx, [rcx + 8]",
            "mov rdx, [rcx + 24]",
            "mov rsi, [rcx + 32]",
            "mov rdi, [rcx + 40]",
            "mov rbp, [rcx + 48]",
            "mov r8, [rcx + 64]",
            "mov r9, [rcx + 72]",
            "mov r10, [rcx + 80]",
            "mov r11, [rcx + 88]",
            "mov r12, [rcx + 96]",
            "mov r13, [rcx + 104]",
            "mov r14, [rcx + 112]",
            "mov r15, [rcx + 120]",
            "mov rcx, [rcx + 16]",
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
            "movdqu xmm6, [rsp]",
            "movdqu xmm7, [rsp + 16]",
            "movdqu xmm8, [rsp + 32]",
            "movdqu xmm9, [rsp + 48]",
            "movdqu xmm10, [rsp + 64]",
            "movdqu xmm11, [rsp + 80]",
            "movdqu xmm12, [rsp + 96]",
            "movdqu xmm13, [rsp + 112]",
            "movdqu xmm14, [rsp + 128]",
            "movdqu xmm15, [rsp + 144]",
            "add rsp, 168",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rsi",
            "pop rdi",
            "pop rbp",
            "pop rbx",
            "ret",
            concat!(".globl wtrace_test_", $name, "_end"),
            concat!("wtrace_test_", $name, "_end:"),
            saved_rsp = sym SAVED_RSP,
            results = sym RESULTS,
        );
    };
}

fault_function!("ud2", "ud2");
fault_function!("load", "mov r11, qword ptr [r10]");
fault_function!("div", "div r9");

/// The vectored exception handler the tests install: call injection first, then the planned
/// second fault resumes the test function at its resume label.
unsafe extern "system" fn on_exception(pointers: *mut EXCEPTION_POINTERS) -> i32 {
    // SAFETY: Windows passes this handler valid exception pointers.
    if unsafe { crate::handle_exception(pointers) } {
        return EXCEPTION_CONTINUE_EXECUTION;
    }
    // SAFETY: as above; the context is this thread's, writable while the handler runs.
    let context = unsafe { &mut *(*pointers).ContextRecord };
    if context.Rip as usize == FAULT_SITE.load(Ordering::SeqCst) {
        context.Rip = RESUME.load(Ordering::SeqCst) as u64;
        return EXCEPTION_CONTINUE_EXECUTION;
    }
    EXCEPTION_CONTINUE_SEARCH
}

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

/// The status flags and DF: what the test sets and checks.
const FLAGS: u64 = 0x0cd5;

fn check(name: &str, site: Site, input: &Regs, signal: i32, code: i32) -> Capture {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    // SAFETY: the handler has the signature Windows expects and lives for the process.
    INSTALLED.call_once(|| assert!(!unsafe { AddVectoredExceptionHandler(1, Some(on_exception)) }.is_null()));
    FAULT_SITE.store(site.fault as usize, Ordering::SeqCst);
    RESUME.store(site.resume as usize, Ordering::SeqCst);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = std::rc::Rc::clone(&seen);
    let armed = arm(
        vec![site.range()],
        Box::new(move |c: &Capture| {
            sink.borrow_mut().push(c.clone());
            // Ordinary code may leave MXCSR changed: the stub must put the interrupted one back.
            let default: u32 = 0x1f80;
            // SAFETY: loads MXCSR from a valid u32; the stub restores it.
            unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &raw const default) };
        }),
    )
    .expect("Windows x86_64 is supported");
    let mut output = Regs { gprs: [0; 16], rflags: 0, mxcsr: 0, xmm: [0; 16] };
    // SAFETY: the test function follows the Windows x64 convention, preserves callee-saved
    // registers and the stack, reads `input` and writes `output`.
    unsafe { (site.function)(input, &raw mut output) };
    drop(armed);
    let captures = seen.borrow().clone();
    let rsp = SAVED_RSP.load(Ordering::SeqCst);
    assert_eq!(captures.len(), 1, "{name}: exactly one capture");
    let capture = captures[0].clone();
    assert_eq!((capture.signal, capture.si_code), (signal, code), "{name}: signal and exception code");
    let RawRegisters::X86_64 { gprs, rip, rflags, xmm, mxcsr, .. } = capture.registers else {
        panic!("{name}: not x86_64 registers")
    };
    assert_eq!(rip, site.fault as usize as u64, "{name}: rip");
    let mut expected = input.gprs;
    expected[7] = rsp;
    assert_eq!(gprs, expected, "{name}: callback saw the GPRs");
    assert_eq!(rflags & FLAGS, input.rflags & FLAGS, "{name}: callback saw rflags");
    assert_eq!(xmm, input.xmm, "{name}: callback saw xmm0-xmm15");
    assert_eq!(u64::from(mxcsr), input.mxcsr, "{name}: callback saw mxcsr");
    assert_eq!(output.gprs, expected, "{name}: GPRs after resuming");
    assert_eq!(output.rflags & FLAGS, input.rflags & FLAGS, "{name}: rflags after resuming");
    assert_eq!(output.xmm, input.xmm, "{name}: xmm0-xmm15 after resuming");
    assert_eq!(output.mxcsr & 0xffff, input.mxcsr, "{name}: mxcsr after resuming");
    capture
}

#[test]
fn illegal_instruction_round_trip() {
    for seed in [0x9e37_79b9_7f4a_7c15, 0x2545_f491_4f6c_dd1d] {
        check("ud2", UD2, &patterns(seed), 4, EXCEPTION_ILLEGAL_INSTRUCTION);
    }
}

#[test]
fn access_violation_round_trip() {
    let mut input = patterns(0x1234_5678_9abc_def1);
    input.gprs[10] = 0x10;
    let capture = check("load", LOAD, &input, 11, EXCEPTION_ACCESS_VIOLATION);
    assert_eq!(capture.fault_address, 0x10);
    assert_eq!(capture.fp(), input.gprs[6]);
}

#[test]
fn divide_by_zero_round_trip() {
    let mut input = patterns(0x0bad_cafe_f00d_0003);
    input.gprs[9] = 0;
    check("div", DIV, &input, 8, EXCEPTION_INT_DIVIDE_BY_ZERO);
}

#[test]
fn the_stack_push_is_not_offered_here() {
    assert!(arm_with(Vec::new(), Box::new(|_| {}), Strategy::StackPush).is_err());
}
