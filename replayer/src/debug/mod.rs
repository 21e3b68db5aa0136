//! Debug replay: a [`Session`] replays a trace in Wasmtime's guest-debug mode, with imports
//! answered from the trace exactly as plain replay answers them, and stops where it is asked —
//! at an event, a breakpoint (a Wasm PC, a function's entry, a `file:line`), after a step (into,
//! over, out of a call), at a trap before it unwinds, or where watched bytes change. At a stop
//! it shows every frame with its locals and operand stack, the globals and the memory.
//!
//! Going back is deterministic re-execution: the run starts over and stops at the earlier
//! [`Position`] (host calls completed, and single steps since the last of them). Steps are
//! counted from the host-call boundary before the target, so a step back costs a run to that
//! boundary at full speed and single-stepping from there; reverse-continue, step-over back,
//! finish back and reverse watchpoints first find their target with one such pass, then go to
//! it with another. Watchpoints look at the bytes at host-call boundaries first and single-step
//! only through the stretch where they changed.

mod engine;

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use wasmtime::{Engine, Linker, Module};
use wtrace_runtime::introspect::ModuleInfo;
use wtrace_runtime::module::{self, CompileOptions};
use wtrace_runtime::{EngineSettings, RunEnd, WASMTIME_VERSION};
use wtrace_traces::{SourceLocation, Trace, TrapCode, Value};

use engine::{Command, Depth, Goal, Reply, RunSetup};
pub(crate) use engine::{Control, after_host_call, at_host_call};

use crate::error::ReplayError;
use crate::state::ReplayState;

/// A place in a replay: host calls completed, and single steps (Wasm instructions) since the
/// last of them returned. `(0, 0)` is the start, before any of the guest's code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Host calls completed.
    pub seq: u64,
    /// Instructions since the last host call returned.
    pub steps: u64,
}

/// A breakpoint's hit: the `occurrence`-th arrival at `pc` since host call `seq`'s boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The run ended.
    End(RunEnd),
    /// The replay left the recording.
    Diverged(String),
}

/// A frame at a stop.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Stop {
    /// The innermost frame.
    pub fn frame(&self) -> Option<&DebugFrame> {
        self.frames.first()
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
}

struct Shared {
    trace: Trace,
    engine: Engine,
    module: Arc<Module>,
    linker: Arc<Linker<ReplayState>>,
    info: Arc<ModuleInfo>,
}

struct RunHandle {
    commands: Sender<Command>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
}

/// A debug replay of a trace, stopped somewhere.
pub struct Session {
    shared: Shared,
    breakpoints: Vec<u32>,
    run: Option<RunHandle>,
    stop: Stop,
    /// Host calls in the recording.
    host_calls: u64,
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
}

