//! The byte encoding of events: records of `len: LEB128 u32, kind: u8, body: bincode`.
//!
//! The concatenated content of all data frames — what `zstd -d trace.zst` prints — is a plain
//! stream of such records, and [`parse_event_stream`] reads it back.
//!
//! Bodies use bincode 2's standard (varint) configuration. Decoding is bounded: bincode is told a
//! byte limit proportional to the record's real length, so a corrupt length inside a record can
//! never make the reader allocate more than a small multiple of the bytes actually present.

use bincode::{Decode, Encode};

use crate::event::{Event, EventKind, HostCall, Interruption, Trap, Value};

/// Largest record (kind + body) the writer accepts and the reader believes: 256 MiB.
pub const MAX_RECORD_LEN: usize = 256 << 20;

const KIND_HOST_CALL: u8 = 1;
const KIND_TRAP: u8 = 2;
const KIND_EXIT: u8 = 3;
const KIND_RETURNED: u8 = 4;
const KIND_INTERRUPTED: u8 = 5;

fn kind_byte(kind: EventKind) -> u8 {
    match kind {
        EventKind::HostCall => KIND_HOST_CALL,
        EventKind::Trap => KIND_TRAP,
        EventKind::Exit => KIND_EXIT,
        EventKind::Returned => KIND_RETURNED,
        EventKind::Interrupted => KIND_INTERRUPTED,
    }
}

/// Encodes `value` with bincode's standard configuration, appending to `out`.
pub(crate) fn encode_value<T: Encode>(value: &T, out: &mut Vec<u8>) -> crate::Result<()> {
    bincode::encode_into_std_write(value, out, bincode::config::standard())
        .map(|_| ())
        .map_err(|e| crate::TraceError::InvalidInput(format!("cannot encode: {e}")))
}

/// Decodes a `T` that must fill `bytes` exactly (or at least, when `allow_trailing` because a
/// later minor version may have appended fields).
pub(crate) fn decode_value<T: Decode<()>>(bytes: &[u8], allow_trailing: bool) -> Result<T, String> {
    // Allocation claims are checked against a limit of 64x the input (rounded up to a tier):
    // in-memory sizes may exceed varint-encoded sizes, but never by more than that. Nothing
    // decoded this way (headers, indexes, traps, ends) is legitimately large, so the top tier
    // is a ceiling, not "unlimited".
    macro_rules! with_limit {
        ($($limit:literal),*; $top:literal) => {{
            let need = bytes.len().saturating_mul(64);
            $(if need <= $limit {
                bincode::decode_from_slice::<T, _>(bytes, bincode::config::standard().with_limit::<$limit>())
            } else)* {
                bincode::decode_from_slice::<T, _>(bytes, bincode::config::standard().with_limit::<$top>())
            }
        }};
    }
    let (value, used) =
        with_limit!(4096, 65536, 1_048_576, 16_777_216; 268_435_456).map_err(|e| e.to_string())?;
    if used != bytes.len() && !allow_trailing {
        return Err(format!("{} unexpected trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

/// Appends `value` as unsigned LEB128.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads an unsigned LEB128 of at most 5 bytes (a `u32`) at `*pos`, advancing it.
pub(crate) fn get_varint_u32(bytes: &[u8], pos: &mut usize) -> Result<u32, String> {
    let mut value: u64 = 0;
    for i in 0..5 {
        let byte = *bytes.get(*pos + i).ok_or("record length cut short")?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return u32::try_from(value).map_err(|_| "record length overflows u32".to_string());
        }
    }
    Err("record length longer than 5 bytes".into())
}

/// Reusable scratch space for encoding records without allocating per event.
#[derive(Default)]
pub(crate) struct RecordEncoder {
    body: Vec<u8>,
}

impl RecordEncoder {
    /// Appends one record for `event` to `out`.
    pub(crate) fn encode(&mut self, event: &Event, out: &mut Vec<u8>) -> crate::Result<()> {
        self.body.clear();
        self.body.push(kind_byte(event.kind()));
        match event {
            Event::HostCall(call) => crate::host_call_codec::encode_host_call(call, &mut self.body),
            Event::Trap(trap) => encode_value(trap.as_ref(), &mut self.body)?,
            Event::Exit { code } => encode_value(code, &mut self.body)?,
            Event::Returned { values } => encode_value(values, &mut self.body)?,
            Event::Interrupted(interruption) => encode_value(interruption.as_ref(), &mut self.body)?,
        }
        self.finish(out)
    }

    /// Appends one host-call record to `out`.
    pub(crate) fn encode_host_call(&mut self, call: &HostCall, out: &mut Vec<u8>) -> crate::Result<()> {
        self.body.clear();
        self.body.push(kind_byte(EventKind::HostCall));
        crate::host_call_codec::encode_host_call(call, &mut self.body);
        self.finish(out)
    }

    /// Appends the record in `body` to `out`, length first.
    fn finish(&self, out: &mut Vec<u8>) -> crate::Result<()> {
        if self.body.len() > MAX_RECORD_LEN {
            return Err(crate::TraceError::InvalidInput(format!(
                "an event of {} bytes exceeds the {MAX_RECORD_LEN}-byte limit",
                self.body.len()
            )));
        }
        put_varint(out, self.body.len() as u64);
        out.extend_from_slice(&self.body);
        Ok(())
    }
}

/// What decoding one record produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A known event.
    Event(Event),
    /// A kind this build does not know, from a newer minor format version; skipped.
    Unknown {
        /// The kind byte.
        kind: u8,
    },
}

/// Why bytes from a trace did not decode: what every decoder below the reader returns, turned
/// into a [`crate::TraceError`] naming the part and its offset where it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes are not what they claim.
    Malformed(std::borrow::Cow<'static, str>),
    /// The machine would not give the memory for bytes the trace really holds.
    NoMemory {
        /// How many bytes were asked for.
        bytes: usize,
    },
}

impl From<&'static str> for DecodeError {
    fn from(detail: &'static str) -> Self {
        DecodeError::Malformed(detail.into())
    }
}

impl From<String> for DecodeError {
    fn from(detail: String) -> Self {
        DecodeError::Malformed(detail.into())
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(detail) => f.write_str(detail),
            DecodeError::NoMemory { bytes } => write!(f, "not enough memory for {bytes} bytes"),
        }
    }
}

