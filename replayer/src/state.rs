//! The store data of a replay: the recorded events still to come, where the guest's output
//! goes, and the first divergence.

use std::io::Write;
use std::time::{Duration, Instant};

use wasmtime::{Extern, StoreContextMut, UpdateDeadline};
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
    /// Why the replay stopped the guest before its run ended, if it did.
    pub(crate) stopped: Option<Stopped>,
    /// When the event before a recorded interruption was replayed: the interruption is
    /// reached as long after it as the recording ran.
    pub(crate) last_call: Instant,
    /// When `ReplayOptions::timeout` runs out.
    pub(crate) deadline: Option<Instant>,
    /// `ReplayOptions::max_memory`.
    pub(crate) memory_limit: Option<MemoryLimit>,
    /// Whether the recording has no end event (it was killed, or its disk filled): its last
    /// event is where the replay stops, not a divergence.
    pub(crate) cut_off: bool,
    /// Where the guest was when it reached the cut: the backtrace, the import it called.
    pub(crate) at_cut: Option<(Vec<wtrace_traces::Frame>, Option<ImportId>)>,
    /// Reused for the regions of a call's inputs.
    pub(crate) regions: Vec<(u32, u32)>,
}

/// Refuses to grow a linear memory past a size, and remembers the size wanted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryLimit {
    pub(crate) max: usize,
    pub(crate) exceeded: Option<usize>,
}

impl MemoryLimit {
    pub(crate) fn new(max: usize) -> MemoryLimit {
        MemoryLimit { max, exceeded: None }
    }
}

/// The error that stops a guest whose memory would grow past [`MemoryLimit`].
#[derive(Debug, thiserror::Error)]
#[error("linear memory would grow past the replay's limit")]
struct OverLimit;

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = Some(desired);
            return Err(OverLimit.into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Why a replay stopped its guest before the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Stopped {
    /// The recording was interrupted here.
    #[error("the replay reached the point where the recording was interrupted")]
    AtInterruption,
    /// `ReplayOptions::timeout` ran out.
    #[error("the replay ran out of time")]
    TimedOut,
    /// The recording has no more events and no end: it was cut off here.
    #[error("the recording ends here")]
    AtCut,
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
            stopped: None,
            last_call: Instant::now(),
            deadline: None,
            memory_limit: None,
            cut_off: false,
            at_cut: None,
            regions: Vec::new(),
        };
        state.advance();
        state
    }

    /// Whether the replay must stop the guest before it makes another call or runs on: the
    /// recording was interrupted here, or the time is up.
    pub(crate) fn must_stop(&self, before_call: bool) -> Option<Stopped> {
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Some(Stopped::TimedOut);
        }
        if before_call && self.cut_off && self.seq.is_none() {
            return Some(Stopped::AtCut);
        }
        match (&self.event, self.seq) {
            (Event::Interrupted(interruption), Some(_))
                if before_call
                    || self.last_call.elapsed() >= Duration::from_millis(interruption.after_ms) =>
            {
                Some(Stopped::AtInterruption)
            }
            _ => None,
        }
    }

    /// At each epoch tick of an interruptible replay: stops the guest where the recording
    /// was interrupted, or when the time is up.
    pub(crate) fn on_tick(mut store: StoreContextMut<'_, ReplayState>) -> wasmtime::Result<UpdateDeadline> {
        match store.data().must_stop(false) {
            Some(stopped) => {
                store.data_mut().stopped = Some(stopped);
                Err(stopped.into())
            }
            None => Ok(UpdateDeadline::Continue(1)),
        }
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
        if matches!(self.event, Event::Interrupted(_)) {
            self.last_call = Instant::now();
        }
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
            Event::Interrupted(interruption) => format!("the interruption by {}", interruption.cause_name()),
        }
    }
}

fn describe_call(imports: &[ImportName], import: ImportId, params: &[Value]) -> String {
    let name =
        imports.get(import.0 as usize).map_or_else(|| format!("import #{}", import.0), |i| i.name.clone());
    let params: Vec<String> = params.iter().map(ToString::to_string).collect();
    format!("{name}({})", params.join(", "))
}
