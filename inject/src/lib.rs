//! Call injection at signal-based traps: per-architecture stubs, per-OS access to the
//! interrupted thread's context, and register snapshots (see DESIGN §6).
//!
//! This is the one crate where `unsafe` code will live; every block will carry a `// SAFETY:`
//! comment. It has no Wasmtime dependency so that it type-checks for Apple targets without a C
//! toolchain. Nothing is implemented yet: the crate exists so the workspace has its final shape.
