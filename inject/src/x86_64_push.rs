//! The stack-push strategy on x86_64, over an abstract [`ThreadState`]: the macOS approach,
//! where a Mach exception handler on another thread cannot reach the faulting thread's slot.
//! The handler pushes the interrupted state onto the guest stack below the red zone as a
//! [`PushedState`] block, points RSP at it and RIP at [`STUB_PUSHED`], which saves the FP/SIMD
//! state, calls back, and restores every register from the block. Shared by the Linux signal
//! hook (where it is tested for real) and the macOS Mach glue.

/// Bytes below the interrupted RSP that x86_64 code may use without moving RSP.
pub(crate) const RED_ZONE: u64 = 128;

/// The general-purpose state a thread-state API (`thread_get_state` on macOS, the signal
/// context on Linux) gives for x86_64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadState {
    /// `rax rbx rcx rdx rsi rdi rbp rsp r8 … r15`.
    pub(crate) gprs: [u64; 16],
    pub(crate) rip: u64,
    pub(crate) rflags: u64,
}

/// The block the stack-push strategy writes below the red zone (offsets used by the stub).
#[repr(C, align(64))]
pub(crate) struct PushedState {
    /// Offset 0; `rdi` at 40.
    pub(crate) gprs: [u64; 16],
    /// Offset 128.
    pub(crate) rip: u64,
    /// Offset 136.
    pub(crate) rflags: u64,
    /// Offset 144: the return frame `[rflags, rip]`, just below the red zone.
    return_sp: u64,
    pub(crate) signal: i32,
    pub(crate) si_code: i32,
    pub(crate) fault_address: u64,
}

const _: () = {
    assert!(std::mem::offset_of!(PushedState, rip) == 128);
    assert!(std::mem::offset_of!(PushedState, return_sp) == 144);
};

/// Bytes the pushed stub reserves for `xsave` (the area's size plus alignment slack).
pub(crate) static XSAVE_SIZE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(4096);

/// The stack-push strategy on an abstract thread state: writes the return frame and a
/// [`PushedState`] block below the red zone of `state`'s stack and redirects `state` to the
/// pushed stub with RDI pointing at the block. Only RSP, RDI and RIP change in `state`.
///
/// # Safety
/// `state` must be the interrupted state of a thread that is not running, whose stack below
/// `state.gprs[7] - 128` is mapped and writable for at least 272 bytes (the block, its
/// alignment, and the return frame).
pub(crate) unsafe fn push_state(state: &mut ThreadState, (signal, si_code, fault_address): (i32, i32, u64)) {
    // The caller checked the room: none of this wraps.
    let sp = state.gprs[7];
    let return_sp = sp.wrapping_sub(RED_ZONE + 16);
    let block = return_sp.wrapping_sub(size_of::<PushedState>() as u64) & !63;
    // SAFETY: both writes are below the red zone of a stopped thread's stack (the caller's
    // contract); the return frame is 8-aligned and the block 64-aligned.
    unsafe {
        let frame = return_sp as *mut u64;
        frame.write(state.rflags);
        frame.add(1).write(state.rip);
        (block as *mut PushedState).write(PushedState {
            gprs: state.gprs,
            rip: state.rip,
            rflags: state.rflags,
            return_sp,
            signal,
            si_code,
            fault_address,
        });
    }
    state.gprs[7] = block;
    state.gprs[5] = block;
    state.rip = STUB_PUSHED as usize as u64;
}

/// The legacy (FXSAVE) region of an `xsave` area: FCW at 0, FSW at 2, MXCSR at 24, xmm0-15
/// from 160.
pub(crate) struct FxState {
    pub(crate) fcw: u16,
    pub(crate) fsw: u16,
    pub(crate) mxcsr: u32,
    pub(crate) xmm: [u128; 16],
}

