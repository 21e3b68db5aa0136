//! macOS, x86_64 and aarch64 alike: the Mach exception glue for the stack-push strategy.
//!
//! One path on both architectures. The engine turns Wasmtime's own Mach exception ports off
//! (`Config::macos_use_mach_ports(false)`), so Wasmtime takes faults as POSIX signals, as on
//! Linux. While a thread is armed, wtrace points that thread's exception port at its own,
//! served by one handler thread; a thread-level port sees a fault before the kernel turns it
//! into a signal. For a fault in armed code the handler reads the faulting thread's state
//! (`thread_get_state`), applies the stack-push strategy ([`crate::x86_64_push`],
//! [`crate::aarch64_push`]), writes the state back (`thread_set_state`), and gives the thread
//! its previous ports back before replying, so the fault the stub re-executes becomes a signal
//! for Wasmtime. [`rearm`] points the thread at wtrace's port again for the next trap. The
//! signal hook ([`handle`]) declines everything: on macOS a fault that reaches it was already
//! captured.
//!
//! On aarch64 the pushed stub ends with a `udf` (see [`crate::aarch64_push`]): wtrace's port
//! stays in place until that fault, which the handler answers by restoring PC, SP and X0 from
//! the block before handing the thread back.
//!
//! It compiles for both Apple targets (CI checks it); the strategy it applies is tested on
//! Linux, but there is no macOS machine here to run the glue itself.

use std::cell::Cell;
use std::sync::{Mutex, OnceLock, PoisonError};

use libc::{c_int, c_void, siginfo_t};
use mach2::exception_types::{
    EXC_MASK_ARITHMETIC, EXC_MASK_BAD_ACCESS, EXC_MASK_BAD_INSTRUCTION, EXCEPTION_DEFAULT,
    MACH_EXCEPTION_CODES, exception_behavior_t, exception_mask_t,
};
use mach2::kern_return::{KERN_FAILURE, KERN_SUCCESS, kern_return_t};
use mach2::mach_port::{mach_port_allocate, mach_port_deallocate, mach_port_insert_right};
use mach2::message::{
    MACH_MSG_TIMEOUT_NONE, MACH_MSG_TYPE_MAKE_SEND, MACH_MSGH_BITS, MACH_MSGH_BITS_REMOTE_MASK, MACH_RCV_MSG,
    MACH_SEND_MSG, mach_msg, mach_msg_body_t, mach_msg_header_t, mach_msg_port_descriptor_t,
    mach_msg_type_number_t,
};
use mach2::ndr::{NDR_record, NDR_record_t};
use mach2::port::{MACH_PORT_NULL, MACH_PORT_RIGHT_RECEIVE, mach_port_t};
use mach2::thread_act::thread_set_exception_ports;
use mach2::thread_status::{THREAD_STATE_NONE, thread_state_flavor_t};
use mach2::traps::mach_task_self;

use crate::{Capture, Unsupported};

/// The exceptions Wasm traps raise.
const MASK: exception_mask_t = EXC_MASK_BAD_ACCESS | EXC_MASK_BAD_INSTRUCTION | EXC_MASK_ARITHMETIC;

/// Room for every exception type's port.
const MAX_PORTS: usize = 32;

unsafe extern "C" {
    /// From `<mach/thread_act.h>`; not in `mach2`.
    fn thread_get_exception_ports(
        thread: mach_port_t,
        exception_mask: exception_mask_t,
        masks: *mut exception_mask_t,
        masks_count: *mut mach_msg_type_number_t,
        old_handlers: *mut mach_port_t,
        old_behaviors: *mut exception_behavior_t,
        old_flavors: *mut thread_state_flavor_t,
    ) -> kern_return_t;
    fn mach_thread_self() -> mach_port_t;
}

/// The ports a thread had before it was armed (Wasmtime's, or none).
#[derive(Clone, Copy)]
struct SavedPorts {
    count: mach_msg_type_number_t,
    masks: [exception_mask_t; MAX_PORTS],
    ports: [mach_port_t; MAX_PORTS],
    behaviors: [exception_behavior_t; MAX_PORTS],
    flavors: [thread_state_flavor_t; MAX_PORTS],
}

