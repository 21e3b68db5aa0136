//! One recording: build the engine and WASI context, link the recording shims, run the
//! module's entry point, and write every host call and the way the run ended to a trace.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::{Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wtrace_runtime::engine::EpochTicker;
use wtrace_runtime::imports::Attribution;
use wtrace_runtime::outcome::Ended;
use wtrace_runtime::wasi::StringSizes;
use wtrace_runtime::{EngineSettings, NativeCapturer, RunEnd, WASMTIME_VERSION, entry, module};
use wtrace_traces::{
    EnvVar, Event, Header, HostCall, ImportName, Interruption, ModuleEntry, ModuleStore, Preopen, RunInfo,
    TraceError, TraceWriter, WriterOptions,
};

use crate::error::RecordError;
use crate::host_funcs;
use crate::options::{Output, RecordOptions, Recorded, Stdin};
use crate::state::{RecordState, StdioDescriptors};
use crate::wasi;

/// Captured stdout and stderr pipes.
type Captured = Option<(MemoryOutputPipe, MemoryOutputPipe)>;

/// What the captured pipes hold (nothing when output was not captured).
fn captured_output(captured: Captured) -> (Vec<u8>, Vec<u8>) {
    captured.map(|(out, err)| (out.contents().to_vec(), err.contents().to_vec())).unwrap_or_default()
}

