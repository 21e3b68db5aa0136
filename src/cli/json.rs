//! JSON renderings of events and headers for `dump --json` and `info --json`.
//!
//! Numbers that JSON cannot carry exactly are strings: `i64` values as decimal, 128-bit values
//! and registers as `0x` hex. Byte runs are hex, with a `text` field when they are UTF-8.

use serde_json::{Map, Value as Json, json};
use wtrace::runtime::describe;
use wtrace::runtime::introspect::ModuleInfo;
use wtrace::runtime::outcome::readable_name;
use wtrace::traces::{
    Event, Frame, Header, HostCall, MemoryBytes, NativeCapture, NativeSnapshot, Outcome, StopCause, Trap,
    Value, hex,
};

pub(crate) fn value(v: &Value) -> Json {
    let float =
        |x: f64| serde_json::Number::from_f64(x).map_or_else(|| Json::String(x.to_string()), Json::Number);
    match *v {
        Value::I32(x) => json!({"type": "i32", "value": x}),
        Value::I64(x) => json!({"type": "i64", "value": x.to_string()}),
        Value::F32(bits) => {
            json!({"type": "f32", "value": float(f64::from(f32::from_bits(bits))), "bits": format!("{bits:#010x}")})
        }
        Value::F64(bits) => {
            json!({"type": "f64", "value": float(f64::from_bits(bits)), "bits": format!("{bits:#018x}")})
        }
        Value::V128(x) => json!({"type": "v128", "value": format!("{x:#034x}")}),
        Value::FuncRef { null: is_null } => json!({"type": "funcref", "null": is_null}),
        Value::ExternRef { null: is_null } => json!({"type": "externref", "null": is_null}),
    }
}

fn values(vs: &[Value]) -> Json {
    Json::Array(vs.iter().map(value).collect())
}

fn memory_bytes(span: &MemoryBytes) -> Json {
    let mut object = json!({
        "memory": span.memory,
        "offset": span.offset,
        "len": span.bytes.len(),
        "hex": hex(&span.bytes),
    });
    if let Ok(text) = std::str::from_utf8(&span.bytes) {
        object["text"] = Json::String(text.to_string());
    }
    object
}

fn host_call(header: &Header, call: &HostCall, object: &mut Map<String, Json>) {
    let import = header.run.imports.get(call.import.0 as usize);
    object.insert("import".into(), json!(call.import.0));
    object.insert("module".into(), json!(import.map(|i| i.module.as_str())));
    object.insert("name".into(), json!(import.map(|i| i.name.as_str())));
    object.insert("params".into(), values(&call.params));
    let outcome = match &call.outcome {
        Outcome::Returned(results) => json!({"returned": values(results)}),
        Outcome::Exited(code) => json!({"exited": code}),
        Outcome::Error(message) => json!({"error": message}),
    };
    object.insert("outcome".into(), outcome);
    object.insert("writes".into(), Json::Array(call.writes.iter().map(memory_bytes).collect()));
    object.insert("reads".into(), Json::Array(call.reads.iter().map(memory_bytes).collect()));
    let printed = call.printed.map(|p| json!({"stream": p.stream.name(), "len": p.len}));
    object.insert("printed".into(), json!(printed));
}

/// A frame: `func_name` as people read it (demangled, from the module's name section when the
/// frame has none), `func_name_raw` as the name section has it, `source` as recorded or from the
/// module's DWARF.
pub(crate) fn frame(header: &Header, f: &Frame, module: Option<&ModuleInfo>) -> Json {
    let raw = f.func_name.as_deref().or_else(|| module.and_then(|m| m.raw_name(f.func_index)));
    let source = describe::frame_location(f, module);
    json!({
        "module": f.module,
        "module_name": header.run.modules.get(f.module as usize).map(|m| m.name.as_str()),
        "func_index": f.func_index,
        "func_name": raw.map(readable_name),
        "func_name_raw": raw,
        "module_offset": f.module_offset,
        "func_offset": f.func_offset,
        "source": source.map(|s| json!({"file": s.file, "line": s.line, "column": s.column})),
    })
}

pub(crate) fn native(snapshot: &NativeSnapshot) -> Json {
    let registers: Map<String, Json> =
        snapshot.registers().into_iter().map(|(name, v)| (name, Json::String(v.to_string()))).collect();
    let hex64 = |v: u64| format!("{v:#x}");
    json!({
        "arch": snapshot.arch.name(),
        "signal": snapshot.signal.name(),
        "si_code": snapshot.si_code,
        "fault_address": snapshot.fault_address.map(hex64),
        "pc": hex64(snapshot.pc),
        "sp": hex64(snapshot.sp),
        "fp": hex64(snapshot.fp),
        "wasm_pc": snapshot.wasm_pc,
        "registers": registers,
        "stack": snapshot.stack.iter().map(|f| json!({"pc": hex64(f.pc), "fp": hex64(f.fp), "wasm_pc": f.wasm_pc})).collect::<Vec<_>>(),
    })
}

fn trap(header: &Header, t: &Trap, module: Option<&ModuleInfo>, object: &mut Map<String, Json>) {
    object.insert("code".into(), json!(t.code.name()));
    object.insert("message".into(), json!(t.message));
    object.insert("frames".into(), Json::Array(t.frames.iter().map(|f| frame(header, f, module)).collect()));
    object.insert("wasm_fault_address".into(), json!(t.wasm_fault_address));
    object.insert("memory_size".into(), json!(t.memory_size));
    match &t.native {
        NativeCapture::Captured(snapshot) => {
            object.insert("native".into(), native(snapshot));
        }
        NativeCapture::Missing(reason) => {
            object.insert("native".into(), Json::Null);
            object.insert("native_missing".into(), json!(reason.describe()));
        }
    }
    object.insert("memory_window".into(), t.memory_window.as_ref().map_or(Json::Null, memory_bytes));
}

/// One event as a JSON object: `seq`, `kind`, then the kind's own fields.
pub(crate) fn event(header: &Header, seq: u64, e: &Event, module: Option<&ModuleInfo>) -> Json {
    let mut object = Map::new();
    object.insert("seq".into(), json!(seq));
    object.insert("kind".into(), json!(e.kind().name()));
    match e {
        Event::HostCall(call) => host_call(header, call, &mut object),
        Event::Trap(t) => trap(header, t, module, &mut object),
        Event::Exit { code } => {
            object.insert("code".into(), json!(code));
        }
        Event::Returned { values: vs } => {
            object.insert("values".into(), values(vs));
        }
        Event::Interrupted(interruption) => {
            let (signal, failure) = match &interruption.cause {
                StopCause::Signal(signal) => (Some(*signal), None),
                StopCause::Failed(reason) => (None, Some(reason.as_str())),
            };
            object.insert("signal".into(), json!(signal));
            object.insert("failure".into(), json!(failure));
            object.insert("cause".into(), json!(interruption.cause_name()));
            let frames = interruption.frames.iter().map(|f| frame(header, f, module)).collect();
            object.insert("frames".into(), Json::Array(frames));
            let waiting = interruption.in_host_call.and_then(|i| header.run.imports.get(i.0 as usize));
            object.insert("in_host_call".into(), json!(waiting.map(ToString::to_string)));
            object.insert("after_ms".into(), json!(interruption.after_ms));
        }
    }
    Json::Object(object)
}