impl DecodeError {
    /// The same error with its description put in context (`where` first).
    pub(crate) fn context(self, place: impl std::fmt::Display) -> DecodeError {
        match self {
            DecodeError::Malformed(detail) => DecodeError::Malformed(format!("{place}: {detail}").into()),
            no_memory @ DecodeError::NoMemory { .. } => no_memory,
        }
    }

    /// The typed error for `what` at byte `offset` of the file.
    pub(crate) fn into_trace_error(self, what: &'static str, offset: u64) -> crate::TraceError {
        match self {
            DecodeError::Malformed(detail) => crate::TraceError::corrupt(what, offset, detail),
            DecodeError::NoMemory { bytes } => {
                crate::TraceError::OutOfMemory { what, offset, bytes: bytes as u64 }
            }
        }
    }
}

/// Decodes one record body (kind byte + bincode). `newer_minor` relaxes checks for data a
/// later minor version may have added: unknown kinds and trailing fields.
pub(crate) fn decode_record(record: &[u8], newer_minor: bool) -> Result<Record, DecodeError> {
    let mut event = Event::Exit { code: 0 };
    Ok(if decode_record_into(record, newer_minor, &mut event)? {
        Record::Event(event)
    } else {
        Record::Unknown { kind: record[0] }
    })
}

/// Like [`decode_record`], but decodes into `event`, reusing its buffers when both are host
/// calls. Returns `false` (leaving `event` as it was) for a kind from a newer minor version.
pub(crate) fn decode_record_into(
    record: &[u8],
    newer_minor: bool,
    event: &mut Event,
) -> Result<bool, DecodeError> {
    let (&kind, body) = record.split_first().ok_or("empty record")?;
    *event = match kind {
        KIND_HOST_CALL => {
            let mut call = match std::mem::replace(event, Event::Exit { code: 0 }) {
                Event::HostCall(call) => call,
                _ => HostCall::empty(),
            };
            let used = crate::host_call_codec::decode_host_call_into(body, &mut call);
            *event = Event::HostCall(call);
            let used = used?;
            if used != body.len() && !newer_minor {
                return Err(format!("{} unexpected trailing bytes", body.len() - used).into());
            }
            return Ok(true);
        }
        KIND_TRAP => Event::Trap(Box::new(decode_value::<Trap>(body, newer_minor)?)),
        KIND_EXIT => Event::Exit { code: decode_value::<i32>(body, newer_minor)? },
        KIND_RETURNED => Event::Returned { values: decode_value::<Vec<Value>>(body, newer_minor)? },
        KIND_INTERRUPTED => Event::Interrupted(Box::new(decode_value::<Interruption>(body, newer_minor)?)),
        _ if newer_minor => return Ok(false),
        other => return Err(format!("unknown event kind {other}").into()),
    };
    Ok(true)
}

