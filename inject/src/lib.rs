//! Call injection at signal-based traps: at a fault in registered code, the signal
//! handler rewrites the thread's context so that it resumes in a hand-written stub "as if the
//! faulting instruction had made a host call"; the stub saves every register, calls back into
//! Rust in ordinary (non-signal) context with a [`Capture`] of the interrupted state, restores
//! every register bit-exactly and resumes at the faulting instruction. That instruction faults
//! again and is handed back (`false`), so the runtime handles it as usual.
//!
//! This is the one crate with `unsafe` code; every block carries a `// SAFETY:` comment. It
//! depends on nothing that compiles C (no Wasmtime, no trace format), so it type-checks for
//! Apple targets without their SDK; the replayer wires [`handle_signal`] into Wasmtime's
//! per-store signal hook and turns a [`Capture`] into a trace snapshot.
//!
//! Implemented: the register-only strategy on x86_64, aarch64, riscv64 (with and without the
//! V extension) and s390x (with and without the vector facility) Linux, and the stack-push
//! strategy on x86_64 and aarch64 Linux, all tested there (the last three under qemu-user);
//! and the macOS Mach glue over the stack-push strategy, which compiles for both Apple targets
//! but has not run. Elsewhere [`arm`] reports [`Unsupported`] and [`handle_signal`] declines
//! every signal. `build.rs` sets the one cfg, `wtrace_inject`, on the targets with a stub.
#![allow(unsafe_code)]

#[cfg(all(target_arch = "aarch64", any(target_os = "linux", target_os = "macos")))]
mod aarch64_push;
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
mod linux_aarch64;
#[cfg(all(test, target_os = "linux", target_arch = "aarch64"))]
mod linux_aarch64_tests;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux_x86_64;
#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod linux_x86_64_tests;
#[cfg(all(wtrace_inject, not(target_os = "macos")))]
mod slot;
#[cfg(all(test, target_os = "linux"))]
mod test_harness;
#[cfg(all(test, any(target_os = "linux", windows)))]
mod test_support;
#[cfg(all(target_arch = "x86_64", any(target_os = "linux", target_os = "macos")))]
mod x86_64_push;

#[cfg(all(target_os = "linux", target_arch = "riscv64"))]
mod linux_riscv64;
#[cfg(all(test, target_os = "linux", target_arch = "riscv64"))]
mod linux_riscv64_tests;
#[cfg(all(target_os = "linux", target_arch = "s390x"))]
mod linux_s390x;
#[cfg(all(test, target_os = "linux", target_arch = "s390x"))]
mod linux_s390x_tests;

#[cfg(all(windows, target_arch = "x86_64"))]
mod windows_x86_64;
#[cfg(all(test, windows, target_arch = "x86_64"))]
mod windows_x86_64_tests;

#[cfg(target_os = "macos")]
mod macos;

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
use linux_aarch64 as platform;
#[cfg(all(target_os = "linux", target_arch = "riscv64"))]
use linux_riscv64 as platform;
#[cfg(all(target_os = "linux", target_arch = "s390x"))]
use linux_s390x as platform;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
use linux_x86_64 as platform;
#[cfg(target_os = "macos")]
use macos as platform;
#[cfg(all(windows, target_arch = "x86_64"))]
use windows_x86_64 as platform;

/// Whether this build can capture (an architecture and OS with a stub that has run).
const SUPPORTED: bool = cfg!(all(wtrace_inject, not(target_os = "macos")));

/// The vector state of a riscv64 hart with the V extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiscvVector {
    /// Bytes per vector register (`VLEN / 8`).
    pub vlenb: u64,
    /// `vtype`.
    pub vtype: u64,
    /// `vl`.
    pub vl: u64,
    /// `vstart`.
    pub vstart: u64,
    /// `vcsr` (`vxrm` and `vxsat`).
    pub vcsr: u64,
    /// v0–v31, `vlenb` bytes each, in memory order (element 0 first).
    pub v: Vec<u8>,
}

/// The vector registers of an s390x CPU with the vector facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S390xVector {
    /// v0–v31 as big-endian 128-bit values (f0–f15 are the high halves of v0–v15).
    pub v: [u128; 32],
}

