//! Windows x86_64, register-only strategy. Wasmtime's vectored exception handler calls the
//! per-store hook (`wasmtime::windows::StoreExt::set_signal_handler`) with the
//! `EXCEPTION_POINTERS` of a fault; [`handle`] stashes the interrupted state from the `CONTEXT`
//! in the thread's slot and changes only `Rip`, `Rsp` and `Rcx`. The thread resumes in the
//! stub, which saves every register (the GPRs, the flags, and the x87/SSE state with
//! xmm0–xmm15 and MXCSR through `fxsave64`), calls [`deliver`] with the Windows x64 calling
//! convention — the slot in `rcx`, 32 bytes of shadow space, the stack 16-aligned; the callee
//! keeps xmm6–xmm15 itself, and the stub restores them all regardless — restores every register
//! and returns to the faulting instruction through a return frame just below the interrupted
//! `Rsp` (Windows has no red zone). That instruction faults again and the hook, seeing it
//! delivered, hands it to Wasmtime.
//!
//! A capture's `signal` is the POSIX signal the exception corresponds to (`SIGSEGV`, `SIGILL`,
//! `SIGFPE`, with the C runtime's numbers) and its `si_code` the Windows exception code.
//!
//! `fxsave64` leaves out the upper halves of the AVX registers: Cranelift's Wasm code keeps no
//! state there (it uses 128-bit VEX forms, which clear them), so nothing a trap's code relies
//! on is lost.

use std::cell::Cell;

use windows_sys::Win32::Foundation::{
    EXCEPTION_ACCESS_VIOLATION, EXCEPTION_ILLEGAL_INSTRUCTION, EXCEPTION_INT_DIVIDE_BY_ZERO,
    EXCEPTION_INT_OVERFLOW,
};
use windows_sys::Win32::System::Diagnostics::Debug::{EXCEPTION_POINTERS, M128A};

use crate::slot::Capturing;
use crate::{Capture, RawRegisters};

/// The C runtime's signal numbers, which the exceptions Wasm traps raise correspond to.
const SIGILL: i32 = 4;
const SIGFPE: i32 = 8;
const SIGSEGV: i32 = 11;

/// Per-thread state shared by the hook, the stub and [`deliver`]. The first fields have
/// fixed offsets that the stub uses.
#[repr(C)]
pub(crate) struct Slot {
    /// `rax rbx rcx rdx rsi rdi rbp rsp r8 … r15` at the fault (offset 0; `rcx` at 16).
    gprs: [u64; 16],
    /// `Rip` at the fault (offset 128).
    rip: u64,
    rflags: u64,
    /// Where the stub builds its return frame, `[flags, rip]`, just below the interrupted
    /// `Rsp` (offset 144).
    return_sp: u64,
    vregs: [u128; 16],
    mxcsr: u32,
    fcw: u16,
    fsw: u16,
    common: Capturing,
}

const _: () = {
    assert!(std::mem::offset_of!(Slot, gprs) == 0);
    assert!(std::mem::offset_of!(Slot, rip) == 128);
    assert!(std::mem::offset_of!(Slot, return_sp) == 144);
};

thread_local! {
    /// This thread's slot while armed (see the x86_64 Linux module for why a `const` `Cell`).
    static SLOT: Cell<*mut Slot> = const { Cell::new(std::ptr::null_mut()) };
}

/// Arms capture on this thread; see [`crate::arm`].
pub(crate) fn arm(ranges: Vec<(usize, usize)>, callback: Box<dyn FnMut(&Capture)>) -> (*mut Slot, u64) {
    crate::publish(
        &SLOT,
        Box::new(Slot {
            gprs: [0; 16],
            rip: 0,
            rflags: 0,
            return_sp: 0,
            vregs: [0; 16],
            mxcsr: 0,
            fcw: 0,
            fsw: 0,
            common: Capturing::new(ranges, callback),
        }),
    )
}

/// Disarms this thread if `slot` and `arming` are still its own, and frees the slot.
pub(crate) fn disarm(slot: *mut Slot, arming: u64) {
    drop(crate::unpublish(&SLOT, slot, arming));
}

/// The signal an exception Wasm traps raise corresponds to; `None` for any other exception.
fn signal_of(code: i32) -> Option<i32> {
    match code {
        EXCEPTION_ACCESS_VIOLATION => Some(SIGSEGV),
        EXCEPTION_ILLEGAL_INSTRUCTION => Some(SIGILL),
        EXCEPTION_INT_DIVIDE_BY_ZERO | EXCEPTION_INT_OVERFLOW => Some(SIGFPE),
        _ => None,
    }
}

fn u128_of(m: M128A) -> u128 {
    u128::from(m.Low) | u128::from(m.High as u64) << 64
}

