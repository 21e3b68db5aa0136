//! Debug replay: a [`Session`] replays a trace in Wasmtime's guest-debug mode, with imports
//! answered from the trace exactly as plain replay answers them, and stops where it is asked —
//! at an event, a breakpoint (a Wasm PC, a function's entry, a `file:line`), after a step (into,
//! over, out of a call), at a trap before it unwinds, or where watched bytes change. At a stop
//! it shows every frame with its locals and operand stack, the globals and the memory.
//!
//! Going back is deterministic re-execution to the earlier [`Position`] (host calls completed,
//! and single steps since the last of them), from the latest checkpoint before it — a forked
//! copy of the replay waiting there (see [`checkpoint`]) — or from the start. Steps are counted
//! from the host-call boundary before the target, so a step back costs a run from the
//! checkpoint to that boundary at full speed and single-stepping from there (runs that count
//! steps leave checkpoints mid-stretch too). Reverse-continue searches back checkpoint interval
//! by checkpoint interval for the last breakpoint hit; a reverse watchpoint compares the bytes
//! at the checkpoints first, replays from the latest one where they differed comparing them at
//! host-call boundaries, and single-steps only through the stretch where they last changed.

mod checkpoint;
mod engine;
mod link;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;

use bincode::{Decode, Encode};

use wasmtime::{Engine, Linker, Module};
use wtrace_runtime::RunEnd;
use wtrace_runtime::introspect::ModuleInfo;
use wtrace_runtime::module::{self, CompileOptions};
use wtrace_traces::{SourceLocation, Trace, TrapCode, Value};

use checkpoint::Checkpoints;
pub use checkpoint::{CheckpointOptions, CheckpointStats};
pub(crate) use engine::{Control, after_host_call, at_host_call};
use engine::{Depth, Goal, RunSetup};
use link::{Command, Link, Reply, SessionLink};

use crate::error::ReplayError;
use crate::state::ReplayState;

/// A place in a replay: host calls completed, and single steps (Wasm instructions) since the
/// last of them returned. `(0, 0)` is the start, before any of the guest's code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Position {
    /// Host calls completed.
    pub seq: u64,
    /// Instructions since the last host call returned.
    pub steps: u64,
}

impl std::fmt::Display for Position {
    /// `12+3`: host calls completed, then instructions since.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}", self.seq, self.steps)
    }
}

/// A breakpoint's hit: the `occurrence`-th arrival at `pc` since host call `seq`'s boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Hit {
    /// Host calls completed.
    pub seq: u64,
    /// The Wasm PC.
    pub pc: u32,
    /// Which arrival at `pc` since the boundary (1 is the first).
    pub occurrence: u64,
    /// The steps since the boundary, when they were counted.
    pub steps: Option<u64>,
}

/// Why a session stopped.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum StopReason {
    /// At the start, before any of the guest's code.
    Start,
    /// A step ended (or a position was reached).
    Step,
    /// At a breakpoint.
    Breakpoint {
        /// Its Wasm PC.
        pc: u32,
    },
    /// About to replay host call `seq`.
    HostCall {
        /// The event's seq.
        seq: u64,
    },
    /// At a trap, before it unwinds.
    Trap(TrapCode),
    /// Watched bytes changed.
    Watch {
        /// The first watched byte.
        address: u64,
        /// Their value before.
        old: Vec<u8>,
        /// Their value now.
        new: Vec<u8>,
        /// The host call that wrote them, when one did (else the instruction before the stop).
        by_host_call: Option<u64>,
    },
    /// Going back from a watch: the instruction or host call about to run here is the last
    /// to change the watched bytes before the stop the watch started from.
    LastChange {
        /// The first watched byte.
        address: u64,
        /// Their value here, before the change.
        old: Vec<u8>,
        /// Their value after it (and at the stop the watch started from).
        new: Vec<u8>,
        /// The host call that changes them, when one does (else the instruction here).
        by_host_call: Option<u64>,
    },
    /// The run ended.
    End(RunEnd),
    /// The replay left the recording.
    Diverged(String),
}

impl std::fmt::Display for StopReason {
    /// One line: `breakpoint at 0x1a3`, `trap: memory out of bounds`, `watched bytes changed
    /// by host call 7: 00 00 00 00 -> 00 00 10 00`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        match self {
            StopReason::Start => f.write_str("at the start"),
            StopReason::Step => f.write_str("step"),
            StopReason::Breakpoint { pc } => write!(f, "breakpoint at {pc:#x}"),
            StopReason::HostCall { seq } => write!(f, "about to make host call {seq}"),
            StopReason::Trap(code) => write!(f, "trap {} (before unwinding)", code.name()),
            StopReason::Watch { address, old, new, by_host_call } => {
                let by = by_host_call
                    .map_or_else(|| "an instruction".to_owned(), |seq| format!("host call {seq}"));
                write!(
                    f,
                    "{} watched bytes at {address:#x} changed by {by}: {} -> {}",
                    old.len(),
                    hex(old),
                    hex(new)
                )
            }
            StopReason::LastChange { address, old, new, by_host_call } => {
                let by = by_host_call
                    .map_or_else(|| "the instruction here".to_owned(), |seq| format!("host call {seq}"));
                write!(
                    f,
                    "{by} last changed {} watched bytes at {address:#x}: {} -> {}",
                    old.len(),
                    hex(old),
                    hex(new)
                )
            }
            StopReason::End(end) => write!(f, "the run ended: {}", end.describe()),
            StopReason::Diverged(why) => write!(f, "the replay left the recording: {why}"),
        }
    }
}

