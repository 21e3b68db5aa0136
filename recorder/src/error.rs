//! Why a recording could not be made or finished.

use std::path::PathBuf;

use wtrace_traces::TraceError;

/// Why a recording could not be made or finished. A guest that traps or exits non-zero is
/// not an error: it is a recorded outcome.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The engine settings were rejected.
    #[error("{0}")]
    Engine(String),
    /// The module is not valid Wasm or WAT.
    #[error("`{name}` is not a valid WebAssembly module: {detail}")]
    InvalidModule {
        /// Module name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A preopened directory cannot be opened.
    #[error("cannot open directory {path}: {detail}", path = .path.display())]
    Dir {
        /// Host path.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The module cannot be linked or started as asked (unknown import, unknown export).
    #[error("{0}")]
    Link(String),
    /// The trace could not be written.
    #[error("cannot write trace {path}: {source}", path = .path.display())]
    Trace {
        /// Trace path.
        path: PathBuf,
        /// The write error.
        source: TraceError,
    },
}
