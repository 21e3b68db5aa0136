//! The recorder's write-set table, checked function by function against reality: guest
//! programs call the WASI functions with real effects while the recorder diffs all of linear
//! memory around every call; any byte the host changed outside the recorded writes is a
//! hole in the table that would make replay diverge.

use std::collections::BTreeMap;

use crate::common::guest;
use wtrace::{RecordOptions, RunEnd, Trace};

/// Records with the audit on; returns calls per function, failing on any missed byte.
fn audit(options: RecordOptions) -> BTreeMap<&'static str, u64> {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("audit.zst");
    let recorded = wtrace::record(&RecordOptions { audit_writes: true, ..options }, &trace).unwrap();
    let mut calls = BTreeMap::new();
    for entry in &recorded.audit {
        assert!(
            entry.missed.is_empty(),
            "{} changed memory its write set does not cover: {:x?}",
            entry.function,
            entry.missed
        );
        calls.insert(entry.function, entry.calls);
    }
    // And the recording replays.
    wtrace::replay(&Trace::open(&trace).unwrap()).unwrap().assert_matched();
    assert_ne!(
        recorded.end,
        RunEnd::Exited(101),
        "the guest failed: {}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    calls
}

#[test]
fn every_write_the_host_makes_is_recorded() {
    let work = tempfile::tempdir().unwrap();
    let tour = RecordOptions::from_file(guest("wasi_tour")).unwrap().dir(work.path(), "/work").env("A", "1");
    let mut calls = audit(tour);
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("input.txt"), "some input\n").unwrap();
    calls.extend(audit(RecordOptions::from_file(guest("files")).unwrap().dir(data.path(), "/data")));
    calls.extend(audit(
        RecordOptions::from_file(guest("stdin_echo")).unwrap().stdin(b"a\nbb\nccc\n".to_vec()),
    ));
    calls.extend(audit(RecordOptions::from_file(guest("clock_random")).unwrap()));
    calls.extend(audit(RecordOptions::from_file(guest("args_env")).unwrap().arg("0").env("K", "v")));

    // Every function a sandboxed guest can reach with an effect was exercised. (The socket
    // functions and `proc_raise` fail here without writing; `proc_exit` never returns.)
    let exercised = [
        "args_get",
        "args_sizes_get",
        "environ_get",
        "environ_sizes_get",
        "clock_res_get",
        "clock_time_get",
        "fd_advise",
        "fd_allocate",
        "fd_close",
        "fd_datasync",
        "fd_fdstat_get",
        "fd_fdstat_set_flags",
        "fd_fdstat_set_rights",
        "fd_filestat_get",
        "fd_filestat_set_size",
        "fd_filestat_set_times",
        "fd_pread",
        "fd_prestat_dir_name",
        "fd_prestat_get",
        "fd_pwrite",
        "fd_read",
        "fd_readdir",
        "fd_renumber",
        "fd_seek",
        "fd_sync",
        "fd_tell",
        "fd_write",
        "path_create_directory",
        "path_filestat_get",
        "path_link",
        "path_open",
        "path_readlink",
        "path_remove_directory",
        "path_rename",
        "path_symlink",
        "path_unlink_file",
        "poll_oneoff",
        "proc_raise",
        "random_get",
        "sched_yield",
        "sock_accept",
        "sock_recv",
        "sock_send",
        "sock_shutdown",
    ];
    let missing: Vec<&str> = exercised.iter().copied().filter(|f| !calls.contains_key(f)).collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}; called: {calls:?}");
}
