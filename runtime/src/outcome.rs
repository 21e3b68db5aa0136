//! How a run ended, in trace terms: turning the error Wasmtime returns from a call into a
//! recorded [`Trap`] (code, message, Wasm backtrace, fault address), and the report
//! `wasmtime run` prints for it. Recording and replay both use this, so a replayed trap
//! compares equal to the recorded one exactly when Wasmtime saw the same trap.

use wasmtime::Store;
use wtrace_traces::{Frame, Interruption, MissingReason, NativeCapture, StopCause, Trap, TrapCode, Value};

use crate::entry::Run;
use crate::native::NativeCapturer;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum RunEnd {
    /// The guest called `proc_exit`, or returned from `_start` (status 0).
    Exited(i32),
    /// The guest trapped, or a host function failed.
    Trapped(Box<Trap>),
    /// An `--invoke`d function returned these values.
    Returned(Vec<Value>),
    /// The recording was interrupted by a signal before the run ended.
    Interrupted(Box<Interruption>),
}

impl RunEnd {
    /// The process exit status a drop-in re-run reports: the guest's status, 134 for a trap
    /// (what `wasmtime run` exits with: the abort signal's 128 + 6), 0 for a return.
    pub fn exit_status(&self) -> i32 {
        match self {
            RunEnd::Exited(code) => *code,
            RunEnd::Trapped(_) => TRAP_EXIT_STATUS,
            RunEnd::Returned(_) => 0,
            RunEnd::Interrupted(interruption) => match interruption.cause {
                StopCause::Signal(signal) => 128 + signal,
                StopCause::Failed(_) => RECORDING_FAILED_STATUS,
            },
        }
    }

    /// One line for people: `exited with status 3`, `trapped: wasm trap: ...`.
    pub fn describe(&self) -> String {
        match self {
            RunEnd::Exited(code) => format!("exited with status {code}"),
            RunEnd::Trapped(trap) => {
                let at = trap.frames.first().map(describe_frame).unwrap_or_default();
                if at.is_empty() {
                    format!("trapped: {}", trap.message)
                } else {
                    format!("trapped: {} in {at}", trap.message)
                }
            }
            RunEnd::Returned(values) => {
                let values: Vec<String> = values.iter().map(ToString::to_string).collect();
                format!("returned [{}]", values.join(", "))
            }
            RunEnd::Interrupted(interruption) => {
                let at = interruption.frames.first().map(describe_frame).unwrap_or_default();
                let name = interruption.cause_name();
                if at.is_empty() {
                    format!("interrupted by {name}")
                } else {
                    format!("interrupted by {name} in {at}")
                }
            }
        }
    }
}

/// The error an exit shim returns to end the run: the guest called `proc_exit` with this
/// status. Recording and replay both return it, so both classify an exit the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("exit with status {0}")]
pub struct GuestExit(pub i32);

/// How a run ended, and for a trap the report `wasmtime run` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// How it ended.
    pub end: RunEnd,
    /// For a trap, the report `wasmtime run` prints.
    pub report: Option<String>,
}

impl Run {
    /// How the run ended: returned (with `invoked`), exited, or trapped — with the native
    /// state `native` captured and the bytes around a memory fault.
    pub fn ended<T>(
        self,
        store: &mut Store<T>,
        invoked: bool,
        native: &NativeCapturer,
        module_name: &str,
    ) -> Ended {
        let error = match self.result {
            Ok(values) if invoked => return Ended { end: RunEnd::Returned(values), report: None },
            Ok(_) => return Ended { end: RunEnd::Exited(0), report: None },
            Err(error) => error,
        };
        if let Some(exit) = error.downcast_ref::<GuestExit>() {
            return Ended { end: RunEnd::Exited(exit.0), report: None };
        }
        let mut trap = trap_from_error(&error, no_native_capture());
        let memory = self.instance.and_then(|i| i.get_memory(&mut *store, "memory"));
        native.complete(&mut trap, memory.map(|m| (m.data_ptr(&*store) as u64, m.data(&*store))));
        Ended { end: RunEnd::Trapped(Box::new(trap)), report: Some(wasmtime_report(&error, module_name)) }
    }
}

/// The exit status of a recording that failed part-way (and of its replay): wtrace's "an
/// output could not be written".
pub const RECORDING_FAILED_STATUS: i32 = 207;

/// The exit status for a trapped guest, as `wasmtime run` uses on Unix.
pub const TRAP_EXIT_STATUS: i32 = 134;

/// A function's name as people read it: `raw` demangled, or `<wasm function N>` without one.
pub fn function_name(raw: Option<&str>, index: u32) -> String {
    raw.map_or_else(|| format!("<wasm function {index}>"), readable_name)
}

/// `func_name at Wasm PC 0x1a3` for a frame, with Rust names demangled.
pub fn describe_frame(frame: &Frame) -> String {
    let name = function_name(frame.func_name.as_deref(), frame.func_index);
    match frame.module_offset {
        Some(pc) => format!("{name} at Wasm PC {pc:#x}"),
        None => name,
    }
}

