//! The stack-push strategy on aarch64, over an abstract [`ThreadState`] (see
//! [`crate::x86_64_push`] for the idea). The handler writes a [`PushedState`] block below the
//! interrupted SP, points SP and X0 at it and PC at [`STUB_PUSHED`]. The stub saves the FP/SIMD
//! state, calls back, restores the vector state, NZCV and x1–x30 from the block, and ends with a
//! `udf` at [`RESUME_PUSHED`]: aarch64 cannot jump without a register to hold the address. The
//! handler answers that fault by restoring PC, SP and X0 from the block at SP, which it can do
//! from another thread too (the Mach handler), since the block is found through SP alone.

/// The NZCV bits of PSTATE (CPSR on macOS).
pub(crate) const NZCV: u64 = 0xf000_0000;

/// Bytes kept free below the interrupted SP (aarch64 has no red zone; this is a margin).
const MARGIN: u64 = 128;

/// The general-purpose state a thread-state API gives for aarch64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadState {
    pub(crate) x: [u64; 31],
    pub(crate) sp: u64,
    pub(crate) pc: u64,
    /// NZCV in bits 28–31 (the rest of PSTATE is left as it is).
    pub(crate) nzcv: u64,
}

/// The block below the interrupted SP (offsets used by the stub).
#[repr(C, align(16))]
pub(crate) struct PushedState {
    /// Offset 0.
    pub(crate) x: [u64; 31],
    /// Offset 248.
    pub(crate) sp: u64,
    /// Offset 256.
    pub(crate) pc: u64,
    /// Offset 264.
    pub(crate) nzcv: u64,
    pub(crate) signal: i32,
    pub(crate) si_code: i32,
    pub(crate) fault_address: u64,
}

const _: () = {
    assert!(std::mem::offset_of!(PushedState, sp) == 248);
    assert!(std::mem::offset_of!(PushedState, pc) == 256);
    assert!(std::mem::offset_of!(PushedState, nzcv) == 264);
};

/// Writes the block below `state`'s SP and redirects `state` to the pushed stub. Only SP, X0
/// and PC change in `state`.
///
/// # Safety
/// `state` must be the interrupted state of a thread that is not running, whose stack below
/// `state.sp` is mapped and writable for at least 512 bytes.
pub(crate) unsafe fn push_state(state: &mut ThreadState, (signal, si_code, fault_address): (i32, i32, u64)) {
    // The caller checked the room: this cannot wrap.
    let block = state.sp.wrapping_sub(MARGIN + size_of::<PushedState>() as u64) & !15;
    // SAFETY: below the stopped thread's SP (the caller's contract), 16-aligned.
    unsafe {
        (block as *mut PushedState).write(PushedState {
            x: state.x,
            sp: state.sp,
            pc: state.pc,
            nzcv: state.nzcv,
            signal,
            si_code,
            fault_address,
        });
    }
    state.sp = block;
    state.x[0] = block;
    state.pc = STUB_PUSHED as usize as u64;
}

/// Answers the pushed stub's final `udf`: restores PC, SP and X0 from the block at SP.
/// Returns `false` when `state` is not stopped there.
///
/// # Safety
/// `state` must be a stopped thread's state; when its PC is [`RESUME_PUSHED`], its SP points
/// at a block [`push_state`] wrote.
pub(crate) unsafe fn resume(state: &mut ThreadState) -> bool {
    if state.pc != RESUME_PUSHED as usize as u64 {
        return false;
    }
    // SAFETY: at the stub's resume point SP is the block (the stub restored it), live until
    // the thread leaves the stub.
    let block = unsafe { &*(state.sp as *const PushedState) };
    state.pc = block.pc;
    state.sp = block.sp;
    state.x[0] = block.x[0];
    true
}

/// The FP/SIMD registers the stub saved: FPSR at 0, FPCR at 8, q0–q31 from 16.
pub(crate) struct FpState {
    pub(crate) q: [u128; 32],
    pub(crate) fpsr: u32,
    pub(crate) fpcr: u32,
}

impl FpState {
    /// Reads the area at `fp`.
    pub(crate) fn read(fp: *const u8) -> FpState {
        // SAFETY: the stub passes its 16-aligned save area of 528 bytes, laid out as above.
        unsafe {
            let mut q = [0u128; 32];
            for (i, r) in q.iter_mut().enumerate() {
                *r = fp.add(16 + 16 * i).cast::<u128>().read_unaligned();
            }
            FpState {
                q,
                fpsr: fp.cast::<u64>().read_unaligned() as u32,
                fpcr: fp.add(8).cast::<u64>().read_unaligned() as u32,
            }
        }
    }
}

/// Called by the pushed stub in ordinary context with the block and the FP save area.
extern "C" fn deliver_pushed(block: *const PushedState, fp: *const u8) {
    // SAFETY: the stub passes the block the handler pushed, live until the stub returns.
    let block = unsafe { &*block };
    crate::platform::deliver_pushed_state(block, fp);
}

