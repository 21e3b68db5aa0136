//! The compiled-code cache: machine code Cranelift produced for a module, kept on disk so that
//! recording or replaying the same module again starts without compiling it.
//!
//! An entry is found by a key that a stale entry can never match: the SHA-256 of the module's
//! bytes, of the engine settings, of the Wasmtime version, and of Wasmtime's own compatibility
//! hash of the engine (target, CPU features the code may use, compiler flags, tunables, Wasm
//! features). An entry holds the bytes `Module::serialize` produced, behind a header with their
//! length and SHA-256, which are checked before Wasmtime is asked to load them: a truncated or
//! corrupt entry is removed and rebuilt, never run.
//!
//! Wasmtime's own module cache (`Config::cache`) would key entries as carefully, but it stores
//! them zstd-compressed without a checksum over what it loads, so a flipped bit in an entry
//! reaches the code loader; it evicts from a background worker that a short-lived process
//! rarely lets finish; and it needs a TOML configuration file. This cache stores entries
//! uncompressed (loading one is a read and a hash, with no decompression), evicts the least
//! recently used entries as it writes a new one, and is configured by [`CacheOptions`].

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::engine::{EngineSettings, WASMTIME_VERSION};

/// The first bytes of a cache entry; the digit is the entry layout's version.
const MAGIC: &[u8; 8] = b"WTRCODE1";
/// Magic, SHA-256 of the payload, payload length.
const HEADER_LEN: usize = 8 + 32 + 8;
/// Entries end in this.
const EXTENSION: &str = "cwasm";
/// Temporary files older than this belong to a writer that died; eviction removes them.
const STALE_TEMP: Duration = Duration::from_hours(1);

/// Where compiled code is cached, and how much of it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// The cache directory; `None` turns the cache off.
    pub dir: Option<PathBuf>,
    /// The most bytes of entries kept; beyond it, the least recently used are removed.
    pub max_bytes: u64,
}

impl Default for CacheOptions {
    /// The standard cache, as [`CacheOptions::from_env`] finds it.
    fn default() -> Self {
        CacheOptions::from_env()
    }
}

impl CacheOptions {
    /// The default bound on the cache's size: 2 GiB.
    pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

    /// The standard cache: off when `WTRACE_CACHE` is `0`, `off`, `no` or `false`; else in
    /// `$WTRACE_CACHE_DIR`, else `$XDG_CACHE_HOME/wtrace`, else `~/.cache/wtrace`.
    pub fn from_env() -> CacheOptions {
        let off = std::env::var("WTRACE_CACHE")
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "off" | "no" | "false"));
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = if off {
            None
        } else {
            var("WTRACE_CACHE_DIR")
                .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("wtrace")))
                .or_else(|| var("HOME").map(|d| d.join(".cache/wtrace")))
        };
        CacheOptions { dir, max_bytes: CacheOptions::DEFAULT_MAX_BYTES }
    }

    /// No cache: every module is compiled.
    pub fn off() -> CacheOptions {
        CacheOptions { dir: None, max_bytes: CacheOptions::DEFAULT_MAX_BYTES }
    }

    /// A cache in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> CacheOptions {
        CacheOptions { dir: Some(dir.into()), max_bytes: CacheOptions::DEFAULT_MAX_BYTES }
    }
}

/// What a cache lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The cache is off.
    Off,
    /// No entry.
    Miss,
    /// An entry was there but failed its checks (or Wasmtime refused it); it was removed.
    Rejected,
    /// The module was loaded from the cache.
    Hit,
}

/// The key of a module's compiled code under `engine`, built from `settings`.
pub(crate) fn key(engine: &Engine, settings: &EngineSettings, module_sha256: &[u8; 32]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.write(b"wtrace compiled code\0");
    hasher.write(module_sha256);
    hasher.write(WASMTIME_VERSION.as_bytes());
    for (name, value) in settings.to_header() {
        hasher.write(name.as_bytes());
        hasher.write(b"=");
        hasher.write(value.as_bytes());
        hasher.write(b"\0");
    }
    engine.precompile_compatibility_hash().hash(&mut hasher);
    wtrace_traces::hex(&hasher.0.finalize())
}

/// Feeds what `Hash` writes into a SHA-256, so a key does not depend on a hasher's seed.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }
}

fn entry_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.{EXTENSION}"))
}

/// Loads the module cached under `key`, checking the entry before Wasmtime sees it. An entry
/// that fails a check is removed.
pub(crate) fn load(options: &CacheOptions, engine: &Engine, key: &str) -> (Lookup, Option<Module>) {
    let Some(dir) = &options.dir else { return (Lookup::Off, None) };
    let path = entry_path(dir, key);
    let Ok(bytes) = fs::read(&path) else { return (Lookup::Miss, None) };
    let module =
        verified_payload(&bytes).and_then(|payload| crate::trust::load_compiled(engine, payload).ok());
    if let Some(module) = module {
        // The file's modification time is its last use, for eviction.
        if let Ok(file) = File::options().append(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        return (Lookup::Hit, Some(module));
    }
    let _ = fs::remove_file(&path);
    (Lookup::Rejected, None)
}

/// The payload of an entry whose header, length and SHA-256 all check.
fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    let (header, payload) = bytes.split_at_checked(HEADER_LEN)?;
    let (magic, rest) = header.split_at(8);
    let (digest, len) = rest.split_at(32);
    let len = u64::from_le_bytes(len.try_into().ok()?);
    (magic == MAGIC && len == payload.len() as u64 && Sha256::digest(payload)[..] == *digest)
        .then_some(payload)
}

/// Stores `module`'s compiled code under `key`, then removes the least recently used entries
/// beyond the size bound. Failures are ignored: the cache only ever saves time.
pub(crate) fn store(options: &CacheOptions, key: &str, module: &Module) {
    let Some(dir) = &options.dir else { return };
    let Ok(payload) = module.serialize() else { return };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    let temp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create_new(&temp)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(&payload))?;
        file.write_all(&(payload.len() as u64).to_le_bytes())?;
        file.write_all(&payload)?;
        // Renamed only once complete, so a reader never sees a partial entry under the key.
        fs::rename(&temp, entry_path(dir, key))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
        return;
    }
    evict(dir, options.max_bytes);
}

/// Removes the least recently used entries until the cache holds at most `max_bytes`, and
/// temporary files left by writers that died.
pub fn evict(dir: &Path, max_bytes: u64) {
    let Ok(read) = fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    for entry in read.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            if now.duration_since(modified).is_ok_and(|age| age > STALE_TEMP) {
                let _ = fs::remove_file(&path);
            }
        } else if meta.is_file() && path.extension().is_some_and(|e| e == EXTENSION) {
            entries.push((modified, meta.len(), path));
        }
    }
    let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
    entries.sort_by_key(|(modified, _, _)| *modified);
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_checks_catch_truncation_and_corruption() {
        let payload = b"compiled code".to_vec();
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(&payload));
        entry.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        entry.extend_from_slice(&payload);
        assert_eq!(verified_payload(&entry), Some(&payload[..]));
        assert_eq!(verified_payload(&entry[..entry.len() - 1]), None);
        assert_eq!(verified_payload(&entry[..HEADER_LEN - 1]), None);
        for at in 0..entry.len() {
            let mut bad = entry.clone();
            bad[at] ^= 0x10;
            assert_eq!(verified_payload(&bad), None, "a flip at byte {at} went unnoticed");
        }
    }
}
