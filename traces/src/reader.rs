//! The trace reader: opens a trace through its index (cost independent of the number of
//! events), iterates events in order, fetches any event by seq, and — when the index is
//! missing or damaged — recovers every complete data frame by scanning from the start.

use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use crate::codec::{self, Record};
use crate::container::{
    self, FrameShape, IndexEntry, ReadAt, SKIPPABLE_HEADER_LEN, TAG_HEADER, TAG_INDEX, TAG_MODULE,
    WTRACE_SKIPPABLE_MAGIC, ZSTD_MAGIC,
};
use crate::error::{Result, TraceError};
use crate::event::{Event, EventKind};
use crate::header::{Header, sha256};

/// Whether a trace was read through its index or rebuilt by a recovery scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    /// The writer finished: index and seek table are present and valid.
    Complete,
    /// The index was missing or damaged; every complete, intact data frame before `stopped_at`
    /// was recovered.
    Recovered {
        /// Why the index could not be used.
        index_problem: String,
        /// Where the scan stopped: the first byte that is not part of a complete frame.
        stopped_at: u64,
        /// Why the scan stopped there (`None` when it simply reached the end of the file).
        scan_stop: Option<String>,
    },
}

/// An open trace. Cloning is cheap and shares the open file and caches, so a clone can be
/// moved into a Wasmtime store or another thread.
#[derive(Clone)]
pub struct Trace(Arc<TraceData>);

/// What an open trace knows: the header, the index and a one-frame cache.
struct TraceData {
    src: Box<dyn ReadAt>,
    header: Header,
    header_len: u64,
    /// File offset and payload length of each embedded module frame, by module index.
    modules: Vec<Option<(u64, u64)>>,
    entries: Vec<IndexEntry>,
    /// `(compressed, decompressed)` of every frame from the header up to the last data frame.
    frames_before_tail: Vec<(u32, u32)>,
    /// End of the last complete frame before the tail.
    data_end: u64,
    completeness: Completeness,
    events: u64,
    cache: Mutex<Option<(usize, Arc<LoadedFrame>)>>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("header", &self.0.header)
            .field("events", &self.0.events)
            .field("frames", &self.0.entries.len())
            .field("completeness", &self.0.completeness)
            .finish_non_exhaustive()
    }
}

/// A decompressed data frame with the byte spans of its records.
struct LoadedFrame {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Trace {
    /// Opens the trace file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Trace> {
        let path = path.as_ref();
        let open_error = |source| TraceError::Open { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(open_error)?;
        let meta = file.metadata().map_err(open_error)?;
        if meta.is_dir() {
            return Err(open_error(std::io::Error::other("it is a directory")));
        }
        Trace::from_source(Box::new(container::FileSource { file, len: meta.len() }))
    }

    /// Opens a trace held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Trace> {
        Trace::from_source(Box::new(bytes))
    }

    /// Opens a trace from any random-access source.
    pub fn from_source(src: Box<dyn ReadAt>) -> Result<Trace> {
        TraceData::build(src).map(|data| Trace(Arc::new(data)))
    }
}

impl TraceData {
    fn build(src: Box<dyn ReadAt>) -> Result<TraceData> {
        let (header, header_len) = read_header(src.as_ref())?;
        let module_count = header.run.modules.len();
        let mut trace = TraceData {
            src,
            header,
            header_len,
            modules: vec![None; module_count],
            entries: Vec::new(),
            frames_before_tail: vec![(header_len as u32, 0)],
            data_end: header_len,
            completeness: Completeness::Complete,
            events: 0,
            cache: Mutex::new(None),
        };
        match container::read_tail(trace.src.as_ref(), header_len) {
            Ok(Some(tail)) => trace.adopt_tail(tail)?,
            Ok(None) => trace.recover("no index: the recording did not finish".into()),
            Err(error) => trace.recover(format!("index damaged: {error}")),
        }
        trace.events = trace.entries.iter().map(|e| u64::from(e.events)).sum();
        Ok(trace)
    }

