//! Repair: rewriting the index of a trace whose recording did not finish, without ever
//! making things worse. It streams (memory does not grow with the trace), refuses a trace a
//! recorder still holds, repairs a symlink's target, keeps the file's mode and owner, and
//! replaces the original only with a complete, synced copy.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::container;
use crate::error::{Result, TraceError};

use super::{Completeness, Trace};

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The trace already had a valid index; nothing was written over it (a copy was written
    /// to `output`, if one was asked for).
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

/// Bytes copied at a time.
const CHUNK: usize = 1 << 20;

/// Rebuilds the index of a trace whose recording did not finish (or whose tail is damaged),
/// keeping every complete frame: in place, or into `output` leaving the original untouched.
/// In place, the new file is written beside the target (a symlink's target), synced, given
/// the original's mode and owner, and renamed over it, so the original is intact if anything
/// fails. A trace a recorder is still writing (it holds the file's lock) is refused.
pub fn repair(path: &Path, output: Option<&Path>) -> Result<RepairOutcome> {
    let open_error = |source| TraceError::Open { path: path.to_path_buf(), source };
    let target = std::fs::canonicalize(path).map_err(open_error)?;
    {
        let file = File::open(&target).map_err(open_error)?;
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock_shared() {
            return Err(TraceError::BeingRecorded { path: path.to_path_buf() });
        }
    }
    let trace = Trace::open(&target)?;
    let data = &*trace.0;
    let (outcome, tail, end) = match &data.completeness {
        Completeness::Recovered { index_problem, .. } => (
            RepairOutcome::Repaired {
                events: data.events,
                dropped_bytes: data.src.len() - data.data_end,
                index_problem: index_problem.clone(),
            },
            container::encode_tail(&data.frames_before_tail, &data.entries)?,
            data.data_end,
        ),
        Completeness::Complete if output.is_some() => {
            (RepairOutcome::AlreadyComplete { events: data.events }, Vec::new(), data.src.len())
        }
        Completeness::Complete => return Ok(RepairOutcome::AlreadyComplete { events: data.events }),
    };
    let (destination, temp) = match output {
        Some(output) => (output.to_path_buf(), temp_beside(output)),
        None => (target.clone(), temp_beside(&target)),
    };
    let written = write_copy(&trace, end, &tail, &temp).and_then(|file| {
        if output.is_none() {
            keep_mode_and_owner(&target, &file)?;
        }
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &destination)?;
        sync_dir(&destination);
        Ok(())
    });
    if let Err(source) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(TraceError::Open { path: destination, source });
    }
    Ok(outcome)
}

/// `.NAME.repair-PID` beside `path`.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.repair-{}", std::process::id()))
}

/// Writes the trace's first `end` bytes, then `tail`, to a new owner-only file at `temp`.
fn write_copy(trace: &Trace, end: u64, tail: &[u8], temp: &Path) -> std::io::Result<File> {
    let mut file = crate::private::create_file(temp, false)?;
    let mut buffer = vec![0; CHUNK];
    let mut at = 0;
    while at < end {
        let n = usize::try_from(end - at).map_or(CHUNK, |left| left.min(CHUNK));
        trace.0.src.read_exact_at(&mut buffer[..n], at)?;
        file.write_all(&buffer[..n])?;
        at += n as u64;
    }
    file.write_all(tail)?;
    Ok(file)
}

/// Gives `file` the mode, and where allowed the owner, of `original`.
fn keep_mode_and_owner(original: &Path, file: &File) -> std::io::Result<()> {
    let meta = std::fs::metadata(original)?;
    file.set_permissions(meta.permissions())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Only root may give a file away; anyone else keeps owning what they repair.
        let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(())
}

/// Syncs the directory holding `path`, so the rename itself survives a crash (Unix; Windows
/// has no directory handle to sync).
fn sync_dir(path: &Path) {
    if cfg!(unix)
        && let Some(dir) = path
            .parent()
            .and_then(|p| File::open(if p.as_os_str().is_empty() { Path::new(".") } else { p }).ok())
    {
        let _ = dir.sync_all();
    }
}
