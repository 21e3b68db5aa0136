//! One debug run: a thread that replays the trace in guest-debug mode from the start, with the
//! replay shims answering imports from the trace, and pauses wherever the session's current
//! [`Goal`] says. While paused it answers the session's questions (memory, globals) with the
//! store in hand.
//!
//! A place in the run is a [`Position`]: host calls completed, and single steps since the last
//! of them returned. Steps are counted only while single-stepping, so a goal that needs an exact
//! position turns single-stepping on at the host-call boundary it starts from.
//!
//! Every so often of running time the run forks a checkpoint: a copy of the process that waits
//! at that point (at a host-call boundary, or mid-stretch while steps are counted) until the
//! session asks it for memory or to fork a run from there ([`serve_checkpoint`]). A forked copy
//! uses only what this thread owns, so it never waits on a lock another thread held.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bincode::{Decode, Encode};

use wasmtime::{
    AsContextMut, DebugEvent, DebugHandler, Engine, Instance, Linker, Module, Store, StoreContextMut,
};
use wtrace_runtime::entry::{self, value_of};
use wtrace_runtime::outcome::{self, RunEnd};
use wtrace_runtime::process::{self, Forked};
use wtrace_traces::{Trace, Value};

use super::link::{CheckpointAt, Command, Hello, Link, Reply, RunLink};
use super::{Change, DebugFrame, Hit, Position, Stop, StopReason};
use crate::state::{OutputSink, ReplayState};

/// How deep the stack is allowed to be for a step to stop there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub(crate) enum Depth {
    /// Any depth: step into calls.
    Any,
    /// At most this deep: step over calls.
    AtMost(usize),
    /// Less deep than this: finish the function.
    Below(usize),
}

/// Where a run should pause next. Every condition that is set stops it; a run also stops at a
/// trap and at its end.
#[derive(Debug, Clone, Default, Encode, Decode)]
pub(crate) struct Goal {
    /// Stop at a breakpoint.
    pub breakpoints: bool,
    /// Single-step from now on, stopping at the first step whose depth passes.
    pub step: Option<Depth>,
    /// Stop at the entry of this host call.
    pub host_call: Option<u64>,
    /// Stop at this exact position (single-stepping from its boundary).
    pub position: Option<Position>,
    /// Stop at this hit of a PC since a boundary (single-stepping from it).
    pub hit: Option<Hit>,
    /// Stop at this hit of a breakpoint since a boundary, counting nothing.
    pub breakpoint_hit: Option<Hit>,
    /// Stop when these bytes change (single-stepping from now on).
    pub watch: Option<(u64, u64)>,
    /// Record every breakpoint hit on the way (for reverse-continue).
    pub record_hits: bool,
    /// Record the position of every change of these bytes (for a reverse watch).
    pub record_changes: Option<(u64, u64)>,
    /// Keep each step's operand stack, for a trap's faulting frame (Wasmtime keeps none at a
    /// trap): the stack before the faulting instruction is its operands.
    pub keep_stack: bool,
    /// The stretches (host calls completed) that have a checkpoint already: passing one counts
    /// as taking it.
    pub checkpoints_at: Vec<u64>,
    /// How many checkpoints the run may take on the way (the session's cap).
    pub checkpoint_budget: u32,
}

impl Goal {
    /// The boundary (host calls completed) from which the goal needs exact step counts.
    fn counting_from(&self) -> Option<u64> {
        self.position.map(|p| p.seq).or(self.hit.map(|h| h.seq))
    }

    /// Whether the goal single-steps from the current point.
    fn steps_now(&self) -> bool {
        self.step.is_some() || self.watch.is_some()
    }

    /// Whether the goal records what happens on the way (and keeps counting steps in a stretch
    /// it starts counting, so what it records carries exact positions).
    fn records(&self) -> bool {
        self.record_hits || self.record_changes.is_some()
    }
}

