//! A hand-written decoder for host-call records, the bulk of every trace.
//!
//! It reads exactly bincode 2's standard (varint) encoding of [`HostCall`] — the writer still
//! encodes with bincode — but without bincode's generic reader and error machinery, which cost
//! more than the decoding itself on the sequential-read path. Tests check it against bincode
//! on arbitrary values and arbitrary bytes. Every length is checked against the bytes left
//! before anything is allocated.

use crate::event::{HostCall, ImportId, MemoryBytes, Outcome, Value};

type Result<T> = std::result::Result<T, &'static str>;

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
            _ => return Err("invalid varint"),
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
            _ => Err("integer out of range"),
        }
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.u64()?).map_err(|_| "integer out of range")
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
            return Err("length runs past the end of the record");
        }
        Ok(n)
    }

    fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("invalid bool"),
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
            _ => return Err("unknown value type"),
        })
    }

    /// Decodes a list of values into `out`, reusing its buffer.
    fn values_into(&mut self, out: &mut Vec<Value>) -> Result<()> {
        let n = self.len()?;
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
                span.bytes.clear();
                span.bytes.extend_from_slice(bytes);
            } else {
                out.push(MemoryBytes { memory, offset, bytes: bytes.to_vec() });
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let len = self.len()?;
        std::str::from_utf8(self.take(len)?).map(str::to_owned).map_err(|_| "invalid UTF-8")
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
        _ => return Err("unknown outcome"),
    }
    c.memory_bytes_into(&mut call.writes)?;
    c.memory_bytes_into(&mut call.reads)?;
    Ok(c.pos)
}
