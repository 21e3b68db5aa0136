//! Data frames: decompressing one (bounded by the size it declares) and finding its records.

use crate::codec::{self, RecordError};
use crate::container::{self, FrameShape, IndexEntry, ZSTD_MAGIC};
use crate::error::{Result, TraceError};

/// A decompressed data frame with where its records' bodies lie.
pub(super) struct LoadedFrame {
    pub(super) bytes: Vec<u8>,
    bodies: Vec<(u32, u32)>,
}

impl LoadedFrame {
    /// How many records it holds.
    pub(super) fn len(&self) -> usize {
        self.bodies.len()
    }

    /// The body of record `i` (kind byte first); its bounds were checked when the frame was
    /// split.
    pub(super) fn record(&self, i: usize) -> &[u8] {
        let (start, end) = self.bodies[i];
        &self.bytes[start as usize..end as usize]
    }
}

/// Decompresses a data frame and finds its records; `offset` is its place in the file, and
/// `expected` the number of events its index entry counts, when there is one.
pub(super) fn decode_frame(
    index: usize,
    offset: u64,
    compressed: &[u8],
    shape: FrameShape,
    expected: Option<u32>,
) -> Result<LoadedFrame> {
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
        let ceiling = container::MAX_DATA_FRAME_CONTENT;
        return Err(damaged(format!("declared size {content_size} is past the {ceiling}-byte ceiling")));
    }
    let mut framing = codec::FramingCheck::new(content_size as usize, expected);
    let bytes = decompress(compressed, content_size as usize, |produced| framing.advance(produced)).map_err(
        |error| match error {
            InflateError::Damaged(detail) => damaged(detail),
            InflateError::NoMemory { .. } => error.into_trace_error("data frame", offset),
        },
    )?;
    let bodies = codec::record_bodies(&bytes, expected).map_err(|(at, detail)| {
        TraceError::corrupt("data frame", offset, format!("frame {index}, decompressed byte {at}: {detail}"))
    })?;
    Ok(LoadedFrame { bytes, bodies })
}

pub(super) fn record_error(
    frame_index: usize,
    entry: &IndexEntry,
    seq: u64,
    error: RecordError,
) -> TraceError {
    match error {
        RecordError::Malformed(detail) => TraceError::corrupt(
            "event",
            entry.offset,
            format!("event {seq} in data frame {frame_index}: {detail}"),
        ),
        RecordError::NoMemory { bytes } => {
            TraceError::OutOfMemory { what: "event", offset: entry.offset, bytes: bytes as u64 }
        }
    }
}

/// Why a frame could not be inflated.
#[derive(Debug)]
pub(crate) enum InflateError {
    /// The bytes are not what they claim: zstd's diagnosis, a wrong size, or what the
    /// caller's check found in the bytes produced so far.
    Damaged(String),
    /// The machine would not give the memory for bytes the frame really holds.
    NoMemory {
        /// How many bytes were asked for in all.
        bytes: usize,
    },
}

impl InflateError {
    /// The typed error for the frame at `offset`, described as `what`.
    pub(crate) fn into_trace_error(self, what: &'static str, offset: u64) -> TraceError {
        match self {
            InflateError::Damaged(detail) => TraceError::corrupt(what, offset, detail),
            InflateError::NoMemory { bytes } => TraceError::OutOfMemory { what, offset, bytes: bytes as u64 },
        }
    }
}

/// Frames up to this size are inflated in one call into a buffer of their declared size;
/// larger ones stream, so memory follows the bytes actually produced and checked rather than
/// a size the file merely claims.
const ONE_SHOT_LIMIT: usize = 8 << 20;
/// The buffer a streaming pass reads through when it keeps nothing (hashing).
const STREAM_CHUNK: usize = 1 << 20;

fn zstd_error(code: usize, size: usize) -> InflateError {
    use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
    if zstd::zstd_safe::is_error_kind(code, ZSTD_ErrorCode::ZSTD_error_memory_allocation) {
        return InflateError::NoMemory { bytes: size };
    }
    InflateError::Damaged(
        if zstd::zstd_safe::is_error_kind(code, ZSTD_ErrorCode::ZSTD_error_checksum_wrong) {
            "checksum mismatch".to_string()
        } else {
            zstd::zstd_safe::get_error_name(code).to_string()
        },
    )
}

fn wrong_size(produced: usize, size: usize) -> InflateError {
    InflateError::Damaged(format!("decompressed to {produced} bytes, expected {size}"))
}