/// Debug state kept in the store data.
pub(crate) struct Control {
    /// The conversation with the session (taken while a pause is using it).
    link: Option<RunLink>,
    /// When this process is a forked copy of the run, the session's process: the copy ends
    /// itself when the session is done with it or gone.
    copy_of: Option<u32>,
    goal: Goal,
    breakpoints: Vec<u32>,
    single_step: bool,
    /// Single steps since the last host call returned; counted only while `counting`.
    steps: u64,
    counting: bool,
    /// Hits of each breakpoint PC since the last host call returned.
    hits: HashMap<u32, u64>,
    instance: Option<Instance>,
    module: Arc<Module>,
    imported: u32,
    /// The controller hung up: run out without pausing.
    closed: bool,
    /// Hits recorded for `Goal::record_hits`.
    recorded_hits: Vec<Hit>,
    /// Changes recorded for `Goal::record_changes`, and the bytes last seen.
    recorded_changes: Vec<Change>,
    watched: Option<Vec<u8>>,
    /// The PC of the previous step, for naming the instruction that changed watched bytes.
    last_pc: Option<u32>,
    /// The innermost operand stack at the last step, for `Goal::keep_stack`.
    last_stack: Option<(u32, Vec<Value>)>,
    checkpoints: CheckpointPlan,
    /// Time spent running the guest up to the last pause, and when the run last resumed.
    run_time: Duration,
    resumed_at: Instant,
}

/// When the run forks its next checkpoint.
pub(crate) struct CheckpointPlan {
    /// Where checkpoints connect to the session; `None` takes none.
    pub rendezvous: Option<PathBuf>,
    /// Running time between checkpoints.
    pub interval: Duration,
    /// When the last one was taken (or passed).
    last: Instant,
    /// Taken since the last stop was reported.
    taken: u32,
    /// Taken on the way to the current goal.
    for_goal: u32,
    /// Steps until the next look at the clock while counting.
    tick: u32,
    /// The session's process.
    session_pid: u32,
}

impl CheckpointPlan {
    pub(crate) fn new(rendezvous: Option<PathBuf>, interval: Duration) -> CheckpointPlan {
        CheckpointPlan {
            rendezvous,
            interval,
            last: Instant::now(),
            taken: 0,
            for_goal: 0,
            tick: 0,
            session_pid: std::process::id(),
        }
    }
}

/// The frames a stop shows, innermost first.
const MAX_FRAMES: usize = 512;

/// Steps between looks at the clock while counting: often enough for any interval, rare
/// enough to cost nothing next to a step.
const STEPS_PER_TICK: u32 = 1024;

/// Checkpoints taken on the way to one goal before their interval doubles.
const CHECKPOINTS_PER_DOUBLING: u32 = 64;

/// How many steps before a position the session goes to a checkpoint is taken: stepping back
/// from there re-executes about this many (a millisecond or so).
const NEAR_GOAL: u64 = 4096;

/// What a run needs from the session.
pub(crate) struct RunSetup {
    /// A detached copy, read on the run's thread: checkpoints fork that thread, which must own
    /// every lock it takes and need no other thread.
    pub trace: Trace,
    pub engine: Engine,
    pub module: Arc<Module>,
    pub linker: Arc<Linker<ReplayState>>,
    pub invoke: Option<String>,
    pub args: Vec<String>,
    pub breakpoints: Vec<u32>,
    pub rendezvous: Option<PathBuf>,
    pub checkpoint_interval: Duration,
}

#[derive(Clone)]
struct Handler;

impl DebugHandler for Handler {
    type Data = ReplayState;

    fn handle(
        &self,
        mut store: StoreContextMut<'_, ReplayState>,
        event: DebugEvent<'_>,
    ) -> impl Future<Output = ()> + Send {
        match event {
            DebugEvent::Breakpoint => on_step(&mut store),
            DebugEvent::Trap(trap) => {
                let code = outcome::trap_code(trap);
                if !closed(&mut store) {
                    pause(&mut store, StopReason::Trap(code));
                }
            }
            _ => {}
        }
        std::future::ready(())
    }
}

fn control<'a>(store: &'a mut StoreContextMut<'_, ReplayState>) -> &'a mut Control {
    store.data_mut().debug.as_deref_mut().expect("a debug run's store has its control")
}

fn closed(store: &mut StoreContextMut<'_, ReplayState>) -> bool {
    control(store).closed
}

