//! The debug replay behind the UI: a [`Debugger`] owns a [`Session`] (opened at the first debug
//! key), runs one [`DebugRequest`] at a time on a thread of its own and answers with the stop,
//! so the screen never waits for a replay. Esc cancels the request in progress through the
//! session's [`Canceller`].

use std::sync::{Arc, Mutex, PoisonError};

use wtrace_replayer::debug::{Canceller, CheckpointStats, Session, SessionOptions, Stop};
use wtrace_traces::{MemoryBytes, Trace};

use crate::worker::Response;

/// What a debug key asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugAction {
    /// Only go to the anchor event.
    Here,
    Step,
    StepBack,
    Over,
    OverBack,
    Out,
    OutBack,
    /// To the next breakpoint (or change of the watched bytes).
    Continue,
    /// To the previous one.
    ReverseContinue,
}

/// One request to the debugger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugRequest {
    /// Answers carry it; the UI keeps the latest.
    pub id: u64,
    /// First go to the entry of this event (the trap itself, for a trap), when the session is
    /// not there: the selected event, when the user moved the selection since the last stop.
    pub anchor: Option<u64>,
    pub action: DebugAction,
    /// The breakpoints' Wasm PCs.
    pub breakpoints: Vec<u32>,
    /// The watched bytes, for `Continue` and `ReverseContinue`.
    pub watch: Option<(u64, u64)>,
    /// Read the memory around this address at the stop.
    pub memory_at: Option<u64>,
}

/// Why a debug request has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugFailure {
    /// Esc cancelled it; the session is where it was.
    Cancelled,
    /// The session failed, as it says.
    Failed(String),
}

/// What the UI shows of a stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugView {
    pub stop: Stop,
    /// The bytes around the requested address at the stop.
    pub memory: Option<MemoryBytes>,
    pub checkpoints: CheckpointStats,
}

/// How many bytes around the Memory pane's cursor a stop reads.
const MEMORY_WINDOW: u64 = 128;

/// Runs debug requests against one trace.
pub struct Debugger {
    trace: Trace,
    options: SessionOptions,
    session: Option<Session>,
    /// Where the UI thread finds the canceller of the session, once it is open.
    canceller: Arc<Mutex<Option<Canceller>>>,
}

impl Debugger {
    pub fn new(trace: Trace) -> Debugger {
        Debugger::with_options(trace, SessionOptions::default())
    }

    /// A debugger whose session opens with `options`.
    pub fn with_options(trace: Trace, options: SessionOptions) -> Debugger {
        Debugger { trace, options, session: None, canceller: Arc::default() }
    }

    /// The slot the session's canceller goes into when the session opens.
    pub fn canceller(&self) -> Arc<Mutex<Option<Canceller>>> {
        Arc::clone(&self.canceller)
    }

    /// Runs `request`; the answer goes to `respond`.
    pub fn run(&mut self, request: &DebugRequest, respond: &mut dyn FnMut(Response)) {
        let id = request.id;
        let result = self.answer(request).map_err(|error| match error {
            wtrace_replayer::debug::SessionError::Cancelled => DebugFailure::Cancelled,
            other => DebugFailure::Failed(other.to_string()),
        });
        respond(Response::Debugged { id, result: Box::new(result) });
    }

    fn answer(&mut self, request: &DebugRequest) -> Result<DebugView, wtrace_replayer::debug::SessionError> {
        if self.session.is_none() {
            let session = Session::open(&self.trace, &self.options)?;
            *self.canceller.lock().unwrap_or_else(PoisonError::into_inner) = Some(session.canceller());
            self.session = Some(session);
        }
        let session = self.session.as_mut().expect("opened above");
        if session.breakpoint_pcs() != request.breakpoints.as_slice() {
            session.set_breakpoint_pcs(request.breakpoints.clone())?;
        }
        if let Some(seq) = request.anchor {
            session.run_to(seq)?;
        }
        match (&request.action, request.watch) {
            (DebugAction::Here, _) => None,
            (DebugAction::Step, _) => Some(session.step()?),
            (DebugAction::StepBack, _) => Some(session.step_back()?),
            (DebugAction::Over, _) => Some(session.step_over()?),
            (DebugAction::OverBack, _) => Some(session.step_over_back()?),
            (DebugAction::Out, _) => Some(session.step_out()?),
            (DebugAction::OutBack, _) => Some(session.step_out_back()?),
            (DebugAction::Continue, Some((address, len))) => Some(session.watch(address, len).continue_()?),
            (DebugAction::Continue, None) => Some(session.continue_()?),
            (DebugAction::ReverseContinue, Some((address, len))) => {
                Some(session.watch(address, len).reverse_continue()?)
            }
            (DebugAction::ReverseContinue, None) => Some(session.reverse_continue()?),
        };
        let memory = match request.memory_at {
            Some(at) => {
                let offset = (at & !15).saturating_sub(MEMORY_WINDOW / 4);
                session.read_memory(offset, MEMORY_WINDOW)?.map(|bytes| MemoryBytes {
                    memory: 0,
                    offset,
                    bytes,
                })
            }
            None => None,
        };
        Ok(DebugView { stop: session.stop().clone(), memory, checkpoints: session.checkpoint_stats() })
    }
}
