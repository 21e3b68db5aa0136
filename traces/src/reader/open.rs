//! Opening a trace: the header frame at the start, then the index and seek table at the end
//! and the embedded module frames they point past.

use std::sync::Mutex;

use crate::container::{
    self, FrameShape, ReadAt, SKIPPABLE_HEADER_LEN, TAG_HEADER, TAG_MODULE, WTRACE_SKIPPABLE_MAGIC,
    ZSTD_MAGIC,
};
use crate::error::{Result, TraceError};
use crate::header::Header;

use super::{Completeness, TraceData};

impl TraceData {
    pub(super) fn build(src: std::sync::Arc<dyn ReadAt>) -> Result<TraceData> {
        let (header, header_len) = read_header(src.as_ref())?;
        let module_count = header.run.modules.len();
        let mut trace = TraceData {
            src,
            path: None,
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

    pub(super) fn adopt_tail(&mut self, tail: container::Tail) -> Result<()> {
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
    pub(super) fn note_module_frame(&mut self, pos: u64, shape: FrameShape) -> Result<()> {
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