/// The store of a debug run: the replay's state with the run's control, its epoch deadline
/// and debug handler set.
fn new_store(setup: &RunSetup, link: RunLink) -> Store<ReplayState> {
    let imported = setup.module.imports().filter(|i| i.ty().func().is_some()).count() as u32;
    let initial = Control {
        link: Some(link),
        copy_of: None,
        goal: Goal::default(),
        breakpoints: Vec::new(),
        single_step: false,
        steps: 0,
        counting: false,
        hits: HashMap::new(),
        instance: None,
        module: Arc::clone(&setup.module),
        imported,
        closed: false,
        recorded_hits: Vec::new(),
        recorded_changes: Vec::new(),
        watched: None,
        last_pc: None,
        last_stack: None,
        checkpoints: CheckpointPlan::new(setup.rendezvous.clone(), setup.checkpoint_interval),
        run_time: Duration::ZERO,
        resumed_at: Instant::now(),
    };
    let mut state = ReplayState::new(
        &setup.trace,
        setup.trace.events().on_this_thread(),
        OutputSink::Discard,
        OutputSink::Discard,
    );
    state.debug = Some(Box::new(initial));
    let mut store = Store::new(&setup.engine, state);
    store.set_epoch_deadline(1);
    store.set_debug_handler(Handler);
    store
}

/// Runs the replay from the start on this thread, pausing as the session's goals say. Forked
/// copies of the run (see [`serve_checkpoint`]) return from here too, and end the process.
pub(crate) fn run(setup: &RunSetup, link: RunLink) {
    let mut store = new_store(setup, link);
    let prepared = match entry::prepare(
        &mut store,
        &setup.linker,
        &setup.module,
        setup.invoke.as_deref(),
        &setup.args,
    ) {
        Ok(prepared) => prepared,
        Err(error) => {
            let mut context = store.as_context_mut();
            send(&mut context, Reply::Failed(error.to_string()));
            return;
        }
    };
    {
        let mut context = store.as_context_mut();
        set_breakpoints(&mut context, setup.breakpoints.clone());
        // Host calls completed: none. A goal counting from boundary 0 counts from here.
        pause(&mut context, StopReason::Start);
        at_boundary(&mut context);
    }
    let invoked = setup.invoke.is_some();
    let run = block_on(prepared.run_async(&mut store, |store, instance| {
        // Breakpoints and single-stepping patch a module's code in the store, which holds the
        // module once it is instantiated: set them again now.
        let mut context = store.as_context_mut();
        let state = control(&mut context);
        state.instance = Some(instance);
        let (pcs, single_step) = (state.breakpoints.clone(), state.single_step);
        state.breakpoints.clear();
        set_breakpoints(&mut context, pcs);
        if single_step {
            control(&mut context).single_step = false;
            set_single_step(&mut context, true);
        }
        if let Some((address, len)) =
            control(&mut context).goal.watch.or(control(&mut context).goal.record_changes)
        {
            let bytes = read_memory(&mut context, address, len);
            control(&mut context).watched = bytes;
        }
    }));
    let end = match run {
        Err(error) => {
            let mut context = store.as_context_mut();
            send(&mut context, Reply::Failed(error.to_string()));
            end_copy(&mut context);
            return;
        }
        Ok(run) => match run.result {
            Ok(values) if invoked => RunEnd::Returned(values),
            Ok(_) => RunEnd::Exited(0),
            Err(error) => match error.downcast_ref::<wtrace_runtime::GuestExit>() {
                Some(exit) => RunEnd::Exited(exit.0),
                None => {
                    RunEnd::Trapped(Box::new(outcome::trap_from_error(&error, outcome::no_native_capture())))
                }
            },
        },
    };
    let mut context = store.as_context_mut();
    if !closed(&mut context) {
        let reason = match context.data().divergence.clone() {
            Some(divergence) => StopReason::Diverged(divergence.to_string()),
            None => StopReason::End(end),
        };
        // At the end every goal stops: answer questions until the session hangs up.
        loop {
            pause(&mut context, reason.clone());
            if closed(&mut context) {
                break;
            }
        }
    }
    end_copy(&mut context);
}

