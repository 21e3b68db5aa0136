//! What a module says about itself, for people: each function's name (the name section, Rust
//! names demangled), the function a Wasm PC falls in, the function's disassembly with the Wasm
//! offset of every instruction, and `file:line` from the module's DWARF. The command line and
//! the terminal UI both read modules through this one place.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use wasmtime::wasmparser::{KnownCustom, Name, Parser, Payload};
use wtrace_traces::SourceLocation;

/// One line of a function's disassembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisasmLine {
    /// The Wasm offset of the instruction the line shows (module-relative), if it shows one.
    pub offset: Option<u32>,
    /// The text, as `wasmprinter` prints it.
    pub text: String,
}

/// Why a module could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the module: {0}")]
pub struct IntrospectError(String);

type Dwarf = addr2line::Context<gimli::EndianArcSlice<gimli::LittleEndian>>;

/// A parsed module, ready to answer questions about its functions.
pub struct ModuleInfo {
    bytes: Arc<[u8]>,
    /// How many functions it imports (they come first in the function index space).
    imported: u32,
    /// Names from the name section, by module function index.
    names: HashMap<u32, String>,
    /// Local names from the name section, by module function index and local index.
    local_names: HashMap<(u32, u32), String>,
    /// Each defined function's body (locals and code), as a byte range of the module.
    bodies: Vec<Range<usize>>,
    /// Each defined function's first instruction.
    first_ops: Vec<u32>,
    /// The sections a disassembly of one function needs, in order: `(id, range)` with the
    /// section's id byte and size included.
    context_sections: Vec<(u8, Range<usize>)>,
    /// The name section, with its header.
    name_section: Option<Range<usize>>,
    /// Where the code section's payload starts: DWARF addresses are relative to it.
    code_start: usize,
    /// The line tables, behind a lock: `addr2line` fills its caches as it answers, so a module
    /// shared between threads takes turns.
    dwarf: Option<Mutex<Dwarf>>,
}

impl std::fmt::Debug for ModuleInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleInfo")
            .field("bytes", &self.bytes.len())
            .field("imported", &self.imported)
            .field("functions", &self.bodies.len())
            .field("dwarf", &self.dwarf.is_some())
            .finish_non_exhaustive()
    }
}

