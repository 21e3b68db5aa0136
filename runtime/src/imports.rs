//! Which import a call went through, when a module imports one function more than once
//! (`AssemblyScript` imports `fd_write` twice). Wasmtime's linker resolves imports by name, so one
//! host function answers them all; the caller's `call` instruction names the import by its
//! function index, which is also its number in the trace header's import list (function
//! imports come first, in order).

use std::sync::Arc;

use wasmtime::wasmparser::BinaryReader;
use wasmtime::{AsContext, WasmBacktrace};
use wtrace_traces::{ImportId, ImportName};

/// How the calls of one imported name are attributed to imports.
#[derive(Debug, Clone)]
pub enum Attribution {
    /// The name is imported once: every call is this import's.
    Single(ImportId),
    /// The name is imported as each of `imports` (the first is the fallback): a call is the
    /// one its caller's `call` instruction in `module` names.
    Several { imports: Vec<u32>, module: Arc<[u8]> },
}

impl Attribution {
    /// The attribution of every name in `imports` (the trace header's list), given the module's
    /// bytes for names imported several times (`None` attributes those to the first import).
    pub fn of(imports: &[ImportName], name: &ImportName, module: Option<&Arc<[u8]>>) -> Option<Attribution> {
        let indices: Vec<u32> =
            imports.iter().enumerate().filter(|(_, i)| *i == name).map(|(index, _)| index as u32).collect();
        match (indices.as_slice(), module) {
            ([], _) => None,
            ([only], _) | ([only, ..], None) => Some(Attribution::Single(ImportId(*only))),
            (_, Some(module)) => Some(Attribution::Several { imports: indices, module: Arc::clone(module) }),
        }
    }

    /// Whether any name in `imports` is imported more than once (so attributing needs the
    /// module's bytes).
    pub fn needs_module(imports: &[ImportName]) -> bool {
        imports.iter().enumerate().any(|(i, a)| imports[..i].contains(a))
    }

    /// The import a call from the guest running in `store` went through. For a name imported several times this
    /// takes a backtrace (the caller's PC): only such modules pay for it.
    pub fn resolve(&self, store: impl AsContext) -> ImportId {
        match self {
            Attribution::Single(import) => *import,
            Attribution::Several { imports, module } => {
                let backtrace = WasmBacktrace::capture(store);
                let function = backtrace
                    .frames()
                    .first()
                    .and_then(wasmtime::FrameInfo::module_offset)
                    .and_then(|pc| called_function(module, pc));
                ImportId(function.filter(|index| imports.contains(index)).unwrap_or(imports[0]))
            }
        }
    }
}

/// The function index of the `call` instruction at `pc`, or ending just before it (a caller
/// frame's PC may be its return address); `None` for any other instruction (`call_indirect`
/// names no function).
fn called_function(module: &[u8], pc: usize) -> Option<u32> {
    let call_at = |at: usize| -> Option<(u32, usize)> {
        if *module.get(at)? != 0x10 {
            return None;
        }
        let mut reader = BinaryReader::new(module.get(at + 1..)?, at + 1);
        let index = reader.read_var_u32().ok()?;
        Some((index, reader.original_position()))
    };
    if let Some((index, _)) = call_at(pc) {
        return Some(index);
    }
    (2..=6)
        .filter_map(|back| pc.checked_sub(back))
        .find_map(|at| call_at(at).filter(|(_, end)| *end == pc))
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_instructions_are_read_at_or_just_before_the_pc() {
        // nop; call 300 (0x10 0xac 0x02); nop
        let code = [0x01, 0x10, 0xac, 0x02, 0x01];
        assert_eq!(called_function(&code, 1), Some(300));
        assert_eq!(called_function(&code, 4), Some(300));
        assert_eq!(called_function(&code, 0), None);
    }
}
