//! Data frames: decompressing one (bounded by the size it declares) and finding its records.

use crate::codec;
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
    let bytes = decompress(compressed, content_size as usize).map_err(damaged)?;
    let bodies = codec::record_bodies(&bytes, expected).map_err(|(at, detail)| {
        TraceError::corrupt("data frame", offset, format!("frame {index}, decompressed byte {at}: {detail}"))
    })?;
    Ok(LoadedFrame { bytes, bodies })
}

pub(super) fn record_error(frame_index: usize, entry: &IndexEntry, seq: u64, detail: &str) -> TraceError {
    TraceError::corrupt("event", entry.offset, format!("event {seq} in data frame {frame_index}: {detail}"))
}

/// Decompresses one zstd frame that should produce exactly `size` bytes. Small frames are
/// decompressed in one call; large ones stream, so memory follows the bytes actually produced
/// rather than a size the file merely claims.
pub(crate) fn decompress(frame: &[u8], size: usize) -> Result<Vec<u8>, String> {
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
