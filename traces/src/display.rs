//! Human-readable renderings of events, shared by `wtrace dump`, `wtrace info` and the TUI so
//! that one event reads the same everywhere.

use std::fmt::{self, Display, Formatter, Write};

use crate::event::{Event, HostCall, Interruption, MemoryBytes, NativeCapture, Outcome, Trap, Value};
use crate::header::Header;

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(bits) => write!(f, "{:?}", f32::from_bits(bits)),
            Value::F64(bits) => write!(f, "{:?}", f64::from_bits(bits)),
            Value::V128(v) => write!(f, "{v:#034x}"),
            Value::FuncRef { null } | Value::ExternRef { null } => {
                f.write_str(if null { "null" } else { "ref" })
            }
        }
    }
}

/// Writes `values` as `a, b, c`.
fn list(f: &mut Formatter<'_>, values: &[Value]) -> fmt::Result {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{v}")?;
    }
    Ok(())
}

/// Quotes bytes as a short Rust-style string literal, `...` when cut.
pub fn quote_bytes(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if bytes.len() > max {
        out.push_str("...");
    }
    out
}

fn spans(f: &mut Formatter<'_>, label: &str, spans: &[MemoryBytes]) -> fmt::Result {
    if spans.is_empty() {
        return Ok(());
    }
    write!(f, "  {label} ")?;
    for (i, span) in spans.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        let memory = if span.memory == 0 { String::new() } else { format!("mem{}:", span.memory) };
        write!(f, "{}B@{memory}{:#x}", span.bytes.len(), span.offset)?;
    }
    Ok(())
}

/// One line describing an event, as `wtrace dump` prints it: `#12 host_call wasi::fd_write(...) -> 0`.
pub struct EventLine<'a> {
    /// The trace's header, for import and module names.
    pub header: &'a Header,
    /// The event's seq.
    pub seq: u64,
    /// The event.
    pub event: &'a Event,
}

impl Display for EventLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} ", self.seq, self.event.kind().name())?;
        match self.event {
            Event::HostCall(call) => host_call(f, self.header, call),
            Event::Trap(trap) => trap_line(f, trap),
            Event::Exit { code } => write!(f, "{code}"),
            Event::Returned { values } => {
                f.write_str("(")?;
                list(f, values)?;
                f.write_str(")")
            }
            Event::Interrupted(interruption) => interruption_line(f, self.header, interruption),
        }
    }
}

/// `SIGINT in spin at 0x1a3, running Wasm 3012 ms after the last event`.
fn interruption_line(f: &mut Formatter<'_>, header: &Header, interruption: &Interruption) -> fmt::Result {
    f.write_str(&interruption.cause_name())?;
    if let Some(frame) = interruption.frames.first() {
        match &frame.func_name {
            Some(name) => write!(f, " in {name}")?,
            None => write!(f, " in <wasm function {}>", frame.func_index)?,
        }
        if let Some(pc) = frame.module_offset {
            write!(f, " at {pc:#x}")?;
        }
    }
    match interruption.in_host_call {
        Some(import) => match header.run.imports.get(import.0 as usize) {
            Some(import) => write!(f, ", waiting in {import}")?,
            None => write!(f, ", waiting in import #{}", import.0)?,
        },
        None => f.write_str(", running Wasm")?,
    }
    write!(f, " {} ms after the last event", interruption.after_ms)
}

fn host_call(f: &mut Formatter<'_>, header: &Header, call: &HostCall) -> fmt::Result {
    match header.run.imports.get(call.import.0 as usize) {
        Some(name) => write!(f, "{name}(")?,
        None => write!(f, "<import {}>(", call.import.0)?,
    }
    list(f, &call.params)?;
    f.write_str(")")?;
    match &call.outcome {
        Outcome::Returned(values) if values.len() == 1 => write!(f, " -> {}", values[0])?,
        Outcome::Returned(values) => {
            f.write_str(" -> (")?;
            list(f, values)?;
            f.write_str(")")?;
        }
        Outcome::Exited(code) => write!(f, " -> exit {code}")?,
        Outcome::Error(chain) => write!(f, " -> error: {}", chain.replace('\n', ": "))?,
    }
    spans(f, "wrote", &call.writes)?;
    for read in &call.reads {
        write!(f, "  read {}", quote_bytes(&read.bytes, 48))?;
    }
    if let Some(printed) = call.printed {
        write!(f, "  printed {}B to {}", printed.len, printed.stream.name())?;
    }
    Ok(())
}

