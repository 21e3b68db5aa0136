//! The container layout: zstd frames and skippable frames, wtrace's own tagged frames (header,
//! embedded modules, index), and the standard zstd seekable-format seek table.
//!
//! ```text
//! [WTRC header] [WMOD module]* [data frame]* [WIDX index] [seek table]
//! ```
//! wtrace frames are skippable frames (magic `0x184D2A57`) whose payload is
//! `tag: 4 bytes, body, check: first 8 bytes of SHA-256(tag + body)`. Data frames are ordinary
//! zstd frames with content size and content checksum. Stock `zstd -d` skips everything but the
//! data frames, so it prints exactly the event stream.

use bincode::{Decode, Encode};

use crate::codec;
use crate::error::{Result, TraceError};
use crate::header::sha256;

/// Magic of a zstd data frame.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frame magic used for wtrace's own frames.
pub const WTRACE_SKIPPABLE_MAGIC: u32 = 0x184D_2A57;
/// Skippable frame magic of the seekable format's seek table.
pub const SEEK_TABLE_MAGIC: u32 = 0x184D_2A5E;
/// Last four bytes of a seekable-format file.
pub const SEEKABLE_FOOTER_MAGIC: u32 = 0x8F92_EAB1;

/// Tag of the header frame.
pub const TAG_HEADER: [u8; 4] = *b"WTRC";
/// Tag of an embedded module frame.
pub const TAG_MODULE: [u8; 4] = *b"WMOD";
/// Tag of the index frame.
pub const TAG_INDEX: [u8; 4] = *b"WIDX";

/// Size of a skippable frame header (magic + length).
pub const SKIPPABLE_HEADER_LEN: u64 = 8;
/// Size of the seekable footer (frame count, descriptor, magic).
pub const SEEKABLE_FOOTER_LEN: u64 = 9;
/// The ceilings: the largest size of each kind the reader believes. Every size read from a
/// file is checked against its ceiling before anything is allocated or decompressed, and
/// decompression never produces more than the size checked; over a ceiling is a typed error
/// naming the offset. Each is the most a trace wtrace writes can hold.
///
/// Largest module: wasmparser's own limit on a module's size.
pub const MAX_MODULE_LEN: u64 = 1 << 30;
/// A module size from a file, when it is within [`MAX_MODULE_LEN`].
pub(crate) fn module_len(size: u64) -> Option<usize> {
    usize::try_from(size).ok().filter(|_| size <= MAX_MODULE_LEN)
}

/// Largest wtrace frame payload (header, index, an embedded module compressed; the index of a
/// huge trace stays far below it).
pub const MAX_WTRACE_FRAME: u64 = MAX_MODULE_LEN + (1 << 20);
/// Largest batch of events the writer puts in one data frame before it starts another.
pub const MAX_BATCH_BYTES: usize = 16 << 20;
/// Largest decompressed data frame: a full batch plus one largest record.
pub const MAX_DATA_FRAME_CONTENT: u64 = (MAX_BATCH_BYTES + codec::MAX_RECORD_LEN + 16) as u64;

/// Builds a complete wtrace skippable frame.
pub(crate) fn wtrace_frame(tag: [u8; 4], body: &[u8]) -> Result<Vec<u8>> {
    let payload_len = 4 + body.len() + 8;
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|len| u64::from(*len) <= MAX_WTRACE_FRAME)
        .ok_or_else(|| TraceError::InvalidInput(format!("a {payload_len}-byte frame is too large")))?;
    let mut out = Vec::with_capacity(8 + payload_len);
    out.extend_from_slice(&WTRACE_SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&tag);
    out.extend_from_slice(body);
    let check = sha256(&out[8..]);
    out.extend_from_slice(&check[..8]);
    Ok(out)
}

/// Splits a wtrace frame payload into tag and body, and says whether its check holds.
pub(crate) fn open_wtrace_payload(payload: &[u8]) -> Option<([u8; 4], &[u8], bool)> {
    if payload.len() < 12 {
        return None;
    }
    let (content, check) = payload.split_at(payload.len() - 8);
    let tag = [content[0], content[1], content[2], content[3]];
    let ok = sha256(content)[..8] == *check;
    Some((tag, &content[4..], ok))
}