/// The records of a data frame: each one's body as `(start, end)` offsets, 8 bytes a record of
/// at least 2, so the list stays within four times the bytes. With `expected`, more records
/// than that is corruption, found before the list grows past it.
pub(crate) fn record_bodies(bytes: &[u8], expected: Option<u32>) -> Result<Vec<(u32, u32)>, (usize, String)> {
    Records::new(bytes.len(), expected).finish(bytes)
}

/// Follows the records of a data frame, also while it inflates, so that a frame going wrong
/// stops before it has taken the memory it claims. It holds the writer's rules: a batch is sent
/// once it reaches [`crate::container::MAX_BATCH_BYTES`], so every record starts before that
/// offset, and every record fits the frame's declared size. A frame of one repeated byte thus
/// fails within 16 MiB, and more bytes than that are only ever one real record.
pub(crate) struct Records {
    size: usize,
    expected: Option<u32>,
    next: usize,
    bodies: Vec<(u32, u32)>,
}

impl Records {
    /// For a frame of `size` bytes and, when its index entry says, `expected` records.
    pub(crate) fn new(size: usize, expected: Option<u32>) -> Records {
        let capacity = expected.map_or(0, |n| (n as usize).min(size / 2));
        Records { size, expected, next: 0, bodies: Vec::with_capacity(capacity) }
    }

    /// Finds every record whose length prefix lies in `produced`, the frame's first bytes;
    /// an error names the decompressed byte where the record starts.
    pub(crate) fn advance(&mut self, produced: &[u8]) -> Result<(), (usize, String)> {
        if u32::try_from(self.size).is_err() {
            return Err((0, format!("{} bytes of records is more than a frame holds", self.size)));
        }
        while self.next < produced.len() {
            let start = self.next;
            if start >= crate::container::MAX_BATCH_BYTES {
                return Err((start, "a record starts past any batch the writer sends".into()));
            }
            if let Some(n) = self.expected
                && self.bodies.len() >= n as usize
            {
                return Err((start, format!("more records than the {n} the index counts")));
            }
            let mut pos = start;
            let len = match get_varint_u32(produced, &mut pos) {
                Ok(len) => len as usize,
                // The prefix is cut by the end of what has inflated so far.
                Err(_) if produced.len() - start < 5 => return Ok(()),
                Err(e) => return Err((start, e)),
            };
            if len == 0 || len > MAX_RECORD_LEN || len > self.size - pos.min(self.size) {
                return Err((start, format!("record length {len} does not fit the frame")));
            }
            // Both fit: the frame is under 4 GiB (checked above).
            self.bodies.push((pos as u32, (pos + len) as u32));
            self.next = pos + len;
        }
        Ok(())
    }

    /// The records of the whole frame, `bytes`.
    pub(crate) fn finish(mut self, bytes: &[u8]) -> Result<Vec<(u32, u32)>, (usize, String)> {
        self.advance(bytes)?;
        if self.next != bytes.len() {
            return Err((self.next, "record length cut short".into()));
        }
        Ok(self.bodies)
    }
}

/// The body of the record whose length prefix is at `start`: `(body start, end)`.
pub(crate) fn record_at(bytes: &[u8], start: usize) -> Result<(usize, usize), (usize, String)> {
    let mut pos = start;
    let len = get_varint_u32(bytes, &mut pos).map_err(|e| (start, e))? as usize;
    if len == 0 || len > MAX_RECORD_LEN {
        return Err((start, format!("record length {len} is out of range")));
    }
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| (start, format!("record of {len} bytes runs past the end of its frame")))?;
    Ok((pos, end))
}

/// Parses a whole decompressed event stream (for example the output of `zstd -d trace.zst`).
/// Errors name the byte offset within `bytes`.
pub fn parse_event_stream(bytes: &[u8]) -> Result<Vec<Event>, (usize, String)> {
    let mut events = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (start, end) = record_at(bytes, pos)?;
        pos = end;
        match decode_record(&bytes[start..end], false).map_err(|e| (start, e.to_string()))? {
            Record::Event(event) => events.push(event),
            Record::Unknown { .. } => {}
        }
    }
    Ok(events)
}
