//! One recording: build the engine and WASI context, link the recording shims, run the
//! module's entry point, and write every host call and the way the run ended to a trace.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use wasmtime::{Linker, Module, Store, Val, ValType};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};
use wiggle::{GuestMemory, GuestPtr};
use wtrace_replayer::engine::{EngineSettings, WASMTIME_VERSION};
use wtrace_replayer::entry::{self, EntryError};
use wtrace_replayer::native::NativeCapturer;
use wtrace_replayer::outcome::{self, RunEnd};
use wtrace_traces::{
    EnvVar, Event, Header, HostCall, ImportId, ImportName, MemoryBytes, ModuleEntry, Outcome, Preopen,
    RunInfo, TraceError, TraceWriter, Value, WriterOptions,
};

use crate::error::RecordError;
use crate::host_funcs::{self, HostFunc};
use crate::wasi;
use crate::write_sets::{self, Blocking, StringSizes, WriteSet};

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
        self.engine.apply_flag(flag).map_err(|e| RecordError::Engine(e.0))?;
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

/// Store data of a recording.
pub(crate) struct RecordState {
    pub(crate) wasi: WasiP1Ctx,
    writer: TraceWriter,
    sizes: StringSizes,
    /// Reused for every host call so the per-call path does not allocate.
    scratch: HostCall,
    regions: Vec<(u32, u32)>,
    /// The first write error; the run is stopped with it.
    failed: Option<TraceError>,
    /// With [`RecordOptions::audit_writes`], what the audit found so far.
    pub(crate) audit: Option<Vec<AuditEntry>>,
    /// The guest's `memory` export, once a host call has looked it up.
    pub(crate) memory: Option<wasmtime::Extern>,
}

/// Stops the guest when the trace cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("the trace could not be written")]
struct WriteFailed;

impl RecordState {
    /// Flushes before calls that may block for a long time (reading stdin, polling), so a
    /// recorder killed while it waits has written every event before the call.
    pub(crate) fn before_call(&mut self, row: &WriteSet, args: &[u64]) -> wasmtime::Result<()> {
        let blocking = match row.blocking {
            Blocking::Never => false,
            Blocking::OnStdin => args.first() == Some(&0),
            Blocking::Always => true,
        };
        if blocking && let Err(error) = self.writer.flush() {
            self.failed = Some(error);
            return Err(WriteFailed.into());
        }
        Ok(())
    }

    /// Appends the host call that just returned `result`.
    pub(crate) fn record_call(
        &mut self,
        row: &WriteSet,
        import: ImportId,
        args: &[u64],
        params: &[Value],
        result: &wasmtime::Result<i32>,
        memory: &GuestMemory<'_>,
    ) -> wasmtime::Result<()> {
        let call = &mut self.scratch;
        call.import = import;
        call.params.clear();
        call.params.extend_from_slice(params);
        let ok = match result {
            Ok(errno) => {
                set_returned(&mut call.outcome, *errno);
                *errno == 0
            }
            Err(error) => {
                call.outcome = error_outcome(error);
                false
            }
        };
        let mut used = 0;
        if ok {
            self.regions.clear();
            write_sets::regions(row.writes, args, memory, self.sizes, &mut self.regions);
            used = copy_regions(&self.regions, memory, &mut call.writes);
        }
        call.writes.truncate(used);
        self.regions.clear();
        if result.is_ok() {
            write_sets::regions(row.reads, args, memory, self.sizes, &mut self.regions);
        }
        let used = copy_regions(&self.regions, memory, &mut call.reads);
        call.reads.truncate(used);
        self.append_scratch()
    }

    /// Appends a call of a host function recorded by the generic capture: every run of bytes
    /// that differs between `before` and `after` is a write.
    pub(crate) fn record_generic(
        &mut self,
        import: ImportId,
        params: &[Value],
        result: Result<&[Value], &wasmtime::Error>,
        before: &[u8],
        after: &[u8],
    ) -> wasmtime::Result<()> {
        let call = &mut self.scratch;
        call.import = import;
        call.params.clear();
        call.params.extend_from_slice(params);
        call.outcome = match result {
            Ok(values) => Outcome::Returned(values.to_vec()),
            Err(error) => error_outcome(error),
        };
        call.writes.clear();
        for (offset, len) in host_funcs::changed_runs(before, after) {
            call.writes.push(MemoryBytes {
                memory: 0,
                offset: offset as u64,
                bytes: after[offset..offset + len].to_vec(),
            });
        }
        call.reads.clear();
        self.append_scratch()
    }

    /// Checks that every byte that differs between `before` and `after` lies in a write the
    /// scratch event (the call just recorded) holds.
    pub(crate) fn audit_writes(&mut self, row: &WriteSet, before: &[u8], after: &[u8]) {
        let call = &self.scratch;
        let Some(audit) = self.audit.as_mut() else { return };
        let index = audit.iter().position(|e| e.function == row.name).unwrap_or_else(|| {
            audit.push(AuditEntry { function: row.name, calls: 0, missed: Vec::new() });
            audit.len() - 1
        });
        let entry = &mut audit[index];
        entry.calls += 1;
        let covered = |at: usize| {
            call.writes.iter().any(|w| (w.offset as usize..w.offset as usize + w.bytes.len()).contains(&at))
        };
        let mut run: Option<(u64, u64)> = None;
        for (at, (a, b)) in before.iter().zip(after).enumerate() {
            if a != b && !covered(at) {
                match &mut run {
                    Some((start, len)) if *start + *len == at as u64 => *len += 1,
                    _ => {
                        entry.missed.extend(run.take());
                        run = Some((at as u64, 1));
                    }
                }
            }
        }
        entry.missed.extend(run);
    }