/// Streams one zstd frame out of memory, keeping zstd's own error codes (its `io::Read`
/// adapter turns them into text, and a refused allocation must stay tellable from damage).
struct FrameStream<'a> {
    dctx: zstd::zstd_safe::DCtx<'static>,
    frame: &'a [u8],
    consumed: usize,
    size: usize,
    done: bool,
}

impl<'a> FrameStream<'a> {
    fn new(frame: &'a [u8], size: usize) -> Self {
        FrameStream { dctx: zstd::zstd_safe::DCtx::create(), frame, consumed: 0, size, done: false }
    }

    /// Fills as much of `buf` as the frame still holds; fewer bytes only at its end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, InflateError> {
        use zstd::zstd_safe::{InBuffer, OutBuffer};
        let mut filled = 0;
        while filled < buf.len() && !self.done {
            let mut input = InBuffer::around(&self.frame[self.consumed..]);
            let mut output = OutBuffer::around(&mut buf[filled..]);
            let left = self
                .dctx
                .decompress_stream(&mut output, &mut input)
                .map_err(|code| zstd_error(code, self.size))?;
            let (used, made) = (input.pos(), output.pos());
            self.consumed += used;
            filled += made;
            if left == 0 {
                self.done = true;
            } else if used == 0 && made == 0 {
                return Err(InflateError::Damaged("the frame is cut short".into()));
            }
        }
        Ok(filled)
    }
}

/// Decompresses one zstd frame that should produce exactly `size` bytes. A frame within
/// [`ONE_SHOT_LIMIT`] inflates in one call; a larger one streams: after each chunk `check`
/// sees everything produced so far and can stop a frame that is going wrong before it has
/// taken the memory it claims, and the buffer grows with `try_reserve`, so a machine short of
/// memory is an error, not an abort.
pub(crate) fn decompress(
    frame: &[u8],
    size: usize,
    mut check: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<Vec<u8>, InflateError> {
    if size <= ONE_SHOT_LIMIT {
        let mut out = Vec::new();
        out.try_reserve_exact(size).map_err(|_| InflateError::NoMemory { bytes: size })?;
        let mut dctx = zstd::zstd_safe::DCtx::create();
        dctx.decompress(&mut out, frame).map_err(|code| zstd_error(code, size))?;
        if out.len() != size {
            return Err(wrong_size(out.len(), size));
        }
        return Ok(out);
    }
    let mut stream = FrameStream::new(frame, size);
    let mut out: Vec<u8> = Vec::new();
    loop {
        // One byte past `size` is room to notice a frame that inflates further than it says.
        let want = (out.len().max(STREAM_CHUNK)).min(size + 1 - out.len());
        let filled = out.len();
        out.try_reserve_exact(want).map_err(|_| InflateError::NoMemory { bytes: size })?;
        out.resize(filled + want, 0);
        let produced = stream.read(&mut out[filled..])?;
        out.truncate(filled + produced);
        if out.len() > size {
            return Err(wrong_size(out.len(), size));
        }
        check(&out).map_err(InflateError::Damaged)?;
        if produced < want {
            break;
        }
    }
    if out.len() != size {
        return Err(wrong_size(out.len(), size));
    }
    Ok(out)
}

/// The SHA-256 of what a zstd frame inflates to, which must be exactly `size` bytes, in
/// memory independent of `size`: checking a module's hash this way before inflating it into
/// memory means a module that is not what the header says never costs its claimed size.
pub(crate) fn inflated_sha256(frame: &[u8], size: usize) -> Result<[u8; 32], InflateError> {
    use sha2::Digest;
    let mut stream = FrameStream::new(frame, size);
    let mut hasher = sha2::Sha256::new();
    let mut chunk = vec![0; STREAM_CHUNK];
    let mut total = 0usize;
    loop {
        let n = stream.read(&mut chunk)?;
        total += n;
        if total > size {
            return Err(wrong_size(total, size));
        }
        hasher.update(&chunk[..n]);
        if n < chunk.len() {
            break;
        }
    }
    if total != size {
        return Err(wrong_size(total, size));
    }
    Ok(hasher.finalize().into())
}

/// Inflates a module frame of `size` bytes that must hash to `sha256`; `None` when it
/// inflates to other bytes. A large module is hashed in a streaming pass first.
pub(crate) fn inflate_module(
    frame: &[u8],
    size: usize,
    sha256: &[u8; 32],
) -> Result<Option<Vec<u8>>, InflateError> {
    if size > ONE_SHOT_LIMIT && inflated_sha256(frame, size)? != *sha256 {
        return Ok(None);
    }
    let bytes = decompress(frame, size, |_| Ok(()))?;
    Ok((crate::header::sha256(&bytes) == *sha256).then_some(bytes))
}