/// The interrupted thread's registers, as the signal context or the stub held them.
#[derive(Debug, Clone, PartialEq, Eq)]
// One variant per architecture, moved once per trap: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum RawRegisters {
    /// x86_64.
    X86_64 {
        /// `rax rbx rcx rdx rsi rdi rbp rsp r8 … r15`.
        gprs: [u64; 16],
        /// Instruction pointer.
        rip: u64,
        /// Flags.
        rflags: u64,
        /// `xmm0`–`xmm15`.
        xmm: [u128; 16],
        /// SSE control/status.
        mxcsr: u32,
        /// x87 control word.
        fcw: u16,
        /// x87 status word.
        fsw: u16,
    },
    /// aarch64.
    Aarch64 {
        /// `x0`–`x30`.
        x: [u64; 31],
        /// Stack pointer.
        sp: u64,
        /// Program counter.
        pc: u64,
        /// The NZCV flags (bits 28–31).
        nzcv: u64,
        /// `q0`–`q31`.
        q: [u128; 32],
        /// Floating-point status.
        fpsr: u32,
        /// Floating-point control.
        fpcr: u32,
    },
    /// riscv64.
    Riscv64 {
        /// x1–x31 (x0 is always zero): `ra sp gp tp t0 …`.
        x: [u64; 31],
        /// Program counter.
        pc: u64,
        /// f0–f31.
        f: [u64; 32],
        /// Floating-point control and status.
        fcsr: u32,
        /// The vector state, when the hart has the V extension.
        vector: Option<RiscvVector>,
    },
    /// s390x.
    S390x {
        /// r0–r15.
        r: [u64; 16],
        /// PSW mask (the condition code is bits 18–19, counted from the most significant).
        psw_mask: u64,
        /// PSW address: the faulting instruction.
        psw_addr: u64,
        /// Access registers a0–a15.
        a: [u32; 16],
        /// Floating-point control.
        fpc: u32,
        /// f0–f15.
        f: [u64; 16],
        /// The vector registers, when the CPU has the vector facility.
        vector: Option<S390xVector>,
    },
}

/// What the callback receives: the signal and the interrupted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Signal number.
    pub signal: i32,
    /// `si_code`.
    pub si_code: i32,
    /// `si_addr`.
    pub fault_address: u64,
    /// The registers.
    pub registers: RawRegisters,
    /// The frame-pointer walk: `(pc, fp)` of the faulting frame, then `(return address, fp)`
    /// of each caller whose return address is in the armed code ranges, innermost first.
    pub frames: Vec<(u64, u64)>,
}

impl Capture {
    /// The faulting instruction's address.
    pub fn pc(&self) -> u64 {
        match self.registers {
            RawRegisters::X86_64 { rip, .. } => rip,
            RawRegisters::Aarch64 { pc, .. } | RawRegisters::Riscv64 { pc, .. } => pc,
            RawRegisters::S390x { psw_addr, .. } => psw_addr,
        }
    }

    /// The stack pointer at the fault.
    pub fn sp(&self) -> u64 {
        match self.registers {
            RawRegisters::X86_64 { gprs, .. } => gprs[7],
            RawRegisters::Aarch64 { sp, .. } => sp,
            RawRegisters::Riscv64 { x, .. } => x[1],
            RawRegisters::S390x { r, .. } => r[15],
        }
    }

    /// The frame pointer at the fault: on s390x, which keeps no frame-pointer register, the
    /// back chain the stack pointer points at (what Wasmtime's unwinder calls its FP).
    pub fn fp(&self) -> u64 {
        match self.registers {
            RawRegisters::X86_64 { gprs, .. } => gprs[6],
            RawRegisters::Aarch64 { x, .. } => x[29],
            RawRegisters::Riscv64 { x, .. } => x[7],
            RawRegisters::S390x { .. } => self.frames.first().map_or(0, |&(_, fp)| fp),
        }
    }
}

/// How the interrupted state reaches the stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The state stays in the thread's slot; the context's PC, SP and one argument register
    /// change (Linux).
    #[default]
    RegisterOnly,
    /// The state is pushed onto the guest stack below the red zone and the stub restores it
    /// from there: what a Mach exception handler on another thread must do (macOS). On Linux
    /// it runs from the same signal hook, for testing.
    StackPush,
}

/// Call injection is not available on this platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call injection is not implemented for {}-{}", std::env::consts::ARCH, std::env::consts::OS)]
pub struct Unsupported;

