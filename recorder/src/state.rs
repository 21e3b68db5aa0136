//! The store data of a recording: the WASI context the guest runs against, the trace writer, and
//! how one host call becomes one recorded event (the bytes the write-set table says the host
//! wrote, the bytes it read that people want to see) without allocating once warm.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::{Extern, StoreContextMut, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;
use wiggle::{GuestMemory, GuestPtr};
use wtrace_runtime::memory::{KeepsMemoryExport, changed_runs};
use wtrace_runtime::outcome::frames_of;
use wtrace_runtime::wasi::{self, Blocking, Stdio, StringSizes, WasiFunction};
use wtrace_traces::{
    Frame, HostCall, ImportId, Interruption, MemoryBytes, Outcome, Printed, StopCause, Stream, TraceError,
    TraceWriter, Value,
};

use crate::interrupt::{Interrupt, Interrupted, TICK};
use crate::options::AuditEntry;

/// Store data of a recording.
pub(crate) struct RecordState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) writer: TraceWriter,
    pub(crate) sizes: StringSizes,
    /// Reused for every host call so the per-call path does not allocate.
    pub(crate) scratch: HostCall,
    pub(crate) regions: Vec<(u32, u32)>,
    /// The first write error; the run is stopped with it.
    pub(crate) failed: Option<TraceError>,
    /// With [`RecordOptions::audit_writes`], what the audit found so far.
    pub(crate) audit: Option<Vec<AuditEntry>>,
    /// The guest's `memory` export, once a host call has looked it up.
    pub(crate) memory: Option<Extern>,
    /// Which descriptors refer to the recording's stdout and stderr.
    pub(crate) stdio: StdioDescriptors,
    /// Raised to stop the guest.
    pub(crate) interrupt: Interrupt,
    /// Where the guest was when it stopped for [`RecordState::interrupt`].
    pub(crate) interruption: Option<Interruption>,
    /// Where the guest was when the trace could not take its call: the backtrace, the import.
    pub(crate) failed_in: Option<(Vec<Frame>, Option<ImportId>)>,
    /// The recording's epoch ticks, and their count when the last event was appended: how
    /// long before an interruption the guest made its last call ([`Interruption::after_ms`]).
    pub(crate) ticks: Arc<AtomicU64>,
    pub(crate) last_event_tick: u64,
}

/// Which guest descriptors refer to the recording's own stdout and stderr: 1 and 2 at the
/// start, then wherever `fd_renumber` moves them, until `fd_close` closes them. WASI
/// preview 1 has no other way to make a descriptor refer to an open stream (no `dup`), and a
/// new descriptor never takes a number that is open, so these two calls are all it follows.
/// C's `freopen` and `dup2` come down to them.
#[derive(Debug)]
pub(crate) struct StdioDescriptors {
    open: Vec<(i32, Stream)>,
}

impl Default for StdioDescriptors {
    fn default() -> Self {
        StdioDescriptors { open: vec![(1, Stream::Stdout), (2, Stream::Stderr)] }
    }
}

impl StdioDescriptors {
    fn stream(&self, fd: i32) -> Option<Stream> {
        self.open.iter().find(|(open, _)| *open == fd).map(|(_, stream)| *stream)
    }

    fn closed(&mut self, fd: i32) {
        self.open.retain(|(open, _)| *open != fd);
    }

    /// `fd_renumber(from, to)` succeeded: `to` now refers to what `from` did, and `from` is closed.
    fn renumbered(&mut self, from: i32, to: i32) {
        if from == to {
            return;
        }
        let moved = self.stream(from);
        self.closed(to);
        self.closed(from);
        if let Some(stream) = moved {
            self.open.push((to, stream));
        }
    }

    /// Follows a WASI call that returned errno 0 and wrote no output.
    fn after_success(&mut self, stdio: Stdio, args: &[u64]) {
        let fd = |i: usize| args.get(i).map(|raw| *raw as i32);
        match (stdio, fd(0), fd(1)) {
            (Stdio::Closes, Some(fd), _) => self.closed(fd),
            (Stdio::Renumbers, Some(from), Some(to)) => self.renumbered(from, to),
            _ => {}
        }
    }
}

impl KeepsMemoryExport for RecordState {
    fn memory_export(&mut self) -> &mut Option<Extern> {
        &mut self.memory
    }
}

/// Stops the guest when the trace cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("the trace could not be written")]
struct WriteFailed;

