//! The trace reader: opens a trace through its index (cost independent of the number of
//! events), iterates events in order, fetches any event by seq, and — when the index is
//! missing or damaged — recovers every complete data frame by scanning from the start.
//!
//! `open` reads the header and the index, `recovery` scans a trace without a usable index,
//! `frame` decompresses data frames, `events` iterates, `repair` rewrites a missing index.

mod events;
mod frame;
mod open;
mod recovery;
mod repair;

use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

pub use events::Events;
pub(crate) use frame::inflate_module;
use frame::{LoadedFrame, decode_frame, record_error};
pub use repair::{RepairOutcome, repair};

use crate::codec::{self, Record};
use crate::container::{self, FrameShape, IndexEntry, ReadAt, SKIPPABLE_HEADER_LEN};
use crate::error::{Result, TraceError};
use crate::event::{Event, EventKind};
use crate::header::Header;

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
    src: Arc<dyn ReadAt>,
    /// The file it was opened from, when it was: its module store is beside it.
    path: Option<std::path::PathBuf>,
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
        let mut data = TraceData::build(Arc::new(container::FileSource { file, len: meta.len() }))?;
        data.path = Some(path.to_path_buf());
        Ok(Trace(Arc::new(data)))
    }

    /// The same trace with caches (and their locks) of its own, for a reader that must never
    /// wait on another thread's: a debug replay's checkpoints copy the process, and only the
    /// replaying thread with them.
    #[must_use]
    pub fn detached(&self) -> Trace {
        Trace(Arc::new(self.0.detached()))
    }

    /// Opens a trace held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Trace> {
        Trace::from_source(Box::new(bytes))
    }

    /// Opens a trace from any random-access source.
    pub fn from_source(src: Box<dyn ReadAt>) -> Result<Trace> {
        TraceData::build(Arc::from(src)).map(|data| Trace(Arc::new(data)))
    }
}

impl TraceData {
    /// A copy that shares the source but none of the caches.
    fn detached(&self) -> TraceData {
        TraceData {
            src: Arc::clone(&self.src),
            path: self.path.clone(),
            header: self.header.clone(),
            header_len: self.header_len,
            modules: self.modules.clone(),
            entries: self.entries.clone(),
            frames_before_tail: self.frames_before_tail.clone(),
            data_end: self.data_end,
            completeness: self.completeness.clone(),
            events: self.events,
            cache: Mutex::new(None),
        }
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
        // A recovery scan counts a frame's events as it loads it: its entry says 0 so far.
        decode_frame(index, entry.offset, &compressed, shape, (entry.events > 0).then_some(entry.events))
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
        if frame.len() != entry.events as usize {
            return Err(TraceError::corrupt(
                "index",
                self.data_end,
                format!("data frame {index} holds {} events, the index says {}", frame.len(), entry.events),
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

    /// The file the trace was opened from (`None` for one opened from memory).
    pub fn path(&self) -> Option<&Path> {
        self.0.path.as_deref()
    }

    /// Whether module `index` is embedded in the trace (rather than referenced by its hash).
    pub fn module_embedded(&self, index: usize) -> bool {
        self.0.modules.get(index).is_some_and(Option::is_some)
    }

    /// The bytes of module `index`, checked against its size and SHA-256: embedded in the
    /// trace, or for a trace that references its module, from the module store beside it.
    pub fn module_bytes(&self, index: usize) -> Result<Vec<u8>> {
        if let Some(entry) = self.0.header.run.modules.get(index)
            && !entry.embedded
            && let Some(path) = &self.0.path
        {
            return crate::store::ModuleStore::beside(path).get(index, entry);
        }
        self.embedded_module_bytes(index)
    }

    /// Checks that the frame of embedded module `index` is intact (its checksum holds) without
    /// decompressing it: what a reader that needs not the module's bytes, only the trace's
    /// integrity, asks. A module the trace references by hash has no frame to check.
    pub fn verify_module_frame(&self, index: usize) -> Result<()> {
        match self.0.header.run.modules.get(index) {
            Some(entry) if entry.embedded => self.module_frame_body(index).map(|_| ()),
            Some(_) => Ok(()),
            None => Err(TraceError::ModuleNotEmbedded { index, name: "(no such module)".into() }),
        }
    }

    /// The compressed body of embedded module `index` and the frame's offset, checksum checked.
    fn module_frame_body(&self, index: usize) -> Result<(u64, Vec<u8>)> {
        let name = self.0.header.run.modules.get(index).map_or("(no such module)", |m| m.name.as_str());
        let not_embedded = || TraceError::ModuleNotEmbedded { index, name: name.to_owned() };
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
        Ok((pos, body[4..].to_vec()))
    }

    /// The embedded bytes of module `index`, checked against its SHA-256.
    fn embedded_module_bytes(&self, index: usize) -> Result<Vec<u8>> {
        let (pos, compressed) = self.module_frame_body(index)?;
        let entry = &self.0.header.run.modules[index];
        let size = container::module_len(entry.size).ok_or_else(|| {
            let ceiling = container::MAX_MODULE_LEN;
            TraceError::corrupt(
                "module frame",
                pos,
                format!("a {}-byte module is past the {ceiling}-byte ceiling", entry.size),
            )
        })?;
        inflate_module(&compressed, size, &entry.sha256)
            .map_err(|error| error.into_trace_error("module frame", pos))?
            .ok_or_else(|| TraceError::ModuleHashMismatch { index, name: entry.name.clone() })
    }

    /// The event with sequence number `seq`.
    pub fn event(&self, seq: u64) -> Result<Event> {
        let frame_index = self.0.frame_of(seq)?;
        let frame = self.0.frame(frame_index)?;
        let entry = &self.0.entries[frame_index];
        match codec::decode_record(frame.record((seq - entry.first_seq) as usize), self.0.newer_minor()) {
            Ok(Record::Event(event)) => Ok(event),
            Ok(Record::Unknown { kind }) => Err(TraceError::corrupt(
                "event",
                entry.offset,
                format!("event {seq} is of kind {kind}, which needs a newer wtrace"),
            )),
            Err(error) => Err(record_error(frame_index, entry, seq, error)),
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
        Events::new(self.clone(), start, end)
    }
}
