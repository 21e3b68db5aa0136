//! Packing: making a trace self-contained, as `rr pack` does, by embedding the modules it only
//! references (by hash, from the module store of its trace directory).

use std::path::{Path, PathBuf};

use crate::error::{Result, TraceError};
use crate::event::Event;
use crate::reader::Trace;
use crate::writer::{TraceWriter, WriterOptions};

/// What [`pack`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackOutcome {
    /// Every module was embedded already; nothing was written.
    AlreadyPacked,
    /// The trace was rewritten with these modules (by index) embedded.
    Packed {
        /// The modules that were only referenced before.
        embedded: Vec<usize>,
        /// Events copied.
        events: u64,
    },
}

/// Rewrites `trace` with every module embedded, to `output` (which may be the trace's own
/// path: the new file is written beside it, synced, and renamed over it, so the original is
/// untouched if anything fails). A module the trace references must be in the module store
/// beside it.
pub fn pack(trace: &Trace, output: &Path) -> Result<PackOutcome> {
    let header = trace.header().clone();
    let missing: Vec<usize> = (0..header.run.modules.len()).filter(|&i| !trace.module_embedded(i)).collect();
    let same_file = trace.path().is_some_and(|p| same_path(p, output));
    if missing.is_empty() && same_file {
        return Ok(PackOutcome::AlreadyPacked);
    }
    let modules: Vec<Vec<u8>> =
        (0..header.run.modules.len()).map(|i| trace.module_bytes(i)).collect::<Result<_>>()?;
    let embedded: Vec<(usize, &[u8])> = modules.iter().enumerate().map(|(i, b)| (i, &b[..])).collect();
    let file_name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = output.with_file_name(format!(".{file_name}.pack-{}", std::process::id()));
    let result = (|| -> Result<u64> {
        let mut header = header;
        for module in &mut header.run.modules {
            module.embedded = false;
        }
        let file = std::fs::File::create_new(&temp)
            .map_err(|source| TraceError::Open { path: temp.clone(), source })?;
        let mut writer = TraceWriter::new(file, header, &embedded, WriterOptions::default())?;
        let mut events = trace.events();
        let mut event = Event::Exit { code: 0 };
        while let Some(seq) = events.next_into(&mut event) {
            seq?;
            writer.append(&event)?;
        }
        let summary = writer.finish()?;
        let io = |source| TraceError::Open { path: output.to_path_buf(), source };
        std::fs::File::open(&temp).and_then(|f| f.sync_all()).map_err(io)?;
        if let Some(original) = trace.path() {
            // The packed copy is as private as the trace it came from.
            if let Ok(meta) = std::fs::metadata(original) {
                let _ = std::fs::set_permissions(&temp, meta.permissions());
            }
        }
        std::fs::rename(&temp, output).map_err(io)?;
        Ok(summary.events)
    })();
    match result {
        Ok(events) => Ok(PackOutcome::Packed { embedded: missing, events }),
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> { std::fs::canonicalize(p).ok() };
    a == b || canonical(a).is_some_and(|a| Some(a) == canonical(b))
}
