//! riscv64 Linux, register-only strategy. The signal handler stashes PC, SP and A0 in the
//! thread's slot and points the context at a stub; the stub saves every register — x1–x31,
//! f0–f31 with `fcsr`, and, in its vector variant, v0–v31 at the hart's `vlenb` with `vstart`,
//! `vl`, `vtype` and `vcsr` — calls [`deliver`] in ordinary context with a pointer to what it
//! saved, and restores it all. The capture is built from the stub's own save area, so it holds
//! exactly what the interrupted code had, vector state included (which the signal frame of
//! older kernels and of qemu-user lacks).
//!
//! V is an optional extension: the vector variant runs only when `AT_HWCAP` has the V bit, and
//! the capture says whether vector state was present. As on aarch64, the stub cannot jump to an
//! arbitrary address without a register to hold it, so it ends with `unimp` at a known
//! address; the handler answers that fault by restoring PC, SP and A0 from the slot, and the
//! kernel's `sigreturn` puts the rest back. The faulting instruction then faults again and is
//! declined, so Wasmtime handles it as usual.

use std::cell::Cell;

use libc::{c_int, c_void, siginfo_t, ucontext_t};

use crate::slot::Capturing;
use crate::{Capture, RawRegisters, RiscvVector};

/// The V bit of `AT_HWCAP` (bit `'V' - 'A'`).
const HWCAP_V: u64 = 1 << (b'V' - b'A');

/// Where the stub keeps what it saved, from its stack pointer: `x[n]` at `8n` (x0 and x2
/// unused), f0–f31 from 256, then `fcsr`, `vstart`, `vl`, `vtype`, `vcsr`, `vlenb`, and a
/// frame record at 576, [`SAVE_AREA`] bytes in all. The vector registers, when saved, lie just
/// below it.
mod area {
    pub(super) const F: usize = 256;
    pub(super) const FCSR: usize = 512;
    pub(super) const VSTART: usize = 520;
    pub(super) const VL: usize = 528;
    pub(super) const VTYPE: usize = 536;
    pub(super) const VCSR: usize = 544;
    pub(super) const VLENB: usize = 552;
}
/// The size of the fixed part of the stub's frame (the `592` in the stub's text).
const SAVE_AREA: usize = 592;
const _: () = assert!(area::VLENB + 8 <= SAVE_AREA - 16 && SAVE_AREA.is_multiple_of(16));

/// Per-thread state shared by the signal handler, the stub and [`deliver`]. The stub reads
/// `pc` (offset 0) for its frame record.
#[repr(C)]
pub(crate) struct Slot {
    pc: u64,
    sp: u64,
    a0: u64,
    /// Whether the hart has V: which stub variant runs.
    vector: bool,
    /// What the vector variant's frame takes besides the fixed part: v0–v31, `32 × vlenb`
    /// bytes (0 without V), which the room check adds to the injected frame.
    vector_bytes: u64,
    common: Capturing,
}

const _: () = assert!(std::mem::offset_of!(Slot, pc) == 0);

thread_local! {
    /// This thread's slot while armed (see the x86_64 module for why a `const` `Cell`).
    static SLOT: Cell<*mut Slot> = const { Cell::new(std::ptr::null_mut()) };
}

/// Whether this hart has the V extension, as the kernel reports it.
pub(crate) fn has_vector() -> bool {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
    hwcap & HWCAP_V != 0
}

/// Bytes per vector register; only on a hart with V.
fn vlenb() -> u64 {
    let vlenb: u64;
    // SAFETY: reads a read-only CSR, which exists on a hart with V (the caller checked).
    unsafe {
        std::arch::asm!(".option push", ".option arch, +v", "csrr {}, vlenb", ".option pop", out(reg) vlenb);
    };
    vlenb
}

/// Arms capture on this thread; see [`crate::arm`].
pub(crate) fn arm(ranges: Vec<(usize, usize)>, callback: Box<dyn FnMut(&Capture)>) -> (*mut Slot, u64) {
    crate::publish(
        &SLOT,
        Box::new(Slot {
            pc: 0,
            sp: 0,
            a0: 0,
            vector: has_vector(),
            vector_bytes: if has_vector() { 32 * vlenb() } else { 0 },
            common: Capturing::new(ranges, callback),
        }),
    )
}