    fn adopt_tail(&mut self, tail: container::Tail) -> Result<()> {
        // Frames between the header and the first data frame are the embedded modules.
        let first_data = tail.entries.first().map_or(tail.index_offset, |e| e.offset);
        let mut pos = self.header_len;
        while pos < first_data {
            let shape = container::frame_shape(self.src.as_ref(), pos)?;
            self.note_module_frame(pos, shape)?;
            self.frames_before_tail.push((shape.len() as u32, 0));
            pos += shape.len();
        }
        if pos != first_data {
            return Err(TraceError::corrupt("index", tail.index_offset, "first data frame is misplaced"));
        }
        for e in &tail.entries {
            self.frames_before_tail.push((e.compressed_len, e.content_len));
        }
        self.entries = tail.entries;
        self.data_end = tail.index_offset;
        Ok(())
    }

    /// Records an embedded module frame at `pos`; anything else there is corruption.
    fn note_module_frame(&mut self, pos: u64, shape: FrameShape) -> Result<()> {
        let FrameShape::Skippable { magic: WTRACE_SKIPPABLE_MAGIC, payload_len } = shape else {
            return Err(TraceError::corrupt("module frame", pos, "expected an embedded module"));
        };
        let head = container::read_bytes(self.src.as_ref(), pos + SKIPPABLE_HEADER_LEN, 8, "module frame")?;
        if head[..4] != TAG_MODULE {
            return Err(TraceError::corrupt("module frame", pos, "expected an embedded module"));
        }
        let index = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let slot = self.modules.get_mut(index).ok_or_else(|| {
            TraceError::corrupt("module frame", pos, format!("module {index} is not in the header"))
        })?;
        *slot = Some((pos, payload_len));
        Ok(())
    }

    /// Scans frames from the header on, keeping every complete, intact data frame.
    fn recover(&mut self, index_problem: String) {
        let mut pos = self.header_len;
        let len = self.src.len();
        let mut next_seq = 0u64;
        let scan_stop = loop {
            if pos >= len {
                break None;
            }
            let shape = match container::frame_shape(self.src.as_ref(), pos) {
                Ok(shape) => shape,
                Err(error) => break Some(error.to_string()),
            };
            match shape {
                FrameShape::Skippable { magic: WTRACE_SKIPPABLE_MAGIC, .. } => {
                    let tag = match container::read_bytes(self.src.as_ref(), pos + 8, 4, "frame") {
                        Ok(tag) => tag,
                        Err(error) => break Some(error.to_string()),
                    };
                    if tag == TAG_INDEX {
                        break None;
                    }
                    if tag != TAG_MODULE || !self.entries.is_empty() {
                        break Some(format!("unexpected frame at byte {pos}"));
                    }
                    if let Err(error) = self.note_module_frame(pos, shape) {
                        break Some(error.to_string());
                    }
                }
                FrameShape::Skippable { .. } => break None,
                FrameShape::Zstd { len: frame_len, .. } => {
                    let mut entry = IndexEntry {
                        offset: pos,
                        compressed_len: frame_len as u32,
                        content_len: 0,
                        first_seq: next_seq,
                        events: 0,
                        kind_counts: vec![0; EventKind::ALL.len()],
                    };
                    let frame = match self.load_frame_at(self.entries.len(), &entry, shape) {
                        Ok(frame) => frame,
                        Err(error) => break Some(error.to_string()),
                    };
                    match self.count_kinds(&frame, pos) {
                        Ok(counts) => entry.kind_counts = counts,
                        Err(error) => break Some(error.to_string()),
                    }
                    entry.events = frame.spans.len() as u32;
                    entry.content_len = frame.bytes.len() as u32;
                    next_seq += u64::from(entry.events);
                    self.entries.push(entry);
                }
            }
            let (compressed, decompressed) = match shape {
                FrameShape::Zstd { len, .. } => (len, self.entries.last().map_or(0, |e| e.content_len)),
                FrameShape::Skippable { .. } => (shape.len(), 0),
            };
            self.frames_before_tail.push((compressed as u32, decompressed));
            pos += shape.len();
            self.data_end = pos;
        };
        self.completeness = Completeness::Recovered { index_problem, stopped_at: self.data_end, scan_stop };
    }

    fn count_kinds(&self, frame: &LoadedFrame, offset: u64) -> Result<Vec<u32>> {
        let mut counts = vec![0u32; EventKind::ALL.len()];
        for &(start, end) in &frame.spans {
            match codec::decode_record(&frame.bytes[start..end], self.newer_minor()) {
                Ok(Record::Event(event)) => counts[event.kind().index()] += 1,
                Ok(Record::Unknown { .. }) => counts.push(1),
                Err(detail) => return Err(TraceError::corrupt("event", offset, detail)),
            }
        }
        Ok(counts)
    }

