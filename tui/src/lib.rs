//! The terminal user interface: an event list as the spine, with panes showing code, frames,
//! locals, registers and memory at the selected event.
//!
//! Nothing is implemented yet: the crate exists so the workspace has its final shape.
#![forbid(unsafe_code)]
