//! aarch64 Linux, register-only strategy. As on x86_64, the signal handler stashes the
//! interrupted state in the thread's slot and changes only PC, SP and X0; the stub saves every
//! register (x1–x30, NZCV, FPSR, FPCR, q0–q31), calls [`deliver`] in ordinary context and
//! restores them all. aarch64 cannot jump to an arbitrary address without a register to hold
//! it, so the stub ends with a deliberate `udf` at a known address: the handler answers that
//! second signal by restoring PC, SP and X0 from the slot, and the kernel's `sigreturn` puts
//! the whole register file back bit-exactly. The faulting instruction then faults again and
//! is declined.

use std::cell::Cell;

use libc::{c_int, c_void, siginfo_t, ucontext_t};

use crate::aarch64_push::{FpState, NZCV, PushedState, ThreadState};
use crate::slot::Capturing;
use crate::{Capture, RawRegisters};

/// `fpsimd_context` magic in the signal frame's reserved area.
const FPSIMD_MAGIC: u32 = 0x4650_8001;

/// Per-thread state shared by the signal handler, the stub and [`deliver`]. The stub reads
/// `pc` (offset 256) for its frame record.
#[repr(C)]
pub(crate) struct Slot {
    /// x0–x30 at the fault.
    x: [u64; 31],
    sp: u64,
    pc: u64,
    pstate: u64,
    q: [u128; 32],
    fpsr: u32,
    fpcr: u32,
    strategy: crate::Strategy,
    common: Capturing,
}

const _: () = assert!(std::mem::offset_of!(Slot, pc) == 256);

thread_local! {
    /// This thread's slot while armed (see the x86_64 module for why a `const` `Cell`).
    static SLOT: Cell<*mut Slot> = const { Cell::new(std::ptr::null_mut()) };
}

/// Arms capture on this thread; see [`crate::arm`].
pub(crate) fn arm(
    ranges: Vec<(usize, usize)>,
    callback: Box<dyn FnMut(&Capture)>,
    strategy: crate::Strategy,
) -> (*mut Slot, u64) {
    crate::publish(
        &SLOT,
        Box::new(Slot {
            x: [0; 31],
            sp: 0,
            pc: 0,
            pstate: 0,
            q: [0; 32],
            fpsr: 0,
            fpcr: 0,
            strategy,
            common: Capturing::new(ranges, callback),
        }),
    )
}

/// Disarms this thread if `slot` and `arming` are still its own, and frees the slot.
pub(crate) fn disarm(slot: *mut Slot, arming: u64) {
    drop(crate::unpublish(&SLOT, slot, arming));
}

/// The FPSIMD record of a signal frame, if the kernel put one there.
fn fpsimd(uc: &mut ucontext_t) -> Option<*mut u8> {
    // The reserved area follows `pstate`, 16-byte aligned (`struct sigcontext`).
    let reserved =
        (std::ptr::addr_of_mut!(uc.uc_mcontext.pstate) as usize + 8).next_multiple_of(16) as *mut u8;
    // SAFETY: the first record of the reserved area is at least its 8-byte header.
    let magic = unsafe { reserved.cast::<u32>().read_unaligned() };
    (magic == FPSIMD_MAGIC).then_some(reserved)
}