    fn newer_minor(&self) -> bool {
        self.header.format.minor > crate::FORMAT_MINOR
    }

    /// Index of the data frame holding `seq`.
    fn frame_of(&self, seq: u64) -> Result<usize> {
        if seq >= self.events {
            return Err(TraceError::NoSuchEvent { seq, len: self.events });
        }
        Ok(self.entries.partition_point(|e| e.first_seq <= seq) - 1)
    }

    /// Data frame `index`, from the one-frame cache or decompressed afresh.
    fn frame(&self, index: usize) -> Result<Arc<LoadedFrame>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, frame)) = cache.as_ref()
            && *cached == index
        {
            return Ok(Arc::clone(frame));
        }
        let frame = Arc::new(self.load_frame_at(index, &self.entries[index], self.indexed_shape(index))?);
        self.check_count(index, &frame)?;
        *cache = Some((index, Arc::clone(&frame)));
        Ok(frame)
    }

    fn load_frame_at(&self, index: usize, entry: &IndexEntry, shape: FrameShape) -> Result<LoadedFrame> {
        let compressed = container::read_bytes(self.src.as_ref(), entry.offset, shape.len(), "data frame")?;
        decode_frame(index, entry.offset, &compressed, shape)
    }

    /// The zstd shape the index implies for data frame `index`.
    fn indexed_shape(&self, index: usize) -> FrameShape {
        let entry = &self.entries[index];
        FrameShape::Zstd {
            len: u64::from(entry.compressed_len),
            content_size: Some(u64::from(entry.content_len)),
            has_checksum: true,
        }
    }

    /// Checks a loaded frame against its index entry.
    fn check_count(&self, index: usize, frame: &LoadedFrame) -> Result<()> {
        let entry = &self.entries[index];
        if frame.spans.len() != entry.events as usize {
            return Err(TraceError::corrupt(
                "index",
                self.data_end,
                format!(
                    "data frame {index} holds {} events, the index says {}",
                    frame.spans.len(),
                    entry.events
                ),
            ));
        }
        Ok(())
    }
}

impl Trace {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.0.header
    }

    /// Number of events.
    pub fn len(&self) -> u64 {
        self.0.events
    }

    /// True when the trace holds no events.
    pub fn is_empty(&self) -> bool {
        self.0.events == 0
    }

    /// Whether the index was used or the events were recovered by a scan.
    pub fn completeness(&self) -> &Completeness {
        &self.0.completeness
    }

    /// The data frames, as the index (or the recovery scan) describes them.
    pub fn frames(&self) -> &[IndexEntry] {
        &self.0.entries
    }

    /// Total size of the trace file.
    pub fn file_len(&self) -> u64 {
        self.0.src.len()
    }

    /// Events of each kind, in [`EventKind::ALL`] order, from the index.
    pub fn kind_counts(&self) -> [u64; EventKind::ALL.len()] {
        let mut counts = [0u64; EventKind::ALL.len()];
        for entry in &self.0.entries {
            for kind in EventKind::ALL {
                counts[kind.index()] += u64::from(entry.count(kind));
            }
        }
        counts
    }

    /// The embedded bytes of module `index`, checked against its SHA-256.
    pub fn module_bytes(&self, index: usize) -> Result<Vec<u8>> {
        let entry = self
            .0
            .header
            .run
            .modules
            .get(index)
            .ok_or_else(|| TraceError::ModuleNotEmbedded { index, name: "(no such module)".into() })?;
        let not_embedded = || TraceError::ModuleNotEmbedded { index, name: entry.name.clone() };
        let (pos, payload_len) = self.0.modules.get(index).copied().flatten().ok_or_else(not_embedded)?;
        let payload = container::read_bytes(
            self.0.src.as_ref(),
            pos + SKIPPABLE_HEADER_LEN,
            payload_len,
            "module frame",
        )?;
        let (_, body, ok) = container::open_wtrace_payload(&payload)
            .ok_or_else(|| TraceError::corrupt("module frame", pos, "frame too short"))?;
        if !ok || body.len() < 4 {
            return Err(TraceError::corrupt("module frame", pos, "checksum mismatch"));
        }
        let size = usize::try_from(entry.size)
            .map_err(|_| TraceError::corrupt("module frame", pos, "module too large"))?;
        let bytes = decompress(&body[4..], size)
            .map_err(|detail| TraceError::corrupt("module frame", pos, detail))?;
        if sha256(&bytes) != entry.sha256 {
            return Err(TraceError::ModuleHashMismatch { index, name: entry.name.clone() });
        }
        Ok(bytes)
    }

    /// The event with sequence number `seq`.
    pub fn event(&self, seq: u64) -> Result<Event> {
        let frame_index = self.0.frame_of(seq)?;
        let frame = self.0.frame(frame_index)?;
        let entry = &self.0.entries[frame_index];
        let (start, end) = frame.spans[(seq - entry.first_seq) as usize];
        match codec::decode_record(&frame.bytes[start..end], self.0.newer_minor()) {
            Ok(Record::Event(event)) => Ok(event),
            Ok(Record::Unknown { kind }) => Err(TraceError::corrupt(
                "event",
                entry.offset,
                format!("event {seq} is of kind {kind}, which needs a newer wtrace"),
            )),
            Err(detail) => Err(record_error(frame_index, entry, seq, &detail)),
        }
    }

    /// Every event in order, with its seq.
    pub fn events(&self) -> Events {
        self.range(..)
    }

    /// The events whose seq lies in `range`, in order. The range is clipped to the trace.
    pub fn range(&self, range: impl RangeBounds<u64>) -> Events {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => self.0.events,
        }
        .min(self.0.events);
        Events { trace: self.clone(), next: start, end, current: None, failed: false, prefetch: None }
    }
}

