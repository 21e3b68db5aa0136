//! Replay: deterministic re-execution of a trace with every import answered from the
//! recording, divergence detection, and the pieces recording shares with replay so both
//! run the guest the same way (engine settings, entry point, trap conversion), and the
//! assertions tests make on a replay.
// `deny`, not `forbid`: the `native` module alone allows `unsafe`, to install Wasmtime's
// signal hook.
#![deny(unsafe_code)]

mod assert;
pub mod engine;
pub mod entry;
mod error;
pub mod native;
pub mod outcome;
mod replay;
mod typed;

pub use assert::TrapAssert;
pub use error::ReplayError;
pub use outcome::RunEnd;
pub use replay::{Divergence, OutputSink, Replay, ReplayOptions, ends_match, recorded_end, replay};
