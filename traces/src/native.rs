//! Native machine state captured at a signal-based trap: the register file of the faulting
//! thread and the architecture's names for each register.

use bincode::{Decode, Encode};

/// The instruction-set architecture a snapshot was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Arch {
    /// x86-64 (AMD64).
    X86_64,
    /// `AArch64` (ARMv8-A, 64-bit).
    Aarch64,
}

impl Arch {
    /// The architecture's name as Rust target triples spell it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Names of the general-purpose registers, in the order [`NativeSnapshot::gprs`] holds them.
    pub fn gpr_names(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &[
                "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
                "r13", "r14", "r15",
            ],
            Arch::Aarch64 => &[
                "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
                "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
                "x27", "x28", "x29", "x30",
            ],
        }
    }

    /// The vector register name prefix (`xmm0`..., `q0`...), and how many there are.
    pub fn vector_registers(self) -> (&'static str, usize) {
        match self {
            Arch::X86_64 => ("xmm", 16),
            Arch::Aarch64 => ("q", 32),
        }
    }

    /// Names of the extra control/status registers, in the order [`NativeSnapshot::extra`] holds them.
    pub fn extra_names(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["mxcsr", "fcw", "fsw"],
            Arch::Aarch64 => &["fpsr", "fpcr"],
        }
    }

    /// The names of the PC, SP and flags registers.
    pub fn pc_sp_flags_names(self) -> [&'static str; 3] {
        match self {
            Arch::X86_64 => ["rip", "rsp", "rflags"],
            Arch::Aarch64 => ["pc", "sp", "nzcv"],
        }
    }
}

/// The signal that reported a fault, named portably (numbers differ between operating systems).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Signal {
    /// `SIGSEGV`
    Segv,
    /// `SIGBUS`
    Bus,
    /// `SIGILL`
    Ill,
    /// `SIGFPE`
    Fpe,
    /// `SIGTRAP`
    Trap,
    /// Another signal, by number on the recording OS.
    Other(i32),
}

impl Signal {
    /// The conventional name, e.g. `SIGSEGV`.
    pub fn name(self) -> String {
        match self {
            Signal::Segv => "SIGSEGV".into(),
            Signal::Bus => "SIGBUS".into(),
            Signal::Ill => "SIGILL".into(),
            Signal::Fpe => "SIGFPE".into(),
            Signal::Trap => "SIGTRAP".into(),
            Signal::Other(n) => format!("signal {n}"),
        }
    }
}

/// One frame of the frame-pointer walk done at the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct NativeFrame {
    /// The native PC (return address for caller frames).
    pub pc: u64,
    /// The frame pointer of this frame.
    pub fp: u64,
    /// The Wasm PC the native PC maps to, when it is in Wasm code.
    pub wasm_pc: Option<u32>,
}

/// The full register file of the faulting thread at a signal-based trap.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct NativeSnapshot {
    /// Which architecture's registers these are.
    pub arch: Arch,
    /// The signal that reported the fault.
    pub signal: Signal,
    /// `si_code` from the signal info.
    pub si_code: i32,
    /// `si_addr`: the faulting data address, for memory faults.
    pub fault_address: Option<u64>,
    /// Program counter at the fault.
    pub pc: u64,
    /// Stack pointer at the fault.
    pub sp: u64,
    /// Frame pointer at the fault.
    pub fp: u64,
    /// Flags (`rflags` / `nzcv`).
    pub flags: u64,
    /// General-purpose registers, named by [`Arch::gpr_names`].
    pub gprs: Vec<u64>,
    /// Vector registers (`xmm*` / `q*`), 128 bits each.
    pub vregs: Vec<u128>,
    /// Control/status registers, named by [`Arch::extra_names`].
    pub extra: Vec<u64>,
    /// The Wasm PC of the faulting instruction, from the module's address map.
    pub wasm_pc: Option<u32>,
    /// Frame-pointer walk of the stack, innermost first.
    pub stack: Vec<NativeFrame>,
}

/// A register's value, 64 or 128 bits wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterValue {
    /// A 64-bit register.
    U64(u64),
    /// A 128-bit vector register.
    U128(u128),
}

impl std::fmt::Display for RegisterValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterValue::U64(v) => write!(f, "{v:#018x}"),
            RegisterValue::U128(v) => write!(f, "{v:#034x}"),
        }
    }
}

impl NativeSnapshot {
    /// Every register with its architecture-manual name, in a stable order: GPRs, PC, SP (on
    /// aarch64), flags, vector registers, then control/status registers.
    pub fn registers(&self) -> Vec<(String, RegisterValue)> {
        let mut out = Vec::with_capacity(self.gprs.len() + self.vregs.len() + self.extra.len() + 3);
        let gpr_names = self.arch.gpr_names();
        for (i, v) in self.gprs.iter().enumerate() {
            let name = gpr_names.get(i).map_or_else(|| format!("gpr{i}"), |n| (*n).to_string());
            out.push((name, RegisterValue::U64(*v)));
        }
        let [pc, sp, flags] = self.arch.pc_sp_flags_names();
        if self.arch == Arch::Aarch64 {
            out.push((sp.to_string(), RegisterValue::U64(self.sp)));
        }
        out.push((pc.to_string(), RegisterValue::U64(self.pc)));
        out.push((flags.to_string(), RegisterValue::U64(self.flags)));
        let (prefix, _) = self.arch.vector_registers();
        for (i, v) in self.vregs.iter().enumerate() {
            out.push((format!("{prefix}{i}"), RegisterValue::U128(*v)));
        }
        let extra_names = self.arch.extra_names();
        for (i, v) in self.extra.iter().enumerate() {
            let name = extra_names.get(i).map_or_else(|| format!("extra{i}"), |n| (*n).to_string());
            out.push((name, RegisterValue::U64(*v)));
        }
        out
    }
}
