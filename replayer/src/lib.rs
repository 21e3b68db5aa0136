//! Replay: deterministic re-execution of a trace with every import answered from the
//! recording, divergence detection, and the assertions tests make on a replay.
#![forbid(unsafe_code)]

mod assert;
pub mod debug;
mod error;
mod replay;
mod shims;
mod state;

pub use assert::TrapAssert;
pub use error::ReplayError;
pub use replay::{
    Divergence, Replay, ReplayOptions, ends_match, moved_trap, recorded_end, recorded_settings, replay,
};
pub use state::OutputSink;
pub use wtrace_runtime::RunEnd;
pub use wtrace_runtime::native::RegisterComparison;