/// Decompresses a data frame and finds its records; `offset` is its place in the file.
fn decode_frame(index: usize, offset: u64, compressed: &[u8], shape: FrameShape) -> Result<LoadedFrame> {
    let damaged = |detail: String| TraceError::DamagedFrame { frame: index, offset, detail };
    let FrameShape::Zstd { content_size, has_checksum, .. } = shape else {
        return Err(damaged("not a zstd frame".into()));
    };
    if compressed.len() < 4
        || u32::from_le_bytes([compressed[0], compressed[1], compressed[2], compressed[3]]) != ZSTD_MAGIC
    {
        return Err(damaged("not a zstd frame".into()));
    }
    if !has_checksum {
        return Err(damaged("frame has no content checksum".into()));
    }
    let content_size = content_size.ok_or_else(|| damaged("frame does not declare its size".into()))?;
    if content_size > container::MAX_DATA_FRAME_CONTENT {
        return Err(damaged(format!("declared size {content_size} is impossible")));
    }
    let bytes = decompress(compressed, content_size as usize).map_err(damaged)?;
    let spans = codec::split_records(&bytes).map_err(|(at, detail)| {
        TraceError::corrupt("data frame", offset, format!("frame {index}, decompressed byte {at}: {detail}"))
    })?;
    Ok(LoadedFrame { bytes, spans })
}

/// A job for the prefetch thread: frame index, file offset, compressed bytes, shape.
type PrefetchJob = (usize, u64, Vec<u8>, FrameShape);

/// Decompresses the next data frame on another core while the reader decodes the current one.
/// (Decoding events there too was tried and is slower: the consumer then frees memory that
/// another thread allocated, which costs glibc's allocator more than the decoding saved.)
struct Prefetcher {
    jobs: SyncSender<PrefetchJob>,
    results: Receiver<(usize, Result<LoadedFrame>)>,
    in_flight: Option<usize>,
}

