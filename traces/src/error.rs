//! The one error type of the trace format: every way reading or writing a trace can fail.
//!
//! Each variant that concerns file content names the byte offset where the problem is, so a
//! person (or a bug report) can point at the exact spot with `xxd -s`.

use std::io;
use std::path::PathBuf;

/// Anything that can go wrong while writing, opening, reading or repairing a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file could not be opened or created.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file in question.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A read or write failed part-way (disk full, I/O error, file shrank under us).
    #[error("I/O error at byte {offset}: {source}")]
    Io {
        /// Byte offset in the trace file where the operation was.
        offset: u64,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file has no bytes at all.
    #[error("the file is empty")]
    Empty,
    /// The file does not start like a wtrace trace.
    #[error("not a wtrace trace: {reason}")]
    NotATrace {
        /// What the first bytes look like instead.
        reason: String,
    },
    /// The trace was written in a format major version this build cannot read.
    #[error(
        "trace format {major}.{minor} is newer than this wtrace understands (format {}.x); \
         it was written by wtrace {writer}, which (or any later release) can read it",
        crate::FORMAT_MAJOR
    )]
    NewerFormat {
        /// The major version found in the file.
        major: u16,
        /// The minor version found in the file.
        minor: u16,
        /// The version of wtrace that wrote the file.
        writer: String,
    },
    /// The file ends in the middle of something.
    #[error("truncated {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts (or where the bytes ran out).
        offset: u64,
    },
    /// A data frame's content does not match its checksum, or zstd rejected it.
    #[error("data frame {frame} at byte {offset} is damaged: {detail}")]
    DamagedFrame {
        /// Ordinal of the data frame (0 = first data frame).
        frame: usize,
        /// File offset of the frame.
        offset: u64,
        /// `checksum mismatch`, or zstd's own diagnosis.
        detail: String,
    },
    /// Structurally invalid content: bad magic, bad length, undecodable bytes.
    #[error("corrupt {what} at byte {offset}: {detail}")]
    Corrupt {
        /// Which part of the file.
        what: &'static str,
        /// File offset of that part.
        offset: u64,
        /// What exactly is wrong.
        detail: String,
    },
    /// An event number past the end of the trace.
    #[error("event {seq} does not exist: the trace has {len} events (0..{len})")]
    NoSuchEvent {
        /// The event asked for.
        seq: u64,
        /// How many events the trace has.
        len: u64,
    },
    /// A module is listed in the header but its bytes are not in the file.
    #[error("module {index} ({name}) is not embedded in this trace")]
    ModuleNotEmbedded {
        /// Index in the module table.
        index: usize,
        /// The module's name.
        name: String,
    },
    /// A module the trace references (does not embed) is not in the module store beside it.
    #[error("module {index} ({name}, sha256 {sha256}) is neither embedded in the trace nor in {store}", store = .store.display())]
    ModuleMissing {
        /// Index in the module table.
        index: usize,
        /// The module's name.
        name: String,
        /// Its SHA-256, as hex.
        sha256: String,
        /// The module store looked in.
        store: PathBuf,
    },
    /// An embedded module's bytes do not hash to the SHA-256 in the header.
    #[error("embedded module {index} ({name}) does not match its SHA-256 in the header")]
    ModuleHashMismatch {
        /// Index in the module table.
        index: usize,
        /// The module's name.
        name: String,
    },
    /// A recorder is still writing the trace (it holds the file's lock).
    #[error("it is still being recorded (a recorder holds its lock)")]
    BeingRecorded {
        /// The trace.
        path: PathBuf,
    },
    /// An event that decodes but cannot have been recorded (a forged or damaged trace).
    #[error("event {seq} cannot have been recorded: {detail}")]
    ImpossibleEvent {
        /// The event.
        seq: u64,
        /// What is impossible about it.
        detail: String,
    },
    /// The machine would not give the memory for something the trace really holds.
    #[error("not enough memory for the {bytes}-byte {what} at byte {offset}")]
    OutOfMemory {
        /// Which part of the file.
        what: &'static str,
        /// File offset of that part.
        offset: u64,
        /// How many bytes it needed.
        bytes: u64,
    },
    /// A value handed to the writer cannot be stored (too large, inconsistent with the header).
    #[error("cannot write trace: {0}")]
    InvalidInput(String),
    /// The background compression thread stopped unexpectedly.
    #[error("the trace writer's compression thread stopped unexpectedly")]
    WriterGone,
}

impl TraceError {
    /// True when the file is damaged or cut short in a way `repair` or a recovery scan may help.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            TraceError::Truncated { .. } | TraceError::DamagedFrame { .. } | TraceError::Corrupt { .. }
        )
    }

    pub(crate) fn corrupt(what: &'static str, offset: u64, detail: impl Into<String>) -> Self {
        TraceError::Corrupt { what, offset, detail: detail.into() }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = TraceError> = std::result::Result<T, E>;