/// A frame at a stop.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct DebugFrame {
    /// The function's index in the module (imports included).
    pub func_index: u32,
    /// Its name, demangled.
    pub name: Option<String>,
    /// The Wasm PC: of the current instruction in the innermost frame, of the call in the
    /// others.
    pub pc: u32,
    /// The locals (parameters first).
    pub locals: Vec<Value>,
    /// The operand stack, bottom first.
    pub stack: Vec<Value>,
    /// Where the PC is in the source, from the module's DWARF.
    pub source: Option<SourceLocation>,
}

/// Where and why a session stopped, and what was on the stack.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Stop {
    /// Where.
    pub position: Position,
    /// Whether `position.steps` was counted (single-stepping since the last host call); a stop
    /// reached by running to a breakpoint is not, until [`Session::position`] counts it.
    pub exact: bool,
    /// Why.
    pub reason: StopReason,
    /// The frames, innermost first.
    pub frames: Vec<DebugFrame>,
    /// The current Wasm PC.
    pub pc: Option<u32>,
    /// Which arrival at `pc` this is since the last host call, for breakpoints.
    pub occurrence: u64,
    /// For the searches behind going back: the breakpoint hits on the way here.
    pub(crate) hits: Vec<Hit>,
    /// For the searches behind going back: where watched bytes changed on the way here.
    pub(crate) changes: Vec<Change>,
    /// At a watch stop: the PC of the instruction that changed the bytes.
    pub writer_pc: Option<u32>,
    /// How many Wasm frames are on the stack (`frames` keeps the innermost 512).
    pub depth: usize,
    /// At a stack overflow: how deep the recorded run's stack was, when that may differ from
    /// `depth` — debug code uses more stack per frame, so it can overflow sooner. A plain
    /// replay reproduces the recorded depth.
    pub recorded_depth: Option<RecordedDepth>,
    /// Checkpoints the run forked on the way here, which the session takes in.
    pub(crate) checkpoints_taken: u32,
}

impl Stop {
    /// The innermost frame.
    pub fn frame(&self) -> Option<&DebugFrame> {
        self.frames.first()
    }
}

/// The depth of a recorded stack overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum RecordedDepth {
    /// The recorded backtrace was whole: this many frames.
    Exactly(usize),
    /// The recorded backtrace was cut at this many frames (see
    /// [`BACKTRACE_FRAMES`](wtrace_runtime::engine::BACKTRACE_FRAMES)); the stack was deeper.
    AtLeast(usize),
}

impl std::fmt::Display for RecordedDepth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordedDepth::Exactly(n) => write!(f, "{n} frames"),
            RecordedDepth::AtLeast(n) => write!(f, "more than {n} frames"),
        }
    }
}

/// Where to break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakAt {
    /// At a Wasm PC (slipped forward to the next instruction).
    Pc(u32),
    /// At the entry of the function of this name (demangled or raw) or index.
    Function(String),
    /// At the first instruction of this source line (the file named by a path or its end).
    Line {
        /// The file.
        file: String,
        /// The line.
        line: u32,
    },
}

impl std::str::FromStr for BreakAt {
    type Err = String;

    /// `0x1a3` (a PC), `src/main.rs:42` (a line), or a function's name or index.
    fn from_str(text: &str) -> Result<BreakAt, String> {
        if let Some(hex) = text.strip_prefix("0x") {
            return u32::from_str_radix(hex, 16).map(BreakAt::Pc).map_err(|e| format!("`{text}`: {e}"));
        }
        if let Some((file, line)) = text.rsplit_once(':')
            && let Ok(line) = line.parse()
            && !file.is_empty()
        {
            return Ok(BreakAt::Line { file: file.to_owned(), line });
        }
        if text.is_empty() {
            return Err("an empty breakpoint".into());
        }
        Ok(BreakAt::Function(text.to_owned()))
    }
}

/// How to open a session.
#[derive(Debug, Default)]
pub struct SessionOptions {
    /// Replay this module (binary or WAT) instead of the recorded one; it must be the same
    /// (its SHA-256 is checked).
    pub module: Option<Vec<u8>>,
    /// Where compiled code is cached.
    pub compile: CompileOptions,
    /// How checkpoints are taken.
    pub checkpoints: CheckpointOptions,
}