/// An armed thread, as the handler thread sees it.
struct Registration {
    thread: mach_port_t,
    ranges: Vec<(usize, usize)>,
    /// The thread's stack: a redirect must leave the callback room on it.
    stack: (u64, u64),
    saved: SavedPorts,
}

/// Armed threads. The handler thread runs in ordinary context, so a lock is fine here.
static REGISTRY: Mutex<Vec<Registration>> = Mutex::new(Vec::new());

/// wtrace's exception port, served by one handler thread started on first use.
static SERVER: OnceLock<Option<mach_port_t>> = OnceLock::new();

/// Per-thread state for [`deliver_pushed_state`], which runs on the faulting thread.
pub(crate) struct Slot {
    thread: mach_port_t,
    ranges: Vec<(usize, usize)>,
    stack: (u64, u64),
    callback: Box<dyn FnMut(&Capture)>,
}

thread_local! {
    static SLOT: Cell<*mut Slot> = const { Cell::new(std::ptr::null_mut()) };
}

/// The server port, creating it and its handler thread on first use.
fn server_port() -> Option<mach_port_t> {
    *SERVER.get_or_init(|| {
        let mut port: mach_port_t = MACH_PORT_NULL;
        // SAFETY: plain Mach calls on this task with valid out-pointers.
        unsafe {
            if mach_port_allocate(mach_task_self(), MACH_PORT_RIGHT_RECEIVE, &raw mut port) != KERN_SUCCESS {
                return None;
            }
            if mach_port_insert_right(mach_task_self(), port, port, MACH_MSG_TYPE_MAKE_SEND) != KERN_SUCCESS {
                return None;
            }
        }
        std::thread::Builder::new().name("wtrace-mach-exceptions".into()).spawn(move || serve(port)).ok()?;
        Some(port)
    })
}

/// Points `thread`'s exception ports for [`MASK`] at wtrace's server.
fn point_at_server(thread: mach_port_t, port: mach_port_t) -> bool {
    // SAFETY: `thread` is a valid thread port of this task.
    unsafe {
        thread_set_exception_ports(
            thread,
            MASK,
            port,
            (EXCEPTION_DEFAULT | MACH_EXCEPTION_CODES) as _,
            THREAD_STATE_NONE,
        ) == KERN_SUCCESS
    }
}

/// Gives `thread` back the ports it had before arming.
fn restore_ports(thread: mach_port_t, saved: &SavedPorts) {
    for i in 0..(saved.count as usize).min(MAX_PORTS) {
        // SAFETY: re-installs ports this thread had; `thread` is a valid thread port.
        unsafe {
            thread_set_exception_ports(
                thread,
                saved.masks[i],
                saved.ports[i],
                saved.behaviors[i],
                saved.flavors[i],
            );
        }
    }
}

/// Arms the calling thread; see [`crate::arm`]. Capture always uses the stack-push strategy.
pub(crate) fn arm(
    ranges: Vec<(usize, usize)>,
    callback: Box<dyn FnMut(&Capture)>,
) -> Result<(*mut Slot, u64), Unsupported> {
    let port = server_port().ok_or(Unsupported)?;
    // SAFETY: returns a send right to the calling thread.
    let thread = unsafe { mach_thread_self() };
    let mut saved = SavedPorts {
        count: MAX_PORTS as mach_msg_type_number_t,
        masks: [0; MAX_PORTS],
        ports: [MACH_PORT_NULL; MAX_PORTS],
        behaviors: [0; MAX_PORTS],
        flavors: [0; MAX_PORTS],
    };
    // SAFETY: the arrays hold `count` entries, as the call requires.
    let got = unsafe {
        thread_get_exception_ports(
            thread,
            MASK,
            saved.masks.as_mut_ptr(),
            &raw mut saved.count,
            saved.ports.as_mut_ptr(),
            saved.behaviors.as_mut_ptr(),
            saved.flavors.as_mut_ptr(),
        )
    };
    if got != KERN_SUCCESS {
        return Err(Unsupported);
    }
    let stack = crate::thread_stack();
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner).push(Registration {
        thread,
        ranges: ranges.clone(),
        stack,
        saved,
    });
    if !point_at_server(thread, port) {
        unregister(thread);
        return Err(Unsupported);
    }
    Ok(crate::publish(&SLOT, Box::new(Slot { thread, ranges, stack, callback })))
}