/// The signal-handler half; see the module documentation and [`crate::handle_signal`].
///
/// # Safety
/// Must be called from a signal handler with the `siginfo_t` and `ucontext_t` the kernel
/// passed for this signal on this thread.
pub(crate) unsafe fn handle(signum: c_int, info: *const siginfo_t, context: *mut c_void) -> bool {
    let slot = SLOT.with(Cell::get);
    if slot.is_null() || info.is_null() || context.is_null() {
        return false;
    }
    // SAFETY: `info` is the kernel's siginfo for this signal; `si_code` is a plain field.
    let si_code = unsafe { (*info).si_code };
    if !crate::raised_by_fault(si_code) {
        return false;
    }
    // SAFETY: a published slot is live and owned by this thread.
    if unsafe { Capturing::busy(std::ptr::addr_of!((*slot).common)) } {
        return false;
    }
    // SAFETY: no capture is under way, so nothing else references the slot; the kernel passed
    // a valid, writable ucontext.
    let (slot, uc) = unsafe { (&mut *slot, &mut *context.cast::<ucontext_t>()) };
    let mc = &mut uc.uc_mcontext;
    let pc = mc.pc;
    if pc == RESUME as usize as u64 && slot.common.delivered() {
        // The stub restored x1–x30, the flags and the vector state; put back what the handler
        // changed, and the kernel restores everything on return.
        mc.pc = slot.pc;
        mc.sp = slot.sp;
        mc.regs[0] = slot.x[0];
        return true;
    }
    if pc == crate::aarch64_push::RESUME_PUSHED as usize as u64 {
        let mut state = ThreadState { x: mc.regs, sp: mc.sp, pc, nzcv: mc.pstate & NZCV };
        // SAFETY: the thread is stopped at the pushed stub's resume point, SP at its block.
        if unsafe { crate::aarch64_push::resume(&mut state) } {
            mc.pc = state.pc;
            mc.sp = state.sp;
            mc.regs[0] = state.x[0];
            return true;
        }
    }
    if !slot.common.admits(pc, mc.sp, slot.pc) {
        return false;
    }
    slot.x = mc.regs;
    slot.sp = mc.sp;
    slot.pc = pc;
    slot.pstate = mc.pstate;
    // SAFETY: `info` is the kernel's siginfo for this signal.
    let fault_address = unsafe { (*info).si_addr() } as u64;
    if let Some(record) = fpsimd(uc) {
        // SAFETY: an FPSIMD record is `magic, size, fpsr, fpcr, vregs[32]` (16-byte aligned).
        unsafe {
            slot.fpsr = record.add(8).cast::<u32>().read_unaligned();
            slot.fpcr = record.add(12).cast::<u32>().read_unaligned();
            for (i, q) in slot.q.iter_mut().enumerate() {
                *q = record.add(16 + 16 * i).cast::<u128>().read_unaligned();
            }
        }
    }
    slot.common.begin(signum, si_code, fault_address);
    let mc = &mut uc.uc_mcontext;
    if slot.strategy == crate::Strategy::StackPush {
        let mut state = ThreadState { x: slot.x, sp: slot.sp, pc, nzcv: slot.pstate & NZCV };
        // SAFETY: the interrupted SP is on this thread's stack, with room below it for the
        // block (`admits` checked it).
        unsafe { crate::aarch64_push::push_state(&mut state, (signum, si_code, fault_address)) };
        mc.sp = state.sp;
        mc.pc = state.pc;
        mc.regs[0] = state.x[0];
        return true;
    }
    // Room checked above: this cannot wrap.
    mc.sp = slot.sp.wrapping_sub(256) & !15;
    mc.pc = STUB as usize as u64;
    mc.regs[0] = std::ptr::from_mut(slot) as u64;
    true
}

/// Fills the slot from a pushed block and the stub's FP save area, then delivers: the Linux
/// half of [`crate::aarch64_push`]'s stub.
pub(crate) fn deliver_pushed_state(block: &PushedState, fp: *const u8) {
    let slot = SLOT.with(Cell::get);
    if slot.is_null() {
        return;
    }
    let fp = FpState::read(fp);
    // SAFETY: this thread's own slot, live while armed. A capture is under way, so a nested
    // signal touches only `state`: the fields are written through the pointer, never through a
    // reference to the whole slot.
    unsafe {
        (*slot).x = block.x;
        (*slot).sp = block.sp;
        (*slot).pc = block.pc;
        (*slot).pstate = block.nzcv;
        (*slot).q = fp.q;
        (*slot).fpsr = fp.fpsr;
        (*slot).fpcr = fp.fpcr;
    }
    deliver(slot);
}

/// Called by the stub in ordinary context.
extern "C" fn deliver(slot: *mut Slot) {
    let build = move |common: &Capturing| {
        // SAFETY: the stub passes the slot the handler put in X0, live while armed; a nested
        // signal only reads its state.
        let s = unsafe { &*slot };
        common.capture(RawRegisters::Aarch64 {
            x: s.x,
            sp: s.sp,
            pc: s.pc,
            nzcv: s.pstate & NZCV,
            q: s.q,
            fpsr: s.fpsr,
            fpcr: s.fpcr,
        })
    };
    // SAFETY: this thread's live slot, a capture under way (the stub runs only after the
    // handler began one).
    unsafe { Capturing::deliver(std::ptr::addr_of_mut!((*slot).common), build) };
}

unsafe extern "C" {
    #[link_name = "wtrace_inject_stub_aarch64"]
    fn stub_symbol();
    #[link_name = "wtrace_inject_stub_aarch64_resume"]
    fn resume_symbol();
}

const STUB: unsafe extern "C" fn() = stub_symbol;
const RESUME: unsafe extern "C" fn() = resume_symbol;

