//! End-to-end tests of the `wtrace` binary and library, in one test binary (as Wasmtime's own
//! `tests/all`), so Wasmtime is linked once for all of them and the guest programs are built
//! once per run.
mod cli;
mod common;
mod debug;
mod differential;
mod hostile;
mod interrupt;
mod library;
mod native;
mod record_replay;
mod startup;
mod traps;
mod tui;
mod wasi_table;
mod write_sets;
