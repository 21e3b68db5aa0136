//! Recovery: when the index is missing (the recorder was killed) or damaged, scan the frames
//! from the header on and keep every complete data frame whose checksum holds.

use crate::codec::{self, Record};
use crate::container::{self, FrameShape, IndexEntry, TAG_INDEX, TAG_MODULE, WTRACE_SKIPPABLE_MAGIC};
use crate::error::Result;
use crate::event::EventKind;

use super::{Completeness, LoadedFrame, TraceData};

impl TraceData {
    /// Scans frames from the header on, keeping every complete, intact data frame.
    pub(super) fn recover(&mut self, index_problem: String) {
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
                    entry.events = frame.len() as u32;
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
        for i in 0..frame.len() {
            match codec::decode_record(frame.record(i), self.newer_minor()) {
                Ok(Record::Event(event)) => counts[event.kind().index()] += 1,
                Ok(Record::Unknown { .. }) => counts.push(1),
                Err(error) => return Err(error.into_trace_error("event", offset)),
            }
        }
        Ok(counts)
    }
}