/// What a frame at some offset is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameShape {
    /// A skippable frame; `magic` says which kind, `payload_len` follows the 8-byte header.
    Skippable { magic: u32, payload_len: u64 },
    /// A zstd frame of `len` bytes in all, declaring `content_size` (if present).
    Zstd { len: u64, content_size: Option<u64>, has_checksum: bool },
}

impl FrameShape {
    /// The frame's total length in the file.
    pub(crate) fn len(self) -> u64 {
        match self {
            FrameShape::Skippable { payload_len, .. } => SKIPPABLE_HEADER_LEN + payload_len,
            FrameShape::Zstd { len, .. } => len,
        }
    }
}

/// Random-access reads from a trace's bytes.
pub trait ReadAt: Send + Sync {
    /// Fills `buf` from `offset`; fails if the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// True when there are no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> u64 {
        Vec::len(self) as u64
    }
}

/// A file with its length fixed at open time.
pub(crate) struct FileSource {
    pub(crate) file: std::fs::File,
    pub(crate) len: u64,
}

impl ReadAt for FileSource {
    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }
    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// Reads `len` bytes at `offset`, reporting a short file as truncation of `what`.
pub(crate) fn read_bytes(src: &dyn ReadAt, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>> {
    let end = offset.checked_add(len);
    if end.is_none_or(|end| end > src.len()) {
        return Err(TraceError::Truncated { what, offset });
    }
    let len = usize::try_from(len).map_err(|_| TraceError::Truncated { what, offset })?;
    let mut buf = vec![0; len];
    src.read_exact_at(&mut buf, offset).map_err(|source| TraceError::Io { offset, source })?;
    Ok(buf)
}

fn read_u32_at(src: &dyn ReadAt, offset: u64, what: &'static str) -> Result<u32> {
    let b = read_bytes(src, offset, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Works out the shape and extent of the frame at `offset` by walking its block headers
/// (RFC 8878 §3.1.1), without decompressing. Every size is checked against the file length.
pub(crate) fn frame_shape(src: &dyn ReadAt, offset: u64) -> Result<FrameShape> {
    let magic = read_u32_at(src, offset, "frame")?;
    if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
        let payload_len = u64::from(read_u32_at(src, offset + 4, "frame")?);
        if offset + SKIPPABLE_HEADER_LEN + payload_len > src.len() {
            return Err(TraceError::Truncated { what: "frame", offset });
        }
        return Ok(FrameShape::Skippable { magic, payload_len });
    }
    if magic != ZSTD_MAGIC {
        return Err(TraceError::corrupt("frame", offset, format!("unknown frame magic {magic:#010x}")));
    }
    let fhd = read_bytes(src, offset + 4, 1, "frame")?[0];
    let fcs_flag = fhd >> 6;
    let single_segment = fhd & 0x20 != 0;
    let has_checksum = fhd & 0x04 != 0;
    let dict_id_len = [0u64, 1, 2, 4][usize::from(fhd & 0x03)];
    if fhd & 0x08 != 0 {
        return Err(TraceError::corrupt("data frame", offset, "reserved header bit set"));
    }
    let fcs_len = match fcs_flag {
        0 => u64::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let window_len = u64::from(!single_segment);
    let fcs_at = offset + 5 + window_len + dict_id_len;
    let content_size = if fcs_len == 0 {
        None
    } else {
        let b = read_bytes(src, fcs_at, fcs_len, "frame")?;
        let mut raw = [0u8; 8];
        raw[..b.len()].copy_from_slice(&b);
        let value = u64::from_le_bytes(raw);
        Some(if fcs_len == 2 { value + 256 } else { value })
    };
    let mut pos = fcs_at + fcs_len;
    loop {
        let b = read_bytes(src, pos, 3, "frame")?;
        let block = u32::from(b[0]) | (u32::from(b[1]) << 8) | (u32::from(b[2]) << 16);
        let last = block & 1 != 0;
        let block_type = (block >> 1) & 3;
        let size = u64::from(block >> 3);
        let stored = match block_type {
            0 | 2 => size,
            1 => 1,
            _ => return Err(TraceError::corrupt("data frame", offset, "reserved block type")),
        };
        pos += 3 + stored;
        if pos > src.len() {
            return Err(TraceError::Truncated { what: "frame", offset });
        }
        if last {
            break;
        }
    }
    if has_checksum {
        pos += 4;
        if pos > src.len() {
            return Err(TraceError::Truncated { what: "frame", offset });
        }
    }
    Ok(FrameShape::Zstd { len: pos - offset, content_size, has_checksum })
}

/// One data frame as the index describes it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct IndexEntry {
    /// File offset of the frame.
    pub offset: u64,
    /// Length of the frame in the file.
    pub compressed_len: u32,
    /// Length of its decompressed content.
    pub content_len: u32,
    /// Seq of its first event.
    pub first_seq: u64,
    /// How many events it holds.
    pub events: u32,
    /// How many of each [`crate::EventKind`] (in `EventKind::ALL` order; may be longer in
    /// later minor versions).
    pub kind_counts: Vec<u32>,
}

impl IndexEntry {
    /// Count of events of `kind` in this frame.
    pub fn count(&self, kind: crate::EventKind) -> u32 {
        self.kind_counts.get(kind.index()).copied().unwrap_or(0)
    }
}

/// The body of the index frame.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct IndexBody {
    pub(crate) entries: Vec<IndexEntry>,
}

/// Writes the tail of a trace — index frame, then seek table — given every frame before it as
/// `(compressed_len, decompressed_len)` pairs in file order.
pub(crate) fn encode_tail(all_frames: &[(u32, u32)], entries: &[IndexEntry]) -> Result<Vec<u8>> {
    let mut out = index_frame(entries)?;
    let index_len =
        u32::try_from(out.len()).map_err(|_| TraceError::InvalidInput("index frame too large".into()))?;
    let frames: Vec<(u32, u32)> = all_frames.iter().copied().chain([(index_len, 0)]).collect();
    out.extend_from_slice(&seek_table(&frames)?);
    Ok(out)
}

/// The index frame over `entries`.
pub(crate) fn index_frame(entries: &[IndexEntry]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    codec::encode_value(&IndexBody { entries: entries.to_vec() }, &mut body)?;
    wtrace_frame(TAG_INDEX, &body)
}

/// The seekable format's seek table over every frame of the file, `(compressed_len,
/// decompressed_len)` each, in file order.
pub(crate) fn seek_table(frames: &[(u32, u32)]) -> Result<Vec<u8>> {
    let table_payload = frames.len() * 8 + SEEKABLE_FOOTER_LEN as usize;
    let mut out = Vec::with_capacity(8 + table_payload);
    out.extend_from_slice(&SEEK_TABLE_MAGIC.to_le_bytes());
    let payload =
        u32::try_from(table_payload).map_err(|_| TraceError::InvalidInput("too many frames".into()))?;
    out.extend_from_slice(&payload.to_le_bytes());
    for (compressed, decompressed) in frames {
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&decompressed.to_le_bytes());
    }
    let count =
        u32::try_from(frames.len()).map_err(|_| TraceError::InvalidInput("too many frames".into()))?;
    out.extend_from_slice(&count.to_le_bytes());
    out.push(0); // descriptor: no per-frame checksums (data frames carry zstd's own)
    out.extend_from_slice(&SEEKABLE_FOOTER_MAGIC.to_le_bytes());
    Ok(out)
}

