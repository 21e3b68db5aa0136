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
    /// RISC-V, 64-bit (RV64GC, with or without the V extension).
    Riscv64,
    /// IBM Z (z/Architecture, 64-bit).
    S390x,
}

/// `f0`–`f15`: s390x's floating-point registers, and the first half of riscv64's.
const F0_15: [&str; 16] =
    ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12", "f13", "f14", "f15"];
const F16_31: [&str; 16] = [
    "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25", "f26", "f27", "f28", "f29", "f30",
    "f31",
];

/// riscv64's control/status registers after f0–f31: the FP one, then the vector state (present
/// only when the hart has V; `vlenb` says how wide each of v0–v31 is).
const RISCV64_CSR_NAMES: [&str; 6] = ["fcsr", "vlenb", "vtype", "vl", "vstart", "vcsr"];

/// s390x's control registers before f0–f15: the FPC and the access registers.
const S390X_CONTROL_NAMES: [&str; 17] = [
    "fpc", "acr0", "acr1", "acr2", "acr3", "acr4", "acr5", "acr6", "acr7", "acr8", "acr9", "acr10", "acr11",
    "acr12", "acr13", "acr14", "acr15",
];

/// Where riscv64's `vlenb` is in [`NativeSnapshot::extra`].
const RISCV64_VLENB: usize = 33;

const fn concat_names<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N);
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

const RISCV64_EXTRA: [&str; 38] = concat_names(concat_names::<16, 16, 32>(F0_15, F16_31), RISCV64_CSR_NAMES);
const S390X_EXTRA: [&str; 33] = concat_names(S390X_CONTROL_NAMES, F0_15);
const _: () = assert!(matches!(RISCV64_EXTRA[RISCV64_VLENB].as_bytes(), b"vlenb"));

impl Arch {
    /// The architecture's name as Rust target triples spell it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
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
            // x1–x31 by their psABI names, as debuggers show them.
            Arch::Riscv64 => &[
                "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
                "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5",
                "t6",
            ],
            Arch::S390x => &[
                "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13",
                "r14", "r15",
            ],
        }
    }

    /// The vector register name prefix (`xmm0`..., `q0`..., `v0`...), and how many there are.
    pub fn vector_registers(self) -> (&'static str, usize) {
        match self {
            Arch::X86_64 => ("xmm", 16),
            Arch::Aarch64 => ("q", 32),
            Arch::Riscv64 | Arch::S390x => ("v", 32),
        }
    }

    /// Names of the extra control/status registers, in the order [`NativeSnapshot::extra`] holds them.
    pub fn extra_names(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["mxcsr", "fcw", "fsw"],
            Arch::Aarch64 => &["fpsr", "fpcr"],
            Arch::Riscv64 => &RISCV64_EXTRA,
            Arch::S390x => &S390X_EXTRA,
        }
    }

    /// The names of the PC, SP and flags registers; the flags name is empty on riscv64, which
    /// has no flags register. s390x's are the PSW's address and mask (with the condition code).
    pub fn pc_sp_flags_names(self) -> [&'static str; 3] {
        match self {
            Arch::X86_64 => ["rip", "rsp", "rflags"],
            Arch::Aarch64 => ["pc", "sp", "nzcv"],
            Arch::Riscv64 => ["pc", "sp", ""],
            Arch::S390x => ["pswa", "r15", "pswm"],
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
    /// Flags (`rflags` / `nzcv` / the PSW mask; 0 on riscv64).
    pub flags: u64,
    /// General-purpose registers, named by [`Arch::gpr_names`].
    pub gprs: Vec<u64>,
    /// Vector registers (`xmm*` / `q*` / s390x's `v*`), 128 bits each; riscv64's v0–v31 are
    /// `vlenb / 16` of these each, element 0 in the first (empty without V).
    pub vregs: Vec<u128>,
    /// Control/status registers, named by [`Arch::extra_names`].
    pub extra: Vec<u64>,
    /// The Wasm PC of the faulting instruction, from the module's address map.
    pub wasm_pc: Option<u32>,
    /// Frame-pointer walk of the stack, innermost first.
    pub stack: Vec<NativeFrame>,
}

/// A register's value: 64 or 128 bits wide, or a riscv64 vector register of `vlenb` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterValue {
    /// A 64-bit register.
    U64(u64),
    /// A 128-bit vector register.
    U128(u128),
    /// A wider vector register, as 128-bit chunks from element 0 on.
    Wide(Vec<u128>),
}

