//! x86_64 Linux, register-only strategy: the signal handler stashes the interrupted state in
//! the thread's slot and changes only RIP, RSP and RDI in the signal context; the thread then
//! resumes in [`STUB`], which saves every register (GPRs, flags, the full `xsave` state),
//! calls [`deliver`] in ordinary context, restores every register and returns to the
//! faulting instruction with the original RSP. That instruction faults again and the handler,
//! seeing it delivered, hands it on.
//!
//! The stack-push strategy ([`crate::x86_64_push`], the macOS approach) runs from the same
//! signal hook when armed with [`crate::Strategy::StackPush`], so it is tested here for real.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use libc::{c_int, c_void, siginfo_t, ucontext_t};

use crate::slot::Capturing;
use crate::x86_64_push::{PushedState, RED_ZONE, ThreadState, XSAVE_SIZE, push_state};
use crate::{Capture, RawRegisters};

/// Per-thread state shared by the signal handler, the stub and [`deliver`]. The first fields
/// have fixed offsets that [`STUB`] uses.
#[repr(C)]
pub(crate) struct Slot {
    /// `rax rbx rcx rdx rsi rdi rbp rsp r8 … r15` at the fault (offset 0; `rdi` at 40).
    gprs: [u64; 16],
    /// RIP at the fault (offset 128).
    rip: u64,
    /// RFLAGS at the fault (offset 136).
    rflags: u64,
    /// Where the stub builds its return frame: `[flags, rip]` just below the red zone
    /// (offset 144).
    return_sp: u64,
    /// 64-byte-aligned `xsave` area (offset 152).
    xsave: *mut u8,
    /// xmm0–15, mxcsr, fcw, fsw at the fault, copied from the signal frame.
    vregs: [u128; 16],
    mxcsr: u32,
    fcw: u16,
    fsw: u16,
    /// Owns the `xsave` area.
    xsave_buffer: Vec<u8>,
    strategy: crate::Strategy,
    common: Capturing,
}

// The offsets the stub relies on.
const _: () = {
    assert!(std::mem::offset_of!(Slot, gprs) == 0);
    assert!(std::mem::offset_of!(Slot, rip) == 128);
    assert!(std::mem::offset_of!(Slot, rflags) == 136);
    assert!(std::mem::offset_of!(Slot, return_sp) == 144);
    assert!(std::mem::offset_of!(Slot, xsave) == 152);
};

thread_local! {
    /// This thread's slot while it is armed. A `const`-initialized `Cell` of a pointer: reading it
    /// is a plain TLS load, safe in a signal handler.
    static SLOT: Cell<*mut Slot> = const { Cell::new(std::ptr::null_mut()) };
}

/// Size of the `xsave` area for the state components the OS enabled (CPUID leaf 0xD).
fn xsave_size() -> usize {
    // CPUID leaf 0xD sub-leaf 0 exists on every CPU with XSAVE; EBX is the size for the
    // components the OS enabled.
    let leaf = std::arch::x86_64::__cpuid_count(0xD, 0);
    (leaf.ebx as usize).max(576)
}

/// Arms capture on this thread; see [`crate::arm`].
pub(crate) fn arm(
    ranges: Vec<(usize, usize)>,
    callback: Box<dyn FnMut(&Capture)>,
    strategy: crate::Strategy,
) -> (*mut Slot, u64) {
    let size = xsave_size();
    XSAVE_SIZE.store(size as u64 + 64, Ordering::Relaxed);
    let mut xsave_buffer = vec![0u8; size + 64];
    let align = xsave_buffer.as_ptr().align_offset(64);
    let xsave = xsave_buffer[align..].as_mut_ptr();
    crate::publish(
        &SLOT,
        Box::new(Slot {
            gprs: [0; 16],
            rip: 0,
            rflags: 0,
            return_sp: 0,
            xsave,
            vregs: [0; 16],
            mxcsr: 0,
            fcw: 0,
            fsw: 0,
            xsave_buffer,
            strategy,
            common: Capturing::new(ranges, callback),
        }),
    )
}

/// Disarms this thread if `slot` and `arming` are still its own, and frees the slot.
pub(crate) fn disarm(slot: *mut Slot, arming: u64) {
    drop(crate::unpublish(&SLOT, slot, arming));
}

