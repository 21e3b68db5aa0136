//! Call injection at signal-based traps (DESIGN §6): at a fault in registered code, the signal
//! handler rewrites the thread's context so that it resumes in a hand-written stub "as if the
//! faulting instruction had made a host call"; the stub saves every register, calls back into
//! Rust in ordinary (non-signal) context with a [`Capture`] of the interrupted state, restores
//! every register bit-exactly and resumes at the faulting instruction. That instruction faults
//! again and is handed back (`false`), so the runtime handles it as usual.
//!
//! This is the one crate with `unsafe` code; every block carries a `// SAFETY:` comment. It has
//! no Wasmtime dependency: the recorder wires [`handle_signal`] into Wasmtime's per-store
//! signal hook.
//!
//! Implemented: the register-only strategy on x86_64 Linux. Elsewhere [`arm`] reports
//! [`Unsupported`] and [`handle_signal`] declines every signal.
#![allow(unsafe_code)]

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux_x86_64;
#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod linux_x86_64_tests;

use wtrace_traces::{Arch, NativeSnapshot, Signal};

/// The interrupted thread's registers, as the signal context held them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        }
    }

    /// The stack pointer at the fault.
    pub fn sp(&self) -> u64 {
        match self.registers {
            RawRegisters::X86_64 { gprs, .. } => gprs[7],
        }
    }

    /// The frame pointer at the fault.
    pub fn fp(&self) -> u64 {
        match self.registers {
            RawRegisters::X86_64 { gprs, .. } => gprs[6],
        }
    }

    /// The capture as a trace snapshot; the Wasm PC and the stack walk are left for the caller,
    /// which knows the module.
    pub fn to_snapshot(&self) -> NativeSnapshot {
        let signal = match self.signal {
            libc::SIGSEGV => Signal::Segv,
            libc::SIGBUS => Signal::Bus,
            libc::SIGILL => Signal::Ill,
            libc::SIGFPE => Signal::Fpe,
            libc::SIGTRAP => Signal::Trap,
            other => Signal::Other(other),
        };
        let memory_fault = matches!(signal, Signal::Segv | Signal::Bus);
        match self.registers {
            RawRegisters::X86_64 { gprs, rip, rflags, xmm, mxcsr, fcw, fsw } => NativeSnapshot {
                arch: Arch::X86_64,
                signal,
                si_code: self.si_code,
                fault_address: memory_fault.then_some(self.fault_address),
                pc: rip,
                sp: gprs[7],
                fp: gprs[6],
                flags: rflags,
                gprs: gprs.to_vec(),
                vregs: xmm.to_vec(),
                extra: vec![u64::from(mxcsr), u64::from(fcw), u64::from(fsw)],
                wasm_pc: None,
                stack: Vec::new(),
            },
        }
    }
}

/// Call injection is not available on this platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call injection is not implemented for {}-{}", std::env::consts::ARCH, std::env::consts::OS)]
pub struct Unsupported;

/// This thread's capture, armed until dropped. Not `Send`: it belongs to the thread that
/// armed it.
pub struct Armed {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    slot: *mut linux_x86_64::Slot,
}

impl Drop for Armed {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        linux_x86_64::disarm(self.slot);
    }
}

/// Arms capture on the calling thread: faults at PCs within `ranges` (half-open
/// `(start, end)` address ranges of code) are captured once each and `callback` runs, in
/// ordinary context on the faulting thread, with the interrupted state. Arming again replaces
/// the previous arming of this thread.
pub fn arm(ranges: Vec<(usize, usize)>, callback: Box<dyn FnMut(&Capture)>) -> Result<Armed, Unsupported> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        Ok(Armed { slot: linux_x86_64::arm(ranges, callback) })
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (ranges, callback);
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
pub unsafe fn handle_signal(
    signum: libc::c_int,
    info: *const libc::siginfo_t,
    context: *mut libc::c_void,
) -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: forwarded from this function's own contract.
        unsafe { linux_x86_64::handle(signum, info, context) }
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (signum, info, context);
        false
    }
}
