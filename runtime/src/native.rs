//! Native register snapshots at signal-based traps, for recording and replay alike: arms
//! `wtrace-inject` on the running thread for the module's compiled code, installs it as the store's signal hook, and turns
//! the capture into the trap's [`NativeSnapshot`]: the Wasm PC from the module's address map,
//! the frame-pointer walk mapped to Wasm PCs, and the bytes around a memory fault.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use wasmtime::{Module, Store};
use wtrace_inject::{Armed, Capture};
use wtrace_traces::{MemoryBytes, MissingReason, NativeCapture, NativeFrame, NativeSnapshot, Trap};

/// Bytes of memory kept on each side of a fault address.
const WINDOW: u64 = 32;

/// Capture for one recording.
pub struct NativeCapturer {
    /// Keeps the thread armed while the guest runs.
    armed: Option<Armed>,
    captured: Rc<RefCell<Option<Capture>>>,
    /// Address range of the module's compiled code.
    text: (u64, u64),
    module: Module,
    /// `(text offset, Wasm offset)`, sorted by text offset: built at the first trap, since a
    /// large module's map has millions of entries and a run that never traps needs none.
    address_map: OnceCell<Vec<(u64, Option<u32>)>>,
    /// Why there is no capture at all on this platform.
    unsupported: bool,
}

impl NativeCapturer {
    /// Arms this thread for `module`'s code and installs the hook on `store`.
    pub fn install<T>(store: &mut Store<T>, module: &Module) -> NativeCapturer {
        let text = module.text();
        let start = text.as_ptr() as u64;
        let range = (start, start + text.len() as u64);
        let captured = Rc::new(RefCell::new(None));
        let sink = Rc::clone(&captured);
        let armed = wtrace_inject::arm(
            vec![(range.0 as usize, range.1 as usize)],
            Box::new(move |capture: &Capture| *sink.borrow_mut() = Some(capture.clone())),
        );
        let unsupported = armed.is_err();
        if !unsupported {
            crate::trust::install_signal_hook(store);
        }
        NativeCapturer {
            armed: armed.ok(),
            captured,
            text: range,
            module: module.clone(),
            address_map: OnceCell::new(),
            unsupported,
        }
    }

    /// Whether native `pc` is in this module's compiled code.
    fn in_text(&self, pc: u64) -> bool {
        (self.text.0..self.text.1).contains(&pc)
    }

    /// The Wasm offset of native `pc`, when it is in this module's code.
    fn wasm_pc(&self, pc: u64) -> Option<u32> {
        if !self.in_text(pc) {
            return None;
        }
        let map = self.address_map.get_or_init(|| {
            let mut map: Vec<(u64, Option<u32>)> = self
                .module
                .address_map()
                .map(|map| map.map(|(offset, wasm)| (offset as u64, wasm)).collect())
                .unwrap_or_default();
            map.sort_by_key(|(offset, _)| *offset);
            map
        });
        let offset = pc - self.text.0;
        let at = map.partition_point(|(o, _)| *o <= offset);
        map[..at].last().and_then(|(_, wasm)| *wasm)
    }

    /// Attaches the native state to a trap: the snapshot when the trap came from a captured
    /// signal in this module's code, otherwise why not. `memory` is linear memory 0 after the
    /// trap, for the window of bytes around a memory fault.
    pub fn complete(&self, trap: &mut Trap, memory: Option<(u64, &[u8])>) {
        // The next trap is capturable again (on macOS the fault was handed to Wasmtime by
        // giving the thread its previous exception ports back).
        if let Some(armed) = &self.armed {
            armed.rearm();
        }
        let capture = self.captured.borrow_mut().take();
        // A stack-overflow check faults in a prologue, where the address map has no Wasm
        // offset: any PC in the module's code counts.
        let Some(capture) = capture.filter(|c| self.in_text(c.pc())) else {
            trap.native = NativeCapture::Missing(if self.unsupported {
                MissingReason::Unsupported
            } else {
                MissingReason::NoSignal
            });
            return;
        };
        let mut snapshot = snapshot_of(&capture);
        snapshot.wasm_pc = self.wasm_pc(capture.pc());
        snapshot.stack = capture
            .frames
            .iter()
            .enumerate()
            .map(|(i, &(pc, fp))| NativeFrame {
                pc,
                fp,
                // A caller's PC is a return address; the call instruction ends just before it.
                wasm_pc: self.wasm_pc(if i == 0 { pc } else { pc - 1 }),
            })
            .collect();
        if let (Some(address), Some((base, bytes))) = (snapshot.fault_address, memory) {
            let wasm_address = address.wrapping_sub(base);
            let len = bytes.len() as u64;
            let (start, end) =
                (wasm_address.saturating_sub(WINDOW), wasm_address.saturating_add(WINDOW).min(len));
            if start < end {
                trap.memory_window = Some(MemoryBytes {
                    memory: 0,
                    offset: start,
                    bytes: bytes[start as usize..end as usize].to_vec(),
                });
            }
        }
        trap.native = NativeCapture::Captured(Box::new(snapshot));
    }
}