/// The trap a failed call amounts to. `native` says why there is no register snapshot.
pub fn trap_from_error(error: &wasmtime::Error, native: NativeCapture) -> Trap {
    let (code, message) = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => (trap_code(*trap), trap.to_string()),
        None => (TrapCode::HostError, error.root_cause().to_string()),
    };
    let frames = error.downcast_ref::<wasmtime::WasmBacktrace>().map(frames_of).unwrap_or_default();
    let fault = error.chain().find_map(|cause| parse_wasm_fault(&cause.to_string()));
    Trap {
        code,
        message,
        frames,
        wasm_fault_address: fault.map(|(address, _)| address),
        memory_size: fault.map(|(_, size)| size),
        native,
        memory_window: None,
    }
}

/// The native state of a trap before [`NativeCapturer::complete`] fills it in.
pub fn no_native_capture() -> NativeCapture {
    NativeCapture::Missing(MissingReason::Unsupported)
}

/// A function name from the name section as people read it: Rust symbols demangled, without
/// their hash (`panic::parse_config`); other names as they are.
pub fn readable_name(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

/// The frames of a Wasm backtrace, innermost first.
pub fn frames_of(backtrace: &wasmtime::WasmBacktrace) -> Vec<Frame> {
    backtrace
        .frames()
        .iter()
        .map(|frame| Frame {
            module: 0,
            func_index: frame.func_index(),
            func_name: frame.func_name().map(str::to_owned),
            module_offset: frame.module_offset().and_then(|o| u32::try_from(o).ok()),
            func_offset: frame.func_offset().and_then(|o| u32::try_from(o).ok()),
            source: frame.symbols().iter().find_map(|symbol| {
                Some(wtrace_traces::SourceLocation {
                    file: symbol.file()?.to_owned(),
                    line: symbol.line().unwrap_or(0),
                    column: symbol.column().unwrap_or(0),
                })
            }),
        })
        .collect()
}

/// Parses Wasmtime's `memory fault at wasm address 0x10000 in linear memory of size 0x10000`.
/// Wasmtime attaches it to the error as context of a type it does not export, so its text is
/// the only public form.
fn parse_wasm_fault(text: &str) -> Option<(u64, u64)> {
    let rest = text.strip_prefix("memory fault at wasm address 0x")?;
    let (address, rest) = rest.split_once(' ')?;
    let size = rest.strip_prefix("in linear memory of size 0x")?;
    Some((u64::from_str_radix(address, 16).ok()?, u64::from_str_radix(size.trim(), 16).ok()?))
}

/// The trace's name for a Wasmtime trap.
pub fn trap_code(trap: wasmtime::Trap) -> TrapCode {
    use wasmtime::Trap as W;
    match trap {
        W::StackOverflow => TrapCode::StackOverflow,
        W::MemoryOutOfBounds => TrapCode::MemoryOutOfBounds,
        W::HeapMisaligned => TrapCode::HeapMisaligned,
        W::TableOutOfBounds => TrapCode::TableOutOfBounds,
        W::IndirectCallToNull => TrapCode::IndirectCallToNull,
        W::BadSignature => TrapCode::BadSignature,
        W::IntegerOverflow => TrapCode::IntegerOverflow,
        W::IntegerDivisionByZero => TrapCode::IntegerDivisionByZero,
        W::BadConversionToInteger => TrapCode::BadConversionToInteger,
        W::UnreachableCodeReached => TrapCode::UnreachableCodeReached,
        W::Interrupt => TrapCode::Interrupt,
        W::OutOfFuel => TrapCode::OutOfFuel,
        W::NullReference => TrapCode::NullReference,
        W::ArrayOutOfBounds => TrapCode::ArrayOutOfBounds,
        W::AllocationTooLarge => TrapCode::AllocationTooLarge,
        W::CastFailure => TrapCode::CastFailure,
        W::AtomicWaitNonSharedMemory => TrapCode::AtomicWaitNonSharedMemory,
        other => TrapCode::Other(format!("{other:?}")),
    }
}

/// The report `wasmtime run` prints for a failed run: `Error: failed to run main module
/// ...`, then the numbered cause chain (the Wasm backtrace, the `wasm trap:` line), laid out
/// as the CLI's `anyhow` report lays it out, continuation lines indented under their cause.
pub fn wasmtime_report(error: &wasmtime::Error, module_name: &str) -> String {
    use std::fmt::Write as _;
    let mut text = format!("Error: failed to run main module `{module_name}`\n\nCaused by:\n");
    let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
    let numbered = causes.len() > 1;
    for (i, cause) in causes.iter().enumerate() {
        for (n, line) in cause.lines().enumerate() {
            let _ = match (n, numbered) {
                (0, true) => writeln!(text, "{i:>5}: {line}"),
                (_, false) => writeln!(text, "    {line}"),
                (_, true) => writeln!(text, "       {line}"),
            };
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_are_demangled_without_hash() {
        assert_eq!(readable_name("_ZN9wasi_tour4main17hde5e501c537f0e5dE"), "wasi_tour::main");
        assert_eq!(readable_name("parse_header"), "parse_header");
    }

    #[test]
    fn parses_wasmtime_fault_context() {
        assert_eq!(
            parse_wasm_fault("memory fault at wasm address 0x10000 in linear memory of size 0x10000"),
            Some((0x10000, 0x10000))
        );
        assert_eq!(parse_wasm_fault("wasm trap: out of bounds memory access"), None);
    }
}