impl Session {
    /// Opens a debug replay of `trace`, stopped at the start.
    pub fn open(trace: &Trace, options: &SessionOptions) -> Result<Session, SessionError> {
        let header = trace.header();
        let run = &header.run;
        if run.wasmtime_version != WASMTIME_VERSION {
            return Err(ReplayError::WasmtimeVersion {
                recorded: run.wasmtime_version.clone(),
                running: WASMTIME_VERSION,
            }
            .into());
        }
        let settings = EngineSettings::from_header(&run.engine_config).map_err(ReplayError::from)?;
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
        let info = ModuleInfo::parse(bytes).map_err(|e| SessionError::Run(e.to_string()))?;
        let module = compiled.module;
        let linker = crate::shims::link(&engine, &module, &run.imports).map_err(ReplayError::from)?;
        let host_calls = trace.kind_counts()[wtrace_traces::EventKind::HostCall.index()];
        let shared = Shared {
            trace: trace.clone(),
            engine,
            module: Arc::new(module),
            linker: Arc::new(linker),
            info: Arc::new(info),
        };
        let start = Stop {
            position: Position { seq: 0, steps: 0 },
            exact: true,
            reason: StopReason::Start,
            frames: Vec::new(),
            pc: None,
            occurrence: 0,
            hits: Vec::new(),
            changes: Vec::new(),
            writer_pc: None,
        };
        let mut session = Session { shared, breakpoints: Vec::new(), run: None, stop: start, host_calls };
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

    /// Starts the replay over, stopped at the start.
    fn restart(&mut self) -> Result<(), SessionError> {
        self.close_run();
        let (commands, to_run) = mpsc::channel();
        let (from_run, replies) = mpsc::channel();
        let run = &self.shared.trace.header().run;
        let setup = RunSetup {
            trace: self.shared.trace.clone(),
            engine: self.shared.engine.clone(),
            module: Arc::clone(&self.shared.module),
            linker: Arc::clone(&self.shared.linker),
            info: Arc::clone(&self.shared.info),
            imports: run.imports.clone(),
            invoke: run.invoke.clone(),
            args: if run.invoke.is_some() { run.args.clone() } else { Vec::new() },
            breakpoints: self.breakpoints.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("wtrace-debug".into())
            .stack_size(16 << 20)
            .spawn(move || engine::run(&setup, to_run, &from_run))
            .map_err(|e| SessionError::Run(e.to_string()))?;
        self.run = Some(RunHandle { commands, replies, thread: Some(thread) });
        self.wait()?;
        Ok(())
    }

    /// Ends the current run: its guest traps at the next epoch check and its thread ends.
    fn close_run(&mut self) {
        if let Some(mut run) = self.run.take() {
            drop(run.commands);
            self.shared.engine.increment_epoch();
            if let Some(thread) = run.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn send(&mut self, command: Command) -> Result<(), SessionError> {
        let run = self.run.as_ref().ok_or_else(|| SessionError::Run("no run".into()))?;
        run.commands.send(command).map_err(|_| SessionError::Run("the debug run ended".into()))
    }

    fn reply(&mut self) -> Result<Reply, SessionError> {
        let run = self.run.as_ref().ok_or_else(|| SessionError::Run("no run".into()))?;
        run.replies.recv().map_err(|_| SessionError::Run("the debug run ended without answering".into()))
    }

    /// Waits for the run to stop.
    fn wait(&mut self) -> Result<&Stop, SessionError> {
        match self.reply()? {
            Reply::Stopped(stop) => {
                self.stop = *stop;
                Ok(&self.stop)
            }
            Reply::Failed(error) => Err(SessionError::Run(error)),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
    }

    fn resume(&mut self, goal: Goal) -> Result<&Stop, SessionError> {
        if matches!(self.stop.reason, StopReason::End(_) | StopReason::Diverged(_)) {
            return Ok(&self.stop);
        }
        self.send(Command::Resume(goal))?;
        self.wait()
    }

    /// Runs on to the next breakpoint, trap or the end.
    pub fn continue_(&mut self) -> Result<&Stop, SessionError> {
        self.resume(Goal { breakpoints: true, ..Goal::default() })
    }

    /// One instruction, into calls.
    pub fn step(&mut self) -> Result<&Stop, SessionError> {
        self.counted()?;
        self.resume(Goal { step: Some(Depth::Any), ..Goal::default() })
    }

    /// One instruction, over calls (a breakpoint inside a call stops it too).
    pub fn step_over(&mut self) -> Result<&Stop, SessionError> {
        self.counted()?;
        let depth = self.stop.frames.len();
        self.resume(Goal { step: Some(Depth::AtMost(depth.max(1))), breakpoints: true, ..Goal::default() })
    }

    /// To the instruction after the call of the current function (finish).
    pub fn step_out(&mut self) -> Result<&Stop, SessionError> {
        self.counted()?;
        let depth = self.stop.frames.len();
        self.resume(Goal { step: Some(Depth::Below(depth.max(1))), breakpoints: true, ..Goal::default() })
    }

    /// Makes the stop's position exact before stepping from it, so that the steps after it are
    /// counted too (and can be gone back over).
    fn counted(&mut self) -> Result<(), SessionError> {
        if !self.stop.exact && !matches!(self.stop.reason, StopReason::End(_) | StopReason::Diverged(_)) {
            self.position()?;
        }
        Ok(())
    }

    /// To the entry of host call `seq` (the end, past the last); from the start when `seq` is
    /// behind.
    pub fn run_to(&mut self, seq: u64) -> Result<&Stop, SessionError> {
        let here = self.stop.position;
        let passed = seq < here.seq || (seq == here.seq && !matches!(self.stop.reason, StopReason::Start));
        if passed || matches!(self.stop.reason, StopReason::End(_) | StopReason::Diverged(_)) {
            self.restart()?;
        }
        self.resume(Goal { host_call: Some(seq), ..Goal::default() })
    }

    /// Replaces the breakpoints.
    pub fn set_breakpoints(&mut self, places: &[BreakAt]) -> Result<(), SessionError> {
        let mut pcs = Vec::new();
        for place in places {
            pcs.extend(self.resolve(place)?);
        }
        pcs.sort_unstable();
        pcs.dedup();
        self.breakpoints.clone_from(&pcs);
        if matches!(self.stop.reason, StopReason::End(_) | StopReason::Diverged(_)) {
            return Ok(());
        }
        self.send(Command::Breakpoints(pcs))?;
        match self.reply()? {
            Reply::Done => Ok(()),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
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

    /// Bytes of linear memory 0 at the stop.
    pub fn read_memory(&mut self, address: u64, len: u64) -> Result<Option<Vec<u8>>, SessionError> {
        self.send(Command::ReadMemory { address, len })?;
        match self.reply()? {
            Reply::Memory(bytes) => Ok(bytes),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
    }

    /// Every global's value at the stop.
    pub fn globals(&mut self) -> Result<Vec<Value>, SessionError> {
        self.send(Command::Globals)?;
        match self.reply()? {
            Reply::Globals(values) => Ok(values),
            other => Err(SessionError::Run(format!("unexpected answer {other:?}"))),
        }
    }

    // ---- going back ----

    /// The exact position of the stop: counts the steps since the last host call when the
    /// stop was reached without counting them (one run from the start).
    pub fn position(&mut self) -> Result<Position, SessionError> {
        if self.stop.exact {
            return Ok(self.stop.position);
        }
        let seq = self.stop.position.seq;
        let goal = match &self.stop.reason {
            StopReason::Breakpoint { pc } => Goal {
                hit: Some(Hit { seq, pc: *pc, occurrence: self.stop.occurrence, steps: None }),
                ..Goal::default()
            },
            StopReason::HostCall { seq } => Goal {
                host_call: Some(*seq),
                position: Some(Position { seq: *seq, steps: u64::MAX }),
                ..Goal::default()
            },
            // A trap, the end, a divergence: count until they happen again.
            _ => Goal { position: Some(Position { seq, steps: u64::MAX }), ..Goal::default() },
        };
        self.restart()?;
        self.resume(goal)?;
        Ok(self.stop.position)
    }

    /// Goes to `target`, running from the start.
    pub fn goto(&mut self, target: Position) -> Result<&Stop, SessionError> {
        self.restart()?;
        if target == (Position { seq: 0, steps: 0 }) {
            return Ok(&self.stop);
        }
        self.resume(Goal { position: Some(target), ..Goal::default() })
    }

    /// The position before `here`: the previous step, or the call instruction of the host call
    /// before the boundary `here` is at.
    fn before(&mut self, here: Position) -> Result<Option<Position>, SessionError> {
        if here.steps > 0 {
            return Ok(Some(Position { seq: here.seq, steps: here.steps - 1 }));
        }
        if here.seq == 0 {
            return Ok(None);
        }
        // Count the steps to the entry of the host call that ends the previous stretch.
        self.restart()?;
        let seq = here.seq - 1;
        self.resume(Goal {
            host_call: Some(seq),
            position: Some(Position { seq, steps: u64::MAX }),
            ..Goal::default()
        })?;
        Ok(Some(self.stop.position))
    }

    /// One instruction back.
    pub fn step_back(&mut self) -> Result<&Stop, SessionError> {
        let here = self.position()?;
        match self.before(here)? {
            Some(target) => self.goto(target),
            None => self.goto(Position { seq: 0, steps: 0 }),
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
            let Some(before) = self.before(at)? else { return self.goto(Position { seq: 0, steps: 0 }) };
            let stop = self.goto(before)?;
            if keep(stop.frames.len()) {
                return Ok(&self.stop);
            }
            at = before;
        }
    }

    /// Back over calls: to the previous instruction of this function (or its caller's, at
    /// its first).
    pub fn step_over_back(&mut self) -> Result<&Stop, SessionError> {
        let here = self.position()?;
        let depth = self.stop.frames.len();
        self.last_step_before(here, |d| d <= depth)
    }

    /// Back out of the current function: to the call that entered it (finish, backwards).
    pub fn step_out_back(&mut self) -> Result<&Stop, SessionError> {
        let here = self.position()?;
        let depth = self.stop.frames.len();
        self.last_step_before(here, |d| d < depth)
    }

    /// Back to the previous breakpoint hit (to the start when there is none).
    pub fn reverse_continue(&mut self) -> Result<&Stop, SessionError> {
        let here = self.position()?;
        self.restart()?;
        let hits = if here == (Position { seq: 0, steps: 0 }) {
            Vec::new()
        } else {
            self.resume(Goal { record_hits: true, position: Some(here), ..Goal::default() })?;
            self.stop.hits.clone()
        };
        let last =
            hits.into_iter().rev().find(|h| h.seq < here.seq || h.steps.is_some_and(|s| s < here.steps));
        match last {
            Some(Hit { seq, steps: Some(steps), .. }) => self.goto(Position { seq, steps }),
            Some(hit) => {
                self.restart()?;
                self.resume(Goal { hit: Some(hit), ..Goal::default() })
            }
            None => self.goto(Position { seq: 0, steps: 0 }),
        }
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
        let goal = Goal { watch: Some((self.address, self.len)), ..Goal::default() };
        self.session.resume(goal)
    }

    /// Goes back to the last instruction (or host call) before the stop that changed the bytes
    /// — where did this value come from? — or to the start when nothing changed them.
    pub fn reverse_continue(self) -> Result<&'a Stop, SessionError> {
        let session = self.session;
        let watched = Some((self.address, self.len));
        let here = session.position()?;
        // Where, stretch by stretch, did they change on the way here? Exactly, in the stretch of
        // `here` itself, which is single-stepped.
        session.restart()?;
        let changes = if here == (Position { seq: 0, steps: 0 }) {
            Vec::new()
        } else {
            session.resume(Goal { record_changes: watched, position: Some(here), ..Goal::default() })?;
            session.stop.changes.clone()
        };
        match changes.into_iter().rev().find(|c| c.before(here)) {
            Some(Change::At(position)) => session.goto(position),
            Some(Change::Call(seq)) => {
                session.restart()?;
                session.resume(Goal {
                    host_call: Some(seq),
                    position: Some(Position { seq, steps: u64::MAX }),
                    ..Goal::default()
                })
            }
            Some(Change::Stretch(seq)) => {
                // Single-step that stretch, to its host call, to find the last change in it.
                session.restart()?;
                session.resume(Goal {
                    record_changes: watched,
                    host_call: Some(seq),
                    position: Some(Position { seq, steps: u64::MAX }),
                    ..Goal::default()
                })?;
                let last = session.stop.changes.iter().rev().find_map(|c| match c {
                    Change::At(p) => Some(*p),
                    _ => None,
                });
                match last {
                    Some(position) => session.goto(position),
                    None => Ok(&session.stop),
                }
            }
            None => session.goto(Position { seq: 0, steps: 0 }),
        }
    }
}

/// Where watched bytes changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