fn trap_line(f: &mut Formatter<'_>, trap: &Trap) -> fmt::Result {
    write!(f, "{}", trap.code)?;
    if let Some(frame) = trap.frames.first() {
        if let Some(pc) = frame.module_offset {
            write!(f, " at {pc:#x}")?;
        }
        match &frame.func_name {
            Some(name) => write!(f, " in {name}")?,
            None => write!(f, " in <wasm function {}>", frame.func_index)?,
        }
    }
    if let Some(address) = trap.wasm_fault_address {
        write!(f, " address {address:#x}")?;
    }
    match &trap.native {
        NativeCapture::Captured(snapshot) => {
            write!(f, " [{} pc={:#x}]", snapshot.signal.name(), snapshot.pc)?;
        }
        NativeCapture::Missing(_) => {}
    }
    write!(f, ": {}", trap.message)?;
    if let NativeCapture::Captured(snapshot) = &trap.native {
        register_file(f, snapshot)?;
    }
    Ok(())
}

/// The register file on indented lines after a trap, as a debugger shows it: four 64-bit
/// registers or two vector registers a line, then the frame walk.
fn register_file(f: &mut Formatter<'_>, snapshot: &crate::NativeSnapshot) -> fmt::Result {
    use crate::RegisterValue;
    let registers = snapshot.registers();
    let (narrow, wide): (Vec<_>, Vec<_>) =
        registers.iter().partition(|(_, v)| matches!(v, RegisterValue::U64(_)));
    for line in narrow.chunks(4) {
        f.write_str("\n   ")?;
        for (name, value) in line {
            write!(f, " {name:>6} {value}")?;
        }
    }
    for line in wide.chunks(2) {
        f.write_str("\n   ")?;
        for (name, value) in line {
            write!(f, " {name:>6} {value}")?;
        }
    }
    if let Some(address) = snapshot.fault_address {
        write!(f, "\n    fault address {address:#x}, si_code {}", snapshot.si_code)?;
    }
    for (i, frame) in snapshot.stack.iter().enumerate() {
        write!(f, "\n    frame {i}: pc {:#x} fp {:#x}", frame.pc, frame.fp)?;
        if let Some(pc) = frame.wasm_pc {
            write!(f, " (Wasm PC {pc:#x})")?;
        }
    }
    Ok(())
}

/// `text` with its ASCII control characters (escape, carriage return, backspace, ...) but
/// newline and tab shown as `\x1b` escapes: strings from a trace are data, and a forged one
/// must not move the cursor, rewrite earlier lines or retitle the terminal it is printed on.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !has_controls(text.as_bytes()) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii() && is_control(c as u8) {
            let _ = write!(out, "\\x{:02x}", c as u8);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// An ASCII control byte other than newline and tab.
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f
}

/// Whether `bytes` hold a control byte [`escape_control_bytes`] would escape.
pub fn has_controls(bytes: &[u8]) -> bool {
    bytes.iter().any(|b| is_control(*b))
}

/// Appends `bytes` to `out` with ASCII control bytes but newline and tab escaped as `\xNN`.
/// Bytes of multi-byte UTF-8 characters are never controls, so a stream may be escaped in
/// pieces split anywhere.
pub fn escape_control_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if is_control(b) {
            let _ = std::io::Write::write_fmt(out, format_args!("\\x{b:02x}"));
        } else {
            out.push(b);
        }
    }
}
