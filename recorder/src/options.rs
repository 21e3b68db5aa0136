//! What a recording is asked to do ([`RecordOptions`]) and what it reports back ([`Recorded`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::{Val, ValType};
use wtrace_runtime::cache::Lookup;
use wtrace_runtime::module::CompileOptions;
use wtrace_runtime::{EngineSettings, RunEnd};

use crate::error::RecordError;
use crate::host_funcs::HostFunc;

/// Where the guest's standard input comes from.
#[derive(Debug, Clone, Default)]
pub enum Stdin {
    /// The recorder's own standard input.
    Inherit,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// End of file at once.
    #[default]
    Empty,
}

/// Where the guest's standard output and error go while recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Output {
    /// To the recorder's own stdout and stderr, as `wasmtime run` does.
    Inherit,
    /// Into memory, returned in [`Recorded`].
    #[default]
    Capture,
}

/// A directory the guest may open: the host path and the name the guest sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    /// Directory on the host.
    pub host: PathBuf,
    /// Path the guest opens it as.
    pub guest: String,
}

/// Everything a recording needs.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    /// Name of the module as shown in reports and stored in the trace (usually its file name).
    pub module_name: String,
    /// The module's bytes: binary Wasm or WAT text.
    pub module: Vec<u8>,
    /// Arguments after the program name; with [`RecordOptions::invoke`], the function's arguments.
    pub args: Vec<String>,
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Preopened directories.
    pub dirs: Vec<Dir>,
    /// Call this export instead of `_start`.
    pub invoke: Option<String>,
    /// Wasm features and limits.
    pub engine: EngineSettings,
    /// Standard input.
    pub stdin: Stdin,
    /// Standard output and error.
    pub output: Output,
    /// The command line that started the recording, stored in the header.
    pub command_line: Vec<String>,
    /// Checks every WASI call's recorded writes against a diff of all of linear memory taken
    /// around the call, and reports bytes the host changed that the write-set table missed
    /// (in [`Recorded::audit`]). Slow: it copies the whole memory twice per call. For tests.
    pub audit_writes: bool,
    /// Host functions beyond WASI the module may import, recorded by the generic capture.
    pub host_funcs: Vec<HostFunc>,
    /// Where compiled code is cached, and who hears when a module must be compiled.
    pub compile: CompileOptions,
    /// Keep the module's bytes in this module store (a trace directory's `modules/`) and have
    /// the trace reference them by hash; `None` embeds them, so the trace is self-contained.
    pub module_store: Option<PathBuf>,
    /// Raised (by a signal handler, another thread) to stop the guest and end the recording
    /// with an `interrupted` event; clone it before recording to keep a handle.
    pub interrupt: crate::Interrupt,
}

impl RecordOptions {
    /// Options to record the module file at `path` (binary Wasm or WAT), named by its file
    /// name, with no arguments, an empty environment and stdin, and output captured.
    pub fn from_file(path: impl AsRef<Path>) -> std::io::Result<RecordOptions> {
        let path = path.as_ref();
        Ok(RecordOptions {
            module_name: path
                .file_name()
                .map_or_else(|| "module".into(), |n| n.to_string_lossy().into_owned()),
            module: std::fs::read(path)?,
            ..RecordOptions::default()
        })
    }

    /// Adds a guest argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Preopens host directory `host` as `guest`.
    #[must_use]
    pub fn dir(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.dirs.push(Dir { host: host.into(), guest: guest.into() });
        self
    }

    /// Gives the guest these bytes on stdin.
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Stdin::Bytes(bytes.into());
        self
    }

    /// Calls the exported function `name` (with the arguments as its parameters) instead of `_start`.
    #[must_use]
    pub fn invoke(mut self, name: impl Into<String>) -> Self {
        self.invoke = Some(name.into());
        self
    }

    /// Provides the import `module::name` with `func`; see [`HostFunc`]. Its calls are recorded
    /// by diffing all of linear memory, which is correct but slow.
    #[must_use]
    pub fn host_func(
        mut self,
        module: impl Into<String>,
        name: impl Into<String>,
        params: &[ValType],
        results: &[ValType],
        func: impl Fn(&mut [u8], &[Val], &mut [Val]) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.host_funcs.push(HostFunc {
            module: module.into(),
            name: name.into(),
            params: params.to_vec(),
            results: results.to_vec(),
            func: Arc::new(func),
        });
        self
    }

    /// Applies a `-W` flag as `wasmtime run` spells it (e.g. `threads=y`).
    pub fn wasm_flag(mut self, flag: &str) -> Result<Self, RecordError> {
        self.engine.apply_flag(flag).map_err(RecordError::Settings)?;
        Ok(self)
    }
}

/// The result of a recording.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// How the run ended.
    pub end: RunEnd,
    /// For a trap, the report `wasmtime run` prints.
    pub report: Option<String>,
    /// Events written.
    pub events: u64,
    /// Captured stdout (with [`Output::Capture`]).
    pub stdout: Vec<u8>,
    /// Captured stderr (with [`Output::Capture`]).
    pub stderr: Vec<u8>,
    /// With [`RecordOptions::audit_writes`]: each WASI function called, in order of first call,
    /// with the bytes it changed that its recorded writes did not cover (none when the table
    /// is right).
    pub audit: Vec<AuditEntry>,
    /// Whether the module's compiled code came from the cache.
    pub compiled: Lookup,
}

/// What [`RecordOptions::audit_writes`] found for one WASI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The function.
    pub function: &'static str,
    /// Calls made.
    pub calls: u64,
    /// `(address, length)` of changed bytes outside the recorded writes.
    pub missed: Vec<(u64, u64)>,
}
