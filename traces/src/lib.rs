//! The wtrace trace format, version 1: the event model, the writer, the reader with its index
//! and recovery scan, and repair.
//!
//! A trace is a sequence of zstd frames (see [`container`] for the layout): a header, the
//! embedded modules, data frames holding batches of events, an index, and the standard zstd
//! seekable-format seek table. `zstd -d trace.zst` prints the raw event stream, which
//! [`parse_event_stream`] reads.
//!
//! ```
//! use wtrace_traces::{Event, Header, RunInfo, Trace, TraceWriter, WriterOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("run.zst");
//! let header = Header::new(RunInfo::default());
//! let mut writer = TraceWriter::create(&path, header, &[], WriterOptions::default())?;
//! writer.append(&Event::Exit { code: 3 })?;
//! writer.finish()?;
//!
//! let trace = Trace::open(&path)?;
//! assert_eq!(trace.event(0)?, Event::Exit { code: 3 });
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod codec;
pub mod container;
pub mod display;
mod error;
mod event;
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod host_call_codec;
mod native;
mod pack;
pub mod private;
mod reader;
mod store;
mod writer;

pub use codec::parse_event_stream;
pub use container::{IndexEntry, ReadAt};
pub use error::{Result, TraceError};
pub use event::{
    Event, EventKind, Frame, HostCall, ImportId, Interruption, MemoryBytes, MissingReason, NativeCapture,
    Outcome, Printed, SourceLocation, StopCause, Stream, Trap, TrapCode, Value,
};
pub use header::{EnvVar, FormatVersion, Header, ImportName, ModuleEntry, Preopen, RunInfo, hex, sha256};
pub use native::{Arch, NativeFrame, NativeSnapshot, RegisterValue, Signal};
pub use pack::{PackOutcome, pack};
pub use reader::{Completeness, Events, RepairOutcome, Trace, repair};
pub use store::{ModuleStore, STORE_DIR};
pub use writer::{IN_FLIGHT_BATCHES, TraceWriter, WriteSummary, WriterOptions};

/// The format major version this build reads and writes.
pub const FORMAT_MAJOR: u16 = 1;
/// The format minor version this build writes. 1.1 added [`HostCall::printed`] and
/// [`Event::Interrupted`].
pub const FORMAT_MINOR: u16 = 1;
/// The version of wtrace recorded as a trace's writer.
pub const WRITER_VERSION: &str = env!("CARGO_PKG_VERSION");