impl Prefetcher {
    fn spawn() -> Option<Prefetcher> {
        let (jobs, job_rx) = mpsc::sync_channel::<PrefetchJob>(1);
        let (result_tx, results) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("wtrace-prefetch".into())
            .spawn(move || {
                for (index, offset, compressed, shape) in job_rx {
                    let result = decode_frame(index, offset, &compressed, shape);
                    if result_tx.send((index, result)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Prefetcher { jobs, results, in_flight: None })
    }

    /// The prefetched frame `index`, if that is the one in flight.
    fn take(&mut self, index: usize) -> Option<Result<LoadedFrame>> {
        self.in_flight.take()?;
        let (got, frame) = self.results.recv().ok()?;
        (got == index).then_some(frame)
    }
}

fn record_error(frame_index: usize, entry: &IndexEntry, seq: u64, detail: &str) -> TraceError {
    TraceError::corrupt("event", entry.offset, format!("event {seq} in data frame {frame_index}: {detail}"))
}

/// Decompresses one zstd frame that should produce exactly `size` bytes. Small frames are
/// decompressed in one call; large ones stream, so memory follows the bytes actually produced
/// rather than a size the file merely claims.
fn decompress(frame: &[u8], size: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    const ONE_SHOT_LIMIT: usize = 8 << 20;
    let describe = |code: usize| {
        if zstd::zstd_safe::is_error_kind(
            code,
            zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode::ZSTD_error_checksum_wrong,
        ) {
            "checksum mismatch".to_string()
        } else {
            zstd::zstd_safe::get_error_name(code).to_string()
        }
    };
    let out = if size <= ONE_SHOT_LIMIT {
        let mut out = Vec::with_capacity(size);
        let mut dctx = zstd::zstd_safe::DCtx::create();
        dctx.decompress(&mut out, frame).map_err(describe)?;
        out
    } else {
        let mut decoder =
            zstd::stream::read::Decoder::with_buffer(frame).map_err(|e| e.to_string())?.single_frame();
        let mut out = Vec::new();
        (&mut decoder).take(size as u64 + 1).read_to_end(&mut out).map_err(|e| e.to_string())?;
        out
    };
    if out.len() != size {
        return Err(format!("decompressed to {} bytes, expected {size}", out.len()));
    }
    Ok(out)
}

/// Reads and checks the header frame at the start of the file.
fn read_header(src: &dyn ReadAt) -> Result<(Header, u64)> {
    if src.is_empty() {
        return Err(TraceError::Empty);
    }
    let mut magic = [0u8; 4];
    if src.len() < 4 {
        return Err(TraceError::NotATrace { reason: format!("the file is only {} bytes long", src.len()) });
    }
    src.read_exact_at(&mut magic, 0).map_err(|source| TraceError::Io { offset: 0, source })?;
    let magic = u32::from_le_bytes(magic);
    if magic == ZSTD_MAGIC {
        return Err(TraceError::NotATrace { reason: "it is a zstd file, but has no wtrace header".into() });
    }
    if magic != WTRACE_SKIPPABLE_MAGIC {
        return Err(TraceError::NotATrace {
            reason: format!("it starts with bytes {:02x?}, not a wtrace header", magic.to_le_bytes()),
        });
    }
    let shape = container::frame_shape(src, 0).map_err(|e| match e {
        TraceError::Truncated { .. } => TraceError::Truncated { what: "header", offset: 0 },
        other => other,
    })?;
    let FrameShape::Skippable { payload_len, .. } = shape else {
        unreachable!("a skippable magic always yields a skippable shape")
    };
    if payload_len > container::MAX_WTRACE_FRAME {
        return Err(TraceError::corrupt("header", 0, "header frame is impossibly large"));
    }
    let payload = container::read_bytes(src, SKIPPABLE_HEADER_LEN, payload_len, "header")?;
    let (tag, body, ok) = container::open_wtrace_payload(&payload)
        .ok_or(TraceError::Truncated { what: "header", offset: 0 })?;
    if tag != TAG_HEADER {
        return Err(TraceError::NotATrace { reason: "its first frame is not a wtrace header".into() });
    }
    let header = Header::decode(body, 0, ok)?;
    Ok((header, shape.len()))
}

/// Iterator over a range of events; see [`Trace::range`]. Stops after the first error.
pub struct Events {
    trace: Trace,
    next: u64,
    end: u64,
    current: Option<(usize, Arc<LoadedFrame>)>,
    failed: bool,
    prefetch: Option<Prefetcher>,
}

impl Iterator for Events {
    type Item = Result<(u64, Event)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut event = Event::Exit { code: 0 };
        let seq = self.next_into(&mut event)?;
        Some(seq.map(|seq| (seq, event)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end.saturating_sub(self.next)).unwrap_or(usize::MAX);
        (0, Some(left))
    }
}

impl Events {
    /// Decodes the next event into `event` and returns its seq, like [`Iterator::next`] but
    /// reusing `event`'s buffers: once they have grown, a sequential pass over host calls
    /// allocates nothing. The fastest way to read a whole trace.
    ///
    /// ```no_run
    /// # fn main() -> wtrace_traces::Result<()> {
    /// let trace = wtrace_traces::Trace::open("trace.zst")?;
    /// let mut events = trace.events();
    /// let mut event = wtrace_traces::Event::Exit { code: 0 };
    /// while let Some(seq) = events.next_into(&mut event) {
    ///     println!("{}: {:?}", seq?, event.kind());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// After an error, `event` holds unspecified (but valid) contents and the iteration ends.
    pub fn next_into(&mut self, event: &mut Event) -> Option<Result<u64>> {
        while !self.failed && self.next < self.end {
            let seq = self.next;
            let result = self.decode_into(seq, event);
            self.next += 1;
            match result {
                Ok(true) => return Some(Ok(seq)),
                Ok(false) => {}
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error));
                }
            }
        }
        None
    }

