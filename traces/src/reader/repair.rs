//! Repair: rewriting the index of a trace whose recording did not finish.

use std::path::Path;

use crate::container;
use crate::error::{Result, TraceError};

use super::{Completeness, Trace};

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The trace already had a valid index; nothing was written.
    AlreadyComplete {
        /// Events in the trace.
        events: u64,
    },
    /// A new index was written over the recovered frames.
    Repaired {
        /// Events kept.
        events: u64,
        /// Bytes dropped from the end (a cut-off frame, a damaged tail).
        dropped_bytes: u64,
        /// Why the index had to be rebuilt.
        index_problem: String,
    },
}

/// Rebuilds the index of a trace whose recording did not finish (or whose tail is damaged),
/// keeping every complete frame. The new file is written beside the old one, synced, and
/// renamed over it, so the original is untouched if anything fails.
pub fn repair(path: &Path) -> Result<RepairOutcome> {
    let trace = Trace::open(path)?;
    let trace = &*trace.0;
    let Completeness::Recovered { index_problem, .. } = &trace.completeness else {
        return Ok(RepairOutcome::AlreadyComplete { events: trace.events });
    };
    let tail = container::encode_tail(&trace.frames_before_tail, &trace.entries)?;
    let prefix = container::read_bytes(trace.src.as_ref(), 0, trace.data_end, "trace")?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.repair-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create_new(&temp)?;
        file.write_all(&prefix)?;
        file.write_all(&tail)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    if let Err(source) = write() {
        let _ = std::fs::remove_file(&temp);
        return Err(TraceError::Open { path: path.to_path_buf(), source });
    }
    Ok(RepairOutcome::Repaired {
        events: trace.events,
        dropped_bytes: trace.src.len() - trace.data_end,
        index_problem: index_problem.clone(),
    })
}