// The stub. On entry: SP 16-aligned, 256 bytes below the interrupted SP; X0 = slot; every
// other register as interrupted. Frame: x1..x30 at [sp, #0..240), nzcv/fpsr/fpcr at 240..264,
// q0..q31 at 272..784, then a 16-byte frame record below it around the call.
std::arch::global_asm!(
    ".pushsection .text.wtrace_inject_stub_aarch64,\"ax\",@progbits",
    ".p2align 4",
    ".globl wtrace_inject_stub_aarch64",
    ".hidden wtrace_inject_stub_aarch64",
    ".type wtrace_inject_stub_aarch64,@function",
    "wtrace_inject_stub_aarch64:",
    "sub sp, sp, #784",
    "stp x1, x2, [sp, #0]",
    "stp x3, x4, [sp, #16]",
    "stp x5, x6, [sp, #32]",
    "stp x7, x8, [sp, #48]",
    "stp x9, x10, [sp, #64]",
    "stp x11, x12, [sp, #80]",
    "stp x13, x14, [sp, #96]",
    "stp x15, x16, [sp, #112]",
    "stp x17, x18, [sp, #128]",
    "stp x19, x20, [sp, #144]",
    "stp x21, x22, [sp, #160]",
    "stp x23, x24, [sp, #176]",
    "stp x25, x26, [sp, #192]",
    "stp x27, x28, [sp, #208]",
    "stp x29, x30, [sp, #224]",
    "mrs x1, nzcv",
    "mrs x2, fpsr",
    "stp x1, x2, [sp, #240]",
    "mrs x1, fpcr",
    "str x1, [sp, #256]",
    "stp q0, q1, [sp, #272]",
    "stp q2, q3, [sp, #304]",
    "stp q4, q5, [sp, #336]",
    "stp q6, q7, [sp, #368]",
    "stp q8, q9, [sp, #400]",
    "stp q10, q11, [sp, #432]",
    "stp q12, q13, [sp, #464]",
    "stp q14, q15, [sp, #496]",
    "stp q16, q17, [sp, #528]",
    "stp q18, q19, [sp, #560]",
    "stp q20, q21, [sp, #592]",
    "stp q22, q23, [sp, #624]",
    "stp q24, q25, [sp, #656]",
    "stp q26, q27, [sp, #688]",
    "stp q28, q29, [sp, #720]",
    "stp q30, q31, [sp, #752]",
    // A frame record linking to the interrupted frame: [interrupted x29, interrupted pc]
    // (the slot's pc, offset 256), so an unwinder walks from the callback into the Wasm
    // frames instead of reading saved registers as a record. x0 is the slot.
    "sub sp, sp, #16",
    "ldr x1, [x0, #256]",
    "stp x29, x1, [sp]",
    "mov x29, sp",
    "bl {deliver}",
    "add sp, sp, #16",
    "ldp q0, q1, [sp, #272]",
    "ldp q2, q3, [sp, #304]",
    "ldp q4, q5, [sp, #336]",
    "ldp q6, q7, [sp, #368]",
    "ldp q8, q9, [sp, #400]",
    "ldp q10, q11, [sp, #432]",
    "ldp q12, q13, [sp, #464]",
    "ldp q14, q15, [sp, #496]",
    "ldp q16, q17, [sp, #528]",
    "ldp q18, q19, [sp, #560]",
    "ldp q20, q21, [sp, #592]",
    "ldp q22, q23, [sp, #624]",
    "ldp q24, q25, [sp, #656]",
    "ldp q26, q27, [sp, #688]",
    "ldp q28, q29, [sp, #720]",
    "ldp q30, q31, [sp, #752]",
    "ldr x1, [sp, #256]",
    "msr fpcr, x1",
    "ldp x1, x2, [sp, #240]",
    "msr nzcv, x1",
    "msr fpsr, x2",
    "ldp x1, x2, [sp, #0]",
    "ldp x3, x4, [sp, #16]",
    "ldp x5, x6, [sp, #32]",
    "ldp x7, x8, [sp, #48]",
    "ldp x9, x10, [sp, #64]",
    "ldp x11, x12, [sp, #80]",
    "ldp x13, x14, [sp, #96]",
    "ldp x15, x16, [sp, #112]",
    "ldp x17, x18, [sp, #128]",
    "ldp x19, x20, [sp, #144]",
    "ldp x21, x22, [sp, #160]",
    "ldp x23, x24, [sp, #176]",
    "ldp x25, x26, [sp, #192]",
    "ldp x27, x28, [sp, #208]",
    "ldp x29, x30, [sp, #224]",
    "add sp, sp, #784",
    // The handler takes this fault and resumes the interrupted code (see the module docs).
    ".globl wtrace_inject_stub_aarch64_resume",
    ".hidden wtrace_inject_stub_aarch64_resume",
    "wtrace_inject_stub_aarch64_resume:",
    "udf #0x5754",
    ".size wtrace_inject_stub_aarch64, . - wtrace_inject_stub_aarch64",
    ".popsection",
    deliver = sym deliver,
);
