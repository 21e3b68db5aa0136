//! Work too slow for the UI thread — a filter or a search over millions of events, who wrote an
//! address, reading and parsing the module, a whole replay — done on a worker thread the UI
//! talks to through channels, so a slow step never freezes the screen. [`Jobs::run`] does one
//! request; the thread runs it, and tests call it directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use wtrace_replayer::{OutputSink, RegisterComparison, ReplayOptions};
use wtrace_runtime::introspect::ModuleInfo;
use wtrace_traces::{Event, EventKind, ImportName, Trace};

use crate::data::{Category, EventLine, SeqSet};
use crate::filter::Filter;

/// The categories, in the order of their counters in a bucket.
const ORDER: [Category; 5] =
    [Category::Io, Category::Files, Category::Time, Category::Process, Category::Other];

/// Buckets the seq space is cut into for the timeline's colours.
pub(crate) const CATEGORY_BUCKETS: usize = 512;

/// What the UI asks for.
#[derive(Debug, Clone)]
pub enum Request {
    /// Read and parse the trace's module.
    LoadModule,
    /// Find every trap, exit and return, then the category of every stretch of host calls.
    Markers,
    /// The events `filter` keeps.
    Filter { id: u64, filter: Filter },
    /// The next (or previous) event after `from` whose line contains `query`, among `within`.
    Search { id: u64, query: String, from: u64, backward: bool, within: Option<Arc<SeqSet>> },
    /// The host calls before `before` that wrote the byte at `address`, newest first.
    WhoWrote { id: u64, address: u64, before: u64 },
    /// Replay the trace and compare its end with the recording.
    Replay,
    /// A debug replay request, for the debugger's thread.
    Debug(crate::debugger::DebugRequest),
}

/// A host call that wrote an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// Its seq.
    pub seq: u64,
    /// Its line.
    pub summary: String,
    /// The span it wrote that holds the address.
    pub offset: u64,
    /// The span's bytes.
    pub bytes: Vec<u8>,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// One line: matched, or where it diverged.
    pub outcome: String,
    /// How the replayed trap's registers compare with the recording's.
    pub registers: Option<RegisterComparison>,
}

/// What the worker answers.
#[derive(Debug, Clone)]
pub enum Response {
    Module(Result<Arc<ModuleInfo>, String>),
    Markers {
        traps: Vec<u64>,
        ends: Vec<u64>,
    },
    Categories(Vec<Option<Category>>),
    Progress {
        what: &'static str,
        fraction: f32,
    },
    Filtered {
        id: u64,
        filter: Filter,
        set: Arc<SeqSet>,
    },
    Found {
        id: u64,
        query: String,
        found: Option<u64>,
        wrapped: bool,
    },
    Writers {
        id: u64,
        address: u64,
        writers: Vec<Writer>,
    },
    Replayed(Result<ReplayReport, String>),
    /// A debug request's stop, or why there is none.
    Debugged {
        id: u64,
        result: Box<Result<crate::debugger::DebugView, crate::debugger::DebugFailure>>,
    },
    Cancelled,
    Failed(String),
}

/// Does requests against one trace.
pub struct Jobs {
    trace: Trace,
    imports: Arc<[ImportName]>,
    cancel: Arc<AtomicBool>,
}