/// A capture as a trace snapshot; the Wasm PC and the stack are filled in by the caller.
pub fn snapshot_of(capture: &Capture) -> NativeSnapshot {
    use wtrace_inject::RawRegisters;
    use wtrace_traces::{Arch, Signal};
    let signal = match capture.signal {
        libc::SIGSEGV => Signal::Segv,
        #[cfg(unix)]
        libc::SIGBUS => Signal::Bus,
        libc::SIGILL => Signal::Ill,
        libc::SIGFPE => Signal::Fpe,
        #[cfg(unix)]
        libc::SIGTRAP => Signal::Trap,
        other => Signal::Other(other),
    };
    let fault_address = matches!(signal, Signal::Segv | Signal::Bus).then_some(capture.fault_address);
    let (arch, pc, sp, fp, flags, gprs, vregs, extra) = match &capture.registers {
        &RawRegisters::X86_64 { gprs, rip, rflags, xmm, mxcsr, fcw, fsw } => (
            Arch::X86_64,
            rip,
            gprs[7],
            gprs[6],
            rflags,
            gprs.to_vec(),
            xmm.to_vec(),
            vec![u64::from(mxcsr), u64::from(fcw), u64::from(fsw)],
        ),
        &RawRegisters::Aarch64 { x, sp, pc, nzcv, q, fpsr, fpcr } => (
            Arch::Aarch64,
            pc,
            sp,
            x[29],
            nzcv,
            x.to_vec(),
            q.to_vec(),
            vec![u64::from(fpsr), u64::from(fpcr)],
        ),
        RawRegisters::Riscv64 { x, pc, f, fcsr, vector } => {
            // f0–f31, fcsr, then the vector control state (names: `Arch::extra_names`).
            let mut extra = f.to_vec();
            extra.push(u64::from(*fcsr));
            let mut vregs = Vec::new();
            if let Some(v) = vector {
                extra.extend([v.vlenb, v.vtype, v.vl, v.vstart, v.vcsr]);
                vregs = v.v.chunks(16).map(|c| c.try_into().map_or(0, u128::from_le_bytes)).collect();
            }
            (Arch::Riscv64, *pc, x[1], x[7], 0, x.to_vec(), vregs, extra)
        }
        RawRegisters::S390x { r, psw_mask, psw_addr, a, fpc, f, vector } => {
            // The FPC, a0–a15, then f0–f15 (names: `Arch::extra_names`).
            let mut extra = vec![u64::from(*fpc)];
            extra.extend(a.iter().map(|a| u64::from(*a)));
            extra.extend(f);
            let vregs = vector.map(|v| v.v.to_vec()).unwrap_or_default();
            (Arch::S390x, *psw_addr, r[15], capture.fp(), *psw_mask, r.to_vec(), vregs, extra)
        }
    };
    NativeSnapshot {
        arch,
        signal,
        si_code: capture.si_code,
        fault_address,
        pc,
        sp,
        fp,
        flags,
        gprs,
        vregs,
        extra,
        wasm_pc: None,
        stack: Vec::new(),
    }
}

/// How a replayed trap's registers compare with the recorded ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterComparison {
    /// Same signal and `si_code`.
    pub same_signal: bool,
    /// Same Wasm PC of the faulting instruction, and the same Wasm PCs along the frame walk.
    pub same_wasm_pcs: bool,
    /// Registers compared: those whose recorded value is not an address.
    pub compared: usize,
    /// Registers skipped because their recorded value looks like an address, which differs
    /// from run to run with address-space layout randomization.
    pub addresses: usize,
    /// Compared registers that differ: name, recorded, replayed.
    pub differing: Vec<(String, String, String)>,
}

impl RegisterComparison {
    /// True when everything compared matched.
    pub fn matched(&self) -> bool {
        self.same_signal && self.same_wasm_pcs && self.differing.is_empty()
    }
}

/// Whether a 64-bit value looks like a user-space address on Linux and macOS: mappings of
/// position-independent executables, the heap, `mmap`ed regions (linear memories, code) and
/// stacks all lie between 2^44 and 2^48, where small integers, flags and Wasm values rarely do.
fn looks_like_address(value: u64) -> bool {
    (1 << 44..1 << 48).contains(&value)
}

/// Compares the address-independent state of two snapshots of the same trap: signal,
/// `si_code`, Wasm PCs along the stack, status flags, and every register (each half of a vector
/// register) whose recorded value is not an address.
pub fn compare(recorded: &NativeSnapshot, replayed: &NativeSnapshot) -> RegisterComparison {
    let wasm_pcs = |s: &NativeSnapshot| s.stack.iter().map(|f| f.wasm_pc).collect::<Vec<_>>();
    let mut comparison = RegisterComparison {
        same_signal: recorded.signal == replayed.signal && recorded.si_code == replayed.si_code,
        same_wasm_pcs: recorded.wasm_pc == replayed.wasm_pc && wasm_pcs(recorded) == wasm_pcs(replayed),
        compared: 0,
        addresses: 0,
        differing: Vec::new(),
    };
    let (pc, sp, _) = {
        let [pc, sp, flags] = recorded.arch.pc_sp_flags_names();
        (pc, sp, flags)
    };
    for ((name, before), (_, after)) in recorded.registers().into_iter().zip(replayed.registers()) {
        if name == pc || name == sp {
            comparison.addresses += 1;
            continue;
        }
        let (a, b) = (before.words(), after.words());
        if a.iter().any(|v| looks_like_address(*v)) {
            comparison.addresses += 1;
            continue;
        }
        comparison.compared += 1;
        if a != b {
            comparison.differing.push((name, before.to_string(), after.to_string()));
        }
    }
    comparison
}