/// Disarms this thread if `slot` and `arming` are still its own, and frees the slot.
pub(crate) fn disarm(slot: *mut Slot, arming: u64) {
    drop(crate::unpublish(&SLOT, slot, arming));
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
    let gregs = &mut uc.uc_mcontext.__gregs;
    let pc = gregs[0];
    if (pc == RESUME as usize as u64 || pc == RESUME_VECTOR as usize as u64) && slot.common.delivered() {
        // The stub restored everything else; put back what the handler changed.
        gregs[0] = slot.pc;
        gregs[2] = slot.sp;
        gregs[10] = slot.a0;
        return true;
    }
    let sp = gregs[2];
    if !slot.common.admits(pc, sp.saturating_sub(slot.vector_bytes), slot.pc) {
        return false;
    }
    slot.pc = pc;
    slot.sp = sp;
    slot.a0 = gregs[10];
    // SAFETY: `info` is the kernel's siginfo for this signal.
    slot.common.begin(signum, si_code, unsafe { (*info).si_addr() } as u64);
    // Room checked above: this cannot wrap. The psABI has no red zone; 256 bytes spare.
    gregs[2] = sp.wrapping_sub(256) & !15;
    gregs[0] = if slot.vector { STUB_VECTOR as usize as u64 } else { STUB as usize as u64 };
    gregs[10] = std::ptr::from_mut(slot) as u64;
    true
}

/// Reads a `u64` the stub saved at `offset` in its area.
///
/// # Safety
/// `area` is the stub's save area, live for the call to [`deliver`].
unsafe fn saved(area: *const u8, offset: usize) -> u64 {
    // SAFETY: per the contract.
    unsafe { area.add(offset).cast::<u64>().read_unaligned() }
}

/// Called by the stub in ordinary context, with the slot, the stub's save area, and its
/// vector registers (null in the variant without V).
extern "C" fn deliver(slot: *mut Slot, area: *const u8, vregs: *const u8) {
    let build = move |common: &Capturing| {
        // SAFETY: the stub passes the slot the handler put in A0, live while armed; a nested
        // signal only reads its state.
        let (pc, sp, a0) = unsafe { ((*slot).pc, (*slot).sp, (*slot).a0) };
        let mut x = [0u64; 31];
        for (i, x) in x.iter_mut().enumerate() {
            // SAFETY: the stub saved x1–x31 at 8n.
            *x = unsafe { saved(area, 8 * (i + 1)) };
        }
        x[1] = sp;
        x[9] = a0;
        let mut f = [0u64; 32];
        for (i, f) in f.iter_mut().enumerate() {
            // SAFETY: the stub saved f0–f31 from `area::F`.
            *f = unsafe { saved(area, area::F + 8 * i) };
        }
        // SAFETY: saved by the stub; the vector fields only in its vector variant, which
        // passes its registers, `32 × vlenb` bytes, in `vregs`.
        let (fcsr, vector) = unsafe {
            let vector = (!vregs.is_null()).then(|| {
                let vlenb = saved(area, area::VLENB);
                RiscvVector {
                    vlenb,
                    vtype: saved(area, area::VTYPE),
                    vl: saved(area, area::VL),
                    vstart: saved(area, area::VSTART),
                    vcsr: saved(area, area::VCSR),
                    v: std::slice::from_raw_parts(vregs, 32 * vlenb as usize).to_vec(),
                }
            });
            (saved(area, area::FCSR) as u32, vector)
        };
        common.capture(RawRegisters::Riscv64 { x, pc, f, fcsr, vector })
    };
    // SAFETY: this thread's live slot, a capture under way (the stub runs only after the
    // handler began one).
    unsafe { Capturing::deliver(std::ptr::addr_of_mut!((*slot).common), build) };
}

unsafe extern "C" {
    #[link_name = "wtrace_inject_stub_riscv64"]
    fn stub_symbol();
    #[link_name = "wtrace_inject_stub_riscv64_resume"]
    fn resume_symbol();
    #[link_name = "wtrace_inject_stub_riscv64v"]
    fn stub_vector_symbol();
    #[link_name = "wtrace_inject_stub_riscv64v_resume"]
    fn resume_vector_symbol();
}

const STUB: unsafe extern "C" fn() = stub_symbol;
const RESUME: unsafe extern "C" fn() = resume_symbol;
const STUB_VECTOR: unsafe extern "C" fn() = stub_vector_symbol;
const RESUME_VECTOR: unsafe extern "C" fn() = resume_vector_symbol;

