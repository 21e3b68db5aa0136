//! Why a recording could not be made or finished.

use std::path::PathBuf;

use wtrace_runtime::{SettingError, SetupError};
use wtrace_traces::TraceError;

/// Why a recording could not be made or finished. A guest that traps or exits non-zero is
/// not an error: it is a recorded outcome.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The engine settings cannot be used (an unknown `-W` option, a combination Wasmtime
    /// rejects).
    #[error(transparent)]
    Settings(#[from] SettingError),
    /// The module cannot be run as asked; nothing of it ran.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A preopened directory cannot be opened.
    #[error("cannot open directory {path}: {detail}", path = .path.display())]
    Dir {
        /// Host path.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The trace could not be written.
    #[error("cannot write trace {path}: {source}", path = .path.display())]
    Trace {
        /// Trace path.
        path: PathBuf,
        /// The write error.
        source: TraceError,
    },
    /// Something that cannot fail did (a bug in wtrace).
    #[error("internal error: {0}")]
    Internal(String),
}