impl RegisterValue {
    /// Whether this is a vector register (shown on request).
    pub fn is_vector(&self) -> bool {
        !matches!(self, RegisterValue::U64(_))
    }

    /// The value in 64-bit words, least significant first.
    pub fn words(&self) -> Vec<u64> {
        match self {
            RegisterValue::U64(v) => vec![*v],
            RegisterValue::U128(v) => vec![*v as u64, (*v >> 64) as u64],
            RegisterValue::Wide(chunks) => {
                chunks.iter().flat_map(|v| [*v as u64, (*v >> 64) as u64]).collect()
            }
        }
    }
}

impl std::fmt::Display for RegisterValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterValue::U64(v) => write!(f, "{v:#018x}"),
            RegisterValue::U128(v) => write!(f, "{v:#034x}"),
            RegisterValue::Wide(chunks) => {
                f.write_str("0x")?;
                chunks.iter().rev().try_for_each(|v| write!(f, "{v:032x}"))
            }
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
        if !flags.is_empty() {
            out.push((flags.to_string(), RegisterValue::U64(self.flags)));
        }
        let (prefix, _) = self.arch.vector_registers();
        let per_register = match self.arch {
            Arch::Riscv64 => self.extra.get(RISCV64_VLENB).map_or(1, |vlenb| (*vlenb as usize / 16).max(1)),
            _ => 1,
        };
        for (i, chunks) in self.vregs.chunks(per_register).enumerate() {
            let value = match chunks {
                [one] => RegisterValue::U128(*one),
                many => RegisterValue::Wide(many.to_vec()),
            };
            out.push((format!("{prefix}{i}"), value));
        }
        let extra_names = self.arch.extra_names();
        for (i, v) in self.extra.iter().enumerate() {
            let name = extra_names.get(i).map_or_else(|| format!("extra{i}"), |n| (*n).to_string());
            out.push((name, RegisterValue::U64(*v)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(arch: Arch, gprs: usize, vregs: Vec<u128>, extra: Vec<u64>) -> NativeSnapshot {
        NativeSnapshot {
            arch,
            signal: Signal::Ill,
            si_code: 2,
            fault_address: None,
            pc: 0x1000,
            sp: 0x2000,
            fp: 0x2010,
            flags: 0x0705_1000_8000_0000 | 2 << 44,
            gprs: (0..gprs as u64).collect(),
            vregs,
            extra,
            wasm_pc: Some(7),
            stack: Vec::new(),
        }
    }

    #[test]
    fn riscv64_vector_registers_are_vlenb_wide() {
        // VLEN 256: each of v0–v31 is two 128-bit chunks, element 0 first.
        let mut extra = vec![0; 32];
        extra.extend([0x20, 32, 0x50, 3, 0, 5]);
        let vregs = (0..64).map(|i| i as u128).collect();
        let registers = snapshot(Arch::Riscv64, 31, vregs, extra).registers();
        let names: Vec<&str> = registers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..5], ["ra", "sp", "gp", "tp", "t0"]);
        assert_eq!(names[30], "t6");
        assert_eq!(names[31], "pc", "no flags register");
        assert_eq!(names[32], "v0");
        assert_eq!(registers[33].1, RegisterValue::Wide(vec![2, 3]));
        assert_eq!(registers[33].1.to_string(), format!("0x{:032x}{:032x}", 3, 2));
        assert_eq!(names[64], "f0");
        assert_eq!(&names[96..], ["fcsr", "vlenb", "vtype", "vl", "vstart", "vcsr"]);
        // Without V: no vector registers and no vector control state.
        let registers = snapshot(Arch::Riscv64, 31, Vec::new(), vec![0; 33]).registers();
        assert_eq!(registers.len(), 31 + 1 + 33);
        assert_eq!(registers.last().map(|(n, _)| n.as_str()), Some("fcsr"));
    }

    #[test]
    fn s390x_registers_are_named_as_debuggers_name_them() {
        let registers = snapshot(Arch::S390x, 16, vec![1; 32], vec![0; 33]).registers();
        let names: Vec<&str> = registers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..2], ["r0", "r1"]);
        assert_eq!(&names[15..18], ["r15", "pswa", "pswm"]);
        assert_eq!(&names[18..20], ["v0", "v1"]);
        assert_eq!(&names[50..53], ["fpc", "acr0", "acr1"]);
        assert_eq!(names.last(), Some(&"f15"));
    }
}
