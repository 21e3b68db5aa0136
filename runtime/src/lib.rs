//! How wtrace runs a module on Wasmtime, for recording, replay and debug replay alike: the
//! engine settings and their round trip through a trace header, compiling a module, calling
//! its entry point, classifying how the run ended, access to guest memory from host calls, the
//! one table of WASI preview 1, and native register snapshots at traps through `inject`.
//!
//! Recording and replay both build on this crate and never on each other, so both run a guest
//! the same way: the same machine code, the same stack depths, the same traps.
// `deny`, not `forbid`: the `trust` module alone allows `unsafe`, for the two Wasmtime APIs
// that are `unsafe fn`s (installing a signal hook, loading compiled code) and the C library's
// process calls behind debug replay's checkpoints.
#![deny(unsafe_code)]

pub mod cache;
pub mod describe;
pub mod engine;
pub mod entry;
mod error;
pub mod imports;
pub mod introspect;
pub mod memory;
pub mod module;
pub mod native;
pub mod outcome;
pub mod process;
mod trust;
pub mod wasi;

pub use cache::CacheOptions;
pub use engine::{EngineSettings, SettingError, WASMTIME_VERSION};
pub use entry::Run;
pub use error::SetupError;
pub use module::Compiled;
pub use native::{NativeCapturer, RegisterComparison};
pub use outcome::{Ended, GuestExit, RunEnd};
pub use wasmtime;