    /// Appends a `proc_exit` call.
    pub(crate) fn record_exit(
        &mut self,
        import: ImportId,
        code: i32,
        error: &wasmtime::Error,
    ) -> wasmtime::Result<()> {
        let call = &mut self.scratch;
        call.import = import;
        call.params.clear();
        call.params.push(Value::I32(code));
        call.outcome = error_outcome(error);
        call.writes.clear();
        call.reads.clear();
        self.append_scratch()
    }

    fn append_scratch(&mut self) -> wasmtime::Result<()> {
        match self.writer.append_host_call(&self.scratch) {
            Ok(_) => Ok(()),
            Err(error) => {
                self.failed = Some(error);
                Err(WriteFailed.into())
            }
        }
    }
}

fn set_returned(outcome: &mut Outcome, errno: i32) {
    match outcome {
        Outcome::Returned(values) => {
            values.clear();
            values.push(Value::I32(errno));
        }
        other => *other = Outcome::Returned(vec![Value::I32(errno)]),
    }
}

fn error_outcome(error: &wasmtime::Error) -> Outcome {
    match error.downcast_ref::<I32Exit>() {
        Some(exit) => Outcome::Exited(exit.0),
        // The whole cause chain, outermost first, one cause a line: replay rebuilds the same
        // chain, so its report matches the recording's line for line.
        None => Outcome::Error(error.chain().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
    }
}

/// Copies the bytes of `regions` into `out`, reusing its buffers; returns how many entries
/// are in use. Regions outside memory are skipped.
fn copy_regions(regions: &[(u32, u32)], memory: &GuestMemory<'_>, out: &mut Vec<MemoryBytes>) -> usize {
    let mut used = 0;
    for &(offset, len) in regions {
        if len == 0 {
            continue;
        }
        let Ok(bytes) = memory.as_cow(GuestPtr::<[u8]>::new((offset, len))) else { continue };
        if let Some(span) = out.get_mut(used) {
            span.memory = 0;
            span.offset = u64::from(offset);
            span.bytes.clear();
            span.bytes.extend_from_slice(&bytes);
        } else {
            out.push(MemoryBytes { memory: 0, offset: u64::from(offset), bytes: bytes.into_owned() });
        }
        used += 1;
    }
    used
}

/// Captured stdout and stderr pipes.
type Captured = Option<(MemoryOutputPipe, MemoryOutputPipe)>;

/// The header of a recording of `binary` with these options.
fn header(options: &RecordOptions, binary: &[u8], imports: Vec<ImportName>, argv: &[String]) -> Header {
    Header::new(RunInfo {
        wasmtime_version: WASMTIME_VERSION.into(),
        target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        engine_config: options.engine.to_header(),
        created_unix_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        command_line: options.command_line.clone(),
        args: if options.invoke.is_some() { options.args.clone() } else { argv.to_vec() },
        env: options
            .env
            .iter()
            .map(|(name, value)| EnvVar { name: name.clone(), value: Some(value.clone()) })
            .collect(),
        preopens: options
            .dirs
            .iter()
            .map(|d| Preopen { host: d.host.display().to_string(), guest: d.guest.clone() })
            .collect(),
        invoke: options.invoke.clone(),
        modules: vec![ModuleEntry::new(options.module_name.clone(), binary)],
        imports,
    })
}

/// The guest's WASI context: arguments, environment, directories and stdio.
fn wasi_context(options: &RecordOptions, argv: &[String]) -> Result<(WasiP1Ctx, Captured), RecordError> {
    let mut builder = WasiCtxBuilder::new();
    builder.args(argv).envs(&options.env).allow_blocking_current_thread(true);
    for dir in &options.dirs {
        builder
            .preopened_dir(&dir.host, &dir.guest, FsPerms::ReadWrite)
            .map_err(|e| RecordError::Dir { path: dir.host.clone(), detail: format!("{e:#}") })?;
    }
    match &options.stdin {
        Stdin::Inherit => {
            builder.inherit_stdin();
        }
        Stdin::Bytes(bytes) => {
            builder.stdin(MemoryInputPipe::new(bytes.clone()));
        }
        Stdin::Empty => {}
    }
    let captured = match options.output {
        Output::Inherit => {
            builder.inherit_stdout().inherit_stderr();
            None
        }
        Output::Capture => {
            let (out, err) = (MemoryOutputPipe::new(usize::MAX), MemoryOutputPipe::new(usize::MAX));
            builder.stdout(out.clone()).stderr(err.clone());
            Some((out, err))
        }
    };
    Ok((builder.build_p1(), captured))
}

/// A WAT syntax error on one line: the message and where (`wat` adds a multi-line snippet).
pub(crate) fn one_line_wat_error(error: &wat::Error) -> String {
    let text = error.to_string();
    let mut lines = text.lines();
    let message = lines.next().unwrap_or_default().trim();
    let place = lines.find_map(|l| l.trim().strip_prefix("--> ")).and_then(|at| {
        let (rest, column) = at.rsplit_once(':')?;
        let (_, line) = rest.rsplit_once(':')?;
        Some((line, column))
    });
    match place {
        Some((line, column)) => format!("{message} at line {line}, column {column}"),
        None => message.to_string(),
    }
}

/// Records a run of `options.module` into a new trace at `trace_path`.
pub fn record(options: &RecordOptions, trace_path: &Path) -> Result<Recorded, RecordError> {
    let engine = options.engine.engine().map_err(|e| RecordError::Engine(e.0))?;
    let invalid = |detail: String| RecordError::InvalidModule { name: options.module_name.clone(), detail };
    let binary = wat::parse_bytes(&options.module).map_err(|e| invalid(one_line_wat_error(&e)))?.into_owned();
    let module = Module::new(&engine, &binary).map_err(|e| invalid(format!("{e:#}")))?;
    let imports: Vec<ImportName> = module
        .imports()
        .filter(|i| i.ty().func().is_some())
        .map(|i| ImportName { module: i.module().to_owned(), name: i.name().to_owned() })
        .collect();
    let mut argv = vec![options.module_name.clone()];
    argv.extend(options.args.iter().cloned());
    let (wasi, captured) = wasi_context(options, &argv)?;
    let io = |source| RecordError::Trace { path: trace_path.to_path_buf(), source };

    let header = header(options, &binary, imports.clone(), &argv);
    // zstd level 1: recording a run that reads a lot of data is bound by compressing it on the
    // second core, and level 1 compresses faster than 3 for about the same size on host calls.
    let writer_options = WriterOptions { level: 1, ..WriterOptions::default() };
    let writer = TraceWriter::create(trace_path, header, &[(0, &binary)], writer_options).map_err(io)?;
    let state = RecordState {
        wasi,
        writer,
        sizes: StringSizes::new(&argv, &options.env),
        scratch: HostCall::empty(),
        regions: Vec::new(),
        failed: None,
        audit: options.audit_writes.then(Vec::new),
        memory: None,
    };
    let mut linker = Linker::new(&engine);
    let import_id = |name: &str| {
        imports.iter().position(|i| i.module == wasi::MODULE && i.name == name).map(|i| ImportId(i as u32))
    };
    wasi::link(&mut linker, &import_id).map_err(|e| RecordError::Link(format!("{e:#}")))?;
    let host_import_id = |module: &str, name: &str| {
        imports.iter().position(|i| i.module == module && i.name == name).map(|i| ImportId(i as u32))
    };
    host_funcs::link(&mut linker, &options.host_funcs, &host_import_id)
        .map_err(|e| RecordError::Link(format!("{e:#}")))?;
    let mut store = Store::new(&engine, state);
    let native = NativeCapturer::install(&mut store, &module);

    let mut instance = None;
    let result =
        entry::run(&mut store, &linker, &module, options.invoke.as_deref(), &options.args, &mut instance);
    let (end, report) = match result {
        Ok(values) if options.invoke.is_some() => (RunEnd::Returned(values), None),
        Ok(_) => (RunEnd::Exited(0), None),
        Err(EntryError::Setup(message)) => return Err(RecordError::Link(message)),
        Err(EntryError::Run(error)) => {
            if let Some(failure) = store.data_mut().failed.take() {
                return Err(io(failure));
            }
            if let Some(exit) = error.downcast_ref::<I32Exit>() {
                (RunEnd::Exited(exit.0), None)
            } else {
                let mut trap = outcome::trap_from_error(&error, outcome::no_native_capture());
                let memory = instance.and_then(|i| i.get_memory(&mut store, "memory"));
                let memory = memory.map(|m| (m.data_ptr(&store) as u64, m.data(&store)));
                native.complete(&mut trap, memory);
                let report = outcome::wasmtime_report(&error, &options.module_name);
                (RunEnd::Trapped(Box::new(trap)), Some(report))
            }
        }
    };

    let state = store.into_data();
    let audit = state.audit.unwrap_or_default();
    let mut writer = state.writer;
    let last = match &end {
        RunEnd::Exited(code) => Event::Exit { code: *code },
        RunEnd::Trapped(trap) => Event::Trap(trap.clone()),
        RunEnd::Returned(values) => Event::Returned { values: values.clone() },
    };
    writer.append(&last).map_err(io)?;
    // A trap is flushed at once so that nothing is lost if the process dies after it.
    writer.flush().map_err(io)?;
    let summary = writer.finish().map_err(io)?;
    let (stdout, stderr) =
        captured.map(|(out, err)| (out.contents().to_vec(), err.contents().to_vec())).unwrap_or_default();
    Ok(Recorded { end, report, events: summary.events, stdout, stderr, audit })
}