/// A forked copy ends the process where its run ends; the original's thread just returns.
fn end_copy(store: &mut StoreContextMut<'_, ReplayState>) {
    if control(store).copy_of.is_some() {
        process::exit_now(0);
    }
}

/// Polls a future on this thread until it is ready. The debug handler pauses by blocking this
/// thread, so nothing here ever waits on a waker.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// The frames on the stack, innermost first, with their locals and operand stacks (names and
/// source lines are the session's to add: a forked copy reads no module data behind a lock).
fn frames(store: &mut StoreContextMut<'_, ReplayState>) -> Vec<DebugFrame> {
    let imported = control(store).imported;
    let mut out = Vec::new();
    let exits: Vec<_> = store.debug_exit_frames().collect();
    for exit in exits {
        let mut frame = Some(exit);
        while let Some(handle) = frame {
            if out.len() >= MAX_FRAMES {
                return out;
            }
            // A stack overflow's innermost frame cannot be asked for its module or instance;
            // function index and PC come from the frame's own data.
            if let Ok(Some((func, pc))) = handle.wasm_function_index_and_pc(&mut *store) {
                let func_index = imported + func.as_u32();
                let pc = pc.raw();
                let num_locals = handle.num_locals(&mut *store).unwrap_or(0);
                let locals: Vec<Value> = (0..num_locals)
                    .filter_map(|i| handle.local(&mut *store, i).ok())
                    .map(|v| value_of(&v))
                    .collect();
                let num_stacks = handle.num_stacks(&mut *store).unwrap_or(0);
                let stack: Vec<Value> = (0..num_stacks)
                    .filter_map(|i| handle.stack(&mut *store, i).ok())
                    .map(|v| value_of(&v))
                    .collect();
                out.push(DebugFrame { func_index, name: None, pc, locals, stack, source: None });
            }
            frame = handle.parent(&mut *store).ok().flatten();
        }
    }
    out
}

fn depth(store: &mut StoreContextMut<'_, ReplayState>) -> usize {
    let exits: Vec<_> = store.debug_exit_frames().collect();
    let mut depth = 0;
    for exit in exits {
        let mut frame = Some(exit);
        while let Some(handle) = frame {
            depth += 1;
            frame = handle.parent(&mut *store).ok().flatten();
        }
    }
    depth
}

fn current_pc(store: &mut StoreContextMut<'_, ReplayState>) -> Option<u32> {
    let exit = store.debug_exit_frames().next()?;
    exit.wasm_function_index_and_pc(&mut *store).ok().flatten().map(|(_, pc)| pc.raw())
}

fn position(store: &mut StoreContextMut<'_, ReplayState>) -> (Position, bool) {
    let seq = store.data().host_calls;
    let control = control(store);
    (Position { seq, steps: control.steps }, control.counting)
}

/// How the watched bytes changed since they were last seen: `(old, new)` when they differ, and
/// the control then holds the new ones. Compared in place, so the check before every
/// instruction allocates only when the bytes changed.
#[allow(clippy::type_complexity)]
fn watched_change(
    store: &mut StoreContextMut<'_, ReplayState>,
    address: u64,
    len: u64,
) -> Option<(Option<Vec<u8>>, Option<Vec<u8>>)> {
    let memory = control(store).instance.and_then(|instance| instance.debug_memory(&mut *store, 0));
    let range = usize::try_from(address)
        .ok()
        .and_then(|start| Some(start..start.checked_add(usize::try_from(len).ok()?)?));
    let now = memory.and_then(|memory| memory.data(&*store).get(range?));
    let seen = store.data().debug.as_deref().and_then(|control| control.watched.as_deref());
    if now == seen {
        return None;
    }
    let now = now.map(<[u8]>::to_vec);
    let old = std::mem::replace(&mut control(store).watched, now.clone());
    Some((old, now))
}

fn read_memory(store: &mut StoreContextMut<'_, ReplayState>, address: u64, len: u64) -> Option<Vec<u8>> {
    let instance = control(store).instance?;
    let memory = instance.debug_memory(&mut *store, 0)?;
    let data = memory.data(&*store);
    let start = usize::try_from(address).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end).map(<[u8]>::to_vec)
}

