//! The trace writer: batches events on the caller's thread, compresses and writes them on a
//! background thread, and finishes the file with the index and seek table.
//!
//! Memory is bounded: at most [`IN_FLIGHT_BATCHES`] batches wait for the compressor, and a
//! producer that outruns it blocks (backpressure) rather than queueing without limit. Batch
//! buffers are recycled, so steady-state appends do not allocate.
//!
//! Durability: a batch is handed to the compressor when it reaches the target size, when
//! [`TraceWriter::flush`] is called (the recorder does so at every trap; `flush` returns only
//! once the bytes are in the file), or at the first append after the compressor has been idle
//! for the flush interval. A recorder that is killed therefore loses at most the batch it was
//! filling.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::codec::RecordEncoder;
use crate::container::{self, IndexEntry, TAG_HEADER, TAG_MODULE};
use crate::error::{Result, TraceError};
use crate::event::{Event, EventKind, HostCall};
use crate::header::{Header, sha256};

/// Batches that may wait for the compressor at once.
pub const IN_FLIGHT_BATCHES: usize = 2;

/// Tuning knobs of a [`TraceWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Uncompressed bytes per data frame before it is handed to the compressor (at most
    /// [`crate::container::MAX_BATCH_BYTES`]; more is taken as that).
    pub batch_bytes: usize,
    /// Longest time a batch may wait while events keep arriving.
    pub flush_interval: Duration,
    /// zstd compression level.
    pub level: i32,
    /// The zstd level used instead of `level` for a batch while another batch is already
    /// waiting for the compressor: when the producer outruns compression (a guest reading a
    /// large file), frames are compressed faster and a little larger rather than holding the
    /// producer up. `None` always uses `level`.
    pub catch_up_level: Option<i32>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_bytes: 256 << 10,
            flush_interval: Duration::from_millis(100),
            level: 3,
            catch_up_level: None,
        }
    }
}

/// What a finished trace holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    /// Events written.
    pub events: u64,
    /// Data frames written.
    pub data_frames: usize,
    /// Total file size in bytes.
    pub file_bytes: u64,
    /// Sum of the data frames' decompressed sizes.
    pub event_bytes: u64,
}

struct Batch {
    bytes: Vec<u8>,
    first_seq: u64,
    events: u32,
    kind_counts: [u32; EventKind::ALL.len()],
}

enum Message {
    Batch(Batch),
    /// Everything sent before has been written: say so on the channel.
    Sync(SyncSender<()>),
    Finish,
}

/// Streams events into a trace file.
pub struct TraceWriter {
    batch: Batch,
    next_seq: u64,
    encoder: RecordEncoder,
    options: WriterOptions,
    to_worker: Option<SyncSender<Message>>,
    recycled: Receiver<Vec<u8>>,
    flush_due: Arc<AtomicBool>,
    /// Batches sent and not yet taken up by the worker.
    backlog: Arc<AtomicUsize>,
    worker: Option<JoinHandle<Result<WriteSummary>>>,
}

impl TraceWriter {
    /// Creates (or truncates) `path` and writes the header; the embedded modules are written
    /// from the writer's thread, so hashing and compressing a large module does not hold up
    /// the caller.
    /// `embedded` pairs a module index of `header.run.modules` with its bytes.
    pub fn create(
        path: &Path,
        header: Header,
        embedded: &[(usize, &[u8])],
        options: WriterOptions,
    ) -> Result<Self> {
        let file = crate::private::create_file(path, true)
            .map_err(|source| TraceError::Open { path: path.to_path_buf(), source })?;
        // Held while the file is open: `repair` refuses a trace that is still being written.
        // Where the platform has no such locks, the trace is simply not protected.
        let _ = file.try_lock();
        Self::new(file, header, embedded, options)
    }

