//! Recording: runs a module on Wasmtime with WASI preview 1, wraps every import in a
//! recording shim, captures the native register file at signal-based traps, and streams host
//! calls and the run's end to a trace.
#![forbid(unsafe_code)]

mod error;
mod host_funcs;
mod record;
mod wasi;
mod write_sets;

pub use error::RecordError;
pub use host_funcs::{HostFn, HostFunc};
pub use record::{AuditEntry, Dir, Output, RecordOptions, Recorded, Stdin, record};
pub use wasmtime;
pub use wtrace_replayer::engine::EngineSettings;
pub use wtrace_replayer::outcome::RunEnd;
