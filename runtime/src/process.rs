//! Copies of the replaying process, for debug replay's checkpoints (rr's technique): a copy
//! made at a point of the replay waits there, and going back to that point asks it to make
//! another copy that runs on. Unix only.

#[cfg(unix)]
pub use crate::trust::Forked;

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

/// Ends a copy made by [`fork_replay`] at once, with no exit handlers and no destructors.
#[cfg(unix)]
pub fn exit_now(status: i32) -> ! {
    crate::trust::exit_now(status)
}

/// Waits for copy `pid` to end when this process made it; returns at once otherwise.
#[cfg(unix)]
pub fn reap(pid: u32) {
    crate::trust::reap(pid);
}

/// Ends copy `pid` now.
#[cfg(unix)]
pub fn kill(pid: u32) {
    crate::trust::kill(pid);
}

/// Whether process `pid` still exists: a copy asks it of the session's process now and then,
/// and ends itself when that is gone.
#[cfg(unix)]
pub fn alive(pid: u32) -> bool {
    crate::trust::alive(pid)
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
