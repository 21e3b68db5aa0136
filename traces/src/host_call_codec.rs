//! A hand-written encoder and decoder for host-call records, the bulk of every trace.
//!
//! They write and read exactly bincode 2's standard (varint) encoding of [`HostCall`], but
//! without bincode's generic machinery, which costs more than the work itself on the
//! recording and sequential-read paths. Tests check both against bincode. Every length is
//! checked against the bytes left before anything is allocated.

use crate::event::{HostCall, ImportId, MemoryBytes, Outcome, Printed, Stream, Value};

use crate::codec::DecodeError;

type Result<T> = std::result::Result<T, DecodeError>;

/// The most parameters or results a Wasm function type has (wasmparser's limit, 1000 each).
const MAX_VALUES: usize = 1000;

/// A copy of `bytes` into `out`, which the machine may refuse when they are many.
fn copy_into(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    out.clear();
    out.try_reserve_exact(bytes.len()).map_err(|_| DecodeError::NoMemory { bytes: bytes.len() })?;
    out.extend_from_slice(bytes);
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let b = *self.bytes.get(self.pos).ok_or("unexpected end of record")?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("unexpected end of record")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    #[inline]
    fn uvarint(&mut self) -> Result<u128> {
        let first = self.byte()?;
        let wide = |bytes: &[u8]| {
            let mut raw = [0u8; 16];
            raw[..bytes.len()].copy_from_slice(bytes);
            u128::from_le_bytes(raw)
        };
        Ok(match first {
            0..=250 => u128::from(first),
            251 => wide(self.take(2)?),
            252 => wide(self.take(4)?),
            253 => wide(self.take(8)?),
            254 => wide(self.take(16)?),
            _ => return Err("invalid varint".into()),
        })
    }

    /// An unsigned varint of at most 64 bits, with the one-byte case first.
    #[inline]
    fn u64(&mut self) -> Result<u64> {
        let first = self.byte()?;
        if first < 251 {
            return Ok(u64::from(first));
        }
        let wide = |bytes: &[u8]| {
            let mut raw = [0u8; 8];
            raw[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(raw)
        };
        match first {
            251 => Ok(wide(self.take(2)?)),
            252 => Ok(wide(self.take(4)?)),
            253 => Ok(wide(self.take(8)?)),
            _ => Err("integer out of range".into()),
        }
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.u64()?).map_err(|_| "integer out of range".into())
    }

    #[inline]
    fn i32(&mut self) -> Result<i32> {
        let z = self.u32()?;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }

    #[inline]
    fn i64(&mut self) -> Result<i64> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A container length; every element takes at least one byte, so a length beyond the
    /// bytes left is corrupt and is refused before allocating.
    #[inline]
    fn len(&mut self) -> Result<usize> {
        let n = usize::try_from(self.u64()?).map_err(|_| "length out of range")?;
        if n > self.bytes.len() - self.pos {
            return Err("length runs past the end of the record".into());
        }
        Ok(n)
    }

    fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("invalid bool".into()),
        }
    }

    fn value(&mut self) -> Result<Value> {
        Ok(match self.u32()? {
            0 => Value::I32(self.i32()?),
            1 => Value::I64(self.i64()?),
            2 => Value::F32(self.u32()?),
            3 => Value::F64(self.u64()?),
            4 => Value::V128(self.uvarint()?),
            5 => Value::FuncRef { null: self.bool()? },
            6 => Value::ExternRef { null: self.bool()? },
            _ => return Err("unknown value type".into()),
        })
    }

    /// Decodes a list of values into `out`, reusing its buffer. A call has no more parameters
    /// or results than a Wasm function type may ([`MAX_VALUES`]), which bounds the buffer
    /// before it is reserved.
    fn values_into(&mut self, out: &mut Vec<Value>) -> Result<()> {
        let n = self.len()?;
        if n > MAX_VALUES {
            return Err(format!("{n} values, more than a function takes or returns").into());
        }
        out.clear();
        out.reserve(n);
        for _ in 0..n {
            out.push(self.value()?);
        }
        Ok(())
    }

    /// Decodes memory spans into `out`, reusing both the list and each span's byte buffer so
    /// that a sequential reader allocates nothing once its buffers have grown.
    fn memory_bytes_into(&mut self, out: &mut Vec<MemoryBytes>) -> Result<()> {
        let n = self.len()?;
        out.truncate(n);
        for i in 0..n {
            let memory = self.u32()?;
            let offset = self.u64()?;
            let len = self.len()?;
            let bytes = self.take(len)?;
            if let Some(span) = out.get_mut(i) {
                span.memory = memory;
                span.offset = offset;
                copy_into(&mut span.bytes, bytes)?;
            } else {
                // A span takes a few bytes of the record but far more in memory: the list may
                // grow past what the machine gives for a record of many empty spans.
                out.try_reserve(1)
                    .map_err(|_| DecodeError::NoMemory { bytes: (i + 1) * size_of::<MemoryBytes>() })?;
                let mut copy = Vec::new();
                copy_into(&mut copy, bytes)?;
                out.push(MemoryBytes { memory, offset, bytes: copy });
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let len = self.len()?;
        std::str::from_utf8(self.take(len)?).map(str::to_owned).map_err(|_| "invalid UTF-8".into())
    }
}

/// Decodes a host-call body into `call`, reusing its buffers; returns the number of bytes
/// used. On error `call` holds a mix of old and new fields.
pub(crate) fn decode_host_call_into(bytes: &[u8], call: &mut HostCall) -> Result<usize> {
    let mut c = Cursor { bytes, pos: 0 };
    call.import = ImportId(c.u32()?);
    c.values_into(&mut call.params)?;
    match c.u32()? {
        0 => {
            let mut values = match std::mem::replace(&mut call.outcome, Outcome::Exited(0)) {
                Outcome::Returned(values) => values,
                _ => Vec::new(),
            };
            c.values_into(&mut values)?;
            call.outcome = Outcome::Returned(values);
        }
        1 => call.outcome = Outcome::Exited(c.i32()?),
        2 => call.outcome = Outcome::Error(c.string()?),
        _ => return Err("unknown outcome".into()),
    }
    c.memory_bytes_into(&mut call.writes)?;
    c.memory_bytes_into(&mut call.reads)?;
    // Format 1.0 records end here.
    call.input_hash = None;
    call.printed = if c.pos == bytes.len() {
        None
    } else {
        match c.byte()? {
            0 => None,
            1 => {
                let stream = match c.u32()? {
                    0 => Stream::Stdout,
                    1 => Stream::Stderr,
                    _ => return Err("unknown output stream".into()),
                };
                Some(Printed { stream, len: c.u32()? })
            }
            _ => return Err("invalid option".into()),
        }
    };
    if c.pos < bytes.len() {
        call.input_hash = match c.byte()? {
            0 => None,
            1 => Some(c.u64()?),
            _ => return Err("invalid option".into()),
        };
    }
    Ok(c.pos)
}

/// Appends bincode's standard varint encoding of a `u128`.
fn put_u128(out: &mut Vec<u8>, value: u128) {
    if let Ok(value) = u64::try_from(value) {
        put_u64(out, value);
    } else {
        out.push(254);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

#[inline]
fn put_u64(out: &mut Vec<u8>, value: u64) {
    if value < 251 {
        out.push(value as u8);
    } else if let Ok(small) = u16::try_from(value) {
        out.push(251);
        out.extend_from_slice(&small.to_le_bytes());
    } else if let Ok(medium) = u32::try_from(value) {
        out.push(252);
        out.extend_from_slice(&medium.to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

#[inline]
fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_values(out: &mut Vec<u8>, values: &[Value]) {
    put_u64(out, values.len() as u64);
    for value in values {
        match value {
            Value::I32(v) => {
                out.push(0);
                put_i64(out, i64::from(*v));
            }
            Value::I64(v) => {
                out.push(1);
                put_i64(out, *v);
            }
            Value::F32(bits) => {
                out.push(2);
                put_u64(out, u64::from(*bits));
            }
            Value::F64(bits) => {
                out.push(3);
                put_u64(out, *bits);
            }
            Value::V128(bits) => {
                out.push(4);
                put_u128(out, *bits);
            }
            Value::FuncRef { null } => out.extend_from_slice(&[5, u8::from(*null)]),
            Value::ExternRef { null } => out.extend_from_slice(&[6, u8::from(*null)]),
        }
    }
}

fn put_memory_bytes(out: &mut Vec<u8>, spans: &[MemoryBytes]) {
    put_u64(out, spans.len() as u64);
    for span in spans {
        put_u64(out, u64::from(span.memory));
        put_u64(out, span.offset);
        put_u64(out, span.bytes.len() as u64);
        out.extend_from_slice(&span.bytes);
    }
}

/// Appends the body of a host-call record, byte for byte what bincode's standard
/// configuration writes.
pub(crate) fn encode_host_call(call: &HostCall, out: &mut Vec<u8>) {
    put_u64(out, u64::from(call.import.0));
    put_values(out, &call.params);
    match &call.outcome {
        Outcome::Returned(values) => {
            out.push(0);
            put_values(out, values);
        }
        Outcome::Exited(code) => {
            out.push(1);
            put_i64(out, i64::from(*code));
        }
        Outcome::Error(message) => {
            out.push(2);
            put_u64(out, message.len() as u64);
            out.extend_from_slice(message.as_bytes());
        }
    }
    put_memory_bytes(out, &call.writes);
    put_memory_bytes(out, &call.reads);
    match call.printed {
        None => out.push(0),
        Some(Printed { stream, len }) => {
            out.push(1);
            out.push(match stream {
                Stream::Stdout => 0,
                Stream::Stderr => 1,
            });
            put_u64(out, u64::from(len));
        }
    }
    match call.input_hash {
        None => out.push(0),
        Some(hash) => {
            out.push(1);
            put_u64(out, hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bincode_of(call: &HostCall) -> Vec<u8> {
        bincode::encode_to_vec(call, bincode::config::standard()).unwrap()
    }

    #[test]
    fn encoder_writes_what_bincode_writes() {
        let unsigned_edges =
            [0u64, 1, 250, 251, 255, 65_535, 65_536, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX];
        let signed_edges = [
            0i64,
            1,
            -1,
            125,
            -126,
            126,
            32_767,
            -32_768,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ];
        let mut values = Vec::new();
        for v in signed_edges {
            values.push(Value::I64(v));
            values.push(Value::I32(v as i32));
        }
        for v in unsigned_edges {
            values.push(Value::F64(v));
            values.push(Value::F32(v as u32));
            values.push(Value::V128(u128::from(v)));
            values.push(Value::V128(u128::from(v) << 64 | 7));
        }
        values.extend([Value::FuncRef { null: true }, Value::ExternRef { null: false }]);
        let spans = |n: usize| {
            unsigned_edges
                .iter()
                .take(n)
                .map(|&offset| MemoryBytes {
                    memory: offset as u32,
                    offset,
                    bytes: vec![offset as u8; (offset % 300) as usize],
                })
                .collect::<Vec<_>>()
        };
        let outcomes = [
            Outcome::Returned(values.clone()),
            Outcome::Exited(-3),
            Outcome::Exited(i32::MAX),
            Outcome::Error("trap: é".repeat(40)),
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            for import in [0, 250, 251, 70_000, u32::MAX] {
                let call = HostCall {
                    import: ImportId(import),
                    params: values[..values.len() - i].to_vec(),
                    outcome: outcome.clone(),
                    writes: spans(i * 3),
                    reads: spans(10 - i),
                    printed: [None, Some(Printed { stream: Stream::Stderr, len: import })][i % 2],
                    input_hash: [None, Some(u64::from(import) << 20)][(i / 2) % 2],
                };
                let mut fast = Vec::new();
                encode_host_call(&call, &mut fast);
                assert_eq!(fast, bincode_of(&call), "{call:?}");
                let mut decoded = HostCall::empty();
                assert_eq!(decode_host_call_into(&fast, &mut decoded), Ok(fast.len()));
                assert_eq!(decoded, call);
            }
        }
    }

    #[test]
    fn a_format_1_0_record_has_nothing_printed() {
        let call =
            HostCall { printed: Some(Printed { stream: Stream::Stdout, len: 3 }), ..HostCall::empty() };
        let mut bytes = Vec::new();
        encode_host_call(&HostCall { printed: None, input_hash: None, ..call.clone() }, &mut bytes);
        bytes.truncate(bytes.len() - 2);
        let mut decoded = call;
        assert_eq!(decode_host_call_into(&bytes, &mut decoded), Ok(bytes.len()));
        assert_eq!(decoded.printed, None);
    }

    #[test]
    fn more_values_than_a_function_has_are_refused_before_reserving() {
        // Import 0, then 2000 parameters, each an `I32(0)` of two bytes: a record a few KiB
        // long whose list a reader must not believe.
        let mut bytes = vec![0, 0xfb];
        bytes.extend_from_slice(&2000u16.to_le_bytes());
        bytes.extend(std::iter::repeat_n([0u8, 0], 2000).flatten());
        let error = decode_host_call_into(&bytes, &mut HostCall::empty()).unwrap_err();
        assert_eq!(
            error,
            DecodeError::from("2000 values, more than a function takes or returns".to_string())
        );
    }
}
