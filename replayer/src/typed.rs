//! Typed replay shims for the signatures WASI preview 1 uses (integer parameters, one `i32`
//! errno or nothing), so that replaying a host call skips Wasmtime's untyped `Func::new` path
//! (boxing every argument and result as a `Val`). Any other import type falls back to it.

use wasmtime::{Caller, FuncType, Linker, ValType};
use wtrace_traces::Value;

use crate::replay::{ReplayState, ResultSlot, Shim, replay_call};

/// A typed argument and its recorded form.
trait Arg: Copy {
    fn value(self) -> Value;
}

impl Arg for i32 {
    fn value(self) -> Value {
        Value::I32(self)
    }
}

impl Arg for i64 {
    fn value(self) -> Value {
        Value::I64(self)
    }
}

/// `i` for `i32`, `I` for `i64`: the shape of a parameter list, or `None` for other types.
fn shape(ty: &FuncType) -> Option<String> {
    ty.params()
        .map(|p| match p {
            ValType::I32 => Some('i'),
            ValType::I64 => Some('I'),
            _ => None,
        })
        .collect()
}

macro_rules! typed_shapes {
    ($($shape:literal => ($($arg:ident: $ty:ident),*);)*) => {
        /// Defines a typed replay shim for the import when its type has one of the shapes WASI
        /// uses; returns whether it did.
        pub(crate) fn link(
            linker: &mut Linker<ReplayState>,
            ty: &FuncType,
            shim: &Shim,
        ) -> wasmtime::Result<bool> {
            let Some(shape) = shape(ty) else { return Ok(false) };
            let results: Vec<ValType> = ty.results().collect();
            let returns_i32 = match results.as_slice() {
                [] => false,
                [ValType::I32] => true,
                _ => return Ok(false),
            };
            let (module, name, import) = (&shim.name.module, &shim.name.name, shim.clone());
            match (shape.as_str(), returns_i32) {
                ("i", false) => {
                    linker.func_wrap(module, name, move |caller: Caller<'_, ReplayState>, a: i32| {
                        replay_call(caller, &import, &[a.value()], ResultSlot::Unit)
                    })?;
                }
                $(
                    ($shape, true) => {
                        linker.func_wrap(
                            module,
                            name,
                            move |caller: Caller<'_, ReplayState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                                let mut out = 0;
                                replay_call(caller, &import, &[$($arg.value()),*], ResultSlot::I32(&mut out))?;
                                Ok(out)
                            },
                        )?;
                    }
                )*
                _ => return Ok(false),
            }
            Ok(true)
        }
    };
}

typed_shapes! {
    "" => ();
    "i" => (a: i32);
    "ii" => (a: i32, b: i32);
    "iii" => (a: i32, b: i32, c: i32);
    "iiii" => (a: i32, b: i32, c: i32, d: i32);
    "iiiii" => (a: i32, b: i32, c: i32, d: i32, e: i32);
    "iiiiii" => (a: i32, b: i32, c: i32, d: i32, e: i32, f: i32);
    "iiiiiii" => (a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32);
    "iI" => (a: i32, b: i64);
    "iIi" => (a: i32, b: i64, c: i32);
    "iII" => (a: i32, b: i64, c: i64);
    "iIIi" => (a: i32, b: i64, c: i64, d: i32);
    "iIii" => (a: i32, b: i64, c: i32, d: i32);
    "iiiIi" => (a: i32, b: i32, c: i32, d: i64, e: i32);
    "iiiiIIi" => (a: i32, b: i32, c: i32, d: i32, e: i64, f: i64, g: i32);
    "iiiiiIIii" => (a: i32, b: i32, c: i32, d: i32, e: i32, f: i64, g: i64, h: i32, j: i32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_name_integer_parameters() {
        let engine = wasmtime::Engine::default();
        let ty = FuncType::new(&engine, [ValType::I32, ValType::I64, ValType::I32], [ValType::I32]);
        assert_eq!(shape(&ty).as_deref(), Some("iIi"));
        let ty = FuncType::new(&engine, [ValType::F32], []);
        assert_eq!(shape(&ty), None);
    }
}
