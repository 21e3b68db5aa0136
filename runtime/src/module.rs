//! Turning a module's bytes (binary Wasm or WAT) into a compiled [`Module`], with every way that
//! can fail as a typed [`SetupError`]: not Wasm at all, invalid, or using a Wasm feature the
//! engine settings switch off (found by asking Wasmtime which single `-W` switch would make it
//! valid, never by reading its message).

use wasmtime::wasmparser::{Parser, Payload, TypeRef};
use wasmtime::{Engine, Module};

use crate::engine::EngineSettings;
use crate::error::SetupError;

/// A compiled module and the binary it was compiled from (WAT is converted first).
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The module.
    pub module: Module,
    /// Its binary form: what a trace stores and hashes.
    pub binary: Vec<u8>,
}

/// The binary form of `bytes`, which are binary Wasm or WAT text.
pub fn to_binary(name: &str, bytes: &[u8]) -> Result<Vec<u8>, SetupError> {
    wat::parse_bytes(bytes)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| SetupError::InvalidModule { name: name.to_owned(), detail: one_line_wat_error(&e) })
}

/// Compiles `bytes` (binary Wasm or WAT) named `name` for `engine`, built from `settings`.
pub fn compile(
    engine: &Engine,
    settings: &EngineSettings,
    name: &str,
    bytes: &[u8],
) -> Result<Compiled, SetupError> {
    let binary = to_binary(name, bytes)?;
    let module = Module::new(engine, &binary).map_err(|error| {
        let detail = format!("{error:#}");
        match feature_needed(settings, &binary) {
            Some(feature) => SetupError::FeatureDisabled { name: name.to_owned(), feature, detail },
            None => SetupError::InvalidModule { name: name.to_owned(), detail },
        }
    })?;
    if settings.explicit("shared-memory") != Some(true) && declares_shared_memory(&binary) {
        // Validation accepts a shared memory when `threads` is on; Wasmtime refuses it only when
        // instantiating, after the start function may have run.
        return Err(SetupError::FeatureDisabled {
            name: name.to_owned(),
            feature: "shared-memory",
            detail: "the module declares a shared memory, and shared memory support is disabled".into(),
        });
    }
    Ok(Compiled { module, binary })
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
