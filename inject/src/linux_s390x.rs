//! s390x Linux, register-only strategy. The signal handler stashes the PSW, r2 and r15 in
//! the thread's slot and points the context at a stub; the stub saves every register — r0–r15,
//! the access registers a0–a15, the FPC and f0–f15, or in its vector variant v0–v31 (whose
//! left halves are f0–f15) — calls [`deliver`] in ordinary context with a pointer to what it
//! saved, and restores it all. The vector variant runs only when `AT_HWCAP` says the CPU has
//! the vector facility, and the capture says whether vector state was present.
//!
//! Two things differ from the other architectures. An illegal instruction, a divide exception
//! and a compare-and-trap report the PSW *after* the instruction, whose length the PSW does
//! not give; the handler recognises the trapping instructions Cranelift emits (the two-byte
//! `0x0000`, the divides, the compare-and-traps) in the bytes before the PSW and declines any
//! other `SIGILL` or `SIGFPE` ([`faulting_instruction`]). And the stub ends with the two-byte
//! illegal instruction at a known address: the handler
//! answers that fault by restoring the PSW (with its condition code), r2 and r15, the address
//! pointing back at the faulting instruction, which faults again and is declined, so Wasmtime
//! handles it as usual.

use std::cell::Cell;

use libc::{c_int, c_void, siginfo_t, ucontext_t};

use crate::slot::Capturing;
use crate::{Capture, RawRegisters, S390xVector};

/// `HWCAP_S390_VXRS`: the vector facility, with the kernel saving its registers.
const HWCAP_VECTOR: u64 = 1 << 11;

/// The trap instruction's length: Cranelift's traps are the two-byte `0x0000`.
const TRAP_LEN: u64 = 2;

/// Where the stub keeps what it saved, from its stack pointer, past the 160-byte register save
/// area the ABI reserves for callees: r0–r15, a0–a15, the FPC, f0–f15 and v0–v31.
mod area {
    pub(super) const R: usize = 160;
    pub(super) const A: usize = 288;
    pub(super) const FPC: usize = 352;
    pub(super) const F: usize = 368;
    pub(super) const V: usize = 496;
}
/// The size of the stub's frame (the `1008` in its text).
const FRAME: usize = 1008;
const _: () = assert!(area::V + 32 * 16 == FRAME);

/// Per-thread state shared by the signal handler, the stub and [`deliver`]. The stub reads
/// `r15` (offset 24) for its back chain.
#[repr(C)]
pub(crate) struct Slot {
    /// The faulting instruction.
    pc: u64,
    psw_mask: u64,
    r2: u64,
    r15: u64,
    /// Whether the CPU has the vector facility: which stub variant runs.
    vector: bool,
    common: Capturing,
}

const _: () = assert!(std::mem::offset_of!(Slot, r15) == 24);

thread_local! {
    /// This thread's slot while armed (see the x86_64 module for why a `const` `Cell`).
    static SLOT: Cell<*mut Slot> = const { Cell::new(std::ptr::null_mut()) };
}

/// Whether this CPU has the vector facility, as the kernel reports it.
pub(crate) fn has_vector() -> bool {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
    hwcap & HWCAP_VECTOR != 0
}

/// Arms capture on this thread; see [`crate::arm`].
pub(crate) fn arm(ranges: Vec<(usize, usize)>, callback: Box<dyn FnMut(&Capture)>) -> (*mut Slot, u64) {
    crate::publish(
        &SLOT,
        Box::new(Slot {
            pc: 0,
            psw_mask: 0,
            r2: 0,
            r15: 0,
            vector: has_vector(),
            common: Capturing::new(ranges, callback),
        }),
    )
}

/// Disarms this thread if `slot` and `arming` are still its own, and frees the slot.
pub(crate) fn disarm(slot: *mut Slot, arming: u64) {
    drop(crate::unpublish(&SLOT, slot, arming));
}

/// The RRE and RRF opcodes of the four-byte instructions Cranelift emits that trap: the
/// divides (a fixed-point divide exception) and the register compare-and-traps.
const TRAPPING_RRE: [u8; 8] = [0x0d, 0x1d, 0x87, 0x97, 0x60, 0x61, 0x72, 0x73];
/// The last opcode byte of the six-byte immediate compare-and-traps (RIE, first byte `0xec`).
const TRAPPING_RIE: [u8; 4] = [0x70, 0x71, 0x72, 0x73];
/// `DXC` 0xff in the FPC: the data exception of a compare-and-trap.
const DXC_COMPARE_AND_TRAP: u32 = 0xff << 8;

