//! Why a replay could not run. A replay that ran and diverged is not an error: it is a
//! [`crate::Replay`] with a [`crate::Divergence`].

use wtrace_traces::TraceError;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The trace cannot be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The trace needs an engine this build cannot provide.
    #[error("{0}")]
    Engine(String),
    /// The trace names no module.
    #[error("the trace names no module to replay")]
    NoModule,
    /// The module does not compile.
    #[error("the module cannot be compiled: {0}")]
    InvalidModule(String),
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
    #[error("{0}")]
    Setup(String),
}
