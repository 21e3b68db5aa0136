//! wtrace: a record/replay trace debugger for WebAssembly on Wasmtime.
//!
//! This library is a thin facade over the workspace crates, so tests and tools can use one
//! dependency. The trace format lives in [`traces`]; open a trace with [`Trace::open`].
//!
//! Recording a run from a test and asserting on its replay:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use wtrace::{RecordOptions, Trace, TrapCode};
//!
//! let options = RecordOptions::from_file("tests/fixtures/traps/oob_memory.wat")?;
//! wtrace::record(&options, "oob.zst".as_ref())?;
//!
//! let trace = Trace::open("oob.zst")?;
//! let run = wtrace::replay(&trace)?;        // deterministic, no host access
//! run.assert_matched();
//! run.assert_trap(TrapCode::MemoryOutOfBounds).in_function("parse_header").at_wasm_pc(0x39);
//! assert_eq!(run.stdout, b"");
//! for event in trace.events() {
//!     let (seq, event) = event?;
//!     println!("{seq}: {:?}", event.kind());
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod exit_codes;

pub use wtrace_recorder::{RecordError, RecordOptions, Recorded, record};
pub use wtrace_replayer::{Divergence, Replay, ReplayError, ReplayOptions, TrapAssert};
pub use wtrace_runtime::{EngineSettings, RunEnd, SetupError};

pub use wtrace_recorder as recorder;
pub use wtrace_replayer as replayer;
pub use wtrace_runtime as runtime;
pub use wtrace_traces as traces;
pub use wtrace_traces::{
    Completeness, Event, EventKind, Frame, Header, HostCall, Outcome, Trace, TraceError, Trap, TrapCode,
    Value,
};
pub use wtrace_tui as tui;

/// Replays `trace` with the guest's output captured: the usual call from a test. See
/// [`replayer::replay`] for the other options.
pub fn replay(trace: &Trace) -> Result<Replay, ReplayError> {
    wtrace_replayer::replay(trace, ReplayOptions::default())
}