// The two stubs, one text with the vector part spliced in. On entry: SP 16-aligned, 256 bytes
// below the interrupted SP; A0 = slot; every other register as interrupted. The frame record
// follows the psABI (s0 is the frame's top, with the return address and the caller's s0 just
// below it), linking the callback's frames to the interrupted one: [interrupted s0, pc].
macro_rules! stub {
    ($name:literal, [$($save_vector:literal),*], [$($restore_vector:literal),*]) => {
        std::arch::global_asm!(
            concat!(".pushsection .text.", $name, ",\"ax\",@progbits"),
            ".p2align 4",
            concat!(".globl ", $name),
            concat!(".hidden ", $name),
            concat!(".type ", $name, ",@function"),
            concat!($name, ":"),
            ".option push",
            ".option arch, +v",
            "addi sp, sp, -592",
            "sd x1, 8(sp)",
            "sd x3, 24(sp)",
            "sd x4, 32(sp)",
            "sd x5, 40(sp)",
            "sd x6, 48(sp)",
            "sd x7, 56(sp)",
            "sd x8, 64(sp)",
            "sd x9, 72(sp)",
            "sd x10, 80(sp)",
            "sd x11, 88(sp)",
            "sd x12, 96(sp)",
            "sd x13, 104(sp)",
            "sd x14, 112(sp)",
            "sd x15, 120(sp)",
            "sd x16, 128(sp)",
            "sd x17, 136(sp)",
            "sd x18, 144(sp)",
            "sd x19, 152(sp)",
            "sd x20, 160(sp)",
            "sd x21, 168(sp)",
            "sd x22, 176(sp)",
            "sd x23, 184(sp)",
            "sd x24, 192(sp)",
            "sd x25, 200(sp)",
            "sd x26, 208(sp)",
            "sd x27, 216(sp)",
            "sd x28, 224(sp)",
            "sd x29, 232(sp)",
            "sd x30, 240(sp)",
            "sd x31, 248(sp)",
            "frcsr t0",
            "sd t0, 512(sp)",
            "fsd f0, 256(sp)",
            "fsd f1, 264(sp)",
            "fsd f2, 272(sp)",
            "fsd f3, 280(sp)",
            "fsd f4, 288(sp)",
            "fsd f5, 296(sp)",
            "fsd f6, 304(sp)",
            "fsd f7, 312(sp)",
            "fsd f8, 320(sp)",
            "fsd f9, 328(sp)",
            "fsd f10, 336(sp)",
            "fsd f11, 344(sp)",
            "fsd f12, 352(sp)",
            "fsd f13, 360(sp)",
            "fsd f14, 368(sp)",
            "fsd f15, 376(sp)",
            "fsd f16, 384(sp)",
            "fsd f17, 392(sp)",
            "fsd f18, 400(sp)",
            "fsd f19, 408(sp)",
            "fsd f20, 416(sp)",
            "fsd f21, 424(sp)",
            "fsd f22, 432(sp)",
            "fsd f23, 440(sp)",
            "fsd f24, 448(sp)",
            "fsd f25, 456(sp)",
            "fsd f26, 464(sp)",
            "fsd f27, 472(sp)",
            "fsd f28, 480(sp)",
            "fsd f29, 488(sp)",
            "fsd f30, 496(sp)",
            "fsd f31, 504(sp)",
            "mv s1, sp",
            "li s2, 0",
            $($save_vector,)*
            "ld t0, 0(a0)",
            "sd s0, 576(s1)",
            "sd t0, 584(s1)",
            "addi s0, s1, 592",
            "mv a1, s1",
            "mv a2, s2",
            "call {deliver}",
            $($restore_vector,)*
            "mv sp, s1",
            "fld f0, 256(sp)",
            "fld f1, 264(sp)",
            "fld f2, 272(sp)",
            "fld f3, 280(sp)",
            "fld f4, 288(sp)",
            "fld f5, 296(sp)",
            "fld f6, 304(sp)",
            "fld f7, 312(sp)",
            "fld f8, 320(sp)",
            "fld f9, 328(sp)",
            "fld f10, 336(sp)",
            "fld f11, 344(sp)",
            "fld f12, 352(sp)",
            "fld f13, 360(sp)",
            "fld f14, 368(sp)",
            "fld f15, 376(sp)",
            "fld f16, 384(sp)",
            "fld f17, 392(sp)",
            "fld f18, 400(sp)",
            "fld f19, 408(sp)",
            "fld f20, 416(sp)",
            "fld f21, 424(sp)",
            "fld f22, 432(sp)",
            "fld f23, 440(sp)",
            "fld f24, 448(sp)",
            "fld f25, 456(sp)",
            "fld f26, 464(sp)",
            "fld f27, 472(sp)",
            "fld f28, 480(sp)",
            "fld f29, 488(sp)",
            "fld f30, 496(sp)",
            "fld f31, 504(sp)",
            "ld t0, 512(sp)",
            "fscsr t0",
            "ld x1, 8(sp)",
            "ld x3, 24(sp)",
            "ld x4, 32(sp)",
            "ld x5, 40(sp)",
            "ld x6, 48(sp)",
            "ld x7, 56(sp)",
            "ld x8, 64(sp)",
            "ld x9, 72(sp)",
            "ld x10, 80(sp)",
            "ld x11, 88(sp)",
            "ld x12, 96(sp)",
            "ld x13, 104(sp)",
            "ld x14, 112(sp)",
            "ld x15, 120(sp)",
            "ld x16, 128(sp)",
            "ld x17, 136(sp)",
            "ld x18, 144(sp)",
            "ld x19, 152(sp)",
            "ld x20, 160(sp)",
            "ld x21, 168(sp)",
            "ld x22, 176(sp)",
            "ld x23, 184(sp)",
            "ld x24, 192(sp)",
            "ld x25, 200(sp)",
            "ld x26, 208(sp)",
            "ld x27, 216(sp)",
            "ld x28, 224(sp)",
            "ld x29, 232(sp)",
            "ld x30, 240(sp)",
            "ld x31, 248(sp)",
            "addi sp, sp, 592",
            // The handler takes this fault and resumes the interrupted code.
            concat!(".globl ", $name, "_resume"),
            concat!(".hidden ", $name, "_resume"),
            concat!($name, "_resume:"),
            "unimp",
            ".option pop",
            concat!(".size ", $name, ", . - ", $name),
            ".popsection",
            deliver = sym deliver,
        );
    };
}

