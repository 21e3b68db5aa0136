//! Starting a module the way `wasmtime run` does — instantiate, then `_start`, or
//! `_initialize` and an `--invoke`d export with arguments parsed from text — shared by
//! recording and replay so both take exactly the same path into the guest.

use wasmtime::{Instance, Linker, Module, Store, Val, ValType};
use wtrace_traces::Value;

use crate::error::SetupError;

/// A run that got as far as the guest's code: the instance, once instantiation succeeded, and
/// what the entry point returned.
#[derive(Debug)]
pub struct Run {
    /// The instance; `None` when its start function failed.
    pub instance: Option<Instance>,
    /// The invoked function's results (none for `_start`), or how the run failed.
    pub result: wasmtime::Result<Vec<Value>>,
}

/// A module checked and ready to run: every setup problem (an import nobody provides, an
/// unknown export, bad arguments) has been found before any of the guest's code runs.
pub struct Prepared<T: 'static> {
    pre: wasmtime::InstancePre<T>,
    entry: Option<(String, Vec<Val>, usize)>,
}

/// Checks that `module` can be run with `linker` as asked: `invoke` with `args`, or `_start`.
pub fn prepare<T: 'static>(
    store: &mut Store<T>,
    linker: &Linker<T>,
    module: &Module,
    invoke: Option<&str>,
    args: &[String],
) -> Result<Prepared<T>, SetupError> {
    check_imports(store, linker, module)?;
    let pre = linker
        .instantiate_pre(module)
        .map_err(|e| SetupError::EngineRejected { detail: format!("{e:#}") })?;
    let entry = match invoke {
        Some(name) => {
            let Some(func) = module.get_export(name).and_then(|e| e.func().cloned()) else {
                return Err(SetupError::NoSuchExport {
                    name: name.to_owned(),
                    exports: module
                        .exports()
                        .filter(|e| e.ty().func().is_some())
                        .map(|e| e.name().to_owned())
                        .collect(),
                });
            };
            let params: Vec<ValType> = func.params().collect();
            if params.len() != args.len() {
                return Err(SetupError::ArgCount {
                    func: name.to_owned(),
                    expected: params.len(),
                    given: args.len(),
                });
            }
            let values = params
                .iter()
                .zip(args)
                .map(|(ty, text)| parse_arg(ty, text))
                .collect::<Result<Vec<Val>, _>>()?;
            Some((name.to_owned(), values, func.results().count()))
        }
        None => None,
    };
    Ok(Prepared { pre, entry })
}

/// An error that passed through no Wasm frame is the engine refusing the module (a memory too
/// large), not the guest's start function failing.
fn refused(error: &wasmtime::Error) -> bool {
    error.downcast_ref::<wasmtime::Trap>().is_none()
        && error.downcast_ref::<wasmtime::WasmBacktrace>().is_none()
}

