//! Starting a module the way `wasmtime run` does — instantiate, then `_start`, or
//! `_initialize` and an `--invoke`d export with arguments parsed from text — shared by
//! recording and replay so both take exactly the same path into the guest.

use wasmtime::{Linker, Module, Store, Val, ValType};
use wtrace_traces::Value;

/// Why a run could not start or did not finish.
#[derive(Debug)]
pub enum EntryError {
    /// The module cannot be run as asked (unknown import, unknown export, bad arguments); nothing
    /// of the guest ran.
    Setup(String),
    /// The guest ran and the run ended with this error (a trap, an exit, a host failure).
    Run(wasmtime::Error),
}

/// Instantiates `module` and runs its entry point: `invoke` with `args`, or `_start`. Returns
/// the invoked function's results (none for `_start`); `instance` receives the instance as
/// soon as it exists, so the caller can inspect it after a trap.
pub fn run<T: 'static>(
    store: &mut Store<T>,
    linker: &Linker<T>,
    module: &Module,
    invoke: Option<&str>,
    args: &[String],
    instance_out: &mut Option<wasmtime::Instance>,
) -> Result<Vec<Value>, EntryError> {
    let pre = linker.instantiate_pre(module).map_err(|e| EntryError::Setup(format!("{e:#}")))?;
    // Check the entry point before anything of the guest runs.
    let entry = match invoke {
        Some(name) => {
            let Some(func) = module.get_export(name).and_then(|e| e.func().cloned()) else {
                let exports: Vec<&str> =
                    module.exports().filter(|e| e.ty().func().is_some()).map(|e| e.name()).collect();
                return Err(EntryError::Setup(format!(
                    "the module has no exported function `{name}` to invoke; it exports: {}",
                    if exports.is_empty() { "no functions".to_string() } else { exports.join(", ") }
                )));
            };
            let params: Vec<ValType> = func.params().collect();
            if params.len() != args.len() {
                return Err(EntryError::Setup(format!(
                    "`{name}` takes {} argument(s), {} given",
                    params.len(),
                    args.len()
                )));
            }
            let values = params
                .iter()
                .zip(args)
                .map(|(ty, text)| parse_arg(ty, text))
                .collect::<Result<Vec<Val>, String>>()
                .map_err(EntryError::Setup)?;
            Some((name, values, func.results().count()))
        }
        None => None,
    };
    let instance = pre.instantiate(&mut *store).map_err(|error| {
        // An error that passed through no Wasm frame is the engine refusing the module (a
        // feature switched off, a memory too large), not the guest's start function failing.
        if error.downcast_ref::<wasmtime::Trap>().is_none()
            && error.downcast_ref::<wasmtime::WasmBacktrace>().is_none()
        {
            EntryError::Setup(format!("cannot instantiate the module: {error:#}"))
        } else {
            EntryError::Run(error)
        }
    })?;
    *instance_out = Some(instance);
    let Some((name, params, result_count)) = entry else {
        if let Some(start) = instance.get_func(&mut *store, "_start") {
            start.call(&mut *store, &[], &mut []).map_err(EntryError::Run)?;
        }
        return Ok(Vec::new());
    };
    if let Some(init) = instance.get_func(&mut *store, "_initialize") {
        init.call(&mut *store, &[], &mut []).map_err(EntryError::Run)?;
    }
    let func = instance
        .get_func(&mut *store, name)
        .ok_or_else(|| EntryError::Setup(format!("the module has no exported function `{name}`")))?;
    let mut results = vec![Val::I32(0); result_count];
    func.call(&mut *store, &params, &mut results).map_err(EntryError::Run)?;
    Ok(results.iter().map(value_of).collect())
}

/// Parses an `--invoke` argument as `wasmtime run` does: decimal integers, floats by value.
fn parse_arg(ty: &ValType, text: &str) -> Result<Val, String> {
    let bad = || format!("argument `{text}` is not a valid {ty}");
    Ok(match ty {
        ValType::I32 => Val::I32(
            text.parse::<i32>().or_else(|_| text.parse::<u32>().map(|v| v as i32)).map_err(|_| bad())?,
        ),
        ValType::I64 => Val::I64(
            text.parse::<i64>().or_else(|_| text.parse::<u64>().map(|v| v as i64)).map_err(|_| bad())?,
        ),
        ValType::F32 => Val::F32(text.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>().map_err(|_| bad())?.to_bits()),
        _ => return Err(format!("cannot pass `{text}` as a {ty} from the command line")),
    })
}

/// A Wasmtime value in trace terms (references by nullness only).
pub fn value_of(val: &Val) -> Value {
    match val {
        Val::I32(v) => Value::I32(*v),
        Val::I64(v) => Value::I64(*v),
        Val::F32(v) => Value::F32(*v),
        Val::F64(v) => Value::F64(*v),
        Val::V128(v) => Value::V128(v.as_u128()),
        Val::FuncRef(f) => Value::FuncRef { null: f.is_none() },
        Val::ExternRef(r) => Value::ExternRef { null: r.is_none() },
        other => Value::ExternRef { null: other.ref_().is_none_or(|r| r.is_null()) },
    }
}