/// The address of the instruction that raised `signum` with the PSW at `psw_addr`, when it
/// is one this module can resume: a memory fault's own address; for the exceptions that
/// report the PSW after the instruction (`SIGILL`, `SIGFPE`), the start of the trapping
/// instruction Cranelift emitted there — the two-byte trap, a divide, or a compare-and-trap —
/// which the bytes before the PSW tell apart; `None` otherwise. Reads code only inside
/// `ranges` or the stubs.
fn faulting_instruction(signum: c_int, psw_addr: u64, ranges: &[(usize, usize)]) -> Option<u64> {
    if matches!(signum, libc::SIGSEGV | libc::SIGBUS) {
        return Some(psw_addr);
    }
    if !matches!(signum, libc::SIGILL | libc::SIGFPE) {
        return None;
    }
    let ours = |start: u64| start == RESUME as usize as u64 || start == RESUME_VECTOR as usize as u64;
    // The bytes `[start, psw_addr)`, when they lie in armed code or are a stub's final trap.
    let bytes = |len: u64| -> Option<(u64, [u8; 6])> {
        let start = psw_addr.checked_sub(len)?;
        let armed = crate::in_ranges(ranges, start) && crate::in_ranges(ranges, psw_addr - 1);
        if !(armed || (ours(start) && len == TRAP_LEN)) {
            return None;
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().take(len as usize).enumerate() {
            // SAFETY: the byte lies in armed code or in the stub, both mapped and readable.
            *byte = unsafe { ((start + i as u64) as *const u8).read() };
        }
        Some((start, out))
    };
    if signum == libc::SIGILL
        && let Some((start, [0, 0, ..])) = bytes(TRAP_LEN)
    {
        return Some(start);
    }
    if let Some((start, [0xb9, op, ..])) = bytes(4)
        && TRAPPING_RRE.contains(&op)
    {
        return Some(start);
    }
    match bytes(6) {
        Some((start, [0xec, _, _, _, _, op])) if TRAPPING_RIE.contains(&op) => Some(start),
        _ => None,
    }
}

/// Whether the signal was raised by the instruction before the PSW rather than sent by a
/// process. The kernel reports a compare-and-trap as `SIGFPE` with `si_code` 0, the same code
/// `kill` gives; the data-exception code the hardware leaves in the FPC tells them apart.
pub(crate) fn raised_by_fault(signum: c_int, si_code: c_int, fpc: u32) -> bool {
    crate::raised_by_fault(si_code)
        || (signum == libc::SIGFPE && si_code == 0 && fpc & 0xff00 == DXC_COMPARE_AND_TRAP)
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
    // SAFETY: `info` is the kernel's siginfo for this signal and `context` its ucontext; both
    // fields read are plain data.
    let (si_code, fpc) = unsafe { ((*info).si_code, (*context.cast::<ucontext_t>()).uc_mcontext.fpregs.fpc) };
    if !raised_by_fault(signum, si_code, fpc) {
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
    let Some(pc) = faulting_instruction(signum, mc.psw.addr, &slot.common.ranges) else { return false };
    if (pc == RESUME as usize as u64 || pc == RESUME_VECTOR as usize as u64) && slot.common.delivered() {
        // The stub restored everything else; put back what the handler changed, with the
        // PSW at the faulting instruction so that it runs again.
        mc.psw.addr = slot.pc;
        mc.psw.mask = slot.psw_mask;
        mc.gregs[2] = slot.r2;
        mc.gregs[15] = slot.r15;
        return true;
    }
    let sp = mc.gregs[15];
    if !slot.common.admits(pc, sp, slot.pc) {
        return false;
    }
    slot.pc = pc;
    slot.psw_mask = mc.psw.mask;
    slot.r2 = mc.gregs[2];
    slot.r15 = sp;
    // SAFETY: `info` is the kernel's siginfo for this signal.
    slot.common.begin(signum, si_code, unsafe { (*info).si_addr() } as u64);
    // Room checked above: this cannot wrap. The ABI has no red zone; 256 bytes spare.
    mc.gregs[15] = sp.wrapping_sub(256) & !7;
    mc.psw.addr = if slot.vector { STUB_VECTOR as usize as u64 } else { STUB as usize as u64 };
    mc.gregs[2] = std::ptr::from_mut(slot) as u64;
    true
}

/// Reads what the stub saved at `offset` in its area.
///
/// # Safety
/// `area` is the stub's save area, live for the call to [`deliver`], and `offset` within it.
unsafe fn saved<T: Copy>(area: *const u8, offset: usize) -> T {
    // SAFETY: per the contract.
    unsafe { area.add(offset).cast::<T>().read_unaligned() }
}

/// Called by the stub in ordinary context, with the slot and the stub's save area.
extern "C" fn deliver(slot: *mut Slot, area: *const u8) {
    let build = move |common: &Capturing| {
        // SAFETY: the stub passes the slot the handler put in r2, live while armed; a nested
        // signal only reads its state.
        let (pc, psw_mask, r2, r15, vector) =
            unsafe { ((*slot).pc, (*slot).psw_mask, (*slot).r2, (*slot).r15, (*slot).vector) };
        // SAFETY: the stub saved r0–r15, a0–a15, the FPC and, by its variant, f0–f15 or
        // v0–v31 at the offsets of `area`.
        let (mut r, a, fpc, f, vector) = unsafe {
            let r: [u64; 16] = saved(area, area::R);
            let a: [u32; 16] = saved(area, area::A);
            let fpc: u32 = saved(area, area::FPC);
            if vector {
                let bytes: [[u8; 16]; 32] = saved(area, area::V);
                let v = bytes.map(u128::from_be_bytes);
                let f = std::array::from_fn(|i| (v[i] >> 64) as u64);
                (r, a, fpc, f, Some(S390xVector { v }))
            } else {
                (r, a, fpc, saved(area, area::F), None)
            }
        };
        r[2] = r2;
        r[15] = r15;
        common.capture(RawRegisters::S390x { r, psw_mask, psw_addr: pc, a, fpc, f, vector })
    };
    // SAFETY: this thread's live slot, a capture under way (the stub runs only after the
    // handler began one).
    unsafe { Capturing::deliver(std::ptr::addr_of_mut!((*slot).common), build) };
}

unsafe extern "C" {
    #[link_name = "wtrace_inject_stub_s390x"]
    fn stub_symbol();
    #[link_name = "wtrace_inject_stub_s390x_resume"]
    fn resume_symbol();
    #[link_name = "wtrace_inject_stub_s390xv"]
    fn stub_vector_symbol();
    #[link_name = "wtrace_inject_stub_s390xv_resume"]
    fn resume_vector_symbol();
}

const STUB: unsafe extern "C" fn() = stub_symbol;
const RESUME: unsafe extern "C" fn() = resume_symbol;
const STUB_VECTOR: unsafe extern "C" fn() = stub_vector_symbol;
const RESUME_VECTOR: unsafe extern "C" fn() = resume_vector_symbol;

// The two stubs, one text with the floating-point part chosen. On entry: r15 8-aligned, 256
// bytes below the interrupted r15; r2 = slot; every other register as interrupted. `lay`
// moves the stack pointer without touching the condition code. The word at the new stack
// pointer is a back chain to the interrupted frame, so a back-chain unwinder in the callback
// reaches the Wasm frames.
macro_rules! stub {
    ($name:literal, [$($save_fp:literal),*], [$($restore_fp:literal),*]) => {
        std::arch::global_asm!(
            concat!(".pushsection .text.", $name, ",\"ax\",@progbits"),
            ".p2align 4",
            concat!(".globl ", $name),
            concat!(".hidden ", $name),
            concat!(".type ", $name, ",@function"),
            concat!($name, ":"),
            ".machine push",
            ".machine z13",
            "lay %r15, -1008(%r15)",
            "stmg %r0, %r15, 160(%r15)",
            "stam %a0, %a15, 288(%r15)",
            "stfpc 352(%r15)",
            $($save_fp,)*
            "lg %r1, 24(%r2)",
            "stg %r1, 0(%r15)",
            "la %r3, 0(%r15)",
            "brasl %r14, {deliver}",
            $($restore_fp,)*
            "lfpc 352(%r15)",
            "lam %a0, %a15, 288(%r15)",
            "lmg %r0, %r15, 160(%r15)",
            // The handler takes this fault and resumes the interrupted code.
            concat!(".globl ", $name, "_resume"),
            concat!(".hidden ", $name, "_resume"),
            concat!($name, "_resume:"),
            ".short 0",
            ".machine pop",
            concat!(".size ", $name, ", . - ", $name),
            ".popsection",
            deliver = sym deliver,
        );
    };
}

stub!(
    "wtrace_inject_stub_s390x",
    [
        "std %f0, 368(%r15)",
        "std %f1, 376(%r15)",
        "std %f2, 384(%r15)",
        "std %f3, 392(%r15)",
        "std %f4, 400(%r15)",
        "std %f5, 408(%r15)",
        "std %f6, 416(%r15)",
        "std %f7, 424(%r15)",
        "std %f8, 432(%r15)",
        "std %f9, 440(%r15)",
        "std %f10, 448(%r15)",
        "std %f11, 456(%r15)",
        "std %f12, 464(%r15)",
        "std %f13, 472(%r15)",
        "std %f14, 480(%r15)",
        "std %f15, 488(%r15)"
    ],
    [
        "ld %f0, 368(%r15)",
        "ld %f1, 376(%r15)",
        "ld %f2, 384(%r15)",
        "ld %f3, 392(%r15)",
        "ld %f4, 400(%r15)",
        "ld %f5, 408(%r15)",
        "ld %f6, 416(%r15)",
        "ld %f7, 424(%r15)",
        "ld %f8, 432(%r15)",
        "ld %f9, 440(%r15)",
        "ld %f10, 448(%r15)",
        "ld %f11, 456(%r15)",
        "ld %f12, 464(%r15)",
        "ld %f13, 472(%r15)",
        "ld %f14, 480(%r15)",
        "ld %f15, 488(%r15)"
    ]
);

stub!(
    "wtrace_inject_stub_s390xv",
    ["vstm %v0, %v15, 496(%r15)", "vstm %v16, %v31, 752(%r15)"],
    ["vlm %v0, %v15, 496(%r15)", "vlm %v16, %v31, 752(%r15)"]
);
