//! Copies of the replaying process, for debug replay's checkpoints (rr's technique): a copy
//! made at a point of the replay waits there, and going back to that point asks it to make
//! another copy that runs on. Unix only.

#[cfg(unix)]
pub use crate::trust::Forked;
#[cfg(unix)]
pub use crate::trust::{alive, exit_now, kill, reap};

/// Copies this process at the current point of a replay; only the calling thread runs on in the
/// copy, which must use only what that thread owns (its store, a trace opened with
/// `Trace::detached`, its socket) and end with [`exit_now`]. Both sides see [`Forked`].
#[cfg(unix)]
pub fn fork_replay() -> std::io::Result<Forked> {
    let forked = crate::trust::fork()?;
    if let Forked::Child = forked {
        crate::trust::ignore_children();
    }
    Ok(forked)
}

/// The memory only process `pid` holds (its private pages, clean and dirty): what ending it
/// would give back. `None` where the system does not say (it is read from `/proc`).
pub fn private_memory(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let kib: u64 = text
        .lines()
        .filter(|line| line.starts_with("Private_Clean:") || line.starts_with("Private_Dirty:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    Some(kib * 1024)
}