/// The parsed tail of a complete trace.
#[derive(Debug)]
pub(crate) struct Tail {
    /// Index entries of the data frames.
    pub(crate) entries: Vec<IndexEntry>,
    /// File offset where the index frame starts (= end of the last data frame).
    pub(crate) index_offset: u64,
}

/// Reads the seek table and index at the end of the file. `Ok(None)` means there is no tail
/// at all (the recorder never finished); `Err` means there is one but it is damaged.
pub(crate) fn read_tail(src: &dyn ReadAt, data_start: u64) -> Result<Option<Tail>> {
    let len = src.len();
    if len < data_start + SEEKABLE_FOOTER_LEN {
        return Ok(None);
    }
    let footer_at = len - SEEKABLE_FOOTER_LEN;
    let footer = read_bytes(src, footer_at, SEEKABLE_FOOTER_LEN, "seek table")?;
    if u32::from_le_bytes([footer[5], footer[6], footer[7], footer[8]]) != SEEKABLE_FOOTER_MAGIC {
        return Ok(None);
    }
    let count = u64::from(u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]));
    let descriptor = footer[4];
    let entry_len = if descriptor & 0x80 != 0 { 12 } else { 8 };
    let table_len = SKIPPABLE_HEADER_LEN + count * entry_len + SEEKABLE_FOOTER_LEN;
    if count == 0 || table_len > len {
        return Err(TraceError::corrupt(
            "seek table",
            footer_at,
            format!("{count} frames do not fit the file"),
        ));
    }
    let table_at = len - table_len;
    let table = read_bytes(src, table_at, table_len, "seek table")?;
    let magic = u32::from_le_bytes([table[0], table[1], table[2], table[3]]);
    let payload = u64::from(u32::from_le_bytes([table[4], table[5], table[6], table[7]]));
    if magic != SEEK_TABLE_MAGIC || payload + SKIPPABLE_HEADER_LEN != table_len {
        return Err(TraceError::corrupt("seek table", table_at, "bad seek table header"));
    }
    let mut sum = 0u64;
    let mut last_len = 0u64;
    for i in 0..count {
        let at = (SKIPPABLE_HEADER_LEN + i * entry_len) as usize;
        last_len = u64::from(u32::from_le_bytes([table[at], table[at + 1], table[at + 2], table[at + 3]]));
        sum += last_len;
    }
    if sum != table_at {
        return Err(TraceError::corrupt("seek table", table_at, "frame sizes do not add up to the file"));
    }
    let index_offset = table_at - last_len;
    let shape = frame_shape(src, index_offset)?;
    let FrameShape::Skippable { magic: WTRACE_SKIPPABLE_MAGIC, payload_len } = shape else {
        return Err(TraceError::corrupt("index", index_offset, "the last frame is not an index"));
    };
    let payload = read_bytes(src, index_offset + SKIPPABLE_HEADER_LEN, payload_len, "index")?;
    let (tag, body, ok) = open_wtrace_payload(&payload)
        .ok_or_else(|| TraceError::corrupt("index", index_offset, "frame too short"))?;
    if tag != TAG_INDEX {
        return Err(TraceError::corrupt("index", index_offset, "the last frame is not an index"));
    }
    if !ok {
        return Err(TraceError::corrupt("index", index_offset, "checksum mismatch"));
    }
    let IndexBody { entries } = codec::decode_value::<IndexBody>(body, true)
        .map_err(|detail| TraceError::corrupt("index", index_offset, detail))?;
    validate_entries(&entries, data_start, index_offset)?;
    Ok(Some(Tail { entries, index_offset }))
}

/// Checks that index entries are in order, contiguous in seq, and inside the data region.
fn validate_entries(entries: &[IndexEntry], data_start: u64, index_offset: u64) -> Result<()> {
    let mut next_seq = 0u64;
    let mut min_offset = data_start;
    for (i, e) in entries.iter().enumerate() {
        let bad = |detail: String| TraceError::corrupt("index", index_offset, format!("entry {i}: {detail}"));
        if e.first_seq != next_seq {
            return Err(bad(format!("first event {} where {next_seq} was expected", e.first_seq)));
        }
        if e.offset < min_offset || e.offset + u64::from(e.compressed_len) > index_offset {
            return Err(bad(format!("frame at byte {} lies outside the data region", e.offset)));
        }
        if u64::from(e.content_len) > MAX_DATA_FRAME_CONTENT || e.events == 0 {
            return Err(bad("impossible sizes".into()));
        }
        let kinds: u64 = e.kind_counts.iter().map(|c| u64::from(*c)).sum();
        if kinds != u64::from(e.events) {
            return Err(bad("kind counts do not add up".into()));
        }
        next_seq += u64::from(e.events);
        min_offset = e.offset + u64::from(e.compressed_len);
    }
    Ok(())
}