/// This thread's capture, armed until dropped. Not `Send`: it belongs to the thread that
/// armed it.
pub struct Armed {
    #[cfg(wtrace_inject)]
    slot: *mut platform::Slot,
    /// Which arming of the thread this is (see [`unpublish`]).
    #[cfg(wtrace_inject)]
    arming: u64,
}

impl Armed {
    /// Makes the next trap capturable again. On macOS a captured fault is handed to Wasmtime
    /// by giving the thread its previous exception ports back; this points it at wtrace's
    /// again. Elsewhere there is nothing to do.
    pub fn rearm(&self) {
        #[cfg(target_os = "macos")]
        platform::rearm(self.slot, self.arming);
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        #[cfg(wtrace_inject)]
        platform::disarm(self.slot, self.arming);
    }
}

/// Arms capture on the calling thread: faults at PCs within `ranges` (half-open
/// `(start, end)` address ranges of code) are captured once each and `callback` runs, in
/// ordinary context on the faulting thread, with the interrupted state. Arming again replaces
/// the previous arming of this thread.
pub fn arm(ranges: Vec<(usize, usize)>, callback: Box<dyn FnMut(&Capture)>) -> Result<Armed, Unsupported> {
    arm_with(ranges, callback, Strategy::RegisterOnly)
}

/// [`arm`] with a chosen [`Strategy`].
pub fn arm_with(
    ranges: Vec<(usize, usize)>,
    callback: Box<dyn FnMut(&Capture)>,
    strategy: Strategy,
) -> Result<Armed, Unsupported> {
    #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let (slot, arming) = platform::arm(ranges, callback, strategy);
        Ok(Armed { slot, arming })
    }
    #[cfg(any(all(target_os = "linux", any(target_arch = "riscv64", target_arch = "s390x")), windows))]
    {
        // The stack push exists for the Mach exception thread of macOS, which these
        // platforms never meet.
        if strategy != Strategy::RegisterOnly {
            return Err(Unsupported);
        }
        let (slot, arming) = platform::arm(ranges, callback);
        Ok(Armed { slot, arming })
    }
    #[cfg(target_os = "macos")]
    {
        // Mach exceptions arrive on another thread: the stack push is the only strategy.
        let _ = strategy;
        platform::arm(ranges, callback).map(|(slot, arming)| Armed { slot, arming })
    }
    #[cfg(not(wtrace_inject))]
    {
        let _ = (ranges, callback, strategy);
        Err(Unsupported)
    }
}

/// The signal-handler entry: call it first from a signal handler (Wasmtime's per-store hook).
/// Returns `true` when the signal was taken (return to the kernel at once), `false` when it
/// is not ours: a fault outside the armed thread's ranges, a fault during a capture, or the
/// second fault at a captured instruction.
///
/// # Safety
/// Must be called from a signal handler on the thread that received the signal, with the
/// `siginfo_t` and `ucontext_t` pointers the kernel passed.
#[cfg(unix)]
pub unsafe fn handle_signal(
    signum: libc::c_int,
    info: *const libc::siginfo_t,
    context: *mut libc::c_void,
) -> bool {
    #[cfg(wtrace_inject)]
    {
        // SAFETY: forwarded from this function's own contract.
        unsafe { platform::handle(signum, info, context) }
    }
    #[cfg(not(wtrace_inject))]
    {
        let _ = (signum, info, context);
        false
    }
}

/// The exception-handler entry on Windows: call it first from a vectored exception handler
/// (Wasmtime's per-store hook, `wasmtime::windows::StoreExt::set_signal_handler`). Returns
/// `true` when the exception was taken (continue execution at once), `false` when it is not
/// ours, as [`handle_signal`] does on Unix.
///
/// # Safety
/// Must be called from a vectored exception handler on the faulting thread, with the
/// `EXCEPTION_POINTERS` Windows passed.
#[cfg(windows)]
pub unsafe fn handle_exception(
    pointers: *mut windows_sys::Win32::System::Diagnostics::Debug::EXCEPTION_POINTERS,
) -> bool {
    #[cfg(wtrace_inject)]
    {
        // SAFETY: forwarded from this function's own contract.
        unsafe { platform::handle(pointers) }
    }
    #[cfg(not(wtrace_inject))]
    {
        let _ = pointers;
        false
    }
}

/// Whether capture works in this build.
pub fn supported() -> bool {
    SUPPORTED
}

