//! The trace directory, as rr keeps one: `wtrace record` without `-o` writes
//! `<module>-<N>.zst` there and points the `latest` link at it; every command that takes a
//! trace accepts `latest`.
//!
//! The directory is `$WTRACE_DIR`, else `$XDG_DATA_HOME/wtrace`, else
//! `~/.local/share/wtrace`.

use std::path::{Path, PathBuf};

use wtrace::exit_codes;

use super::CliError;

/// The trace directory (not created).
pub(crate) fn dir() -> Result<PathBuf, CliError> {
    if let Some(dir) = std::env::var_os("WTRACE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(data).join("wtrace"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/wtrace")),
        None => Err(CliError::usage("no trace directory: set WTRACE_DIR or HOME, or pass -o PATH")),
    }
}

/// Resolves `latest` to the newest recording; any other argument is a path.
pub(crate) fn resolve(arg: &Path) -> Result<PathBuf, CliError> {
    if arg != Path::new("latest") || arg.exists() {
        return Ok(arg.to_path_buf());
    }
    let link = dir()?.join("latest");
    std::fs::read_link(&link).map(|target| link.parent().unwrap_or(Path::new(".")).join(target)).map_err(
        |_| {
            CliError::new(
                exit_codes::INPUT_MISSING,
                format!("no latest trace in {}", link.parent().unwrap_or(Path::new(".")).display()),
                Some("record one with `wtrace record MODULE`".to_string()),
            )
        },
    )
}

/// A new trace path in the trace directory for `module`, created empty so that concurrent
/// recordings never pick the same name.
pub(crate) fn new_trace(module: &Path) -> Result<PathBuf, CliError> {
    let dir = dir()?;
    wtrace::traces::private::create_dir_all(&dir).map_err(|e| {
        CliError::new(
            exit_codes::OUTPUT_FAILED,
            format!("cannot create trace directory {}: {e}", dir.display()),
            None,
        )
    })?;
    let stem = module.file_stem().map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned());
    for n in 0u32.. {
        let path = dir.join(format!("{stem}-{n}.zst"));
        match wtrace::traces::private::create_file(&path, false) {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(CliError::new(
                    exit_codes::OUTPUT_FAILED,
                    format!("cannot create {}: {e}", path.display()),
                    Some("check free space and permissions, or pass -o PATH".to_string()),
                ));
            }
        }
    }
    Err(CliError::internal("no free trace name"))
}

/// Points `latest` in the trace directory at `trace` (a relative link, replaced atomically).
pub(crate) fn set_latest(trace: &Path) {
    let (Some(dir), Some(name)) = (trace.parent(), trace.file_name()) else { return };
    let temp = dir.join(".latest.tmp");
    let _ = std::fs::remove_file(&temp);
    #[cfg(unix)]
    {
        if std::os::unix::fs::symlink(name, &temp).is_ok() {
            let _ = std::fs::rename(&temp, dir.join("latest"));
        }
    }
}
