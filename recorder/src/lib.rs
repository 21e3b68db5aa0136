//! Recording: runs a module on Wasmtime with WASI preview 1, wraps every import in a
//! recording shim, captures the native register file at signal-based traps, and streams host
//! calls and the run's end to a trace.
#![forbid(unsafe_code)]

mod error;
mod host_funcs;
mod interrupt;
mod options;
mod record;
mod state;
mod wasi;

pub use error::RecordError;
pub use host_funcs::{HostFn, HostFunc};
pub use interrupt::{Interrupt, TICK};
pub use options::{AuditEntry, Dir, Output, RecordOptions, Recorded, Stdin};
pub use record::record;
