//! Owner-only files and directories. A trace holds every byte the guest read, its environment
//! and its command line — as private as a core dump — so traces, the trace directory and the
//! module store are created readable by their owner only (0600 / 0700 on Unix). An existing
//! file or directory keeps the mode it has.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `path` for writing, owner-only: a new file, or when `truncate`, also an existing
/// one emptied (keeping its mode, as a shell's `>` does).
pub fn create_file(path: &Path, truncate: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if truncate {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates `dir` and any missing parents, owner-only.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