fn globals(store: &mut StoreContextMut<'_, ReplayState>) -> Vec<Value> {
    let Some(instance) = control(store).instance else { return Vec::new() };
    let mut values = Vec::new();
    while let Some(global) = instance.debug_global(&mut *store, values.len() as u32) {
        values.push(value_of(&global.get(&mut *store)));
    }
    values
}

fn set_single_step(store: &mut StoreContextMut<'_, ReplayState>, on: bool) {
    if control(store).single_step == on {
        return;
    }
    control(store).single_step = on;
    if !on {
        // Steps are no longer counted until the next boundary.
        control(store).counting = false;
    }
    if let Some(mut edit) = store.as_context_mut().edit_breakpoints() {
        let _ = edit.single_step(on);
    }
}

fn set_breakpoints(store: &mut StoreContextMut<'_, ReplayState>, mut pcs: Vec<u32>) {
    // Sorted, for the lookup before every instruction.
    pcs.sort_unstable();
    pcs.dedup();
    let module = Arc::clone(&control(store).module);
    let old = std::mem::take(&mut control(store).breakpoints);
    if let Some(mut edit) = store.as_context_mut().edit_breakpoints() {
        for pc in &old {
            let _ = edit.remove_breakpoint(&module, wasmtime::ModulePC::new(*pc));
        }
        for pc in &pcs {
            let _ = edit.add_breakpoint(&module, wasmtime::ModulePC::new(*pc));
        }
    }
    control(store).breakpoints = pcs;
}

/// Sends to the session; a session that is gone ends the run.
fn send(store: &mut StoreContextMut<'_, ReplayState>, reply: Reply) -> bool {
    let sent = control(store).link.as_mut().is_some_and(|link| link.send(reply).is_ok());
    if !sent {
        hang_up(store);
    }
    sent
}

/// The session's next command; `None` when it is gone (a forked copy ends then).
fn receive(link: &mut RunLink, copy_of: Option<u32>) -> Option<Command> {
    let Some(session_pid) = copy_of else { return link.recv().ok() };
    // A copy cannot see the session close its end (other copies hold it too): it asks now and
    // then whether the session's process is still there.
    loop {
        match link.recv_within(Duration::from_secs(1)) {
            Ok(Some(command)) => return Some(command),
            Ok(None) if process::alive(session_pid) => {}
            _ => process::exit_now(0),
        }
    }
}

/// Pauses: tells the session where, then answers its questions until it says how to go on.
fn pause(store: &mut StoreContextMut<'_, ReplayState>, reason: StopReason) {
    let (position, exact) = position(store);
    let mut frames = frames(store);
    if let (StopReason::Trap(_), Some(innermost)) = (&reason, frames.first_mut())
        && innermost.stack.is_empty()
        && let Some((pc, stack)) = control(store).last_stack.take()
        && pc == innermost.pc
    {
        innermost.stack = stack;
    }
    let stack_depth = if frames.len() < MAX_FRAMES { frames.len() } else { depth(store) };
    let pc = frames.first().map(|f| f.pc);
    let occurrence = pc.map_or(0, |pc| control(store).hits.get(&pc).copied().unwrap_or(0));
    let control_ref = control(store);
    control_ref.run_time += control_ref.resumed_at.elapsed();
    let stop = Stop {
        position,
        exact,
        reason,
        frames,
        pc,
        occurrence,
        hits: std::mem::take(&mut control_ref.recorded_hits),
        changes: std::mem::take(&mut control_ref.recorded_changes),
        writer_pc: control_ref.last_pc.filter(|_| control_ref.goal.watch.is_some()),
        depth: stack_depth,
        recorded_depth: None,
        checkpoints_taken: std::mem::take(&mut control_ref.checkpoints.taken),
    };
    if !send(store, Reply::Stopped(Box::new(stop))) {
        return;
    }
    let Some(mut link) = control(store).link.take() else { return hang_up(store) };
    let copy_of = control(store).copy_of;
    loop {
        let Some(command) = receive(&mut link, copy_of) else {
            hang_up(store);
            return;
        };
        let reply = match command {
            Command::Resume(goal) => {
                control(store).link = Some(link);
                apply_goal(store, goal);
                return;
            }
            Command::Breakpoints(pcs) => {
                set_breakpoints(store, pcs);
                Reply::Done
            }
            Command::ReadMemory { address, len } => Reply::Memory(read_memory(store, address, len)),
            Command::Globals => Reply::Globals(globals(store)),
            Command::Spawn { .. } => Reply::Failed("only a checkpoint forks runs".into()),
            Command::Exit => {
                hang_up(store);
                return;
            }
        };
        if link.send(reply).is_err() {
            hang_up(store);
            return;
        }
    }
}

