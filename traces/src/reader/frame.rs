//! Data frames: decompressing one (bounded by the size it declares) and finding its records.

use crate::codec::{DecodeError, Records};
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
    let at_byte = |(at, detail): (usize, String)| format!("decompressed byte {at}: {detail}");
    // A frame that streams has its records found as it inflates; `finish` takes the rest.
    let mut records = Records::new(content_size as usize, expected);
    let bytes =
        decompress(compressed, content_size as usize, |produced| records.advance(produced).map_err(at_byte))
            .map_err(|error| match error {
                DecodeError::Malformed(detail) => damaged(detail.into_owned()),
                no_memory @ DecodeError::NoMemory { .. } => no_memory.into_trace_error("data frame", offset),
            })?;
    let bodies = records.finish(&bytes).map_err(|error| {
        TraceError::corrupt("data frame", offset, format!("frame {index}, {}", at_byte(error)))
    })?;
    Ok(LoadedFrame { bytes, bodies })
}

/// The error for record `seq` of data frame `frame_index`.
pub(super) fn record_error(
    frame_index: usize,
    entry: &IndexEntry,
    seq: u64,
    error: DecodeError,
) -> TraceError {
    error
        .context(format_args!("event {seq} in data frame {frame_index}"))
        .into_trace_error("event", entry.offset)
}

/// Frames up to this size are inflated in one call into a buffer of their declared size;
/// larger ones stream, so memory follows the bytes actually produced and checked rather than
/// a size the file merely claims.
const ONE_SHOT_LIMIT: usize = 8 << 20;
/// The buffer a streaming pass reads through when it keeps nothing (hashing).
const STREAM_CHUNK: usize = 1 << 20;

fn zstd_error(code: usize, size: usize) -> DecodeError {
    use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
    if zstd::zstd_safe::is_error_kind(code, ZSTD_ErrorCode::ZSTD_error_memory_allocation) {
        return DecodeError::NoMemory { bytes: size };
    }
    if zstd::zstd_safe::is_error_kind(code, ZSTD_ErrorCode::ZSTD_error_checksum_wrong) {
        return "checksum mismatch".into();
    }
    zstd::zstd_safe::get_error_name(code).to_string().into()
}

/// Checks that a frame produced exactly the `size` bytes it should have.
fn exactly(produced: usize, size: usize) -> std::result::Result<(), DecodeError> {
    if produced == size {
        Ok(())
    } else {
        Err(format!("decompressed to {produced} bytes, expected {size}").into())
    }
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
    fn read(&mut self, buf: &mut [u8]) -> std::result::Result<usize, DecodeError> {
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
                return Err("the frame is cut short".into());
            }
        }
        Ok(filled)
    }
}

/// Inflates a frame known to hold `size` bytes in one call, into a buffer of that size.
fn inflate_exact(frame: &[u8], size: usize) -> std::result::Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    out.try_reserve_exact(size).map_err(|_| DecodeError::NoMemory { bytes: size })?;
    let mut dctx = zstd::zstd_safe::DCtx::create();
    dctx.decompress(&mut out, frame).map_err(|code| zstd_error(code, size))?;
    exactly(out.len(), size)?;
    Ok(out)
}

/// Decompresses one zstd frame that should produce exactly `size` bytes. A frame within
/// [`ONE_SHOT_LIMIT`] inflates in one call; a larger one streams: after each chunk `check`
/// sees everything produced so far and can stop a frame that is going wrong before it has
/// taken the memory it claims, and the buffer grows with `try_reserve`, so a machine short of
/// memory is an error, not an abort.
pub(crate) fn decompress(
    frame: &[u8],
    size: usize,
    mut check: impl FnMut(&[u8]) -> std::result::Result<(), String>,
) -> std::result::Result<Vec<u8>, DecodeError> {
    if size <= ONE_SHOT_LIMIT {
        return inflate_exact(frame, size);
    }
    let mut stream = FrameStream::new(frame, size);
    let mut out: Vec<u8> = Vec::new();
    loop {
        // One byte past `size` is room to notice a frame that inflates further than it says.
        let want = (out.len().max(STREAM_CHUNK)).min(size + 1 - out.len());
        let filled = out.len();
        out.try_reserve_exact(want).map_err(|_| DecodeError::NoMemory { bytes: size })?;
        out.resize(filled + want, 0);
        let produced = stream.read(&mut out[filled..])?;
        out.truncate(filled + produced);
        if out.len() > size {
            exactly(out.len(), size)?;
        }
        check(&out)?;
        if produced < want {
            break;
        }
    }
    exactly(out.len(), size)?;
    Ok(out)
}

/// The SHA-256 of what a zstd frame inflates to, which must be exactly `size` bytes, in
/// memory independent of `size`.
fn inflated_sha256(frame: &[u8], size: usize) -> std::result::Result<[u8; 32], DecodeError> {
    use sha2::Digest;
    let mut stream = FrameStream::new(frame, size);
    let mut hasher = sha2::Sha256::new();
    let mut chunk = vec![0; STREAM_CHUNK];
    let mut total = 0usize;
    loop {
        let n = stream.read(&mut chunk)?;
        total += n;
        if total > size {
            exactly(total, size)?;
        }
        hasher.update(&chunk[..n]);
        if n < chunk.len() {
            break;
        }
    }
    exactly(total, size)?;
    Ok(hasher.finalize().into())
}

/// Inflates a module frame of `size` bytes that must hash to `sha256`; `None` when it
/// inflates to other bytes. A large module is hashed in a streaming pass before it is
/// inflated into memory, so a module that is not the one named never costs its claimed size;
/// once that pass has proved the frame's bytes, they are inflated in one call, unhashed.
pub(crate) fn inflate_module(
    frame: &[u8],
    size: usize,
    sha256: &[u8; 32],
) -> std::result::Result<Option<Vec<u8>>, DecodeError> {
    if size > ONE_SHOT_LIMIT {
        if inflated_sha256(frame, size)? != *sha256 {
            return Ok(None);
        }
        return inflate_exact(frame, size).map(Some);
    }
    let bytes = inflate_exact(frame, size)?;
    Ok((crate::header::sha256(&bytes) == *sha256).then_some(bytes))
}