/// The header of a recording of `binary` with these options.
fn header(
    options: &RecordOptions,
    settings: &EngineSettings,
    module: ModuleEntry,
    imports: Vec<ImportName>,
    argv: &[String],
) -> Header {
    Header::new(RunInfo {
        wasmtime_version: WASMTIME_VERSION.into(),
        target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        engine_config: settings.to_header(),
        created_unix_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        command_line: options.command_line.clone(),
        args: if options.invoke.is_some() { options.args.clone() } else { argv.to_vec() },
        // Names only: the values the guest read are in its `environ_get` call, and replay needs
        // no more; a value it never read is not kept.
        env: options.env.iter().map(|(name, _)| EnvVar { name: name.clone(), value: None }).collect(),
        preopens: options
            .dirs
            .iter()
            .map(|d| Preopen { host: d.host.display().to_string(), guest: d.guest.clone() })
            .collect(),
        invoke: options.invoke.clone(),
        modules: vec![module],
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

/// Records a run of `options.module` into a new trace at `trace_path`.
pub fn record(options: &RecordOptions, trace_path: &Path) -> Result<Recorded, RecordError> {
    // Epoch checks let a Ctrl-C stop a guest that computes, and let buffered events be
    // handed over while it does (see `interrupt`).
    let settings = options.engine.interruptible();
    let engine = settings.engine().map_err(RecordError::Settings)?;
    let binary = module::to_binary(&options.module_name, &options.module)?;
    // One hash serves the cache key and the trace header.
    let sha256 = wtrace_traces::sha256(&binary);
    let mut compiled =
        module::compile(&engine, &settings, &options.module_name, &binary, sha256, &options.compile)?;
    let store = options.module_store.as_ref().map(ModuleStore::at);
    let recorded = std::thread::scope(|scope| {
        // The module goes into the trace directory's store beside the guest, not before it.
        let storing = store.as_ref().map(|store| scope.spawn(|| store.put(&binary, &sha256)));
        let target = Target { settings: &settings, engine: &engine, module: &compiled.module };
        let recorded = run(options, trace_path, &target, &binary, sha256, store.is_none());
        let stored = storing.map(|handle| handle.join().unwrap_or(Err(TraceError::WriterGone)));
        match stored {
            Some(Err(source)) => Err(RecordError::Trace { path: trace_path.to_path_buf(), source }),
            _ => recorded,
        }
    });
    compiled.finish_caching();
    recorded.map(|recorded| Recorded { compiled: compiled.lookup, ..recorded })
}

/// Ends a recording whose trace could not take an event: what was recorded stays, closed by
/// an `interrupted` event that gives the reason and where the guest was, when the writer can
/// still write it (the event was too large); otherwise the file keeps what reached it, which
/// every reader recovers (the disk is full).
fn finish_failed(
    state: RecordState,
    failure: TraceError,
    captured: Captured,
    trace_path: &Path,
) -> Result<Recorded, RecordError> {
    let (frames, in_host_call) = state.failed_in.unwrap_or_default();
    let interruption = Interruption::failed(failure.to_string(), frames, in_host_call);
    let mut writer = state.writer;
    let finished =
        writer.append(&Event::Interrupted(Box::new(interruption.clone()))).and_then(|_| writer.finish());
    let (stdout, stderr) = captured_output(captured);
    match finished {
        Ok(summary) => Ok(Recorded {
            end: RunEnd::Interrupted(Box::new(interruption)),
            report: None,
            events: summary.events,
            stdout,
            stderr,
            audit: state.audit.unwrap_or_default(),
            compiled: wtrace_runtime::cache::Lookup::Off,
        }),
        Err(_) => Err(RecordError::Trace { path: trace_path.to_path_buf(), source: failure }),
    }
}

/// What a recording runs: the engine, built from `settings`, and the module compiled for it.
struct Target<'a> {
    settings: &'a EngineSettings,
    engine: &'a wasmtime::Engine,
    module: &'a wasmtime::Module,
}

/// Runs the compiled module and writes the trace; `embed` puts the module's bytes in it.
fn run(
    options: &RecordOptions,
    trace_path: &Path,
    target: &Target<'_>,
    binary: &[u8],
    sha256: [u8; 32],
    embed: bool,
) -> Result<Recorded, RecordError> {
    let Target { settings, engine, module } = *target;
    let imports: Vec<ImportName> = module
        .imports()
        .filter(|i| i.ty().func().is_some())
        .map(|i| ImportName { module: i.module().to_owned(), name: i.name().to_owned() })
        .collect();
    let mut argv = vec![options.module_name.clone()];
    argv.extend(options.args.iter().cloned());
    let (wasi, captured) = wasi_context(options, &argv)?;
    let io = |source| RecordError::Trace { path: trace_path.to_path_buf(), source };

    let entry = ModuleEntry::with_hash(options.module_name.clone(), binary.len() as u64, sha256);
    let header = header(options, settings, entry, imports.clone(), &argv);
    // zstd level 1: recording a run that reads a lot of data is bound by compressing what it
    // read, and level 1 compresses faster than 3 for about the same size on host calls. When
    // the guest reads faster than that, batches waiting behind another are compressed at
    // level -5 (about twice as fast, frames about a third larger) so the guest waits less.
    let writer_options = WriterOptions { level: 1, catch_up_level: Some(-5), ..WriterOptions::default() };
    let embedded: &[(usize, &[u8])] = if embed { &[(0, binary)] } else { &[] };
    let writer = TraceWriter::create(trace_path, header, embedded, writer_options).map_err(io)?;
    let state = RecordState {
        wasi,
        writer,
        sizes: StringSizes::new(&argv, &options.env),
        scratch: HostCall::empty(),
        regions: Vec::new(),
        failed: None,
        audit: options.audit_writes.then(Vec::new),
        memory: None,
        stdio: StdioDescriptors::default(),
        interrupt: options.interrupt.clone(),
        interruption: None,
        failed_in: None,
        ticks: Arc::default(),
        last_event_tick: 0,
    };
    let mut linker = Linker::new(engine);
    // A name imported more than once is attributed call by call, from the module's bytes.
    let bytes: Option<Arc<[u8]>> = Attribution::needs_module(&imports).then(|| binary.into());
    let attribution = |module: &str, name: &str| {
        let name = ImportName { module: module.into(), name: name.into() };
        Attribution::of(&imports, &name, bytes.as_ref())
    };
    wasi::link(&mut linker, &|name| attribution(wtrace_runtime::wasi::MODULE, name))
        .map_err(|e| RecordError::Internal(format!("{e:#}")))?;
    host_funcs::link(&mut linker, &options.host_funcs, &attribution)
        .map_err(|e| RecordError::Internal(format!("{e:#}")))?;
    let mut store = Store::new(engine, state);
    let native = NativeCapturer::install(&mut store, module);

    let run = {
        let ticker = EpochTicker::drive(&mut store, RecordState::on_tick);
        store.data_mut().ticks = ticker.ticks();
        entry::run(&mut store, &linker, module, options.invoke.as_deref(), &options.args)?
    };
    if let Some(failure) = store.data_mut().failed.take() {
        return finish_failed(store.into_data(), failure, captured, trace_path);
    }
    let ended = match store.data_mut().interruption.take() {
        Some(interruption) => Ended { end: RunEnd::Interrupted(Box::new(interruption)), report: None },
        None => run.ended(&mut store, options.invoke.is_some(), &native, &options.module_name),
    };

    let state = store.into_data();
    let audit = state.audit.unwrap_or_default();
    let mut writer = state.writer;
    let last = match &ended.end {
        RunEnd::Exited(code) => Event::Exit { code: *code },
        RunEnd::Trapped(trap) => Event::Trap(trap.clone()),
        RunEnd::Returned(values) => Event::Returned { values: values.clone() },
        RunEnd::Interrupted(interruption) => Event::Interrupted(interruption.clone()),
    };
    writer.append(&last).map_err(io)?;
    // A trap is flushed at once so that nothing is lost if the process dies after it.
    writer.flush().map_err(io)?;
    let summary = writer.finish().map_err(io)?;
    let (stdout, stderr) = captured_output(captured);
    Ok(Recorded {
        end: ended.end,
        report: ended.report,
        events: summary.events,
        stdout,
        stderr,
        audit,
        compiled: wtrace_runtime::cache::Lookup::Off,
    })
}