    /// Starts decompressing the frame after `index` if the range reaches into it.
    fn prefetch_after(&mut self, index: usize) -> Result<()> {
        let trace = &*self.trace.0;
        let next = index + 1;
        if next >= trace.entries.len() || trace.entries[next].first_seq >= self.end {
            return Ok(());
        }
        if self.prefetch.is_none() {
            self.prefetch = Prefetcher::spawn();
        }
        let Some(prefetch) = self.prefetch.as_mut() else { return Ok(()) };
        let shape = trace.indexed_shape(next);
        let offset = trace.entries[next].offset;
        let compressed = container::read_bytes(trace.src.as_ref(), offset, shape.len(), "data frame")?;
        if prefetch.jobs.send((next, offset, compressed, shape)).is_ok() {
            prefetch.in_flight = Some(next);
        }
        Ok(())
    }

    /// Decodes event `seq` into `event`; `false` for a record of a kind from a newer minor
    /// version, which is skipped.
    fn decode_into(&mut self, seq: u64, event: &mut Event) -> Result<bool> {
        let in_current = self.current.as_ref().is_some_and(|(index, _)| {
            let e = &self.trace.0.entries[*index];
            seq >= e.first_seq && seq < e.first_seq + u64::from(e.events)
        });
        if !in_current {
            self.load_frame_of(seq)?;
        }
        let trace = &*self.trace.0;
        let (index, frame) = self.current.as_ref().expect("loaded above");
        let entry = &trace.entries[*index];
        let (start, end) = frame.spans[(seq - entry.first_seq) as usize];
        codec::decode_record_into(&frame.bytes[start..end], trace.newer_minor(), event)
            .map_err(|detail| record_error(*index, entry, seq, &detail))
    }

    /// Makes the frame holding `seq` current, from the prefetcher when it has it, and starts
    /// fetching the next.
    fn load_frame_of(&mut self, seq: u64) -> Result<()> {
        let trace = &*self.trace.0;
        let index = trace.frame_of(seq)?;
        let frame = match self.prefetch.as_mut().and_then(|p| p.take(index)) {
            Some(frame) => {
                let frame = frame?;
                trace.check_count(index, &frame)?;
                Arc::new(frame)
            }
            None => trace.frame(index)?,
        };
        self.current = Some((index, frame));
        self.prefetch_after(index)
    }
}

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The trace already had a valid index; nothing was written.
    AlreadyComplete {
        /// Events in the trace.
        events: u64,
    },
    /// A new index was written over the recovered frames.
    Repaired {
        /// Events kept.
        events: u64,
        /// Bytes dropped from the end (a cut-off frame, a damaged tail).
        dropped_bytes: u64,
        /// Why the index had to be rebuilt.
        index_problem: String,
    },
}

/// Rebuilds the index of a trace whose recording did not finish (or whose tail is damaged),
/// keeping every complete frame. The new file is written beside the old one, synced, and
/// renamed over it, so the original is untouched if anything fails.
pub fn repair(path: &Path) -> Result<RepairOutcome> {
    let trace = Trace::open(path)?;
    let trace = &*trace.0;
    let Completeness::Recovered { index_problem, .. } = &trace.completeness else {
        return Ok(RepairOutcome::AlreadyComplete { events: trace.events });
    };
    let tail = container::encode_tail(&trace.frames_before_tail, &trace.entries)?;
    let prefix = container::read_bytes(trace.src.as_ref(), 0, trace.data_end, "trace")?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.repair-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create_new(&temp)?;
        file.write_all(&prefix)?;
        file.write_all(&tail)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    if let Err(source) = write() {
        let _ = std::fs::remove_file(&temp);
        return Err(TraceError::Open { path: path.to_path_buf(), source });
    }
    Ok(RepairOutcome::Repaired {
        events: trace.events,
        dropped_bytes: trace.src.len() - trace.data_end,
        index_problem: index_problem.clone(),
    })
}