/// Removes `thread` from the registry and gives it its ports back.
fn unregister(thread: mach_port_t) {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(i) = registry.iter().position(|r| r.thread == thread) {
        let registration = registry.swap_remove(i);
        restore_ports(thread, &registration.saved);
    }
}

/// Disarms the calling thread if `slot` and `arming` are still its own.
pub(crate) fn disarm(slot: *mut Slot, arming: u64) {
    let Some(slot) = crate::unpublish(&SLOT, slot, arming) else { return };
    unregister(slot.thread);
    // SAFETY: drops the send right `mach_thread_self` gave in `arm`.
    unsafe { mach_port_deallocate(mach_task_self(), slot.thread) };
}

/// Points the thread at wtrace's port again after a fault was handed to Wasmtime.
pub(crate) fn rearm(slot: *mut Slot, arming: u64) {
    if SLOT.with(Cell::get) != slot || crate::ARMINGS.with(Cell::get) != arming {
        return;
    }
    if let Some(port) = server_port() {
        // SAFETY: `slot` is this thread's live slot (checked above).
        point_at_server(unsafe { (*slot).thread }, port);
    }
}

/// Signals are not how wtrace sees faults on macOS: the Mach handler sees every fault of an
/// armed thread first, and a fault that reaches Wasmtime's signal handler is either captured
/// already or not one to capture, so the hook declines.
///
/// # Safety
/// None needed; the signature matches the Linux entry point.
pub(crate) unsafe fn handle(_signum: c_int, _info: *const siginfo_t, _context: *mut c_void) -> bool {
    false
}

/// `mach_exception_raise` as the kernel sends it (`EXCEPTION_DEFAULT | MACH_EXCEPTION_CODES`).
#[repr(C, packed(4))]
struct ExceptionRequest {
    header: mach_msg_header_t,
    body: mach_msg_body_t,
    thread: mach_msg_port_descriptor_t,
    task: mach_msg_port_descriptor_t,
    ndr: NDR_record_t,
    exception: c_int,
    code_count: mach_msg_type_number_t,
    code: [i64; 2],
    /// Room for the trailer the kernel appends.
    trailer: [u8; 128],
}

/// The reply: just a return code.
#[repr(C, packed(4))]
struct ExceptionReply {
    header: mach_msg_header_t,
    ndr: NDR_record_t,
    ret_code: kern_return_t,
}

/// The handler thread: answers every exception message on `port`.
fn serve(port: mach_port_t) {
    loop {
        // SAFETY: all-zero bytes are a valid request buffer.
        let mut request: ExceptionRequest = unsafe { std::mem::zeroed() };
        // SAFETY: receives into a buffer of the size given.
        let received = unsafe {
            mach_msg(
                &raw mut request.header,
                MACH_RCV_MSG,
                0,
                size_of::<ExceptionRequest>() as u32,
                port,
                MACH_MSG_TIMEOUT_NONE,
                MACH_PORT_NULL,
            )
        };
        if received != KERN_SUCCESS {
            continue;
        }
        let thread = request.thread.name;
        let code = request.code;
        let ret_code = take_exception(thread, request.exception, code);
        let mut reply = ExceptionReply {
            header: mach_msg_header_t {
                msgh_bits: MACH_MSGH_BITS(request.header.msgh_bits & MACH_MSGH_BITS_REMOTE_MASK, 0),
                msgh_size: size_of::<ExceptionReply>() as u32,
                msgh_remote_port: request.header.msgh_remote_port,
                msgh_local_port: MACH_PORT_NULL,
                msgh_voucher_port: MACH_PORT_NULL,
                msgh_id: request.header.msgh_id + 100,
            },
            // SAFETY: reads the system's NDR record, a constant.
            ndr: unsafe { NDR_record },
            ret_code,
        };
        // SAFETY: sends the reply built above to the kernel's reply port; then drops the
        // thread and task rights the request carried.
        unsafe {
            mach_msg(
                &raw mut reply.header,
                MACH_SEND_MSG,
                size_of::<ExceptionReply>() as u32,
                0,
                MACH_PORT_NULL,
                MACH_MSG_TIMEOUT_NONE,
                MACH_PORT_NULL,
            );
            mach_port_deallocate(mach_task_self(), request.thread.name);
            mach_port_deallocate(mach_task_self(), request.task.name);
        }
    }
}