unsafe extern "C" {
    #[link_name = "wtrace_inject_stub_aarch64_pushed"]
    fn stub_pushed_symbol();
    #[link_name = "wtrace_inject_stub_aarch64_pushed_resume"]
    fn resume_pushed_symbol();
}

/// Address of the pushed stub.
pub(crate) const STUB_PUSHED: unsafe extern "C" fn() = stub_pushed_symbol;
/// Address of its final `udf`.
pub(crate) const RESUME_PUSHED: unsafe extern "C" fn() = resume_pushed_symbol;

/// The pushed stub with the object format's directives around one body. On entry SP = X0 =
/// the block; every other register is as interrupted and also in the block.
macro_rules! pushed_stub {
    ($($prologue:literal),* ; $resume_label:literal ; $($epilogue:literal),*) => {
        std::arch::global_asm!(
            $($prologue,)*
            "sub sp, sp, #528",
            "stp q0, q1, [sp, #16]",
            "stp q2, q3, [sp, #48]",
            "stp q4, q5, [sp, #80]",
            "stp q6, q7, [sp, #112]",
            "stp q8, q9, [sp, #144]",
            "stp q10, q11, [sp, #176]",
            "stp q12, q13, [sp, #208]",
            "stp q14, q15, [sp, #240]",
            "stp q16, q17, [sp, #272]",
            "stp q18, q19, [sp, #304]",
            "stp q20, q21, [sp, #336]",
            "stp q22, q23, [sp, #368]",
            "stp q24, q25, [sp, #400]",
            "stp q26, q27, [sp, #432]",
            "stp q28, q29, [sp, #464]",
            "stp q30, q31, [sp, #496]",
            "mrs x1, fpsr",
            "mrs x2, fpcr",
            "stp x1, x2, [sp, #0]",
            "mov x19, x0",
            "mov x1, sp",
            // A frame record linking to the interrupted frame: [interrupted x29 (unchanged in
            // the register), interrupted pc (the block's, offset 256)].
            "sub sp, sp, #16",
            "ldr x2, [x19, #256]",
            "stp x29, x2, [sp]",
            "mov x29, sp",
            "bl {deliver_pushed}",
            "add sp, sp, #16",
            "ldp q0, q1, [sp, #16]",
            "ldp q2, q3, [sp, #48]",
            "ldp q4, q5, [sp, #80]",
            "ldp q6, q7, [sp, #112]",
            "ldp q8, q9, [sp, #144]",
            "ldp q10, q11, [sp, #176]",
            "ldp q12, q13, [sp, #208]",
            "ldp q14, q15, [sp, #240]",
            "ldp q16, q17, [sp, #272]",
            "ldp q18, q19, [sp, #304]",
            "ldp q20, q21, [sp, #336]",
            "ldp q22, q23, [sp, #368]",
            "ldp q24, q25, [sp, #400]",
            "ldp q26, q27, [sp, #432]",
            "ldp q28, q29, [sp, #464]",
            "ldp q30, q31, [sp, #496]",
            "ldp x1, x2, [sp, #0]",
            "msr fpsr, x1",
            "msr fpcr, x2",
            "add sp, sp, #528",
            "mov x0, x19",
            "ldr x1, [x0, #264]",
            "msr nzcv, x1",
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
            $resume_label,
            "udf #0x5755",
            $($epilogue,)*
            deliver_pushed = sym deliver_pushed,
        );
    };
}

#[cfg(target_os = "linux")]
pushed_stub!(
    ".pushsection .text.wtrace_inject_stub_aarch64_pushed,\"ax\",@progbits",
    ".p2align 4",
    ".globl wtrace_inject_stub_aarch64_pushed",
    ".hidden wtrace_inject_stub_aarch64_pushed",
    ".globl wtrace_inject_stub_aarch64_pushed_resume",
    ".hidden wtrace_inject_stub_aarch64_pushed_resume",
    "wtrace_inject_stub_aarch64_pushed:";
    "wtrace_inject_stub_aarch64_pushed_resume:";
    ".popsection"
);

// Mach-O: C symbols carry a leading underscore.
#[cfg(target_os = "macos")]
pushed_stub!(
    ".section __TEXT,__text,regular,pure_instructions",
    ".p2align 4",
    ".globl _wtrace_inject_stub_aarch64_pushed",
    ".private_extern _wtrace_inject_stub_aarch64_pushed",
    ".globl _wtrace_inject_stub_aarch64_pushed_resume",
    ".private_extern _wtrace_inject_stub_aarch64_pushed_resume",
    "_wtrace_inject_stub_aarch64_pushed:";
    "_wtrace_inject_stub_aarch64_pushed_resume:";
    ".text"
);