    /// Writes a trace to any byte sink.
    pub fn new<W: Write + Send + 'static>(
        mut sink: W,
        mut header: Header,
        embedded: &[(usize, &[u8])],
        mut options: WriterOptions,
    ) -> Result<Self> {
        options.batch_bytes = options.batch_bytes.min(container::MAX_BATCH_BYTES);
        let mut modules = Vec::with_capacity(embedded.len());
        for &(index, bytes) in embedded {
            let entry = header.run.modules.get_mut(index).ok_or_else(|| {
                TraceError::InvalidInput(format!("embedded module {index} is not in the module table"))
            })?;
            if entry.size != bytes.len() as u64 {
                return Err(TraceError::InvalidInput(format!(
                    "embedded bytes of module {index} ({}) do not match its table entry",
                    entry.name
                )));
            }
            entry.embedded = true;
            modules.push((index, bytes.to_vec()));
        }
        let (to_worker, from_producer) = mpsc::sync_channel(IN_FLIGHT_BATCHES);
        let (recycle_tx, recycled) = mpsc::sync_channel(IN_FLIGHT_BATCHES + 1);
        let flush_due = Arc::new(AtomicBool::new(false));
        let backlog = Arc::new(AtomicUsize::new(0));
        // The header is written here, so a sink that cannot take it fails at once.
        let header_frame = container::wtrace_frame(TAG_HEADER, &header.encode()?)?;
        sink.write_all(&header_frame).map_err(|source| TraceError::Io { offset: 0, source })?;
        let worker = Worker {
            sink,
            offset: header_frame.len() as u64,
            all_frames: vec![(header_frame.len() as u32, 0)],
            entries: Vec::new(),
            level: options.level,
            event_bytes: 0,
            recycle: recycle_tx,
            flush_due: Arc::clone(&flush_due),
            backlog: Arc::clone(&backlog),
            catch_up_level: options.catch_up_level,
            flush_interval: options.flush_interval,
        };
        let worker = std::thread::Builder::new()
            .name("wtrace-writer".into())
            .spawn(move || worker.run(&header, &modules, &from_producer))
            .map_err(|source| TraceError::Io { offset: 0, source })?;
        Ok(TraceWriter {
            batch: Batch::empty(Vec::with_capacity(options.batch_bytes + 4096), 0),
            next_seq: 0,
            encoder: RecordEncoder::default(),
            options,
            to_worker: Some(to_worker),
            recycled,
            flush_due,
            backlog,
            worker: Some(worker),
        })
    }

    /// Appends one event and returns its seq.
    pub fn append(&mut self, event: &Event) -> Result<u64> {
        self.encoder.encode(event, &mut self.batch.bytes)?;
        self.appended(event.kind())
    }

    /// Appends a host call, as [`TraceWriter::append`] would `Event::HostCall(call.clone())`,
    /// without wrapping it: the recorder keeps one host call it refills for every call.
    pub fn append_host_call(&mut self, call: &HostCall) -> Result<u64> {
        self.encoder.encode_host_call(call, &mut self.batch.bytes)?;
        self.appended(EventKind::HostCall)
    }

    /// Counts an event just encoded into the batch and sends the batch when it is due.
    fn appended(&mut self, kind: EventKind) -> Result<u64> {
        self.batch.events += 1;
        self.batch.kind_counts[kind.index()] += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.batch.bytes.len() >= self.options.batch_bytes || self.flush_due.load(Ordering::Relaxed) {
            self.send_batch()?;
        }
        Ok(seq)
    }

    /// Number of events appended so far (the seq the next event gets).
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    /// True when no event has been appended.
    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// Hands the current batch to the compressor and waits until everything appended so far is
    /// written to the file (not fsynced): a crash of this process after `flush` loses nothing.
    pub fn flush(&mut self) -> Result<()> {
        self.send_batch()?;
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.send(Message::Sync(ack_tx))?;
        if ack_rx.recv().is_err() {
            return Err(self.worker_error());
        }
        Ok(())
    }

    /// Hands the events appended so far to the compressor without waiting for them to reach
    /// the file: a recorder calls it on a timer, so events are written within a tick even when
    /// no more are appended.
    pub fn hand_over(&mut self) -> Result<()> {
        self.send_batch()
    }

    /// Writes the last batch, the index and the seek table, flushes the sink, and reports sizes.
    pub fn finish(mut self) -> Result<WriteSummary> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<WriteSummary> {
        self.send_batch()?;
        self.send(Message::Finish)?;
        self.to_worker = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => Err(TraceError::WriterGone),
        }
    }

    fn send_batch(&mut self) -> Result<()> {
        self.flush_due.store(false, Ordering::Relaxed);
        if self.batch.events == 0 {
            return Ok(());
        }
        let buffer =
            self.recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(self.options.batch_bytes + 4096));
        let full = std::mem::replace(&mut self.batch, Batch::empty(buffer, self.next_seq));
        self.backlog.fetch_add(1, Ordering::Relaxed);
        self.send(Message::Batch(full))
    }

    fn send(&mut self, message: Message) -> Result<()> {
        let sent = self.to_worker.as_ref().is_some_and(|tx| tx.send(message).is_ok());
        if sent { Ok(()) } else { Err(self.worker_error()) }
    }

    /// The worker hung up: collect the error it stopped with.
    fn worker_error(&mut self) -> TraceError {
        self.to_worker = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Err(error))) => error,
            _ => TraceError::WriterGone,
        }
    }
}

impl Drop for TraceWriter {
    /// A writer dropped without `finish` (an error path, a panic) still completes the file so
    /// that it opens without recovery; errors are ignored here, as there is no one to tell.
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.finish_inner();
        }
    }
}

impl Batch {
    fn empty(mut bytes: Vec<u8>, first_seq: u64) -> Batch {
        bytes.clear();
        Batch { bytes, first_seq, events: 0, kind_counts: [0; EventKind::ALL.len()] }
    }
}

/// A compressor whose frames carry a content checksum, as every frame of a trace must.
pub(crate) fn checksummed_compressor(level: i32) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    compressor.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
    Ok(compressor)
}

