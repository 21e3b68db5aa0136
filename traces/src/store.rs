//! The module store of a trace directory: each module once, compressed, named by its SHA-256
//! (`modules/<sha256>.wasm.zst`), for the traces beside it that reference their module instead
//! of embedding it. Entries are written to a temporary file and renamed into place, so a reader
//! never sees half of one, and read back only if they decompress to the size and hash the trace
//! names.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TraceError};
use crate::header::{ModuleEntry, hex};

/// The folder of a trace directory that holds its modules.
pub const STORE_DIR: &str = "modules";

/// A directory of modules named by their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStore {
    dir: PathBuf,
}

impl ModuleStore {
    /// The store at `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> ModuleStore {
        ModuleStore { dir: dir.into() }
    }

    /// The store of the trace directory that holds `trace`: `modules/` beside it.
    pub fn beside(trace: &Path) -> ModuleStore {
        let parent = trace.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        ModuleStore::at(parent.join(STORE_DIR))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the module with this SHA-256 is (or would be) kept.
    pub fn path_of(&self, sha256: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.wasm.zst", hex(sha256)))
    }

    /// Whether the store has the module with this SHA-256.
    pub fn contains(&self, sha256: &[u8; 32]) -> bool {
        self.path_of(sha256).is_file()
    }

    /// Adds `bytes`, whose SHA-256 is `sha256`, unless the store has them already.
    pub fn put(&self, bytes: &[u8], sha256: &[u8; 32]) -> Result<PathBuf> {
        let path = self.path_of(sha256);
        if path.is_file() {
            return Ok(path);
        }
        let io = |source| TraceError::Open { path: path.clone(), source };
        crate::private::create_dir_all(&self.dir).map_err(io)?;
        let compressed =
            crate::writer::checksummed_compressor(3).and_then(|mut c| c.compress(bytes)).map_err(io)?;
        let temp = self.dir.join(format!(".{}.{}.tmp", hex(sha256), std::process::id()));
        let written = crate::private::create_file(&temp, false)
            .and_then(|mut file| file.write_all(&compressed).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io(source));
        }
        Ok(path)
    }

    /// The bytes of `module`, checked against its size and SHA-256.
    pub fn get(&self, index: usize, module: &ModuleEntry) -> Result<Vec<u8>> {
        let path = self.path_of(&module.sha256);
        let missing = || TraceError::ModuleMissing {
            index,
            name: module.name.clone(),
            sha256: module.sha256_hex(),
            store: self.dir.clone(),
        };
        let compressed = std::fs::read(&path).map_err(|_| missing())?;
        let size = crate::container::module_len(module.size).ok_or_else(missing)?;
        let shown = path.display();
        crate::reader::inflate_module(&compressed, size, &module.sha256)
            .map_err(|error| error.context(&shown).into_trace_error("module store entry", 0))?
            .ok_or_else(|| {
                TraceError::corrupt("module store entry", 0, format!("{shown} does not hash to its name"))
            })
    }
}