/// Handles one exception of `thread`: redirects it into the stub when it is in armed code, and
/// gives the thread its previous ports back once wtrace is done with it, so the fault the
/// thread re-executes goes to Wasmtime.
fn take_exception(thread: mach_port_t, exception: c_int, code: [i64; 2]) -> kern_return_t {
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(registration) = registry.iter().find(|r| r.thread == thread) else {
        return KERN_FAILURE;
    };
    let info = (signal_of(exception), code[0] as i32, code[1] as u64);
    #[cfg(target_arch = "x86_64")]
    let keep_ports = redirect_x86_64(thread, registration, info);
    #[cfg(target_arch = "aarch64")]
    let keep_ports = redirect_aarch64(thread, registration, info);
    if !keep_ports {
        restore_ports(thread, &registration.saved);
    }
    KERN_SUCCESS
}

/// The signal a Mach exception type corresponds to.
fn signal_of(exception: c_int) -> c_int {
    use mach2::exception_types::{EXC_ARITHMETIC, EXC_BAD_ACCESS, EXC_BAD_INSTRUCTION};
    match exception as u32 {
        EXC_BAD_ACCESS => libc::SIGSEGV,
        EXC_BAD_INSTRUCTION => libc::SIGILL,
        EXC_ARITHMETIC => libc::SIGFPE,
        _ => 0,
    }
}

/// The stack-push redirect of a stopped aarch64 thread. Returns whether wtrace's port must stay
/// (until the pushed stub's final `udf`).
#[cfg(target_arch = "aarch64")]
fn redirect_aarch64(thread: mach_port_t, registration: &Registration, info: (c_int, i32, u64)) -> bool {
    use mach2::structs::arm_thread_state64_t;
    use mach2::thread_act::{thread_get_state, thread_set_state};
    use mach2::thread_status::ARM_THREAD_STATE64;

    use crate::aarch64_push::{ThreadState, push_state, resume};

    let mut state = arm_thread_state64_t::new();
    let mut count = arm_thread_state64_t::count();
    // SAFETY: `thread` is stopped in its exception; the buffer holds `count` words.
    let got =
        unsafe { thread_get_state(thread, ARM_THREAD_STATE64, (&raw mut state).cast(), &raw mut count) };
    if got != KERN_SUCCESS {
        return false;
    }
    let mut x = [0u64; 31];
    x[..29].copy_from_slice(&state.__x);
    x[29] = state.__fp;
    x[30] = state.__lr;
    let mut thread_state = ThreadState {
        x,
        sp: state.__sp,
        pc: state.__pc,
        nzcv: u64::from(state.__cpsr) & crate::aarch64_push::NZCV,
    };
    // SAFETY: the thread is stopped; at the resume point its SP is the pushed block.
    let resumed = unsafe { resume(&mut thread_state) };
    let in_code =
        crate::in_ranges(&registration.ranges, state.__pc) && crate::has_room(state.__sp, registration.stack);
    if !resumed && !in_code {
        return false;
    }
    if !resumed {
        // SAFETY: the thread is stopped and its stack below SP is mapped (Wasm code leaves the
        // host's share of the stack free).
        unsafe { push_state(&mut thread_state, info) };
    }
    state.__sp = thread_state.sp;
    state.__pc = thread_state.pc;
    state.__x[0] = thread_state.x[0];
    // SAFETY: writes back the state read above with SP, PC and X0 changed.
    unsafe { thread_set_state(thread, ARM_THREAD_STATE64, (&raw mut state).cast(), count) };
    // After the redirect, wtrace's port must see the stub's `udf`; after the resume, the
    // re-executed fault is Wasmtime's.
    !resumed
}

