//! The terminal user interface: an event list as the spine, with panes showing code, frames,
//! locals, registers and memory at the selected event.
//!
//! The crate holds no code: `wtrace tui` is not built, and `wtrace dump` shows a trace as text.
#![forbid(unsafe_code)]
