//! The trace header: everything about a run that is known before its first event.
//!
//! On disk the header payload starts with a preamble that stays the same in every format
//! version — `major: u16, minor: u16, writer_len: u16, writer: utf-8` — so that even a reader
//! that cannot decode the rest can say which wtrace wrote the file.

use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::error::{Result, TraceError};
use crate::{FORMAT_MAJOR, FORMAT_MINOR};

/// A format version: majors are incompatible, minors only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormatVersion {
    /// Incompatible changes bump this.
    pub major: u16,
    /// Compatible additions bump this.
    pub minor: u16,
}

impl FormatVersion {
    /// The version this build writes.
    pub const CURRENT: FormatVersion = FormatVersion { major: FORMAT_MAJOR, minor: FORMAT_MINOR };
}

impl std::fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Everything known about a run before its first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version of the file (set by the writer, read from the file).
    pub format: FormatVersion,
    /// The wtrace version that wrote the file.
    pub writer: String,
    /// The body: everything else.
    pub run: RunInfo,
}

/// The run's description, stored after the preamble.
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode)]
pub struct RunInfo {
    /// Wasmtime's version string.
    pub wasmtime_version: String,
    /// Target triple of the recording machine.
    pub target: String,
    /// Engine settings that change generated code, as sorted `key = value` pairs.
    pub engine_config: Vec<(String, String)>,
    /// Milliseconds since the Unix epoch when recording started.
    pub created_unix_ms: u64,
    /// The wtrace command line that made the recording.
    pub command_line: Vec<String>,
    /// The guest's `argv`.
    pub args: Vec<String>,
    /// The guest's environment.
    pub env: Vec<EnvVar>,
    /// Preopened directories.
    pub preopens: Vec<Preopen>,
    /// The exported function called, for `--invoke` runs.
    pub invoke: Option<String>,
    /// Every module of the run; module 0 is the main module.
    pub modules: Vec<ModuleEntry>,
    /// Interned import names; [`crate::ImportId`] indexes this.
    pub imports: Vec<ImportName>,
}

/// One environment variable given to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its value, or `None` when redacted from the trace (replay then sees the recorded reads only).
    pub value: Option<String>,
}

/// A directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Preopen {
    /// Path on the recording host.
    pub host: String,
    /// Path as the guest sees it.
    pub guest: String,
}

/// A module of the run, identified by content hash.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ModuleEntry {
    /// Its file name (or a name given by the library user).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// Whether its bytes are embedded in the trace.
    pub embedded: bool,
}

impl ModuleEntry {
    /// Describes `bytes` under `name` (not yet embedded: the writer sets that).
    pub fn new(name: impl Into<String>, bytes: &[u8]) -> ModuleEntry {
        ModuleEntry { name: name.into(), size: bytes.len() as u64, sha256: sha256(bytes), embedded: false }
    }

    /// Describes a module of `size` bytes whose SHA-256 is already known.
    pub fn with_hash(name: impl Into<String>, size: u64, sha256: [u8; 32]) -> ModuleEntry {
        ModuleEntry { name: name.into(), size, sha256, embedded: false }
    }

    /// The hash as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// An import's two-level name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
pub struct ImportName {
    /// The import module, e.g. `wasi_snapshot_preview1`.
    pub module: String,
    /// The field name, e.g. `fd_write`.
    pub name: String,
}

impl std::fmt::Display for ImportName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.module, self.name)
    }
}

/// SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Header {
    /// A header for a new trace written by this build.
    pub fn new(run: RunInfo) -> Header {
        Header { format: FormatVersion::CURRENT, writer: crate::WRITER_VERSION.to_string(), run }
    }

    /// A fingerprint of the engine configuration, for quick comparison.
    pub fn engine_fingerprint(&self) -> String {
        let mut text = String::new();
        for (k, v) in &self.run.engine_config {
            text.push_str(k);
            text.push('=');
            text.push_str(v);
            text.push('\n');
        }
        hex(&sha256(text.as_bytes())[..8])
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let writer = self.writer.as_bytes();
        let writer_len = u16::try_from(writer.len())
            .map_err(|_| TraceError::InvalidInput("writer version string too long".into()))?;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.format.major.to_le_bytes());
        out.extend_from_slice(&self.format.minor.to_le_bytes());
        out.extend_from_slice(&writer_len.to_le_bytes());
        out.extend_from_slice(writer);
        codec::encode_value(&self.run, &mut out)?;
        Ok(out)
    }

    /// Decodes a header payload found at file offset `offset`. The version preamble is checked
    /// before `checksum_ok`, so a newer format is reported as such even if its framing changed.
    pub(crate) fn decode(payload: &[u8], offset: u64, checksum_ok: bool) -> Result<Header> {
        let truncated = || TraceError::Truncated { what: "header", offset };
        let u16_at = |at: usize| -> Result<u16> {
            let bytes = payload.get(at..at + 2).ok_or_else(truncated)?;
            Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
        };
        let format = FormatVersion { major: u16_at(0)?, minor: u16_at(2)? };
        let writer_len = usize::from(u16_at(4)?);
        let writer = payload.get(6..6 + writer_len).ok_or_else(truncated)?;
        let writer = String::from_utf8_lossy(writer).into_owned();
        if format.major > FORMAT_MAJOR {
            return Err(TraceError::NewerFormat { major: format.major, minor: format.minor, writer });
        }
        if format.major < FORMAT_MAJOR {
            return Err(TraceError::corrupt(
                "header",
                offset,
                format!("format version {format} was never written by any wtrace"),
            ));
        }
        if !checksum_ok {
            return Err(TraceError::corrupt("header", offset, "checksum mismatch"));
        }
        let body = &payload[6 + writer_len..];
        let run = codec::decode_value::<RunInfo>(body, format.minor > FORMAT_MINOR)
            .map_err(|detail| TraceError::corrupt("header", offset, detail))?;
        Ok(Header { format, writer, run })
    }
}