/// The hook: see the module documentation and [`crate::handle_exception`].
///
/// # Safety
/// `pointers` is what Windows passed the vectored exception handler for this exception on
/// this thread.
pub(crate) unsafe fn handle(pointers: *mut EXCEPTION_POINTERS) -> bool {
    let slot = SLOT.with(Cell::get);
    if slot.is_null() || pointers.is_null() {
        return false;
    }
    // SAFETY: Windows passes a valid record and context for the exception being dispatched.
    let (record, context) = unsafe { ((*pointers).ExceptionRecord, (*pointers).ContextRecord) };
    if record.is_null() || context.is_null() {
        return false;
    }
    // SAFETY: as above.
    let (record, context) = unsafe { (&*record, &mut *context) };
    let Some(signal) = signal_of(record.ExceptionCode) else { return false };
    // SAFETY: a published slot is live and owned by this thread.
    if unsafe { Capturing::busy(std::ptr::addr_of!((*slot).common)) } {
        return false;
    }
    // SAFETY: no capture is under way, so nothing else references the slot.
    let slot = unsafe { &mut *slot };
    let pc = context.Rip;
    if !slot.common.admits(pc, context.Rsp, slot.rip) {
        return false;
    }
    let c = &*context;
    slot.gprs = [
        c.Rax, c.Rbx, c.Rcx, c.Rdx, c.Rsi, c.Rdi, c.Rbp, c.Rsp, c.R8, c.R9, c.R10, c.R11, c.R12, c.R13,
        c.R14, c.R15,
    ];
    slot.rip = pc;
    slot.rflags = u64::from(c.EFlags);
    // An access violation's second parameter is the address it touched.
    let fault_address = if record.ExceptionCode == EXCEPTION_ACCESS_VIOLATION && record.NumberParameters >= 2
    {
        record.ExceptionInformation[1] as u64
    } else {
        0
    };
    // SAFETY: on x86_64 the union holds the FXSAVE image Windows fills for a fault.
    let fx = unsafe { c.Anonymous.FltSave };
    for (v, xmm) in slot.vregs.iter_mut().zip(fx.XmmRegisters) {
        *v = u128_of(xmm);
    }
    slot.mxcsr = c.MxCsr;
    slot.fcw = fx.ControlWord;
    slot.fsw = fx.StatusWord;
    // The return frame sits just below the interrupted stack pointer, the stub's own frame
    // below it (room checked above, so none of this wraps).
    slot.return_sp = c.Rsp.wrapping_sub(16);
    let stub_sp = slot.return_sp.wrapping_sub(64) & !15;
    slot.common.begin(signal, record.ExceptionCode, fault_address);
    context.Rsp = stub_sp;
    context.Rip = STUB as usize as u64;
    context.Rcx = std::ptr::from_mut(slot) as u64;
    true
}

/// Called by the stub in ordinary context.
extern "C" fn deliver(slot: *mut Slot) {
    let build = move |common: &Capturing| {
        // SAFETY: the stub passes the slot the hook put in `rcx`, live while armed; a nested
        // exception only reads its state.
        let s = unsafe { &*slot };
        common.capture(RawRegisters::X86_64 {
            gprs: s.gprs,
            rip: s.rip,
            rflags: s.rflags,
            xmm: s.vregs,
            mxcsr: s.mxcsr,
            fcw: s.fcw,
            fsw: s.fsw,
        })
    };
    // SAFETY: this thread's live slot, a capture under way (the stub runs only after the hook
    // began one).
    unsafe { Capturing::deliver(std::ptr::addr_of_mut!((*slot).common), build) };
}

unsafe extern "C" {
    #[link_name = "wtrace_inject_stub_windows_x86_64"]
    fn stub_symbol();
}

const STUB: unsafe extern "C" fn() = stub_symbol;

// The stub. On entry: RSP 16-aligned below the return frame at `slot.return_sp`; RCX = slot;
// every other register as interrupted. 16 pushes keep RSP 16-aligned for `fxsave64` and the
// call; RBX (callee-saved) keeps the slot across it.
std::arch::global_asm!(
    ".p2align 4",
    ".globl wtrace_inject_stub_windows_x86_64",
    "wtrace_inject_stub_windows_x86_64:",
    "pushfq",
    "push rax",
    "push rbx",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push rbp",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov rbx, rcx",
    "cld",
    "sub rsp, 512",
    "fxsave64 [rsp]",
    "sub rsp, 32",
    "mov rcx, rbx",
    "call {deliver}",
    "add rsp, 32",
    "fxrstor64 [rsp]",
    "add rsp, 512",
    // Return frame at R = slot.return_sp: [R] = the flags saved above, [R + 8] = the fault's RIP.
    "mov rax, [rbx + 144]",
    "mov rcx, [rsp + 120]",
    "mov [rax], rcx",
    "mov rcx, [rbx + 128]",
    "mov [rax + 8], rcx",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rbp",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rbx",
    "pop rax",
    // RCX holds the slot (pushed on entry): switch to the return frame, then take RCX's own
    // value back from the slot.
    "mov rsp, [rcx + 144]",
    "mov rcx, [rcx + 16]",
    "popfq",
    // Pops RIP: RSP is the interrupted RSP again.
    "ret",
    deliver = sym deliver,
);
