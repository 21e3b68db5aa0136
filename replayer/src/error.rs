//! Why a replay could not run. A replay that ran and diverged is not an error: it is a
//! [`crate::Replay`] with a [`crate::Divergence`].

use wtrace_runtime::{SettingError, SetupError};
use wtrace_traces::TraceError;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The trace cannot be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The trace was recorded with another Wasmtime, whose machine code and stack depths may
    /// differ.
    #[error(
        "the trace was recorded with Wasmtime {recorded}, this wtrace runs Wasmtime {running}; machine code and stack depths may differ"
    )]
    WasmtimeVersion {
        /// The recording's Wasmtime.
        recorded: String,
        /// This build's.
        running: &'static str,
    },
    /// The trace was recorded with engine settings this build cannot honour.
    #[error(transparent)]
    Settings(#[from] SettingError),
    /// The trace names no module.
    #[error("the trace names no module to replay")]
    NoModule,
    /// A module given to replay with is not the one recorded.
    #[error(
        "the module given is not the one recorded (`{recorded}`: sha256 {recorded_sha256}, given: {given_sha256})"
    )]
    ModuleMismatch {
        /// Name of the recorded module.
        recorded: String,
        /// Its hash.
        recorded_sha256: String,
        /// Hash of the module given.
        given_sha256: String,
    },
    /// The module cannot be run as the recording ran it.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// `ReplayOptions::timeout` ran out before the replay ended.
    #[error("the replay did not end within {}", describe_duration(*after))]
    TimedOut {
        /// The time limit.
        after: std::time::Duration,
    },
    /// The guest would have grown a linear memory past `ReplayOptions::max_memory`.
    #[error("the guest would grow its memory to {wanted} bytes, past the replay's limit of {max}")]
    MemoryLimit {
        /// The limit.
        max: usize,
        /// The size the guest asked for.
        wanted: usize,
    },
}

fn describe_duration(duration: std::time::Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
