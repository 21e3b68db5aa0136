//! Turning a module's bytes (binary Wasm or WAT) into a compiled [`Module`], from the
//! compiled-code cache when it has them, with every way that can fail as a typed
//! [`SetupError`]: not Wasm at all, invalid, or using a Wasm feature the engine settings switch
//! off (found by asking Wasmtime which single `-W` switch would make it valid, never by reading
//! its message).

use std::borrow::Cow;
use std::sync::Arc;
use std::thread::JoinHandle;

use wasmtime::wasmparser::{Parser, Payload, TypeRef};
use wasmtime::{Engine, Module};

use crate::cache::{self, CacheOptions, Lookup};
use crate::engine::EngineSettings;
use crate::error::SetupError;

/// What a compilation is told to say while it works, for a caller that shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileEvent<'a> {
    /// Compiling starts: the module was not in the cache.
    Started {
        /// The module's name.
        name: &'a str,
        /// Its size in bytes.
        bytes: usize,
    },
    /// Compiling ended.
    Finished,
}

/// Called with each [`CompileEvent`].
pub type CompileNotice = Arc<dyn Fn(CompileEvent<'_>) + Send + Sync>;

/// How to compile: where compiled code is cached, and who hears about a compilation.
#[derive(Clone, Default)]
pub struct CompileOptions {
    /// The compiled-code cache.
    pub cache: CacheOptions,
    /// Told when a module has to be compiled, and when that is done.
    pub notice: Option<CompileNotice>,
}

impl std::fmt::Debug for CompileOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileOptions")
            .field("cache", &self.cache)
            .field("notice", &self.notice.as_ref().map(|_| "..."))
            .finish()
    }
}

/// A compiled module.
#[derive(Debug)]
pub struct Compiled {
    /// The module.
    pub module: Module,
    /// SHA-256 of its binary form: what a trace records and the cache keys it by.
    pub sha256: [u8; 32],
    /// Whether it came from the cache.
    pub lookup: Lookup,
    /// Writing the compiled code into the cache, which runs beside the guest; see
    /// [`Compiled::finish_caching`].
    caching: Option<JoinHandle<()>>,
}

impl Compiled {
    /// A module the cache had.
    pub fn cached(module: Module, sha256: [u8; 32]) -> Compiled {
        Compiled { module, sha256, lookup: Lookup::Hit, caching: None }
    }

    /// Waits until the compiled code is in the cache (when it was compiled now), so a process
    /// that exits next does not cut the write short.
    pub fn finish_caching(&mut self) {
        if let Some(handle) = self.caching.take() {
            let _ = handle.join();
        }
    }
}

/// The module cached for `sha256` under `engine`, if the cache has it: what replay uses when
/// the trace names the module's hash, before reading the module's bytes at all.
pub fn cached(
    engine: &Engine,
    settings: &EngineSettings,
    sha256: &[u8; 32],
    cache: &CacheOptions,
) -> Option<Module> {
    cache::load(cache, engine, &cache::key(engine, settings, sha256)).1
}

/// Compiles `binary` (binary Wasm, named `name`, with SHA-256 `sha256`) for `engine`, built
/// from `settings`, or loads it from the cache. On a miss the compiled code is written to the
/// cache on another thread.
pub fn compile(
    engine: &Engine,
    settings: &EngineSettings,
    name: &str,
    binary: &[u8],
    sha256: [u8; 32],
    options: &CompileOptions,
) -> Result<Compiled, SetupError> {
    let key = cache::key(engine, settings, &sha256);
    let (lookup, module) = cache::load(&options.cache, engine, &key);
    if let Some(module) = module {
        return Ok(Compiled { module, sha256, lookup, caching: None });
    }
    if let Some(notice) = &options.notice {
        notice(CompileEvent::Started { name, bytes: binary.len() });
    }
    let module = compile_uncached(engine, settings, name, binary);
    if let Some(notice) = &options.notice {
        notice(CompileEvent::Finished);
    }
    let module = module?;
    let caching = options.cache.dir.is_some().then(|| {
        let (cache, module) = (options.cache.clone(), module.clone());
        std::thread::spawn(move || cache::store(&cache, &key, &module))
    });
    Ok(Compiled { module, sha256, lookup, caching })
}

/// The binary form of `bytes`, which are binary Wasm (returned as they are) or WAT text.
pub fn to_binary<'a>(name: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, SetupError> {
    wat::parse_bytes(bytes)
        .map_err(|e| SetupError::InvalidModule { name: name.to_owned(), detail: one_line_wat_error(&e) })
}

/// Compiles `binary` named `name` for `engine`, built from `settings`.
fn compile_uncached(
    engine: &Engine,
    settings: &EngineSettings,
    name: &str,
    binary: &[u8],
) -> Result<Module, SetupError> {
    let module = Module::new(engine, binary).map_err(|error| {
        let detail = format!("{error:#}");
        match feature_needed(settings, binary) {
            Some(feature) => SetupError::FeatureDisabled { name: name.to_owned(), feature, detail },
            None => SetupError::InvalidModule { name: name.to_owned(), detail },
        }
    })?;
    if settings.explicit("shared-memory") != Some(true) && declares_shared_memory(binary) {
        // Validation accepts a shared memory when `threads` is on; Wasmtime refuses it only when
        // instantiating, after the start function may have run.
        return Err(SetupError::FeatureDisabled {
            name: name.to_owned(),
            feature: "shared-memory",
            detail: "the module declares a shared memory, and shared memory support is disabled".into(),
        });
    }
    Ok(module)
}

/// The one `-W` proposal whose switching on makes `binary` valid, if there is one.
fn feature_needed(settings: &EngineSettings, binary: &[u8]) -> Option<&'static str> {
    settings.proposals_not_on().find(|name| {
        settings
            .with_proposal(name)
            .and_then(|s| s.engine().ok())
            .is_some_and(|engine| Module::validate(&engine, binary).is_ok())
    })
}

/// Whether `binary` (valid Wasm) defines or imports a shared memory.
fn declares_shared_memory(binary: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(binary) {
        match payload {
            Ok(Payload::ImportSection(imports)) => {
                for import in imports.into_imports().flatten() {
                    if let TypeRef::Memory(memory) = import.ty
                        && memory.shared
                    {
                        return true;
                    }
                }
            }
            Ok(Payload::MemorySection(memories)) => {
                if memories.into_iter().flatten().any(|m| m.shared) {
                    return true;
                }
            }
            // Memories are declared before any code.
            Ok(Payload::CodeSectionStart { .. }) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    false
}

/// A WAT syntax error on one line: the message and where (`wat` adds a multi-line snippet).
fn one_line_wat_error(error: &wat::Error) -> String {
    let text = error.to_string();
    let mut lines = text.lines();
    let message = lines.next().unwrap_or_default().trim();
    let place = lines.find_map(|l| l.trim().strip_prefix("--> ")).and_then(|at| {
        let (rest, column) = at.rsplit_once(':')?;
        let (_, line) = rest.rsplit_once(':')?;
        Some((line, column))
    });
    match place {
        Some((line, column)) => format!("{message} at line {line}, column {column}"),
        None => message.to_string(),
    }
}