/// Takes on a new goal where the run is paused.
fn apply_goal(store: &mut StoreContextMut<'_, ReplayState>, goal: Goal) {
    let steps = goal.steps_now();
    if let Some((address, len)) = goal.watch.or(goal.record_changes) {
        let bytes = read_memory(store, address, len);
        control(store).watched = bytes;
    }
    let keep_counting = goal.records() && control(store).counting;
    control(store).goal = goal;
    control(store).checkpoints.for_goal = 0;
    if steps {
        set_single_step(store, true);
    } else if !keep_counting
        && control(store).goal.counting_from().is_none_or(|seq| seq > store.data().host_calls)
    {
        set_single_step(store, false);
    }
    control(store).resumed_at = Instant::now();
}

/// The session is gone or done with this run: a forked copy ends; the original lets its guest
/// run out (the session also bumps the epoch, which traps it at the next check).
fn hang_up(store: &mut StoreContextMut<'_, ReplayState>) {
    if control(store).copy_of.is_some() {
        process::exit_now(0);
    }
    control(store).closed = true;
    control(store).link = None;
    set_single_step(store, false);
}

/// Forks a checkpoint here when one is due: `interval` of running time after the last, a
/// quarter of it while single-stepping (going back within a stretch single-steps, so
/// checkpoints there save the most), or at once when `now`. A long way to one goal spaces
/// them out: the interval doubles every [`CHECKPOINTS_PER_DOUBLING`] taken for it, and the
/// goal's budget ends them.
fn maybe_checkpoint(store: &mut StoreContextMut<'_, ReplayState>, now: bool) {
    let single_step = control(store).single_step;
    let budget = control(store).goal.checkpoint_budget;
    let plan = &control(store).checkpoints;
    let spacing = 1u32 << (plan.for_goal / CHECKPOINTS_PER_DOUBLING).min(16);
    let interval = if single_step { plan.interval / 4 } else { plan.interval } * spacing;
    if plan.rendezvous.is_none() || plan.for_goal >= budget || (!now && plan.last.elapsed() < interval) {
        return;
    }
    let (position, _) = position(store);
    let control_ref = control(store);
    let at = CheckpointAt {
        position,
        run_nanos: (control_ref.run_time + control_ref.resumed_at.elapsed()).as_nanos() as u64,
    };
    match process::fork_replay() {
        Ok(Forked::Parent(_)) => {
            let plan = &mut control(store).checkpoints;
            plan.last = Instant::now();
            plan.taken += 1;
            plan.for_goal += 1;
        }
        Ok(Forked::Child) => serve_checkpoint(store, at),
        // No more processes: go on without checkpoints.
        Err(_) => control(store).checkpoints.rendezvous = None,
    }
}

/// Connects a forked copy to the session.
fn connect(store: &mut StoreContextMut<'_, ReplayState>, checkpoint: Option<CheckpointAt>) -> RunLink {
    let Some(path) = control(store).checkpoints.rendezvous.clone() else { process::exit_now(0) };
    let Ok(stream) = UnixStream::connect(path) else { process::exit_now(0) };
    let mut link = Link::Socket(stream);
    if link.send(Reply::Hello(Hello { pid: std::process::id(), checkpoint })).is_err() {
        process::exit_now(0);
    }
    link
}