/// Whether `pc` lies in one of the half-open code `ranges`.
#[cfg(wtrace_inject)]
fn in_ranges(ranges: &[(usize, usize)], pc: u64) -> bool {
    ranges.iter().any(|&(start, end)| (start as u64..end as u64).contains(&pc))
}

/// Walks the frame-pointer chain of a stopped or interrupted frame: `(pc, fp)` of the faulting
/// frame, then `(return address, caller's fp)` while return addresses are in `ranges`. A frame
/// record at `fp` holds the caller's fp at `fp` and the return address at `fp +
/// return_offset`: 8 on x86_64, aarch64 and riscv64 (Cranelift keeps frame pointers, so this
/// is the Wasm call stack), 112 on s390x (the back chain, with r14 in the save area). Reads
/// only inside `stack` and above `sp`, `align`-aligned.
#[cfg(wtrace_inject)]
fn walk_frames(
    pc: u64,
    fp: u64,
    sp: u64,
    ranges: &[(usize, usize)],
    stack: (u64, u64),
    align: u64,
    return_offset: u64,
) -> Vec<(u64, u64)> {
    const MAX_FRAMES: usize = 1024;
    let (low, high) = stack;
    let mut frames = vec![(pc, fp)];
    let mut fp = fp;
    while frames.len() < MAX_FRAMES {
        let Some(end) = fp.checked_add(return_offset + 8) else { break };
        if !fp.is_multiple_of(align) || fp < sp.max(low) || end > high {
            break;
        }
        // SAFETY: `fp` and `fp + return_offset` lie within this thread's stack (checked
        // above), which is mapped and readable for the life of the thread.
        let (next_fp, return_address) =
            unsafe { (*(fp as *const u64), *((fp + return_offset) as *const u64)) };
        if !in_ranges(ranges, return_address) || next_fp <= fp {
            break;
        }
        frames.push((return_address, next_fp));
        fp = next_fp;
    }
    frames
}

/// The frame walk a capture of `registers` starts: each architecture's frame pointer and
/// record layout (s390x, which keeps no frame-pointer register, through the back chain the
/// stack pointer points at, with the return address 112 bytes into each record, as Wasmtime's
/// own unwinder reads it).
#[cfg(wtrace_inject)]
fn walk(registers: &RawRegisters, ranges: &[(usize, usize)], stack: (u64, u64)) -> Vec<(u64, u64)> {
    match registers {
        RawRegisters::X86_64 { gprs, rip, .. } => walk_frames(*rip, gprs[6], gprs[7], ranges, stack, 8, 8),
        RawRegisters::Aarch64 { x, sp, pc, .. } => walk_frames(*pc, x[29], *sp, ranges, stack, 16, 8),
        RawRegisters::Riscv64 { x, pc, .. } => walk_frames(*pc, x[7], x[1], ranges, stack, 8, 8),
        RawRegisters::S390x { r, psw_addr, .. } => {
            let (sp, (low, high)) = (r[15], stack);
            if sp < low || sp.saturating_add(8) > high || !sp.is_multiple_of(8) {
                return vec![(*psw_addr, 0)];
            }
            // SAFETY: `sp` lies within this thread's stack (checked above), mapped and readable.
            let back_chain = unsafe { *(sp as *const u64) };
            walk_frames(*psw_addr, back_chain, sp, ranges, stack, 8, 112)
        }
    }
}

/// Stack the callback may use below the stub's own frame: an injected call is refused (the
/// fault goes to Wasmtime uncaptured) unless the thread's stack has this much room left.
#[cfg(wtrace_inject)]
const CALLBACK_STACK: u64 = 64 << 10;

/// The most an injected frame takes below the interrupted stack pointer before the callback
/// runs: the red zone, the return frame, the stub's register saves and, for the stack push,
/// the pushed block and the vector state (an `xsave` area of up to a few KiB).
#[cfg(wtrace_inject)]
const INJECTED_FRAME: u64 = 16 << 10;

