//! Recording: runs a module on Wasmtime with WASI preview 1, wraps every import in a recording
//! shim, wires call injection into Wasmtime's signal hook, and streams events to a trace.
//!
//! Nothing is implemented yet: the crate exists so the workspace has its final shape.
#![forbid(unsafe_code)]