impl FxState {
    /// Reads the legacy region of the `xsave` area at `xsave`.
    pub(crate) fn read(xsave: *const u8) -> FxState {
        // SAFETY: the pushed stub passes the 64-aligned area it just filled with XSAVE, at
        // least 576 bytes long; the offsets are the architecture's FXSAVE layout.
        unsafe {
            let mut xmm = [0u128; 16];
            for (i, x) in xmm.iter_mut().enumerate() {
                *x = xsave.add(160 + 16 * i).cast::<u128>().read_unaligned();
            }
            FxState {
                fcw: xsave.cast::<u16>().read_unaligned(),
                fsw: xsave.add(2).cast::<u16>().read_unaligned(),
                mxcsr: xsave.add(24).cast::<u32>().read_unaligned(),
                xmm,
            }
        }
    }
}

/// Called by the pushed stub in ordinary context with the block and its `xsave` area.
extern "C" fn deliver_pushed(block: *const PushedState, xsave: *const u8) {
    // SAFETY: the stub passes the block the handler pushed, live until the stub returns.
    let block = unsafe { &*block };
    crate::platform::deliver_pushed_state(block, xsave);
}

unsafe extern "C" {
    /// The stack-push stub (see the `global_asm!` below). Never called from Rust.
    #[link_name = "wtrace_inject_stub_x86_64_pushed"]
    fn stub_pushed_symbol();
}

/// Address of the stack-push stub.
pub(crate) const STUB_PUSHED: unsafe extern "C" fn() = stub_pushed_symbol;

/// The stack-push stub, with the object format's directives around one body. On entry: RSP =
/// RDI = the 64-aligned block, which holds every interrupted GPR; the return frame
/// `[rflags, rip]` is at `block.return_sp`. It saves the FP/SIMD state itself, so it may use
/// any register until it reloads them all from the block.
macro_rules! pushed_stub {
    ($($prologue:literal),* ; $($epilogue:literal),*) => {
        std::arch::global_asm!(
            $($prologue,)*
            "cld",
            "mov rbx, rdi",
            "sub rsp, [rip + {xsave_size}]",
            "and rsp, -64",
            "mov r12, rsp",
            // XRSTOR needs bytes 8..63 of the XSAVE header zero; XSAVE writes only the first 8.
            "xor eax, eax",
            "mov [r12 + 512], rax",
            "mov [r12 + 520], rax",
            "mov [r12 + 528], rax",
            "mov [r12 + 536], rax",
            "mov [r12 + 544], rax",
            "mov [r12 + 552], rax",
            "mov [r12 + 560], rax",
            "mov [r12 + 568], rax",
            "mov eax, -1",
            "mov edx, -1",
            "xsave64 [r12]",
            "mov rdi, rbx",
            "mov rsi, r12",
            "call {deliver_pushed}",
            "mov eax, -1",
            "mov edx, -1",
            "xrstor64 [r12]",
            "mov rdi, rbx",
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
            "mov rsp, [rdi + 144]",
            "mov rdi, [rdi + 40]",
            "popfq",
            "ret 128",
            $($epilogue,)*
            xsave_size = sym XSAVE_SIZE,
            deliver_pushed = sym deliver_pushed,
        );
    };
}

#[cfg(target_os = "linux")]
pushed_stub!(
    ".pushsection .text.wtrace_inject_stub_x86_64_pushed,\"ax\",@progbits",
    ".p2align 4",
    ".globl wtrace_inject_stub_x86_64_pushed",
    ".hidden wtrace_inject_stub_x86_64_pushed",
    ".type wtrace_inject_stub_x86_64_pushed,@function",
    "wtrace_inject_stub_x86_64_pushed:";
    ".size wtrace_inject_stub_x86_64_pushed, . - wtrace_inject_stub_x86_64_pushed",
    ".popsection"
);

// Mach-O: C symbols carry a leading underscore.
#[cfg(target_os = "macos")]
pushed_stub!(
    ".section __TEXT,__text,regular,pure_instructions",
    ".p2align 4",
    ".globl _wtrace_inject_stub_x86_64_pushed",
    ".private_extern _wtrace_inject_stub_x86_64_pushed",
    "_wtrace_inject_stub_x86_64_pushed:";
    ".text"
);
