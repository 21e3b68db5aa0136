//! The store data of a replay: the recorded events still to come, where the guest's output
//! goes, and the first divergence.

use std::io::Write;

use wasmtime::Extern;
use wtrace_runtime::memory::KeepsMemoryExport;
use wtrace_traces::{Event, HostCall, ImportId, ImportName, Stream, Trace, TraceError, Value};

use crate::replay::Divergence;

/// Where replayed guest output goes.
#[derive(Default)]
pub enum OutputSink {
    /// Kept in memory and returned in [`Replay`].
    #[default]
    Capture,
    /// Dropped.
    Discard,
    /// Written as the guest writes it (e.g. to the real stdout).
    Stream(Box<dyn Write + Send>),
    /// Both written as the guest writes it and kept.
    Tee(Box<dyn Write + Send>),
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputSink::Capture => "Capture",
            OutputSink::Discard => "Discard",
            OutputSink::Stream(_) => "Stream",
            OutputSink::Tee(_) => "Tee",
        })
    }
}

/// Store data of a replay.
pub(crate) struct ReplayState {
    pub(crate) events: wtrace_traces::Events,
    /// The next recorded event, decoded into a reused buffer.
    pub(crate) event: Event,
    /// Its seq, or `None` when the recording has no more events.
    pub(crate) seq: Option<u64>,
    pub(crate) imports: Vec<ImportName>,
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
    pub(crate) host_calls: u64,
    pub(crate) divergence: Option<Divergence>,
    pub(crate) failed: Option<TraceError>,
    /// The guest's `memory` export, once a host call has looked it up.
    pub(crate) memory: Option<Extern>,
    /// In a debug replay, where to pause and how to answer while paused.
    pub(crate) debug: Option<Box<crate::debug::Control>>,
    /// Whether the trace says what each call printed (format 1.1 on); older traces print
    /// every `fd_write` to descriptors 1 and 2.
    pub(crate) printed_recorded: bool,
}

impl KeepsMemoryExport for ReplayState {
    fn memory_export(&mut self) -> &mut Option<Extern> {
        &mut self.memory
    }
}

/// An output sink plus what it captured.
pub(crate) struct Sink {
    pub(crate) to: OutputSink,
    pub(crate) captured: Vec<u8>,
    /// Bytes the guest printed, wherever they went.
    pub(crate) printed: u64,
}

impl Sink {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.printed += bytes.len() as u64;
        match &mut self.to {
            OutputSink::Capture => self.captured.extend_from_slice(bytes),
            OutputSink::Discard => {}
            OutputSink::Stream(out) => {
                // Output that cannot be shown (a closed pipe) must not change the replay.
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }
            OutputSink::Tee(out) => {
                let _ = out.write_all(bytes).and_then(|()| out.flush());
                self.captured.extend_from_slice(bytes);
            }
        }
    }
}

impl ReplayState {
    /// The state at the start of a replay of `trace`, reading `events`, the first one read.
    pub(crate) fn new(
        trace: &Trace,
        events: wtrace_traces::Events,
        stdout: OutputSink,
        stderr: OutputSink,
    ) -> Self {
        let header = trace.header();
        let mut state = ReplayState {
            events,
            event: Event::HostCall(HostCall::empty()),
            seq: None,
            imports: header.run.imports.clone(),
            stdout: Sink { to: stdout, captured: Vec::new(), printed: 0 },
            stderr: Sink { to: stderr, captured: Vec::new(), printed: 0 },
            host_calls: 0,
            divergence: None,
            failed: None,
            memory: None,
            debug: None,
            printed_recorded: header.format >= wtrace_traces::FormatVersion { major: 1, minor: 1 },
        };
        state.advance();
        state
    }

    /// The sink of `stream`.
    pub(crate) fn sink(&mut self, stream: Stream) -> &mut Sink {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Reads the next recorded event into `self.event`.
    pub(crate) fn advance(&mut self) {
        self.seq = match self.events.next_into(&mut self.event) {
            Some(Ok(seq)) => Some(seq),
            Some(Err(error)) => {
                self.failed = Some(error);
                None
            }
            None => None,
        };
    }

    pub(crate) fn describe_next(&self) -> String {
        if self.seq.is_none() {
            return "the end of the recording".into();
        }
        match &self.event {
            Event::HostCall(call) => describe_call(&self.imports, call.import, &call.params),
            Event::Trap(trap) => format!("a trap ({})", trap.message),
            Event::Exit { code } => format!("exit with status {code}"),
            Event::Returned { values } => {
                let values: Vec<String> = values.iter().map(ToString::to_string).collect();
                format!("return of [{}]", values.join(", "))
            }
        }
    }
}

fn describe_call(imports: &[ImportName], import: ImportId, params: &[Value]) -> String {
    let name =
        imports.get(import.0 as usize).map_or_else(|| format!("import #{}", import.0), |i| i.name.clone());
    let params: Vec<String> = params.iter().map(ToString::to_string).collect();
    format!("{name}({})", params.join(", "))
}
