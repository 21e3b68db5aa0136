//! The compiled-code cache: machine code Cranelift produced for a module, kept on disk so that
//! recording or replaying the same module again starts without compiling it.
//!
//! An entry is found by a key that a stale entry can never match: the SHA-256 of the module's
//! bytes, of the engine settings, of the Wasmtime version, and of Wasmtime's own compatibility
//! hash of the engine (target, CPU features the code may use, compiler flags, tunables, Wasm
//! features). An entry holds the bytes `Module::serialize` produced followed by a trailer with
//! their length and CRC-32, which are checked before Wasmtime is asked to load them: a truncated
//! or corrupt entry is removed and rebuilt, never run. The checksum guards against accidents
//! (a full disk, a torn write, a flipped bit); against other users the directory is guarded
//! instead: it is created owner-only, and a cache directory others may write to is not used.
//!
//! Wasmtime's own module cache (`Config::cache`) would key entries as carefully, but it stores
//! them zstd-compressed without a checksum over what it loads, so a flipped bit in an entry
//! reaches the code loader; it evicts from a background worker that a short-lived process
//! rarely lets finish; and it needs a TOML configuration file. This cache stores entries
//! uncompressed, so a hit costs one checksumming pass over the file and a memory mapping of it
//! (no decompression, no copy); it evicts the least recently used entries as it writes a new
//! one; and it is configured by [`CacheOptions`].

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::engine::{EngineSettings, WASMTIME_VERSION};

/// The first bytes of an entry's trailer; the digit is the entry layout's version.
const MAGIC: &[u8; 8] = b"WTRCODE2";
/// Magic, payload length (u64), CRC-32 of the payload (u32), zero padding (u32). The trailer
/// follows the payload so that the file can be mapped as the compiled code itself: Wasmtime's
/// loader reads what the code's own headers describe and ignores what follows.
const TRAILER_LEN: usize = 8 + 8 + 4 + 4;
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
    if !dir.exists() {
        return (Lookup::Miss, None);
    }
    if !private_enough(dir) {
        return (Lookup::Off, None);
    }
    let path = entry_path(dir, key);
    let Ok(mut file) = File::open(&path) else { return (Lookup::Miss, None) };
    let module = verified(&mut file).then(|| crate::trust::load_compiled(engine, file).ok()).flatten();
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

/// Whether `file`'s trailer is intact and the payload before it has the length and CRC-32 the
/// trailer records. Reads the file once, through a small buffer.
fn verified(file: &mut File) -> bool {
    let mut check = || -> std::io::Result<bool> {
        let len = file.metadata()?.len();
        let Some(payload_len) = len.checked_sub(TRAILER_LEN as u64) else { return Ok(false) };
        let mut trailer = [0u8; TRAILER_LEN];
        file.seek(SeekFrom::Start(payload_len))?;
        file.read_exact(&mut trailer)?;
        let recorded_len = u64::from_le_bytes(trailer[8..16].try_into().unwrap_or_default());
        let recorded_crc = u32::from_le_bytes(trailer[16..20].try_into().unwrap_or_default());
        if trailer[..8] != *MAGIC || recorded_len != payload_len || trailer[20..] != [0; 4] {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(0))?;
        let mut crc = crc32fast::Hasher::new();
        let mut buffer = vec![0u8; 256 << 10];
        let mut left = payload_len;
        while left > 0 {
            let n = file.read(&mut buffer[..usize::try_from(left.min(256 << 10)).unwrap_or(256 << 10)])?;
            if n == 0 {
                return Ok(false);
            }
            crc.update(&buffer[..n]);
            left -= n as u64;
        }
        Ok(crc.finalize() == recorded_crc)
    };
    check().unwrap_or(false)
}

/// The trailer of an entry whose payload is `payload`.
fn trailer(payload: &[u8]) -> [u8; TRAILER_LEN] {
    let mut trailer = [0u8; TRAILER_LEN];
    trailer[..8].copy_from_slice(MAGIC);
    trailer[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    trailer[16..20].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    trailer
}

/// Whether only its owner may write into `dir`: compiled code from a directory others can write
/// to would run whatever they put there.
fn private_enough(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(dir).is_ok_and(|meta| meta.permissions().mode() & 0o022 == 0)
    }
    #[cfg(not(unix))]
    {
        dir.is_dir()
    }
}

/// Stores `module`'s compiled code under `key`, then removes the least recently used entries
/// beyond the size bound. Failures are ignored: the cache only ever saves time.
pub(crate) fn store(options: &CacheOptions, key: &str, module: &Module) {
    let Some(dir) = &options.dir else { return };
    let Ok(payload) = module.serialize() else { return };
    if wtrace_traces::private::create_dir_all(dir).is_err() || !private_enough(dir) {
        return;
    }
    let temp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create_new(&temp)?;
        file.write_all(&payload)?;
        file.write_all(&trailer(&payload))?;
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

    fn entry_file(dir: &Path, bytes: &[u8]) -> File {
        let path = dir.join("entry");
        fs::write(&path, bytes).unwrap();
        File::open(path).unwrap()
    }

    #[test]
    fn checks_catch_truncation_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let payload = b"compiled code, as Module::serialize writes it".to_vec();
        let mut entry = payload.clone();
        entry.extend_from_slice(&trailer(&payload));
        assert!(verified(&mut entry_file(dir.path(), &entry)));
        assert!(!verified(&mut entry_file(dir.path(), &entry[..entry.len() - 1])));
        assert!(!verified(&mut entry_file(dir.path(), &entry[..TRAILER_LEN - 1])));
        assert!(!verified(&mut entry_file(dir.path(), &payload)));
        for at in 0..entry.len() {
            let mut bad = entry.clone();
            bad[at] ^= 0x10;
            assert!(!verified(&mut entry_file(dir.path(), &bad)), "a flip at byte {at} went unnoticed");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_may_write_to_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        wtrace_traces::private::create_dir_all(&cache).unwrap();
        assert_eq!(fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(private_enough(&cache));
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!private_enough(&cache));
        let engine = Engine::default();
        assert_eq!(load(&CacheOptions::at(&cache), &engine, "key").0, Lookup::Off);
    }
}