/// Whether an injected frame ([`INJECTED_FRAME`]) fits below `sp` on the thread's `stack`
/// with [`CALLBACK_STACK`] more for the callback: not when it has not, when `sp` lies outside
/// the stack (another stack, such as a fiber, whose room is unknown), or when the arithmetic
/// would wrap. Signal-safe: no allocation, no panic.
#[cfg(wtrace_inject)]
fn has_room(sp: u64, stack: (u64, u64)) -> bool {
    let (low, high) = stack;
    let Some(lowest) = sp.checked_sub(INJECTED_FRAME).and_then(|below| below.checked_sub(CALLBACK_STACK))
    else {
        return false;
    };
    (low, high) == (0, 0) || (sp <= high && lowest >= low)
}

/// Whether a signal was raised by a fault of the interrupted instruction, not sent by a
/// process (`kill`, `tgkill`, `sigqueue`: `si_code` ≤ 0, `SI_USER` and its kin), which must
/// never be taken for a trap.
#[cfg(target_os = "linux")]
fn raised_by_fault(si_code: libc::c_int) -> bool {
    si_code > 0
}

/// A thread's published slot: a `const`-initialized thread-local `Cell` of a pointer, so the
/// signal handler reads it with a plain TLS load.
#[cfg(wtrace_inject)]
type SlotKey<T> = std::thread::LocalKey<std::cell::Cell<*mut T>>;

thread_local! {
    /// How many times this thread has been armed: an [`Armed`] disarms only the arming it
    /// made, even when a newer one's slot was allocated where its freed slot was.
    #[cfg(wtrace_inject)]
    static ARMINGS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Publishes a new slot as this thread's, freeing the one it replaces; returns its pointer and
/// the arming's number.
#[cfg(wtrace_inject)]
fn publish<T>(key: &'static SlotKey<T>, slot: Box<T>) -> (*mut T, u64) {
    let slot = Box::into_raw(slot);
    let old = key.with(|cell| cell.replace(slot));
    let arming = ARMINGS.with(|n| {
        n.set(n.get().wrapping_add(1));
        n.get()
    });
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw` in an earlier `publish` on this thread and was
        // unpublished by the `replace` above, so nothing else can reach it.
        drop(unsafe { Box::from_raw(old) });
    }
    (slot, arming)
}

/// Unpublishes `slot` if it and `arming` are still this thread's, and hands it back to be
/// dropped. A slot a newer arming replaced was freed then: nothing happens.
#[cfg(wtrace_inject)]
fn unpublish<T>(key: &'static SlotKey<T>, slot: *mut T, arming: u64) -> Option<Box<T>> {
    if key.with(std::cell::Cell::get) != slot || ARMINGS.with(std::cell::Cell::get) != arming {
        return None;
    }
    key.with(|cell| cell.set(std::ptr::null_mut()));
    // SAFETY: `slot` came from `Box::into_raw` in `publish` and was this thread's published slot
    // until the line above; only this thread reads it, and unpublishing runs in ordinary code,
    // never inside a capture.
    Some(unsafe { Box::from_raw(slot) })
}

/// The calling thread's stack bounds, `(0, 0)` when unknown (a frame walk then stops at once).
#[cfg(target_os = "macos")]
fn thread_stack() -> (u64, u64) {
    // SAFETY: both calls only read the calling thread's own attributes.
    let (top, size) = unsafe {
        let thread = libc::pthread_self();
        (libc::pthread_get_stackaddr_np(thread) as u64, libc::pthread_get_stacksize_np(thread) as u64)
    };
    (top.saturating_sub(size), top)
}

/// The calling thread's stack bounds.
#[cfg(windows)]
fn thread_stack() -> (u64, u64) {
    let (mut low, mut high) = (0usize, 0usize);
    // SAFETY: writes the calling thread's stack limits into the two locals.
    unsafe {
        windows_sys::Win32::System::Threading::GetCurrentThreadStackLimits(&raw mut low, &raw mut high);
    };
    (low as u64, high as u64)
}

/// The calling thread's stack bounds, `(0, 0)` when unknown (a frame walk then stops at once).
#[cfg(target_os = "linux")]
fn thread_stack() -> (u64, u64) {
    // SAFETY: `pthread_getattr_np` fills the zeroed attribute object for the calling thread,
    // `pthread_attr_getstack` reads it, and it is destroyed before returning.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &raw mut attr) != 0 {
            return (0, 0);
        }
        let mut base: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&raw const attr, &raw mut base, &raw mut size) == 0;
        libc::pthread_attr_destroy(&raw mut attr);
        if ok { (base as u64, base as u64 + size as u64) } else { (0, 0) }
    }
}
