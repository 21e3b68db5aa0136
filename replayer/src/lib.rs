//! Replay: deterministic re-execution of a trace with every import answered from the recording,
//! divergence detection, debug-replay sessions, and replay assertions for tests.
//!
//! Nothing is implemented yet: the crate exists so the workspace has its final shape.
#![forbid(unsafe_code)]