/// A checkpoint: a forked copy that waits here, answers questions about memory, and forks a
/// run from here when asked; in that run this returns, and the replay goes on toward the
/// run's goal. The checkpoint itself never returns.
fn serve_checkpoint(store: &mut StoreContextMut<'_, ReplayState>, at: CheckpointAt) {
    // The original's conversation is the original's: this copy has its own. A socket is
    // closed; channels are left alone, since their locks may be held by a thread that is not
    // in this copy.
    match control(store).link.take() {
        Some(Link::Socket(stream)) => drop(stream),
        Some(thread) => std::mem::forget(thread),
        None => {}
    }
    let session_pid = control(store).checkpoints.session_pid;
    control(store).copy_of = Some(session_pid);
    let mut link = connect(store, Some(at));
    loop {
        let Some(command) = receive(&mut link, Some(session_pid)) else { process::exit_now(0) };
        let reply = match command {
            Command::ReadMemory { address, len } => Reply::Memory(read_memory(store, address, len)),
            Command::Globals => Reply::Globals(globals(store)),
            Command::Spawn { goal, breakpoints } => match process::fork_replay() {
                Ok(Forked::Parent(pid)) => Reply::Spawned { pid },
                Ok(Forked::Child) => {
                    drop(link);
                    let run_link = connect(store, None);
                    let control_ref = control(store);
                    control_ref.link = Some(run_link);
                    control_ref.checkpoints.last = Instant::now();
                    control_ref.checkpoints.taken = 0;
                    set_breakpoints(store, breakpoints);
                    apply_goal(store, goal);
                    return;
                }
                Err(e) => Reply::Failed(format!("cannot fork a run: {e}")),
            },
            Command::Exit => process::exit_now(0),
            Command::Resume(_) | Command::Breakpoints(_) => Reply::Failed("a checkpoint does not run".into()),
        };
        if link.send(reply).is_err() {
            process::exit_now(0);
        }
    }
}

/// A host call just returned (or the run is about to start): the step count starts over, a
/// checkpoint may be due, and a goal counting from here turns single-stepping on.
fn at_boundary(store: &mut StoreContextMut<'_, ReplayState>) {
    if closed(store) {
        return;
    }
    let seq = store.data().host_calls;
    let control_ref = control(store);
    control_ref.steps = 0;
    control_ref.hits.clear();
    if control_ref.goal.checkpoints_at.binary_search(&seq).is_ok() {
        control_ref.checkpoints.last = Instant::now();
    }
    if seq > 0 {
        maybe_checkpoint(store, false);
    }
    let control_ref = control(store);
    let from_here = control_ref.goal.counting_from() == Some(seq);
    let steps_now = control_ref.goal.steps_now();
    control_ref.counting = control_ref.single_step || from_here;
    if from_here {
        set_single_step(store, true);
        control(store).counting = true;
        if control(store).goal.position == Some(Position { seq, steps: 0 }) {
            pause(store, StopReason::Step);
        }
    } else if !steps_now && control(store).single_step {
        // Single-stepping for a goal counting from an earlier boundary that passed: stop.
        set_single_step(store, false);
        control(store).counting = false;
    }
}

/// At the entry of a host call (from the replay shim).
pub(crate) fn at_host_call(store: &mut StoreContextMut<'_, ReplayState>) {
    if closed(store) {
        return;
    }
    let seq = store.data().host_calls;
    if let Some((address, len)) = control(store).goal.record_changes
        && !control(store).counting
        && watched_change(store, address, len).is_some()
    {
        // Not single-stepping this stretch: whether its code changed the bytes shows here.
        control(store).recorded_changes.push(Change::Stretch(seq));
    }
    if control(store).goal.host_call == Some(seq) {
        pause(store, StopReason::HostCall { seq });
    }
}

/// After a host call returned (from the replay shim): the bytes it wrote may be watched.
pub(crate) fn after_host_call(store: &mut StoreContextMut<'_, ReplayState>) {
    if closed(store) {
        return;
    }
    if let Some((address, len)) = control(store).goal.watch.or(control(store).goal.record_changes)
        && let Some((old, now)) = watched_change(store, address, len)
    {
        let seq = store.data().host_calls;
        if control(store).goal.record_changes.is_some() {
            control(store).recorded_changes.push(Change::Call(seq - 1));
        }
        if control(store).goal.watch.is_some() {
            at_boundary(store);
            pause(
                store,
                StopReason::Watch {
                    address,
                    old: old.unwrap_or_default(),
                    new: now.unwrap_or_default(),
                    by_host_call: Some(seq - 1),
                },
            );
            return;
        }
    }
    at_boundary(store);
}