/// The signal-handler half: see the module documentation. Returns `true` when the context was
/// rewritten (return to the kernel), `false` when the fault is not ours to take.
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
    // SAFETY: a non-null SLOT is a live slot owned by this thread (see `arm`/`disarm`).
    if unsafe { Capturing::busy(std::ptr::addr_of!((*slot).common)) } {
        return false;
    }
    // SAFETY: no capture is under way, so nothing else references the slot; the kernel passed
    // a valid ucontext, which nothing else touches while the handler runs.
    let (slot, uc) = unsafe { (&mut *slot, &mut *context.cast::<ucontext_t>()) };
    let gregs = &mut uc.uc_mcontext.gregs;
    let pc = gregs[libc::REG_RIP as usize] as u64;
    if !slot.common.admits(pc, gregs[libc::REG_RSP as usize] as u64, slot.rip) {
        return false;
    }
    let g = |r: c_int| gregs[r as usize] as u64;
    slot.gprs = [
        g(libc::REG_RAX),
        g(libc::REG_RBX),
        g(libc::REG_RCX),
        g(libc::REG_RDX),
        g(libc::REG_RSI),
        g(libc::REG_RDI),
        g(libc::REG_RBP),
        g(libc::REG_RSP),
        g(libc::REG_R8),
        g(libc::REG_R9),
        g(libc::REG_R10),
        g(libc::REG_R11),
        g(libc::REG_R12),
        g(libc::REG_R13),
        g(libc::REG_R14),
        g(libc::REG_R15),
    ];
    slot.rip = pc;
    slot.rflags = g(libc::REG_EFL);
    // SAFETY: `info` is the kernel's siginfo for this signal; `si_addr` reads the union field
    // every fault signal fills.
    let fault_address = unsafe { (*info).si_addr() } as u64;
    let fp = uc.uc_mcontext.fpregs;
    if !fp.is_null() {
        // SAFETY: the kernel points `fpregs` at the FXSAVE image in the signal frame.
        let fp = unsafe { &*fp };
        for (i, xmm) in fp._xmm.iter().enumerate() {
            let e = xmm.element;
            slot.vregs[i] =
                u128::from(e[0]) | u128::from(e[1]) << 32 | u128::from(e[2]) << 64 | u128::from(e[3]) << 96;
        }
        slot.mxcsr = fp.mxcsr;
        slot.fcw = fp.cwd;
        slot.fsw = fp.swd;
    }
    slot.common.begin(signum, si_code, fault_address);
    if slot.strategy == crate::Strategy::StackPush {
        let mut state = ThreadState { gprs: slot.gprs, rip: pc, rflags: slot.rflags };
        // SAFETY: the interrupted RSP is on this thread's stack, with room below the red zone
        // for the block (`admits` checked it).
        unsafe { push_state(&mut state, (signum, si_code, fault_address)) };
        gregs[libc::REG_RSP as usize] = state.gprs[7] as i64;
        gregs[libc::REG_RDI as usize] = state.gprs[5] as i64;
        gregs[libc::REG_RIP as usize] = state.rip as i64;
        return true;
    }
    // The stub's return frame sits just below the red zone; its own frame below that (room
    // checked above, so none of this wraps).
    let sp = slot.gprs[7];
    slot.return_sp = sp.wrapping_sub(RED_ZONE + 16);
    let stub_sp = slot.return_sp.wrapping_sub(64) & !15;
    gregs[libc::REG_RSP as usize] = stub_sp as i64;
    gregs[libc::REG_RIP as usize] = STUB as usize as i64;
    gregs[libc::REG_RDI as usize] = std::ptr::from_mut(slot) as i64;
    true
}

/// Fills the slot from a pushed block and its `xsave` area, then delivers: the Linux half of
/// [`crate::x86_64_push`]'s stub.
pub(crate) fn deliver_pushed_state(block: &PushedState, xsave: *const u8) {
    let slot = SLOT.with(Cell::get);
    if slot.is_null() {
        return;
    }
    let fp = crate::x86_64_push::FxState::read(xsave);
    // SAFETY: the slot is this thread's own, live while armed. The state says a capture is
    // under way, so a nested signal touches only `state`: the fields are written through the
    // pointer, never through a reference to the whole slot.
    unsafe {
        (*slot).gprs = block.gprs;
        (*slot).rip = block.rip;
        (*slot).rflags = block.rflags;
        (*slot).fcw = fp.fcw;
        (*slot).fsw = fp.fsw;
        (*slot).mxcsr = fp.mxcsr;
        (*slot).vregs = fp.xmm;
    }
    deliver(slot);
}

/// Called by the stub in ordinary context: hands the capture to the callback.
extern "C" fn deliver(slot: *mut Slot) {
    let build = move |common: &Capturing| {
        // SAFETY: the stub passes the slot the handler put in RDI, live while this thread is
        // armed; a nested signal only reads its state.
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
    // SAFETY: this thread's live slot, a capture under way (the stub runs only after the
    // handler began one).
    unsafe { Capturing::deliver(std::ptr::addr_of_mut!((*slot).common), build) };
}

unsafe extern "C" {
    /// The injected-call stub (see the `global_asm!` below). Never called from Rust.
    #[link_name = "wtrace_inject_stub_x86_64"]
    fn stub_symbol();
}

/// Address of the stub.
const STUB: unsafe extern "C" fn() = stub_symbol;

// The stub. On entry: RSP = 16-aligned, below the return frame at `slot.return_sp`, which is
// below the interrupted RSP's red zone; RDI = slot; every other register as interrupted.
std::arch::global_asm!(
    ".pushsection .text.wtrace_inject_stub_x86_64,\"ax\",@progbits",
    ".p2align 4",
    ".globl wtrace_inject_stub_x86_64",
    ".hidden wtrace_inject_stub_x86_64",
    ".type wtrace_inject_stub_x86_64,@function",
    "wtrace_inject_stub_x86_64:",
    "pushfq",
    "push rax",
    "push rbx",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rbp",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    // 15 pushes: RSP = 8 mod 16. RBX keeps the slot across the call.
    "mov rbx, rdi",
    "cld",
    "mov rcx, [rbx + 152]",
    "mov eax, -1",
    "mov edx, -1",
    "xsave64 [rcx]",
    "sub rsp, 8",
    "mov rdi, rbx",
    "call {deliver}",
    "add rsp, 8",
    "mov rcx, [rbx + 152]",
    "mov eax, -1",
    "mov edx, -1",
    "xrstor64 [rcx]",
    // Return frame at R = slot.return_sp: [R] = flags saved above, [R + 8] = the fault's RIP.
    "mov rax, [rbx + 144]",
    "mov rcx, [rsp + 112]",
    "mov [rax], rcx",
    "mov rcx, [rbx + 128]",
    "mov [rax + 8], rcx",
    "mov rdi, rbx",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rbp",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rbx",
    "pop rax",
    "mov rsp, [rdi + 144]",
    "mov rdi, [rdi + 40]",
    "popfq",
    // Pops RIP, then skips the red zone: RSP is the interrupted RSP again.
    "ret 128",
    ".size wtrace_inject_stub_x86_64, . - wtrace_inject_stub_x86_64",
    ".popsection",
    deliver = sym deliver,
);