struct Shared {
    trace: Trace,
    engine: Engine,
    module: Arc<Module>,
    linker: Arc<Linker<ReplayState>>,
    info: Arc<ModuleInfo>,
    /// How deep the recorded trap's stack was, when the recording ended in a stack overflow.
    overflow_depth: Option<RecordedDepth>,
}

/// The run the session is talking to: on a thread of this process (from the start), or a
/// forked copy a checkpoint made.
struct Runner {
    link: SessionLink,
    thread: Option<JoinHandle<()>>,
}

/// A debug replay of a trace, stopped somewhere.
pub struct Session {
    shared: Shared,
    breakpoints: Vec<u32>,
    /// `None` after a cancelled run: the next request first goes back to `stop`.
    run: Option<Runner>,
    stop: Stop,
    /// The stop when the request in progress began: where a cancelled request leaves the
    /// session.
    began_at: Option<Stop>,
    /// Host calls in the recording.
    host_calls: u64,
    checkpoints: Checkpoints,
    cancel: Arc<CancelState>,
}

/// What a [`Canceller`] shares with its session.
struct CancelState {
    engine: Engine,
    /// The forked run being waited for (0: the run on this process's thread).
    pid: AtomicU32,
    /// The session is waiting for a run.
    busy: AtomicBool,
    cancelled: AtomicBool,
}

/// Cancels what a session is doing from another thread: the request in progress returns
/// [`SessionError::Cancelled`] and the session stays where it was.
#[derive(Clone)]
pub struct Canceller(Arc<CancelState>);

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canceller").finish_non_exhaustive()
    }
}

impl Canceller {
    /// Stops the run the session is waiting for, if it is waiting.
    pub fn cancel(&self) {
        let state = &self.0;
        state.cancelled.store(true, Ordering::SeqCst);
        if state.busy.load(Ordering::SeqCst) {
            match state.pid.load(Ordering::SeqCst) {
                0 => state.engine.increment_epoch(),
                pid => wtrace_runtime::process::kill(pid),
            }
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("stop", &self.stop.position)
            .field("reason", &self.stop.reason)
            .finish_non_exhaustive()
    }
}

/// Why a session could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The trace cannot be replayed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A breakpoint names nothing in the module.
    #[error("no breakpoint can be set at {0}")]
    NoSuchPlace(String),
    /// The debug run stopped answering (it failed to start, or a bug).
    #[error("the debug run failed: {0}")]
    Run(String),
    /// A [`Canceller`] cancelled the request; the session is where it was before it.
    #[error("cancelled")]
    Cancelled,
}

const START: Position = Position { seq: 0, steps: 0 };

impl Session {
    /// Opens a debug replay of `trace`, stopped at the start.
    pub fn open(trace: &Trace, options: &SessionOptions) -> Result<Session, SessionError> {
        let header = trace.header();
        let run = &header.run;
        let settings = crate::replay::recorded_settings(run)?;
        let engine = settings.debug_engine().map_err(ReplayError::from)?;
        let recorded = run.modules.first().ok_or(ReplayError::NoModule)?;
        let bytes = match &options.module {
            Some(given) => {
                let bytes = module::to_binary(&recorded.name, given).map_err(ReplayError::from)?.into_owned();
                let hash = wtrace_traces::sha256(&bytes);
                if hash != recorded.sha256 {
                    return Err(ReplayError::ModuleMismatch {
                        recorded: recorded.name.clone(),
                        recorded_sha256: recorded.sha256_hex(),
                        given_sha256: wtrace_traces::hex(&hash),
                    }
                    .into());
                }
                bytes
            }
            None => trace.module_bytes(0).map_err(ReplayError::from)?,
        };
        let mut compiled =
            module::compile(&engine, &settings, &recorded.name, &bytes, recorded.sha256, &options.compile)
                .map_err(ReplayError::from)?;
        compiled.finish_caching();
        let bytes: Arc<[u8]> = bytes.into();
        let info = ModuleInfo::parse(Arc::clone(&bytes)).map_err(|e| SessionError::Run(e.to_string()))?;
        let module = compiled.module;
        let linker =
            crate::shims::link(&engine, &module, &run.imports, Some(&bytes)).map_err(ReplayError::from)?;
        let host_calls = trace.kind_counts()[wtrace_traces::EventKind::HostCall.index()];
        let overflow_depth = match trace.range(host_calls..).next() {
            Some(Ok((_, wtrace_traces::Event::Trap(trap)))) if trap.code == TrapCode::StackOverflow => {
                let frames = trap.frames.len();
                Some(if frames >= wtrace_runtime::engine::BACKTRACE_FRAMES {
                    RecordedDepth::AtLeast(frames)
                } else {
                    RecordedDepth::Exactly(frames)
                })
            }
            _ => None,
        };
        let shared = Shared {
            trace: trace.clone(),
            engine,
            module: Arc::new(module),
            linker: Arc::new(linker),
            info: Arc::new(info),
            overflow_depth,
        };
        let start = Stop {
            position: START,
            exact: true,
            reason: StopReason::Start,
            frames: Vec::new(),
            pc: None,
            occurrence: 0,
            hits: Vec::new(),
            changes: Vec::new(),
            writer_pc: None,
            depth: 0,
            recorded_depth: None,
            checkpoints_taken: 0,
        };
        let cancel = Arc::new(CancelState {
            engine: shared.engine.clone(),
            pid: AtomicU32::new(0),
            busy: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        });
        let mut session = Session {
            shared,
            breakpoints: Vec::new(),
            run: None,
            stop: start,
            began_at: None,
            host_calls,
            checkpoints: Checkpoints::new(options.checkpoints.clone()),
            cancel,
        };
        session.restart()?;
        Ok(session)
    }