impl<T: 'static> Prepared<T> {
    /// Instantiates the module and runs its entry point.
    pub fn run(self, store: &mut Store<T>) -> Result<Run, SetupError> {
        let instance = match self.pre.instantiate(&mut *store) {
            Ok(instance) => instance,
            Err(error) if refused(&error) => {
                return Err(SetupError::EngineRejected { detail: format!("{error:#}") });
            }
            Err(error) => return Ok(Run { instance: None, result: Err(error) }),
        };
        let result = (|| {
            let Some((name, params, result_count)) = &self.entry else {
                if let Some(start) = instance.get_func(&mut *store, "_start") {
                    start.call(&mut *store, &[], &mut [])?;
                }
                return Ok(Vec::new());
            };
            if let Some(init) = instance.get_func(&mut *store, "_initialize") {
                init.call(&mut *store, &[], &mut [])?;
            }
            let func = exported(instance, store, name)?;
            let mut results = vec![Val::I32(0); *result_count];
            func.call(&mut *store, params, &mut results)?;
            Ok(results.iter().map(value_of).collect())
        })();
        Ok(Run { instance: Some(instance), result })
    }

    /// Instantiates the module and runs its entry point through Wasmtime's async entry points,
    /// which a store with a debug handler requires. `on_instance` sees the instance before any
    /// of the entry point runs.
    pub async fn run_async(
        self,
        store: &mut Store<T>,
        on_instance: impl FnOnce(&mut Store<T>, Instance),
    ) -> Result<Run, SetupError>
    where
        T: Send,
    {
        let instance = match self.pre.instantiate_async(&mut *store).await {
            Ok(instance) => instance,
            Err(error) if refused(&error) => {
                return Err(SetupError::EngineRejected { detail: format!("{error:#}") });
            }
            Err(error) => return Ok(Run { instance: None, result: Err(error) }),
        };
        on_instance(store, instance);
        let result = async {
            let Some((name, params, result_count)) = &self.entry else {
                if let Some(start) = instance.get_func(&mut *store, "_start") {
                    start.call_async(&mut *store, &[], &mut []).await?;
                }
                return Ok(Vec::new());
            };
            if let Some(init) = instance.get_func(&mut *store, "_initialize") {
                init.call_async(&mut *store, &[], &mut []).await?;
            }
            let func = exported(instance, store, name)?;
            let mut results = vec![Val::I32(0); *result_count];
            func.call_async(&mut *store, params, &mut results).await?;
            Ok(results.iter().map(value_of).collect())
        }
        .await;
        Ok(Run { instance: Some(instance), result })
    }
}

fn exported<T: 'static>(
    instance: Instance,
    store: &mut Store<T>,
    name: &str,
) -> wasmtime::Result<wasmtime::Func> {
    // Checked against the module's exports before instantiating.
    instance
        .get_func(&mut *store, name)
        .ok_or_else(|| wasmtime::Error::msg(format!("the module has no exported function `{name}`")))
}

/// Instantiates `module` and runs its entry point: `invoke` with `args`, or `_start`. Every
/// setup problem is found before any of the guest's code runs.
pub fn run<T: 'static>(
    store: &mut Store<T>,
    linker: &Linker<T>,
    module: &Module,
    invoke: Option<&str>,
    args: &[String],
) -> Result<Run, SetupError> {
    prepare(store, linker, module, invoke, args)?.run(store)
}

/// Checks that `linker` provides every import of `module`, with the right type.
fn check_imports<T: 'static>(
    store: &mut Store<T>,
    linker: &Linker<T>,
    module: &Module,
) -> Result<(), SetupError> {
    for import in module.imports() {
        let Some(provided) = linker.get_by_import(&mut *store, &import) else {
            return Err(SetupError::UnknownImport {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
            });
        };
        let found = import.ty();
        let expected = provided.ty(&*store);
        let matches = match (&found, &expected) {
            (wasmtime::ExternType::Func(found), wasmtime::ExternType::Func(expected)) => {
                wasmtime::FuncType::eq(found, expected)
            }
            // Non-function imports are checked by Wasmtime when instantiating.
            _ => true,
        };
        if !matches {
            return Err(SetupError::ImportType {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
                expected: describe_type(&expected),
                found: describe_type(&found),
            });
        }
    }
    Ok(())
}

fn describe_type(ty: &wasmtime::ExternType) -> String {
    match ty {
        wasmtime::ExternType::Func(func) => func.to_string(),
        other => format!("{other:?}"),
    }
}

/// Parses an `--invoke` argument as `wasmtime run` does: decimal integers, floats by value.
fn parse_arg(ty: &ValType, text: &str) -> Result<Val, SetupError> {
    let bad = || SetupError::ArgParse { arg: text.to_owned(), ty: ty.to_string() };
    Ok(match ty {
        ValType::I32 => Val::I32(
            text.parse::<i32>().or_else(|_| text.parse::<u32>().map(|v| v as i32)).map_err(|_| bad())?,
        ),
        ValType::I64 => Val::I64(
            text.parse::<i64>().or_else(|_| text.parse::<u64>().map(|v| v as i64)).map_err(|_| bad())?,
        ),
        ValType::F32 => Val::F32(text.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>().map_err(|_| bad())?.to_bits()),
        _ => return Err(bad()),
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
