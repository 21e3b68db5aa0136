//! What the stub round-trip tests of every Linux architecture share: one signal handler that
//! hands a fault to call injection first and, for the planned second fault, resumes the test
//! function at its test-only resume label; the lock that serializes the test functions (they
//! keep state in statics); and the pattern generator of [`crate::test_support`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use libc::{c_int, c_void, siginfo_t, ucontext_t};

use crate::handle_signal;
pub(crate) use crate::test_support::Patterns;

/// Where the test function faults, and where it resumes after the injected call.
static FAULT_SITE: AtomicUsize = AtomicUsize::new(0);
static RESUME: AtomicUsize = AtomicUsize::new(0);
/// One round trip at a time: the test functions share statics.
static SERIAL: Mutex<()> = Mutex::new(());

/// The program counter field of a signal context.
fn pc(uc: &mut ucontext_t) -> &mut u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let rip: &mut i64 = &mut uc.uc_mcontext.gregs[libc::REG_RIP as usize];
        // SAFETY: `i64` and `u64` have the same size and alignment, and every bit pattern is
        // valid for both.
        unsafe { &mut *std::ptr::from_mut(rip).cast::<u64>() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        &mut uc.uc_mcontext.pc
    }
    #[cfg(target_arch = "riscv64")]
    {
        &mut uc.uc_mcontext.__gregs[0]
    }
    #[cfg(target_arch = "s390x")]
    {
        &mut uc.uc_mcontext.psw.addr
    }
}

extern "C" fn on_fault(signum: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // SAFETY: called by the kernel as an SA_SIGINFO handler with its own arguments.
    if unsafe { handle_signal(signum, info, context) } {
        return;
    }
    // SAFETY: the kernel passed a valid ucontext for this signal.
    let pc = pc(unsafe { &mut *context.cast::<ucontext_t>() });
    // s390x reports an illegal instruction, a divide exception and a compare-and-trap with
    // the PSW after the instruction, two, four or six bytes on.
    let lengths: &[u64] =
        if cfg!(target_arch = "s390x") && signum != libc::SIGSEGV { &[2, 4, 6] } else { &[0] };
    let site = FAULT_SITE.load(Ordering::SeqCst) as u64;
    if lengths.iter().any(|length| pc.wrapping_sub(*length) == site) {
        *pc = RESUME.load(Ordering::SeqCst) as u64;
    } else {
        // A fault the test did not plan: die loudly rather than loop.
        // SAFETY: abort is async-signal-safe.
        unsafe { libc::abort() };
    }
}

fn install_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for signal in [libc::SIGILL, libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE] {
            // SAFETY: a zeroed sigaction is a valid starting point; the handler has the
            // SA_SIGINFO signature and stays valid for the life of the process.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fault as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&raw mut action.sa_mask);
                assert_eq!(libc::sigaction(signal, &raw const action, std::ptr::null_mut()), 0);
            }
        }
    });
}

/// Takes the round-trip lock and sets up the handler for a test function that faults at
/// `fault` and resumes at `resume`. Hold the guard until the test function's results are read.
pub(crate) fn prepare(
    fault: unsafe extern "C" fn(),
    resume: unsafe extern "C" fn(),
) -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    install_handler();
    FAULT_SITE.store(fault as *const () as usize, Ordering::SeqCst);
    RESUME.store(resume as *const () as usize, Ordering::SeqCst);
    guard
}

/// `si_code` of a fault at an unmapped address (the kernel's, for every memory fault here).
const SEGV_MAPERR: c_int = 1;

/// Offers the armed handler a signal whose context claims `pc` and `sp`, as the kernel would
/// pass it, without running anything: whether it took the signal (rewrote the context).
fn offer(si_code: c_int, pc_value: u64, sp_value: u64) -> bool {
    // SAFETY: zeroed siginfo and ucontext are valid plain data; the handler only reads and
    // writes their fields (a null `fpregs` / an empty reserved area means no vector state).
    unsafe {
        let mut info: siginfo_t = std::mem::zeroed();
        info.si_signo = libc::SIGSEGV;
        info.si_code = si_code;
        let mut uc: ucontext_t = std::mem::zeroed();
        *pc(&mut uc) = pc_value;
        #[cfg(target_arch = "x86_64")]
        {
            uc.uc_mcontext.gregs[libc::REG_RSP as usize] = sp_value as i64;
        }
        #[cfg(target_arch = "aarch64")]
        {
            uc.uc_mcontext.sp = sp_value;
        }
        #[cfg(target_arch = "riscv64")]
        {
            uc.uc_mcontext.__gregs[2] = sp_value;
        }
        #[cfg(target_arch = "s390x")]
        {
            uc.uc_mcontext.gregs[15] = sp_value;
        }
        handle_signal(libc::SIGSEGV, &raw const info, (&raw mut uc).cast())
    }
}

/// A fake code range and a PC inside it, and a stack pointer with plenty of room below.
fn fake_site() -> (Vec<(usize, usize)>, u64, u64) {
    let here = 0u8;
    (vec![(0x10_000, 0x20_000)], 0x18_000, (&raw const here as u64) & !15)
}

#[test]
fn signals_sent_by_a_process_are_declined() {
    let (ranges, pc, sp) = fake_site();
    let _armed = crate::arm(ranges, Box::new(|_| {})).unwrap();
    // kill(2) sends SI_USER (0), tgkill(2) SI_TKILL (-6), sigqueue(3) SI_QUEUE (-1).
    for si_code in [libc::SI_USER, libc::SI_TKILL, libc::SI_QUEUE] {
        assert!(!offer(si_code, pc, sp), "si_code {si_code} must not be taken for a fault");
    }
    assert!(offer(SEGV_MAPERR, pc, sp), "a fault is taken");
}

#[test]
fn a_stack_without_room_for_the_injected_call_is_declined() {
    let (ranges, pc, _) = fake_site();
    let _armed = crate::arm(ranges, Box::new(|_| {})).unwrap();
    let (low, high) = crate::thread_stack();
    assert!(low < high, "the test thread's stack is known");
    assert!(!offer(SEGV_MAPERR, pc, low + 4096), "4 KiB above the guard is not enough");
    assert!(!offer(SEGV_MAPERR, pc, 100), "an SP near zero must not wrap");
    assert!(!offer(SEGV_MAPERR, pc, high + (1 << 20)), "an SP on another stack is declined");
}

#[test]
fn a_stale_arming_cannot_disarm_a_newer_one() {
    let (ranges, pc, sp) = fake_site();
    let older = crate::arm(ranges.clone(), Box::new(|_| {})).unwrap();
    let newer = crate::arm(ranges, Box::new(|_| {})).unwrap();
    drop(older);
    assert!(offer(SEGV_MAPERR, pc, sp), "the newer arming is still in place");
    drop(newer);
    assert!(!offer(SEGV_MAPERR, pc, sp), "dropping it disarms");
}