impl ModuleInfo {
    /// Reads `bytes`, a binary module.
    pub fn parse(bytes: impl Into<Arc<[u8]>>) -> Result<ModuleInfo, IntrospectError> {
        let bytes: Arc<[u8]> = bytes.into();
        let mut info = ModuleInfo {
            bytes: Arc::clone(&bytes),
            imported: 0,
            names: HashMap::new(),
            local_names: HashMap::new(),
            bodies: Vec::new(),
            first_ops: Vec::new(),
            context_sections: Vec::new(),
            name_section: None,
            code_start: 0,
            dwarf: None,
        };
        let mut dwarf_sections: HashMap<String, Range<usize>> = HashMap::new();
        let error = |e: wasmtime::wasmparser::BinaryReaderError| IntrospectError(e.to_string());
        for payload in Parser::new(0).parse_all(&bytes) {
            let payload = payload.map_err(error)?;
            match &payload {
                Payload::ImportSection(imports) => {
                    for import in imports.clone().into_imports() {
                        if matches!(import.map_err(error)?.ty, wasmtime::wasmparser::TypeRef::Func(_)) {
                            info.imported += 1;
                        }
                    }
                }
                Payload::CodeSectionStart { range, .. } => info.code_start = range.start,
                Payload::CodeSectionEntry(body) => {
                    let first =
                        body.get_operators_reader().map_or(body.range().start, |r| r.original_position());
                    info.first_ops.push(first as u32);
                    info.bodies.push(body.range());
                }
                Payload::CustomSection(custom) => {
                    if let KnownCustom::Name(names) = custom.as_known() {
                        info.name_section = Some(section_range(&bytes, custom.range().start, custom.range()));
                        for name in names.into_iter().flatten() {
                            match name {
                                Name::Function(map) => {
                                    for naming in map.into_iter().flatten() {
                                        info.names.insert(naming.index, naming.name.to_owned());
                                    }
                                }
                                Name::Local(map) => {
                                    for function in map.into_iter().flatten() {
                                        for local in function.names.into_iter().flatten() {
                                            let key = (function.index, local.index);
                                            info.local_names.insert(key, local.name.to_owned());
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    } else if custom.name().starts_with(".debug_") {
                        dwarf_sections
                            .insert(custom.name().to_owned(), custom.data_offset()..custom.range().end);
                    }
                }
                _ => {}
            }
            if let Some((id, range)) = payload.as_section()
                && matches!(id, 1..=7 | 13)
            {
                info.context_sections.push((id, section_range(&bytes, range.start, range.clone())));
            }
        }
        if dwarf_sections.contains_key(".debug_info") {
            info.dwarf = load_dwarf(&bytes, &dwarf_sections).map(Mutex::new);
        }
        Ok(info)
    }

    /// The raw name of function `index` (module function index), from the name section.
    pub fn raw_name(&self, index: u32) -> Option<&str> {
        self.names.get(&index).map(String::as_str)
    }

    /// The instruction just before the one at `pc`, in the function that holds it: for a
    /// caller's frame, whose PC is where its call returns to, the call itself (as Wasmtime's
    /// backtraces show caller frames).
    pub fn instruction_before(&self, pc: u32) -> Option<u32> {
        let index = self.function_at(pc)?.checked_sub(self.imported)?;
        let range = self.bodies.get(index as usize)?.clone();
        let reader = wasmtime::wasmparser::BinaryReader::new(&self.bytes[range.clone()], range.start as _);
        let mut operators = wasmtime::wasmparser::FunctionBody::new(reader).get_operators_reader().ok()?;
        let mut previous = None;
        while !operators.eof() {
            let offset = u32::try_from(operators.original_position()).ok()?;
            if offset >= pc {
                return previous.filter(|_| offset == pc);
            }
            previous = Some(offset);
            operators.read().ok()?;
        }
        None
    }

    /// The name of local `local` of function `func` (module function index), from the name
    /// section: what WAT called it (`$header`), or a compiler's name for it.
    pub fn local_name(&self, func: u32, local: u32) -> Option<&str> {
        self.local_names.get(&(func, local)).map(String::as_str)
    }

    /// The name of function `index` as people read it: demangled, or `<wasm function N>`.
    pub fn name(&self, index: u32) -> String {
        crate::outcome::function_name(self.raw_name(index), index)
    }

    /// The number of functions, imports included.
    pub fn function_count(&self) -> u32 {
        self.imported + self.bodies.len() as u32
    }

    /// The defined function whose body holds Wasm offset `pc`, as a module function index.
    pub fn function_at(&self, pc: u32) -> Option<u32> {
        let pc = pc as usize;
        let at = self.bodies.partition_point(|body| body.end <= pc);
        self.bodies.get(at).filter(|body| body.contains(&pc)).map(|_| self.imported + at as u32)
    }

    /// The offset of function `index`'s first instruction.
    pub fn body_start(&self, index: u32) -> Option<u32> {
        let defined = index.checked_sub(self.imported)?;
        self.first_ops.get(defined as usize).copied()
    }

    /// The Wasm offsets where the rows of `line` in `file` (a path, or the end of one) begin,
    /// from the module's DWARF: one per stretch of code the line compiled to.
    pub fn pcs_at_line(&self, file: &str, line: u32) -> Vec<u32> {
        let Some(dwarf) = &self.dwarf else { return Vec::new() };
        let dwarf = dwarf.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let end = self.bodies.last().map_or(0, |b| b.end - self.code_start) as u64;
        let Ok(rows) = dwarf.find_location_range(0, end) else { return Vec::new() };
        let mut pcs = Vec::new();
        let mut previous_matched = false;
        for (address, _, location) in rows {
            let matched = location.line == Some(line)
                && location.file.is_some_and(|f| f == file || f.ends_with(&format!("/{file}")));
            if matched && !previous_matched {
                pcs.push((address + self.code_start as u64) as u32);
            }
            previous_matched = matched;
        }
        pcs
    }

    /// Whether the module carries DWARF line information.
    pub fn has_dwarf(&self) -> bool {
        self.dwarf.is_some()
    }

    /// The source location of Wasm offset `pc`, from the module's DWARF.
    pub fn location(&self, pc: u32) -> Option<SourceLocation> {
        let dwarf = self.dwarf.as_ref()?.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let probe = u64::from(pc).checked_sub(self.code_start as u64)?;
        let location = dwarf.find_location(probe).ok()??;
        Some(SourceLocation {
            file: location.file?.to_owned(),
            line: location.line.unwrap_or(0),
            column: location.column.unwrap_or(0),
        })
    }

    /// The disassembly of function `index` (a module function index of a defined function), one
    /// line per instruction with its Wasm offset, as `wasmprinter` prints it.
    ///
    /// Only that function is printed: the module is cut down to the sections that give its
    /// instructions their names and types, with every other body emptied, so the cost follows
    /// the function's size, not the module's.
    pub fn disassemble(&self, index: u32) -> Result<Vec<DisasmLine>, IntrospectError> {
        let defined = index
            .checked_sub(self.imported)
            .and_then(|d| self.bodies.get(d as usize).map(|body| (d as usize, body.clone())))
            .ok_or_else(|| IntrospectError(format!("function {index} has no body in this module")))?;
        let (defined, body) = defined;
        let mut slice = b"\0asm\x01\0\0\0".to_vec();
        for (_, range) in &self.context_sections {
            slice.extend_from_slice(&self.bytes[range.clone()]);
        }
        let mut code = Vec::new();
        leb(&mut code, self.bodies.len() as u64);
        let mut body_start = 0;
        for (i, range) in self.bodies.iter().enumerate() {
            if i == defined {
                leb(&mut code, range.len() as u64);
                body_start = code.len();
                code.extend_from_slice(&self.bytes[range.clone()]);
            } else {
                // No locals, `end`.
                code.extend_from_slice(&[2, 0, 0x0b]);
            }
        }
        slice.push(10);
        leb(&mut slice, code.len() as u64);
        let code_payload = slice.len();
        slice.extend_from_slice(&code);
        if let Some(names) = &self.name_section {
            slice.extend_from_slice(&self.bytes[names.clone()]);
        }
        let slice_body = code_payload + body_start..code_payload + body_start + body.len();
        let to_module = |offset: usize| (offset - slice_body.start + body.start) as u32;

        let mut storage = String::new();
        let mut config = wasmprinter::Config::new();
        config.print_offsets(false);
        let lines =
            config.offsets_and_lines(&slice, &mut storage).map_err(|e| IntrospectError(format!("{e:#}")))?;
        let mut out = Vec::new();
        let mut inside = false;
        for (offset, text) in lines {
            match offset {
                Some(at) if slice_body.contains(&at) => {
                    inside = true;
                    out.push(DisasmLine { offset: Some(to_module(at)), text: text.trim_end().to_owned() });
                }
                Some(_) if inside => break,
                _ if inside => out.push(DisasmLine { offset: None, text: text.trim_end().to_owned() }),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The whole section `range` (its payload) belongs to, from its id byte: the payload starts at
/// `payload_start`, preceded by the id and the LEB128 size.
fn section_range(bytes: &[u8], payload_start: usize, range: Range<usize>) -> Range<usize> {
    // Walk back over the size's LEB128 bytes (all but the last have the top bit set) to the id.
    let mut start = payload_start - 1;
    while start > 0 && bytes[start - 1] & 0x80 != 0 {
        start -= 1;
    }
    (start - 1)..range.end
}

fn leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn load_dwarf(bytes: &Arc<[u8]>, sections: &HashMap<String, Range<usize>>) -> Option<Dwarf> {
    let load = |id: gimli::SectionId| -> Result<gimli::EndianArcSlice<gimli::LittleEndian>, gimli::Error> {
        let data: Arc<[u8]> =
            sections.get(id.name()).map_or_else(|| Arc::from(&[][..]), |r| Arc::from(&bytes[r.clone()]));
        Ok(gimli::EndianArcSlice::new(data, gimli::LittleEndian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module
      (import "env" "log" (func $log (param i32)))
      (memory 1)
      (func $parse_header (param $at i32) (result i32)
        (i32.load offset=4 (local.get $at)))
      (func $main (export "_start")
        (call $log (call $parse_header (i32.const 65536)))))"#;

    #[test]
    fn names_functions_and_finds_them_by_offset() {
        let info = ModuleInfo::parse(wat::parse_str(WAT).unwrap()).unwrap();
        assert_eq!(info.function_count(), 3);
        assert_eq!(info.raw_name(1), Some("parse_header"));
        assert_eq!(info.name(0), "log");
        assert_eq!(info.name(7), "<wasm function 7>");
        let lines = info.disassemble(1).unwrap();
        let load = lines.iter().find(|l| l.text.contains("i32.load offset=4")).expect("the load is shown");
        let at = load.offset.unwrap();
        assert_eq!(info.function_at(at), Some(1));
        assert!(lines.iter().all(|l| !l.text.contains("call")), "only the asked-for function: {lines:?}");
        let main = info.disassemble(2).unwrap();
        assert!(main.iter().any(|l| l.text.contains("call $parse_header")), "{main:?}");
        assert!(info.disassemble(0).is_err(), "an import has no body");
        assert!(!info.has_dwarf());
        assert_eq!(info.location(at), None);
    }
}