pub(crate) fn zstd_compress(bytes: &[u8], level: i32) -> Result<Vec<u8>> {
    checksummed_compressor(level)
        .and_then(|mut compressor| compressor.compress(bytes))
        .map_err(|source| TraceError::Io { offset: 0, source })
}

struct Worker<W> {
    sink: W,
    offset: u64,
    /// `(compressed, decompressed)` of every frame written, for the seek table.
    all_frames: Vec<(u32, u32)>,
    entries: Vec<IndexEntry>,
    level: i32,
    event_bytes: u64,
    recycle: SyncSender<Vec<u8>>,
    flush_due: Arc<AtomicBool>,
    backlog: Arc<AtomicUsize>,
    catch_up_level: Option<i32>,
    flush_interval: Duration,
}

impl<W: Write> Worker<W> {
    /// Writes the embedded modules, then every batch it is sent. Hashing and compressing the
    /// modules happens here, beside the producer, not before it may start.
    fn run(
        mut self,
        header: &Header,
        modules: &[(usize, Vec<u8>)],
        messages: &Receiver<Message>,
    ) -> Result<WriteSummary> {
        self.write_modules(header, modules)?;
        let mut compressor = checksummed_compressor(self.level).map_err(|source| self.io(source))?;
        let mut catch_up = match self.catch_up_level {
            Some(level) => Some(checksummed_compressor(level).map_err(|source| self.io(source))?),
            None => None,
        };
        let mut out = Vec::new();
        loop {
            let message = match messages.recv_timeout(self.flush_interval) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    self.flush_due.store(true, Ordering::Relaxed);
                    match messages.recv() {
                        Ok(message) => message,
                        Err(_) => return Err(TraceError::WriterGone),
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Err(TraceError::WriterGone),
            };
            match message {
                Message::Batch(batch) => {
                    let waiting = self.backlog.fetch_sub(1, Ordering::Relaxed) > 1;
                    let compressor = match &mut catch_up {
                        Some(fast) if waiting => fast,
                        _ => &mut compressor,
                    };
                    out.clear();
                    out.reserve(zstd::zstd_safe::compress_bound(batch.bytes.len()));
                    compressor
                        .compress_to_buffer(&batch.bytes, &mut out)
                        .map_err(|source| self.io(source))?;
                    self.write_data_frame(&out, &batch)?;
                    let _ = self.recycle.try_send(batch.bytes);
                }
                Message::Sync(ack) => {
                    self.sink.flush().map_err(|source| self.io(source))?;
                    let _ = ack.send(());
                }
                Message::Finish => return self.finish(),
            }
        }
    }

    fn write_modules(&mut self, header: &Header, modules: &[(usize, Vec<u8>)]) -> Result<()> {
        for (index, bytes) in modules {
            let entry = &header.run.modules[*index];
            if entry.sha256 != sha256(bytes) {
                return Err(TraceError::InvalidInput(format!(
                    "embedded bytes of module {index} ({}) do not match its table entry",
                    entry.name
                )));
            }
            let compressed = zstd_compress(bytes, self.level)?;
            let mut body = Vec::with_capacity(compressed.len() + 4);
            body.extend_from_slice(&(*index as u32).to_le_bytes());
            body.extend_from_slice(&compressed);
            self.write_frame(&container::wtrace_frame(TAG_MODULE, &body)?)?;
        }
        Ok(())
    }

    fn write_frame(&mut self, frame: &[u8]) -> Result<()> {
        self.sink.write_all(frame).map_err(|source| self.io(source))?;
        self.all_frames.push((frame.len() as u32, 0));
        self.offset += frame.len() as u64;
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> TraceError {
        TraceError::Io { offset: self.offset, source }
    }

    fn write_data_frame(&mut self, frame: &[u8], batch: &Batch) -> Result<()> {
        let too_big = || TraceError::InvalidInput("a data frame exceeds 4 GiB".into());
        let compressed_len = u32::try_from(frame.len()).map_err(|_| too_big())?;
        let content_len = u32::try_from(batch.bytes.len()).map_err(|_| too_big())?;
        self.sink.write_all(frame).map_err(|source| self.io(source))?;
        self.entries.push(IndexEntry {
            offset: self.offset,
            compressed_len,
            content_len,
            first_seq: batch.first_seq,
            events: batch.events,
            kind_counts: batch.kind_counts.to_vec(),
        });
        self.all_frames.push((compressed_len, content_len));
        self.offset += frame.len() as u64;
        self.event_bytes += batch.bytes.len() as u64;
        Ok(())
    }

    fn finish(mut self) -> Result<WriteSummary> {
        let tail = container::encode_tail(&self.all_frames, &self.entries)?;
        self.sink.write_all(&tail).map_err(|source| self.io(source))?;
        self.sink.flush().map_err(|source| self.io(source))?;
        self.offset += tail.len() as u64;
        Ok(WriteSummary {
            events: self.entries.iter().map(|e| u64::from(e.events)).sum(),
            data_frames: self.entries.len(),
            file_bytes: self.offset,
            event_bytes: self.event_bytes,
        })
    }
}