    /// Where the session is stopped, and why.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// The frames at the stop, innermost first.
    pub fn frames(&self) -> &[DebugFrame] {
        &self.stop.frames
    }

    /// Local `index` of the innermost frame.
    pub fn local(&self, index: usize) -> Option<&Value> {
        self.stop.frame()?.locals.get(index)
    }

    /// The module, for names, disassembly and source lines.
    pub fn module_info(&self) -> &Arc<ModuleInfo> {
        &self.shared.info
    }

    /// Host calls in the recording.
    pub fn host_calls(&self) -> u64 {
        self.host_calls
    }

    /// How many checkpoints wait, and the memory they hold.
    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.checkpoints.stats()
    }

    /// A handle that cancels the session's requests from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller(Arc::clone(&self.cancel))
    }

    /// The start of every request: forgets a cancel that came between requests, and goes back
    /// to the stop when the last request was cancelled.
    fn begin(&mut self) -> Result<(), SessionError> {
        self.cancel.cancelled.store(false, Ordering::SeqCst);
        self.began_at = Some(self.stop.clone());
        if self.run.is_some() {
            return Ok(());
        }
        let stop = self.stop.clone();
        let boundary = Position { seq: stop.position.seq, steps: 0 };
        // Back the way the stop was reached, counting nothing it did not count.
        let goal = match &stop.reason {
            StopReason::HostCall { seq } => Goal { host_call: Some(*seq), ..Goal::default() },
            StopReason::Breakpoint { pc } => Goal {
                breakpoint_hit: Some(Hit {
                    seq: stop.position.seq,
                    pc: *pc,
                    occurrence: stop.occurrence,
                    steps: None,
                }),
                ..Goal::default()
            },
            // The trap, the end: they come again.
            _ => Goal::default(),
        };
        let restored = match stop.reason {
            StopReason::Start => self.restart().map(drop),
            _ if stop.exact => self.go(stop.position).map(drop),
            // Hits are counted from the boundary: not from a checkpoint in the stretch.
            StopReason::Breakpoint { .. } => self.run_from(boundary, Some(boundary.seq), goal).map(drop),
            _ => self.run_from(boundary, None, goal).map(drop),
        };
        // What the stop said (a reverse watch's reason, the operands at a trap) stays.
        self.stop.reason = stop.reason;
        self.stop.frames = stop.frames;
        restored
    }

    fn check_cancelled(&mut self) -> Result<(), SessionError> {
        if self.cancel.cancelled.load(Ordering::SeqCst) { Err(self.cancelled()) } else { Ok(()) }
    }

    /// The request was cancelled: the run goes, and the session is back at the stop the
    /// request began from (the next request goes there first).
    fn cancelled(&mut self) -> SessionError {
        self.close_run();
        if let Some(stop) = self.began_at.clone() {
            self.stop = stop;
        }
        SessionError::Cancelled
    }

    /// Where the checkpoints wait, in order.
    pub fn checkpoints(&self) -> Vec<Position> {
        self.checkpoints.before(Position { seq: u64::MAX, steps: u64::MAX }).into_iter().rev().collect()
    }

    fn ended(&self) -> bool {
        matches!(self.stop.reason, StopReason::End(_) | StopReason::Diverged(_))
    }

    /// Starts the replay over on a thread of this process, stopped at the start.
    fn restart(&mut self) -> Result<&Stop, SessionError> {
        self.close_run();
        let (commands, to_run) = std::sync::mpsc::channel();
        let (from_run, replies) = std::sync::mpsc::channel();
        let run = &self.shared.trace.header().run;
        let setup = RunSetup {
            trace: self.shared.trace.detached(),
            engine: self.shared.engine.clone(),
            module: Arc::clone(&self.shared.module),
            linker: Arc::clone(&self.shared.linker),
            invoke: run.invoke.clone(),
            args: crate::replay::invoke_args(run),
            breakpoints: self.breakpoints.clone(),
            rendezvous: self.checkpoints.path(),
            checkpoint_interval: self.checkpoints.interval(),
        };
        let thread = std::thread::Builder::new()
            .name("wtrace-debug".into())
            .stack_size(16 << 20)
            .spawn(move || engine::run(&setup, Link::Thread { send: from_run, recv: to_run }))
            .map_err(|e| SessionError::Run(e.to_string()))?;
        let link = Link::Thread { send: commands, recv: replies };
        self.run = Some(Runner { link, thread: Some(thread) });
        self.cancel.pid.store(0, Ordering::SeqCst);
        self.wait()
    }

    /// Ends the current run. A thread's guest traps at the next epoch check and the thread
    /// ends; a forked copy ends itself.
    fn close_run(&mut self) {
        if let Some(mut run) = self.run.take() {
            let _ = run.link.send(Command::Exit);
            drop(run.link);
            if let Some(thread) = run.thread.take() {
                self.shared.engine.increment_epoch();
                let _ = thread.join();
            }
        }
    }

    /// Runs to `goal` from the latest checkpoint at or before `from` (one in `hit_in`'s
    /// stretch only at its boundary), or from the start.
    fn run_from(&mut self, from: Position, hit_in: Option<u64>, goal: Goal) -> Result<&Stop, SessionError> {
        self.check_cancelled()?;
        if let Some(index) = self.checkpoints.best(from, hit_in) {
            self.close_run();
            let with_known = Goal {
                checkpoints_at: self.checkpoints.stretches(),
                checkpoint_budget: self.checkpoints.budget(),
                ..goal.clone()
            };
            match self.checkpoints.spawn(index, with_known, self.breakpoints.clone()) {
                Ok((link, pid)) => {
                    self.run = Some(Runner { link, thread: None });
                    self.cancel.pid.store(pid, Ordering::SeqCst);
                    return self.wait();
                }
                // That checkpoint is gone: from an earlier one, or the start.
                Err(_) => return self.run_from(from, hit_in, goal),
            }
        }
        self.restart()?;
        if from == START && goal.position == Some(START) {
            return Ok(&self.stop);
        }
        self.resume(goal)
    }

    fn send(&mut self, command: Command) -> Result<(), SessionError> {
        let run = self.run.as_mut().ok_or_else(|| SessionError::Run("no run".into()))?;
        run.link.send(command).map_err(|_| SessionError::Run("the debug run ended".into()))
    }

    fn reply(&mut self) -> Result<Reply, SessionError> {
        let run = self.run.as_mut().ok_or_else(|| SessionError::Run("no run".into()))?;
        if let Ok(reply) = run.link.recv() {
            return Ok(reply);
        }
        self.close_run();
        if self.cancel.cancelled.load(Ordering::SeqCst) {
            Err(self.cancelled())
        } else {
            Err(SessionError::Run("the debug run ended without answering".into()))
        }
    }

    /// Waits for the run to stop, takes in the checkpoints it forked on the way, and names the
    /// frames.
    fn wait(&mut self) -> Result<&Stop, SessionError> {
        self.cancel.busy.store(true, Ordering::SeqCst);
        let reply = self.reply();
        self.cancel.busy.store(false, Ordering::SeqCst);
        match reply? {
            // Only a cancel interrupts a debug run (it bumps the epoch).
            Reply::Stopped(stop) if stop.reason == StopReason::Trap(TrapCode::Interrupt) => {
                Err(self.cancelled())
            }
            Reply::Stopped(stop) => {
                self.stop = *stop;
                self.checkpoints.adopt(self.stop.checkpoints_taken);
                let info = &self.shared.info;
                // Wasmtime gives a caller frame's PC as where its call returns to, and so the
                // innermost frame's at a host call: show the call instruction, as backtraces do.
                let at_call = matches!(self.stop.reason, StopReason::HostCall { .. });
                let mut calls: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
                for (i, frame) in self.stop.frames.iter_mut().enumerate() {
                    if i > 0 || at_call {
                        let returns_to = frame.pc;
                        frame.pc = *calls
                            .entry(returns_to)
                            .or_insert_with(|| info.instruction_before(returns_to).unwrap_or(returns_to));
                    }
                    frame.name = info.raw_name(frame.func_index).map(wtrace_runtime::outcome::readable_name);
                    frame.source = info.location(frame.pc);
                }
                if at_call {
                    self.stop.pc = self.stop.frames.first().map(|f| f.pc);
                }
                if matches!(self.stop.reason, StopReason::Trap(TrapCode::StackOverflow)) {
                    let depth = self.stop.depth;
                    self.stop.recorded_depth = self
                        .shared
                        .overflow_depth
                        .filter(|&recorded| recorded != RecordedDepth::Exactly(depth));
                }
                Ok(&self.stop)
            }
            Reply::Failed(error) => Err(SessionError::Run(error)),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
    }

    fn resume(&mut self, mut goal: Goal) -> Result<&Stop, SessionError> {
        self.check_cancelled()?;
        if self.ended() {
            return Ok(&self.stop);
        }
        goal.checkpoints_at = self.checkpoints.stretches();
        goal.checkpoint_budget = self.checkpoints.budget();
        self.send(Command::Resume(goal))?;
        self.wait()
    }

    /// Runs forward to `goal`; at a trap, with the faulting instruction's operands: Wasmtime
    /// keeps no operand stack at a trap, so the way there is counted again, keeping the stack
    /// before each instruction.
    fn forward(&mut self, goal: Goal) -> Result<&Stop, SessionError> {
        self.resume(goal)?;
        if matches!(self.stop.reason, StopReason::Trap(_))
            && !self.stop.exact
            && self.stop.frames.first().is_some_and(|f| f.stack.is_empty())
        {
            self.locate()?;
        }
        Ok(&self.stop)
    }

    /// Runs on to the next breakpoint, trap or the end.
    pub fn continue_(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        self.forward(Goal { breakpoints: true, ..Goal::default() })
    }

    /// One instruction, into calls.
    pub fn step(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        self.counted()?;
        self.forward(Goal { step: Some(Depth::Any), ..Goal::default() })
    }

    /// One instruction, over calls (a breakpoint inside a call stops it too).
    pub fn step_over(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        self.counted()?;
        let depth = self.stop.frames.len();
        self.forward(Goal { step: Some(Depth::AtMost(depth.max(1))), breakpoints: true, ..Goal::default() })
    }

    /// To the instruction after the call of the current function (finish).
    pub fn step_out(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        self.counted()?;
        let depth = self.stop.frames.len();
        self.forward(Goal { step: Some(Depth::Below(depth.max(1))), breakpoints: true, ..Goal::default() })
    }

    /// Makes the stop's position exact before stepping from it, so that the steps after it are
    /// counted too (and can be gone back over).
    fn counted(&mut self) -> Result<(), SessionError> {
        if !self.stop.exact && !self.ended() {
            self.locate()?;
        }
        Ok(())
    }

    /// To the entry of host call `seq` (the end, past the last); from a checkpoint or the
    /// start when `seq` is behind.
    pub fn run_to(&mut self, seq: u64) -> Result<&Stop, SessionError> {
        self.begin()?;
        let here = self.stop.position;
        let passed = seq < here.seq || (seq == here.seq && !matches!(self.stop.reason, StopReason::Start));
        let goal = Goal { host_call: Some(seq), ..Goal::default() };
        if passed || self.ended() {
            self.run_from(Position { seq, steps: 0 }, None, goal)?;
        } else {
            self.resume(goal)?;
        }
        if matches!(self.stop.reason, StopReason::Trap(_))
            && self.stop.frames.first().is_some_and(|f| f.stack.is_empty())
        {
            self.locate()?;
        }
        Ok(&self.stop)
    }

    /// Replaces the breakpoints.
    pub fn set_breakpoints(&mut self, places: &[BreakAt]) -> Result<(), SessionError> {
        let mut pcs = Vec::new();
        for place in places {
            pcs.extend(self.resolve(place)?);
        }
        self.set_breakpoint_pcs(pcs)
    }

    /// Replaces the breakpoints with these Wasm PCs.
    pub fn set_breakpoint_pcs(&mut self, mut pcs: Vec<u32>) -> Result<(), SessionError> {
        self.begin()?;
        pcs.sort_unstable();
        pcs.dedup();
        self.breakpoints.clone_from(&pcs);
        if self.ended() {
            return Ok(());
        }
        self.send(Command::Breakpoints(pcs))?;
        match self.reply()? {
            Reply::Done => Ok(()),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
    }

    /// The breakpoints' Wasm PCs.
    pub fn breakpoint_pcs(&self) -> &[u32] {
        &self.breakpoints
    }

    /// The Wasm PCs a breakpoint place stands for.
    pub fn resolve(&self, place: &BreakAt) -> Result<Vec<u32>, SessionError> {
        let info = &self.shared.info;
        let pcs = match place {
            BreakAt::Pc(pc) => vec![*pc],
            BreakAt::Function(name) => {
                let index = name.parse::<u32>().ok().or_else(|| {
                    (0..info.function_count())
                        .find(|&i| info.raw_name(i).is_some_and(|raw| raw == name || info.name(i) == *name))
                });
                index.and_then(|i| info.body_start(i)).into_iter().collect()
            }
            BreakAt::Line { file, line } => info.pcs_at_line(file, *line),
        };
        if pcs.is_empty() {
            let text = match place {
                BreakAt::Pc(pc) => format!("{pc:#x}"),
                BreakAt::Function(name) => format!("function `{name}`"),
                BreakAt::Line { file, line } => format!("{file}:{line}"),
            };
            return Err(SessionError::NoSuchPlace(text));
        }
        Ok(pcs)
    }

    /// Bytes of linear memory 0 at the stop (`None` past its end).
    pub fn read_memory(&mut self, address: u64, len: u64) -> Result<Option<Vec<u8>>, SessionError> {
        self.begin()?;
        self.memory_at_stop(address, len)
    }

    fn memory_at_stop(&mut self, address: u64, len: u64) -> Result<Option<Vec<u8>>, SessionError> {
        self.send(Command::ReadMemory { address, len })?;
        match self.reply()? {
            Reply::Memory(bytes) => Ok(bytes),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
    }

    /// Every global's value at the stop.
    pub fn globals(&mut self) -> Result<Vec<Value>, SessionError> {
        self.begin()?;
        self.send(Command::Globals)?;
        match self.reply()? {
            Reply::Globals(values) => Ok(values),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
    }

    // ---- going back ----

    /// The exact position of the stop: counts the steps since the last host call when the
    /// stop was reached without counting them (one run from the checkpoint before it).
    pub fn position(&mut self) -> Result<Position, SessionError> {
        self.begin()?;
        self.locate()
    }

    fn locate(&mut self) -> Result<Position, SessionError> {
        if self.stop.exact {
            return Ok(self.stop.position);
        }
        let seq = self.stop.position.seq;
        let boundary = Position { seq, steps: 0 };
        let (goal, hit_in) = match &self.stop.reason {
            StopReason::Breakpoint { pc } => (
                Goal {
                    hit: Some(Hit { seq, pc: *pc, occurrence: self.stop.occurrence, steps: None }),
                    ..Goal::default()
                },
                Some(seq),
            ),
            StopReason::HostCall { seq } => (
                Goal {
                    host_call: Some(*seq),
                    position: Some(Position { seq: *seq, steps: u64::MAX }),
                    ..Goal::default()
                },
                None,
            ),
            // A trap (keeping the operands of the faulting instruction), the end, a divergence:
            // count until they happen again.
            reason => (
                Goal {
                    position: Some(Position { seq, steps: u64::MAX }),
                    keep_stack: matches!(reason, StopReason::Trap(_)),
                    ..Goal::default()
                },
                None,
            ),
        };
        self.run_from(boundary, hit_in, goal)?;
        Ok(self.stop.position)
    }

    /// Goes to `target` (from the checkpoint before it, or the start).
    pub fn goto(&mut self, target: Position) -> Result<&Stop, SessionError> {
        self.begin()?;
        self.go(target)
    }

    fn go(&mut self, target: Position) -> Result<&Stop, SessionError> {
        self.run_from(target, None, Goal { position: Some(target), ..Goal::default() })
    }

    /// The position before `here`: the previous step, or the call instruction of the host call
    /// before the stretch `here` is in (the boundary just after a host call returned is no
    /// instruction of its own: stepping forward never stops there).
    fn before(&mut self, here: Position) -> Result<Option<Position>, SessionError> {
        if here.steps > 1 || (here.steps == 1 && here.seq == 0) {
            return Ok(Some(Position { seq: here.seq, steps: here.steps - 1 }));
        }
        if here.seq == 0 {
            return Ok(None);
        }
        // Count the steps to the entry of the host call that ends the previous stretch.
        self.count_to_host_call(here.seq - 1)?;
        Ok(Some(self.stop.position))
    }

    /// Runs to the entry of host call `seq`, counting the steps of the stretch before it so
    /// that the stop's position is exact.
    fn count_to_host_call(&mut self, seq: u64) -> Result<&Stop, SessionError> {
        self.run_from(
            Position { seq, steps: 0 },
            None,
            Goal {
                host_call: Some(seq),
                position: Some(Position { seq, steps: u64::MAX }),
                ..Goal::default()
            },
        )
    }

    /// One instruction back.
    pub fn step_back(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        let here = self.locate()?;
        match self.before(here)? {
            Some(target) => self.go(target),
            None => self.go(START),
        }
    }

    /// The last step before `here` (in its stretch or earlier ones) whose depth passes `keep`.
    fn last_step_before(
        &mut self,
        here: Position,
        keep: impl Fn(usize) -> bool,
    ) -> Result<&Stop, SessionError> {
        let mut at = here;
        loop {
            let Some(before) = self.before(at)? else { return self.go(START) };
            let stop = self.go(before)?;
            if keep(stop.frames.len()) {
                return Ok(&self.stop);
            }
            at = before;
        }
    }

    /// Back over calls: to the previous instruction of this function (or its caller's, at
    /// its first).
    pub fn step_over_back(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        let here = self.locate()?;
        let depth = self.stop.frames.len();
        self.last_step_before(here, |d| d <= depth)
    }

    /// Back out of the current function: to the call that entered it (finish, backwards).
    pub fn step_out_back(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        let here = self.locate()?;
        let depth = self.stop.frames.len();
        self.last_step_before(here, |d| d < depth)
    }

    /// Back to the previous breakpoint hit (to the start when there is none): searches the
    /// interval before the stop, then the checkpoint intervals before that, latest first.
    pub fn reverse_continue(&mut self) -> Result<&Stop, SessionError> {
        self.begin()?;
        let here = self.locate()?;
        let mut end = here;
        let mut starts = self.checkpoints.before(here);
        starts.push(START);
        for start in starts {
            if end == START {
                break;
            }
            self.run_from(start, None, Goal { record_hits: true, position: Some(end), ..Goal::default() })?;
            let last = self.stop.hits.iter().rev().copied().find(|h| match h.steps {
                Some(steps) => Position { seq: h.seq, steps } < end,
                None => h.seq < end.seq,
            });
            let Some(hit) = last else {
                end = start;
                continue;
            };
            if let Some(steps) = hit.steps {
                self.go(Position { seq: hit.seq, steps })?;
            } else {
                let goal = Goal { hit: Some(hit), ..Goal::default() };
                self.run_from(Position { seq: hit.seq, steps: 0 }, Some(hit.seq), goal)?;
            }
            // Arrived by position or by counting hits: it is the breakpoint's stop.
            self.stop.reason = StopReason::Breakpoint { pc: hit.pc };
            return Ok(&self.stop);
        }
        self.go(START)
    }

    /// Watches `len` bytes at `address` of linear memory 0.
    pub fn watch(&mut self, address: u64, len: u64) -> Watch<'_> {
        Watch { session: self, address, len }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close_run();
    }
}

/// A watchpoint, for running to the next or the previous change of its bytes.
pub struct Watch<'a> {
    session: &'a mut Session,
    address: u64,
    len: u64,
}

impl<'a> Watch<'a> {
    /// Runs on until the bytes change (stopping after the instruction or host call that changed
    /// them), or the run ends.
    pub fn continue_(self) -> Result<&'a Stop, SessionError> {
        self.session.begin()?;
        let goal = Goal { watch: Some((self.address, self.len)), ..Goal::default() };
        self.session.forward(goal)
    }

    /// Goes back to the last instruction (or host call) before the stop that changed the bytes
    /// — where did this value come from? — and stops there, about to change them (the stop's
    /// reason a [`StopReason::LastChange`] with the bytes then and after), or to the start when
    /// nothing changed them. Changes
    /// are looked for where the bytes differ from one checkpoint to the next, then from one
    /// host call to the next, then instruction by instruction: bytes changed and changed back
    /// again between two checkpoints (or host calls) after their last lasting change go unseen.
    pub fn reverse_continue(self) -> Result<&'a Stop, SessionError> {
        let session = self.session;
        session.begin()?;
        let watched = Some((self.address, self.len));
        let here = session.locate()?;
        if here == START {
            return Ok(&session.stop);
        }
        // The latest checkpoint where the bytes were not what they are now, and the one after
        // it (or here), where they were: they last changed between the two. Only that interval
        // is replayed, comparing the bytes at each host call and single-stepping the stretch
        // of its end.
        let now = session.memory_at_stop(self.address, self.len)?;
        let (from, to) = session.checkpoints.last_difference(here, self.address, self.len, now.as_deref());
        let from = from.unwrap_or(START);
        session.run_from(
            from,
            None,
            Goal { record_changes: watched, position: Some(to), ..Goal::default() },
        )?;
        let changes = session.stop.changes.clone();
        let (address, len) = (self.address, self.len);
        match changes.into_iter().rev().find(|c| c.before(to)) {
            Some(Change::At(position)) => {
                session.go(position)?;
                found(session, address, len, now, None)
            }
            Some(Change::Call(seq)) => {
                session.count_to_host_call(seq)?;
                found(session, address, len, now, Some(seq))
            }
            Some(Change::Stretch(seq)) => {
                // Single-step that stretch, to its host call, to find the last change in it.
                session.run_from(
                    Position { seq, steps: 0 },
                    None,
                    Goal {
                        record_changes: watched,
                        host_call: Some(seq),
                        position: Some(Position { seq, steps: u64::MAX }),
                        ..Goal::default()
                    },
                )?;
                let last = session.stop.changes.iter().rev().find_map(|c| match c {
                    Change::At(p) => Some(*p),
                    _ => None,
                });
                match last {
                    Some(position) => {
                        session.go(position)?;
                        found(session, address, len, now, None)
                    }
                    None => Ok(&session.stop),
                }
            }
            None => session.go(START),
        }
    }
}

/// A reverse watch's stop, where the change is about to happen: the bytes then, and as they
/// are at the stop the watch started from (`now`: nothing changed them after).
fn found(
    session: &mut Session,
    address: u64,
    len: u64,
    now: Option<Vec<u8>>,
    by_host_call: Option<u64>,
) -> Result<&Stop, SessionError> {
    let old = session.memory_at_stop(address, len)?.unwrap_or_default();
    session.stop.writer_pc = if by_host_call.is_none() { session.stop.pc } else { None };
    session.stop.reason = StopReason::LastChange { address, old, new: now.unwrap_or_default(), by_host_call };
    Ok(&session.stop)
}

/// Where watched bytes changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub(crate) enum Change {
    /// The instruction at this position changed them.
    At(Position),
    /// Host call `seq` wrote them.
    Call(u64),
    /// Some instruction between host call `seq - 1` returning and host call `seq` changed them.
    Stretch(u64),
}

impl Change {
    /// Whether the change happened before `here`.
    fn before(self, here: Position) -> bool {
        match self {
            Change::At(p) => p < here,
            Change::Call(seq) | Change::Stretch(seq) => seq < here.seq,
        }
    }
}
