//! wtrace: a record/replay trace debugger for WebAssembly on Wasmtime.
//!
//! This library is a thin facade over the workspace crates, so tests and tools can use one
//! dependency. The trace format lives in [`traces`]; open a trace with [`Trace::open`].
#![forbid(unsafe_code)]

pub use wtrace_recorder as recorder;
pub use wtrace_replayer as replayer;
pub use wtrace_traces as traces;
pub use wtrace_traces::{
    Completeness, Event, EventKind, Frame, Header, HostCall, Outcome, Trace, TraceError, Trap, TrapCode,
    Value,
};