/// A breakpoint or single-step event, before the instruction at the current PC runs.
fn on_step(store: &mut StoreContextMut<'_, ReplayState>) {
    if closed(store) {
        return;
    }
    let Some(pc) = current_pc(store) else { return };
    let seq = store.data().host_calls;
    let control_ref = control(store);
    if control_ref.single_step {
        control_ref.steps += 1;
    }
    if control_ref.counting {
        // Just before a position the session goes to, for the steps back from it that follow.
        let near_goal = control_ref
            .goal
            .position
            .is_some_and(|p| p.seq == seq && p.steps > NEAR_GOAL && p.steps - NEAR_GOAL == control_ref.steps);
        control_ref.checkpoints.tick += 1;
        if near_goal || control_ref.checkpoints.tick >= STEPS_PER_TICK {
            control_ref.checkpoints.tick = 0;
            maybe_checkpoint(store, near_goal);
        }
    }
    let run = control(store);
    let is_breakpoint = run.breakpoints.binary_search(&pc).is_ok();
    let tracked = |h: Option<Hit>| h.is_some_and(|h| h.pc == pc);
    let occurrence = if is_breakpoint || tracked(run.goal.hit) || tracked(run.goal.breakpoint_hit) {
        let count = run.hits.entry(pc).or_insert(0);
        *count += 1;
        *count
    } else {
        0
    };
    let here = Position { seq, steps: run.steps };
    let counting = run.counting;
    // The goal's fields this needs (the goal itself holds a list, not to be copied per step).
    let Goal {
        watch,
        record_changes,
        record_hits,
        position,
        hit,
        breakpoint_hit,
        step,
        breakpoints,
        keep_stack,
        ..
    } = run.goal;
    let previous_pc = run.last_pc.replace(pc);
    if is_breakpoint && record_hits {
        run.recorded_hits.push(Hit { seq, pc, occurrence, steps: counting.then_some(here.steps) });
    }
    if keep_stack {
        let stack = innermost_stack(store);
        control(store).last_stack = Some((pc, stack));
    }
    if let Some((address, len)) = watch.or(record_changes)
        && let Some((old, now)) = watched_change(store, address, len)
    {
        // The instruction before this one changed them.
        let changed_at = Position { seq, steps: here.steps.saturating_sub(1) };
        if record_changes.is_some() {
            control(store).recorded_changes.push(Change::At(changed_at));
        }
        if watch.is_some() {
            control(store).last_pc = previous_pc;
            pause(
                store,
                StopReason::Watch {
                    address,
                    old: old.unwrap_or_default(),
                    new: now.unwrap_or_default(),
                    by_host_call: None,
                },
            );
            control(store).last_pc = Some(pc);
            return;
        }
    }
    let is_hit = |h: Hit| h.seq == seq && h.pc == pc && h.occurrence == occurrence;
    let reached = position.is_some_and(|p| counting && p == here)
        || hit.is_some_and(|h| counting && is_hit(h))
        || breakpoint_hit.is_some_and(is_hit);
    let stepped = match step {
        Some(Depth::Any) => true,
        Some(Depth::AtMost(d)) => depth(store) <= d,
        Some(Depth::Below(d)) => depth(store) < d,
        None => false,
    };
    if reached || stepped {
        pause(store, StopReason::Step);
    } else if is_breakpoint && breakpoints {
        pause(store, StopReason::Breakpoint { pc });
    }
}

/// The innermost frame's operand stack.
fn innermost_stack(store: &mut StoreContextMut<'_, ReplayState>) -> Vec<Value> {
    let Some(frame) = store.debug_exit_frames().next() else { return Vec::new() };
    let count = frame.num_stacks(&mut *store).unwrap_or(0);
    (0..count).filter_map(|i| frame.stack(&mut *store, i).ok()).map(|v| value_of(&v)).collect()
}