impl Jobs {
    /// Jobs on `trace`; a job stops soon after `cancel` is set.
    pub fn new(trace: Trace, cancel: Arc<AtomicBool>) -> Jobs {
        let imports: Arc<[ImportName]> = trace.header().run.imports.clone().into();
        Jobs { trace, imports, cancel }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Does `request`, handing every response (progress included) to `send`.
    pub fn run(&self, request: Request, send: &mut dyn FnMut(Response)) {
        self.cancel.store(false, Ordering::Relaxed);
        match request {
            Request::LoadModule => send(Response::Module(self.load_module())),
            Request::Markers => self.markers(send),
            Request::Filter { id, filter } => self.filter(id, filter, send),
            Request::Search { id, query, from, backward, within } => {
                self.search(id, &query, from, backward, within.as_deref(), send);
            }
            Request::WhoWrote { id, address, before } => self.who_wrote(id, address, before, send),
            Request::Replay => send(Response::Replayed(self.replay())),
            // The debugger's thread answers these (see `debugger`).
            Request::Debug(request) => send(Response::Debugged {
                id: request.id,
                result: Box::new(Err(crate::debugger::DebugFailure::Failed(
                    "debug requests go to the debugger".into(),
                ))),
            }),
        }
    }

    fn load_module(&self) -> Result<Arc<ModuleInfo>, String> {
        let bytes = self.trace.module_bytes(0).map_err(|e| e.to_string())?;
        ModuleInfo::parse(bytes).map(Arc::new).map_err(|e| e.to_string())
    }

    /// Traps and ends from the frames the index says hold them, then the categories of host
    /// calls in one pass over every event.
    fn markers(&self, send: &mut dyn FnMut(Response)) {
        let (mut traps, mut ends) = (Vec::new(), Vec::new());
        for frame in self.trace.frames() {
            let special = frame.count(EventKind::Trap)
                + frame.count(EventKind::Exit)
                + frame.count(EventKind::Returned)
                + frame.count(EventKind::Interrupted);
            if special == 0 {
                continue;
            }
            let range = frame.first_seq..frame.first_seq + u64::from(frame.events);
            for item in self.trace.range(range) {
                let Ok((seq, event)) = item else { break };
                match event.kind() {
                    EventKind::Trap => traps.push(seq),
                    EventKind::Exit | EventKind::Returned | EventKind::Interrupted => ends.push(seq),
                    EventKind::HostCall => {}
                }
            }
        }
        send(Response::Markers { traps, ends });

        let len = self.trace.len();
        if len == 0 {
            return;
        }
        let mut counts = vec![[0u32; 5]; CATEGORY_BUCKETS];
        let import_categories: Vec<Category> = self.imports.iter().map(Category::of).collect();
        let mut events = self.trace.events();
        let mut event = Event::Exit { code: 0 };
        while let Some(seq) = events.next_into(&mut event) {
            let Ok(seq) = seq else { break };
            if seq.is_multiple_of(65_536) && self.cancelled() {
                return;
            }
            if let Event::HostCall(call) = &event {
                let bucket = (u128::from(seq) * CATEGORY_BUCKETS as u128 / u128::from(len)) as usize;
                let category =
                    import_categories.get(call.import.0 as usize).copied().unwrap_or(Category::Other);
                counts[bucket.min(CATEGORY_BUCKETS - 1)][category as usize] += 1;
            }
        }
        let categories = counts
            .iter()
            .map(|c| {
                let (best, n) = c.iter().enumerate().max_by_key(|(_, n)| **n)?;
                (*n > 0).then_some(ORDER[best])
            })
            .collect();
        send(Response::Categories(categories));
    }

    fn filter(&self, id: u64, filter: Filter, send: &mut dyn FnMut(Response)) {
        let len = self.trace.len();
        let mut set = SeqSet::new(len);
        let mut events = self.trace.events();
        let mut event = Event::Exit { code: 0 };
        while let Some(seq) = events.next_into(&mut event) {
            let seq = match seq {
                Ok(seq) => seq,
                Err(error) => return send(Response::Failed(error.to_string())),
            };
            if seq.is_multiple_of(262_144) {
                if self.cancelled() {
                    return send(Response::Cancelled);
                }
                send(Response::Progress { what: "filtering", fraction: seq as f32 / len as f32 });
            }
            if filter.matches(&self.imports, &event) {
                set.insert(seq);
            }
        }
        set.seal();
        send(Response::Filtered { id, filter, set: Arc::new(set) });
    }

    fn search(
        &self,
        id: u64,
        query: &str,
        from: u64,
        backward: bool,
        within: Option<&SeqSet>,
        send: &mut dyn FnMut(Response),
    ) {
        let len = self.trace.len();
        let needle = query.to_lowercase();
        let hit = |seq: u64, event: &Event| {
            within.is_none_or(|set| set.contains(seq))
                && EventLine::of(&self.imports, event).text().to_lowercase().contains(&needle)
        };
        // Forward: from+1 to the end, then 0 to from. Backward: the same, in reverse, frame by
        // frame (the reader reads forward within a frame).
        let order: Vec<(u64, u64, bool)> = if backward {
            vec![(0, from, false), (from + 1, len, true)]
        } else {
            vec![(from + 1, len, false), (0, (from + 1).min(len), true)]
        };
        let mut checked = 0u64;
        for (start, end, wrapped) in order {
            if start >= end {
                continue;
            }
            let found = if backward {
                self.search_backward(start, end, &hit, &mut checked, len, send)
            } else {
                self.search_forward(start, end, &hit, &mut checked, len, send)
            };
            match found {
                Err(()) => return send(Response::Cancelled),
                Ok(Some(seq)) => {
                    return send(Response::Found { id, query: query.to_owned(), found: Some(seq), wrapped });
                }
                Ok(None) => {}
            }
        }
        send(Response::Found { id, query: query.to_owned(), found: None, wrapped: false });
    }

    fn search_forward(
        &self,
        start: u64,
        end: u64,
        hit: &dyn Fn(u64, &Event) -> bool,
        checked: &mut u64,
        len: u64,
        send: &mut dyn FnMut(Response),
    ) -> Result<Option<u64>, ()> {
        let mut events = self.trace.range(start..end);
        let mut event = Event::Exit { code: 0 };
        while let Some(seq) = events.next_into(&mut event) {
            let Ok(seq) = seq else { return Ok(None) };
            *checked += 1;
            if (*checked).is_multiple_of(131_072) {
                if self.cancelled() {
                    return Err(());
                }
                send(Response::Progress { what: "searching", fraction: *checked as f32 / len as f32 });
            }
            if hit(seq, &event) {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    fn search_backward(
        &self,
        start: u64,
        end: u64,
        hit: &dyn Fn(u64, &Event) -> bool,
        checked: &mut u64,
        len: u64,
        send: &mut dyn FnMut(Response),
    ) -> Result<Option<u64>, ()> {
        // Chunks of one data frame at most, latest first; within a chunk, the last hit wins.
        let mut chunk_end = end;
        while chunk_end > start {
            let frame = self.trace.frames().partition_point(|f| f.first_seq < chunk_end).saturating_sub(1);
            let chunk_start = self.trace.frames().get(frame).map_or(start, |f| f.first_seq.max(start));
            let mut last = None;
            let mut events = self.trace.range(chunk_start..chunk_end);
            let mut event = Event::Exit { code: 0 };
            while let Some(seq) = events.next_into(&mut event) {
                let Ok(seq) = seq else { break };
                *checked += 1;
                if hit(seq, &event) {
                    last = Some(seq);
                }
            }
            if last.is_some() {
                return Ok(last);
            }
            if self.cancelled() {
                return Err(());
            }
            send(Response::Progress { what: "searching", fraction: *checked as f32 / len as f32 });
            if chunk_start == chunk_end {
                break;
            }
            chunk_end = chunk_start;
        }
        Ok(None)
    }

    fn who_wrote(&self, id: u64, address: u64, before: u64, send: &mut dyn FnMut(Response)) {
        const MOST: usize = 200;
        let mut writers: Vec<Writer> = Vec::new();
        let mut events = self.trace.range(..before);
        let mut event = Event::Exit { code: 0 };
        while let Some(seq) = events.next_into(&mut event) {
            let Ok(seq) = seq else { break };
            if seq.is_multiple_of(262_144) {
                if self.cancelled() {
                    return send(Response::Cancelled);
                }
                send(Response::Progress {
                    what: "finding writers",
                    fraction: seq as f32 / before.max(1) as f32,
                });
            }
            let Event::HostCall(call) = &event else { continue };
            if let Some(write) =
                call.writes.iter().find(|w| (w.offset..w.offset + w.bytes.len() as u64).contains(&address))
            {
                writers.push(Writer {
                    seq,
                    summary: EventLine::of(&self.imports, &event).summary,
                    offset: write.offset,
                    bytes: write.bytes.clone(),
                });
                if writers.len() > MOST {
                    writers.remove(0);
                }
            }
        }
        writers.reverse();
        send(Response::Writers { id, address, writers });
    }

    fn replay(&self) -> Result<ReplayReport, String> {
        let options = ReplayOptions {
            stdout: OutputSink::Discard,
            stderr: OutputSink::Discard,
            ..ReplayOptions::default()
        };
        let replay = wtrace_replayer::replay(&self.trace, options).map_err(|e| e.to_string())?;
        let outcome = match (&replay.divergence, replay.matched()) {
            (Some(divergence), _) => {
                format!("diverged at event {}: expected {}", divergence.seq, divergence.expected)
            }
            (None, true) => format!("matched the recording: {}", replay.end.describe()),
            (None, false) => format!("ended differently: {}", replay.end.describe()),
        };
        Ok(ReplayReport { outcome, registers: replay.registers })
    }
}

/// Runs jobs on a thread of its own until the request channel closes.
pub(crate) fn spawn(
    jobs: Jobs,
    requests: Receiver<Request>,
    responses: Sender<Response>,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("wtrace-tui-worker".into()).spawn(move || {
        for request in requests {
            let mut send = |response| {
                let _ = responses.send(response);
            };
            jobs.run(request, &mut send);
        }
    })?;
    Ok(())
}
