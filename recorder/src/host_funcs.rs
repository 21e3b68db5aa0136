//! Host functions beyond WASI, registered through the library, recorded by the generic
//! capture: there is no table of what they write, so all of linear memory is copied before
//! the call and compared after it, and every changed run of bytes is recorded. Correct for any
//! function that does not grow memory, and as slow as copying the memory twice per call;
//! `wtrace info` says which imports were recorded this way.

use std::sync::Arc;

use wasmtime::{Caller, Extern, FuncType, Linker, Val, ValType};
use wtrace_runtime::entry::value_of;
use wtrace_runtime::imports::Attribution;
use wtrace_runtime::memory;
use wtrace_traces::Value;

use crate::state::RecordState;

/// The body of a host function: guest memory (the `memory` export, empty when there is
/// none), the arguments, and the results to fill in. An error traps the guest.
pub type HostFn = dyn Fn(&mut [u8], &[Val], &mut [Val]) -> wasmtime::Result<()> + Send + Sync;

/// A host function the guest imports as `module::name`.
#[derive(Clone)]
pub struct HostFunc {
    /// Import module name.
    pub module: String,
    /// Import field name.
    pub name: String,
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
    /// What it does.
    pub func: Arc<HostFn>,
}

impl std::fmt::Debug for HostFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostFunc({}::{}: {:?} -> {:?})", self.module, self.name, self.params, self.results)
    }
}

/// Defines each host function the module imports, wrapped in the generic capture; each call
/// is attributed to the import it went through, as replay attributes it.
pub(crate) fn link(
    linker: &mut Linker<RecordState>,
    funcs: &[HostFunc],
    attribution: &dyn Fn(&str, &str) -> Option<Attribution>,
) -> wasmtime::Result<()> {
    for host in funcs {
        let Some(import) = attribution(&host.module, &host.name) else { continue };
        let ty = FuncType::new(linker.engine(), host.params.iter().cloned(), host.results.iter().cloned());
        let func = Arc::clone(&host.func);
        linker.func_new(&host.module, &host.name, ty, move |mut caller, params, results| {
            call_and_capture(&mut caller, &import, func.as_ref(), params, results)
        })?;
    }
    Ok(())
}

fn call_and_capture(
    caller: &mut Caller<'_, RecordState>,
    import: &Attribution,
    func: &HostFn,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let import = import.resolve(&*caller);
    let memory = match memory::export(caller, true) {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    };
    let (bytes, state) = match &memory {
        Some(memory) => memory.data_and_store_mut(&mut *caller),
        None => (&mut [][..], caller.data_mut()),
    };
    let before = bytes.to_vec();
    let result = func(bytes, params, results);
    let values: Vec<Value> = params.iter().map(value_of).collect();
    let returned: Vec<Value> = results.iter().map(value_of).collect();
    state.record_generic(import, &values, result.as_ref().map(|()| returned.as_slice()), &before, bytes)?;
    result
}