stub!("wtrace_inject_stub_riscv64", [], []);

// With V: the control state first (reading `vstart` before any vector instruction resets it),
// then v0–v31 below the fixed area, eight registers a store, with `vstart` cleared
// (whole-register stores honour it).
// Restoring: the registers, then `vl` and `vtype` through `vsetvl` (the saved `vl` never
// exceeds what the saved `vtype` allows, so it comes back exact), `vcsr`, and `vstart` last.
stub!(
    "wtrace_inject_stub_riscv64v",
    [
        "csrr t0, vstart",
        "sd t0, 520(s1)",
        "csrr t0, vl",
        "sd t0, 528(s1)",
        "csrr t0, vtype",
        "sd t0, 536(s1)",
        "csrr t0, vcsr",
        "sd t0, 544(s1)",
        "csrr t0, vlenb",
        "sd t0, 552(s1)",
        "csrw vstart, zero",
        "slli t1, t0, 5",
        "sub sp, sp, t1",
        "mv s2, sp",
        "mv t2, sp",
        "slli t1, t0, 3",
        "vs8r.v v0, (t2)",
        "add t2, t2, t1",
        "vs8r.v v8, (t2)",
        "add t2, t2, t1",
        "vs8r.v v16, (t2)",
        "add t2, t2, t1",
        "vs8r.v v24, (t2)"
    ],
    [
        "ld t0, 552(s1)",
        "mv t2, s2",
        "slli t1, t0, 3",
        "vl8re8.v v0, (t2)",
        "add t2, t2, t1",
        "vl8re8.v v8, (t2)",
        "add t2, t2, t1",
        "vl8re8.v v16, (t2)",
        "add t2, t2, t1",
        "vl8re8.v v24, (t2)",
        "ld t0, 528(s1)",
        "ld t1, 536(s1)",
        "vsetvl zero, t0, t1",
        "ld t0, 544(s1)",
        "csrw vcsr, t0",
        "ld t0, 520(s1)",
        "csrw vstart, t0"
    ]
);