/// The stack-push redirect of a stopped x86_64 thread.
#[cfg(target_arch = "x86_64")]
fn redirect_x86_64(thread: mach_port_t, registration: &Registration, info: (c_int, i32, u64)) -> bool {
    use mach2::structs::x86_thread_state64_t;
    use mach2::thread_act::{thread_get_state, thread_set_state};
    use mach2::thread_status::x86_THREAD_STATE64;

    use crate::x86_64_push::{ThreadState, push_state};

    let mut state = x86_thread_state64_t::new();
    let mut count = x86_thread_state64_t::count();
    // SAFETY: `thread` is stopped in its exception; the buffer holds `count` words.
    let got =
        unsafe { thread_get_state(thread, x86_THREAD_STATE64, (&raw mut state).cast(), &raw mut count) };
    if got != KERN_SUCCESS
        || !crate::in_ranges(&registration.ranges, state.__rip)
        || !crate::has_room(state.__rsp, registration.stack)
    {
        return false;
    }
    let s = &state;
    let mut pushed = ThreadState {
        gprs: [
            s.__rax, s.__rbx, s.__rcx, s.__rdx, s.__rsi, s.__rdi, s.__rbp, s.__rsp, s.__r8, s.__r9, s.__r10,
            s.__r11, s.__r12, s.__r13, s.__r14, s.__r15,
        ],
        rip: s.__rip,
        rflags: s.__rflags,
    };
    // SAFETY: the thread is stopped in its exception and its stack below the red zone is
    // mapped (Wasm code leaves the host's share of the stack free).
    unsafe { push_state(&mut pushed, info) };
    state.__rsp = pushed.gprs[7];
    state.__rdi = pushed.gprs[5];
    state.__rip = pushed.rip;
    // SAFETY: writes back the state read above with RSP, RDI and RIP redirected.
    unsafe { thread_set_state(thread, x86_THREAD_STATE64, (&raw mut state).cast(), count) };
    // The x86_64 stub returns by itself: the re-executed fault is Wasmtime's.
    false
}

/// Delivers a capture from the pushed block, on the faulting thread in ordinary context.
#[cfg(target_arch = "x86_64")]
pub(crate) fn deliver_pushed_state(block: &crate::x86_64_push::PushedState, xsave: *const u8) {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let slot = SLOT.with(Cell::get);
    if slot.is_null() {
        return;
    }
    // SAFETY: the slot is this thread's own, live while armed.
    let slot = unsafe { &mut *slot };
    let fp = crate::x86_64_push::FxState::read(xsave);
    let registers = crate::RawRegisters::X86_64 {
        gprs: block.gprs,
        rip: block.rip,
        rflags: block.rflags,
        xmm: fp.xmm,
        mxcsr: fp.mxcsr,
        fcw: fp.fcw,
        fsw: fp.fsw,
    };
    let frames = crate::walk(&registers, &slot.ranges, slot.stack);
    let capture = Capture {
        signal: block.signal,
        si_code: block.si_code,
        fault_address: block.fault_address,
        registers,
        frames,
    };
    let _ = catch_unwind(AssertUnwindSafe(|| (slot.callback)(&capture)));
}

/// Delivers a capture from the pushed block, on the faulting thread in ordinary context.
#[cfg(target_arch = "aarch64")]
pub(crate) fn deliver_pushed_state(block: &crate::aarch64_push::PushedState, fp: *const u8) {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let slot = SLOT.with(Cell::get);
    if slot.is_null() {
        return;
    }
    // SAFETY: the slot is this thread's own, live while armed.
    let slot = unsafe { &mut *slot };
    let fp = crate::aarch64_push::FpState::read(fp);
    let registers = crate::RawRegisters::Aarch64 {
        x: block.x,
        sp: block.sp,
        pc: block.pc,
        nzcv: block.nzcv,
        q: fp.q,
        fpsr: fp.fpsr,
        fpcr: fp.fpcr,
    };
    let frames = crate::walk(&registers, &slot.ranges, slot.stack);
    let capture = Capture {
        signal: block.signal,
        si_code: block.si_code,
        fault_address: block.fault_address,
        registers,
        frames,
    };
    let _ = catch_unwind(AssertUnwindSafe(|| (slot.callback)(&capture)));
}
