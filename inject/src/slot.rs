//! What every platform's per-thread slot holds besides the registers its stub uses: where a
//! capture stands, the fault's signal, the armed code ranges, the thread's stack and the
//! callback; the checks every handler makes before it takes a fault; and the ordinary-context
//! half every stub calls. The platform modules keep only their registers and stubs.
//!
//! While a capture is under way, [`Capturing::deliver`] may hold references into the slot, so
//! a nested signal touches only the atomic state, read through a raw pointer
//! ([`Capturing::busy`]), never through a reference to the whole slot.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};

use libc::c_int;

use crate::{Capture, RawRegisters};

const IDLE: u32 = 0;
const CAPTURING: u32 = 1;
const DELIVERED: u32 = 2;

/// The platform-independent part of a slot.
pub(crate) struct Capturing {
    state: AtomicU32,
    signal: c_int,
    si_code: c_int,
    fault_address: u64,
    /// Code ranges whose faults are captured.
    pub(crate) ranges: Vec<(usize, usize)>,
    /// This thread's stack, `[low, high)`: the frame walk reads only inside it.
    pub(crate) stack: (u64, u64),
    callback: Box<dyn FnMut(&Capture)>,
}

impl Capturing {
    /// Armed for `ranges`, on the calling thread's stack.
    pub(crate) fn new(ranges: Vec<(usize, usize)>, callback: Box<dyn FnMut(&Capture)>) -> Capturing {
        Capturing {
            state: AtomicU32::new(IDLE),
            signal: 0,
            si_code: 0,
            fault_address: 0,
            ranges,
            stack: crate::thread_stack(),
            callback,
        }
    }

    /// Whether a capture is under way, when the rest of the slot is not to be touched.
    ///
    /// # Safety
    /// `this` points at a live slot's part; only its atomic state is read.
    pub(crate) unsafe fn busy(this: *const Capturing) -> bool {
        // SAFETY: per the contract; a shared reference to the atomic alone.
        unsafe { &*std::ptr::addr_of!((*this).state) }.load(Ordering::Relaxed) == CAPTURING
    }

    /// Whether the last capture was delivered and the stub has yet to resume.
    pub(crate) fn delivered(&self) -> bool {
        self.state.load(Ordering::Relaxed) == DELIVERED
    }

    /// Whether to take a fault at `pc` with the stack pointer at `sp`: not outside the armed
    /// ranges; not the second fault at `captured_pc`, the instruction just delivered (the
    /// slot is then idle again, and the fault Wasmtime's); not without room on the stack for
    /// the injected frame and the callback.
    pub(crate) fn admits(&mut self, pc: u64, sp: u64, captured_pc: u64) -> bool {
        if !crate::in_ranges(&self.ranges, pc) {
            return false;
        }
        if self.delivered() && captured_pc == pc {
            self.state.store(IDLE, Ordering::Relaxed);
            return false;
        }
        crate::has_room(sp, self.stack)
    }

    /// Starts a capture of a fault raised as `signal`: from here on, until the stub has run,
    /// a nested signal is declined.
    pub(crate) fn begin(&mut self, signal: c_int, si_code: c_int, fault_address: u64) {
        self.signal = signal;
        self.si_code = si_code;
        self.fault_address = fault_address;
        self.state.store(CAPTURING, Ordering::Relaxed);
    }

    /// The capture of `registers`, with the frame walk they start.
    pub(crate) fn capture(&self, registers: RawRegisters) -> Capture {
        let frames = crate::walk(&registers, &self.ranges, self.stack);
        Capture {
            signal: self.signal,
            si_code: self.si_code,
            fault_address: self.fault_address,
            registers,
            frames,
        }
    }

    /// The ordinary-context half of every stub: runs the callback with the capture `build`
    /// makes and marks the capture delivered. A panic must not unwind into the stub; the
    /// capture is then lost.
    ///
    /// # Safety
    /// `this` points at this thread's live slot's part, a capture under way; `build` may read
    /// the slot, but holds no reference to it once it returns.
    pub(crate) unsafe fn deliver(this: *mut Capturing, build: impl FnOnce(&Capturing) -> Capture) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: per the contract; a nested signal only reads the state, so a shared
            // reference for the length of `build` is sound.
            let capture = build(unsafe { &*this });
            // SAFETY: as above; the callback field alone is borrowed mutably, and a nested
            // signal never touches it.
            let callback = unsafe { &mut *std::ptr::addr_of_mut!((*this).callback) };
            callback(&capture);
        }));
        // SAFETY: as above, through the atomic alone.
        unsafe { &*std::ptr::addr_of!((*this).state) }.store(DELIVERED, Ordering::Relaxed);
    }
}