impl RecordState {
    /// Flushes before calls that may block for a long time (reading stdin, polling), so a
    /// recorder killed while it waits has written every event before the call; says whether
    /// this call may block.
    pub(crate) fn before_call(&mut self, row: &WasiFunction, args: &[u64]) -> wasmtime::Result<bool> {
        let blocking = match row.blocking {
            Blocking::Never => false,
            Blocking::OnStdin => args.first() == Some(&0),
            Blocking::Always => true,
        };
        if blocking && let Err(error) = self.writer.flush() {
            self.failed = Some(error);
            return Err(WriteFailed.into());
        }
        Ok(blocking)
    }

    /// Appends the host call that just returned `result`.
    pub(crate) fn record_call(
        &mut self,
        row: &WasiFunction,
        import: ImportId,
        args: &[u64],
        params: &[Value],
        result: &wasmtime::Result<i32>,
        memory: &GuestMemory<'_>,
    ) -> wasmtime::Result<()> {
        // `scratch.input_hash` was set before the call, from memory as the host found it.
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
            wasi::regions(row.writes, args, memory, self.sizes, &mut self.regions);
            used = copy_regions(&self.regions, memory, &mut call.writes);
        }
        call.writes.truncate(used);
        self.regions.clear();
        if result.is_ok() {
            wasi::regions(row.reads, args, memory, self.sizes, &mut self.regions);
        }
        let used = copy_regions(&self.regions, memory, &mut call.reads);
        call.reads.truncate(used);
        call.printed = None;
        if ok {
            if row.stdio == Stdio::Writes {
                call.printed = printed(&self.stdio, args, call);
            } else {
                self.stdio.after_success(row.stdio, args);
            }
        }
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
        call.printed = None;
        call.input_hash = None;
        call.writes.clear();
        // Runs closer than 16 bytes are merged: one record costs more than a few unchanged bytes.
        for (offset, len) in changed_runs(before, after, 16) {
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
    pub(crate) fn audit_writes(&mut self, row: &WasiFunction, before: &[u8], after: &[u8]) {
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
        for (start, len) in changed_runs(before, after, 0) {
            let mut run: Option<(u64, u64)> = None;
            for at in (start..start + len).filter(|at| !covered(*at)) {
                match &mut run {
                    Some((first, n)) if *first + *n == at as u64 => *n += 1,
                    _ => {
                        entry.missed.extend(run.take());
                        run = Some((at as u64, 1));
                    }
                }
            }
            entry.missed.extend(run);
        }
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
        call.printed = None;
        call.input_hash = None;
        self.append_scratch()
    }

    /// Notes where the guest stopped for an interrupt: in `frames`, waiting in a call of
    /// `in_host_call` or running Wasm.
    pub(crate) fn interrupted(
        &mut self,
        cause: StopCause,
        frames: Vec<Frame>,
        in_host_call: Option<ImportId>,
    ) {
        let ticks = self.ticks.load(Ordering::Relaxed).saturating_sub(self.last_event_tick);
        let after_ms = ticks.saturating_mul(u64::try_from(TICK.as_millis()).unwrap_or(u64::MAX));
        self.interruption = Some(Interruption { cause, frames, in_host_call, after_ms });
    }

    /// At each epoch tick while the guest runs Wasm: hands the events appended since the last
    /// tick to the writer, and stops the guest when the recording is interrupted.
    pub(crate) fn on_tick(mut store: StoreContextMut<'_, RecordState>) -> wasmtime::Result<UpdateDeadline> {
        let state = store.data_mut();
        if let Err(error) = state.writer.hand_over() {
            state.failed = Some(error);
            return Err(WriteFailed.into());
        }
        if let Some(signal) = state.interrupt.raised() {
            let frames = frames_of(&WasmBacktrace::capture(&store));
            store.data_mut().interrupted(StopCause::Signal(signal), frames, None);
            return Err(Interrupted(signal).into());
        }
        Ok(UpdateDeadline::Continue(1))
    }

    fn append_scratch(&mut self) -> wasmtime::Result<()> {
        self.last_event_tick = self.ticks.load(Ordering::Relaxed);
        match self.writer.append_host_call(&self.scratch) {
            Ok(_) => Ok(()),
            Err(error) => {
                self.failed = Some(error);
                Err(WriteFailed.into())
            }
        }
    }
}

/// What a successful output call (`fd_write(fd, iovs, ...)`) printed, when `fd` refers to the
/// recording's stdout or stderr: its reads, which the table cuts at the byte count the host
/// reported written.
fn printed(stdio: &StdioDescriptors, args: &[u64], call: &HostCall) -> Option<Printed> {
    let stream = stdio.stream(*args.first()? as i32)?;
    let len: usize = call.reads.iter().map(|read| read.bytes.len()).sum();
    let len = u32::try_from(len).ok().filter(|len| *len > 0)?;
    Some(Printed { stream, len })
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
