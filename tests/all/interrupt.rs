//! Recordings that end by a signal, and replays with limits: Ctrl-C on a hung guest keeps the
//! whole trace with where the guest was, events reach the file while the guest computes, and
//! replay stops where the recording was interrupted, or at `--timeout` / `--max-memory`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{fixture, guest, text, wtrace, wtrace_command};

/// Starts `wtrace record -o TRACE ARGS...` with its stdout piped.
fn start_recording(trace: &Path, args: &[&str], stdin: Stdio) -> Child {
    wtrace_command()
        .args(["record", "-o", trace.to_str().unwrap()])
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout until `line` has appeared.
fn wait_for_line(child: &mut Child, line: &str) {
    let stdout = child.stdout.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8];
    while !String::from_utf8_lossy(&seen).contains(line) {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "the guest ended before printing {line:?}");
        seen.push(byte[0]);
    }
}

/// Sends `signal` (`INT`, `TERM`, `KILL`) as a shell's `kill` would, through Python's
/// `os.kill` (Python is on every machine that runs these tests; `kill(1)` needs procps).
fn signal(child: &Child, signal: &str) {
    let sent = Command::new("python3")
        .args([
            "-c",
            "import os, signal, sys; os.kill(int(sys.argv[1]), getattr(signal, 'SIG' + sys.argv[2]))",
        ])
        .args([child.id().to_string(), signal.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits at most `limit` for the child to end: its status and stderr.
fn wait_at_most(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spin() -> PathBuf {
    fixture("programs/spin.wat")
}

#[test]
fn ctrl_c_on_a_hung_guest_keeps_the_trace_and_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("spin.zst");
    let mut child = start_recording(&trace, &[spin().to_str().unwrap()], Stdio::null());
    wait_for_line(&mut child, "started, now spinning");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let (status, stderr) = wait_at_most(child, Duration::from_secs(10));
    assert_eq!(status, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");

    // Complete (indexed), with the output before the hang and the interruption in `spin`.
    let info = text(&wtrace(&["info", trace.to_str().unwrap()]).stdout);
    assert!(info.contains("status:     complete"), "{info}");
    assert!(info.contains("interrupted 1"), "{info}");
    let dump = text(&wtrace(&["dump", trace.to_str().unwrap()]).stdout);
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 2, "{dump}");
    assert!(lines[0].contains(r#"read "started, now spinning\n""#), "{dump}");
    assert!(lines[1].starts_with("#1 interrupted SIGINT in spin at 0x"), "{dump}");
    assert!(lines[1].contains("running Wasm"), "{dump}");
    let json = wtrace(&["dump", "--json", trace.to_str().unwrap(), "1"]);
    let event: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(event["kind"], "interrupted");
    assert_eq!(event["cause"], "SIGINT");
    assert_eq!(event["signal"], 2);
    assert_eq!(event["frames"][0]["func_name"], "spin");

    // Replay reproduces the output and stops where the recording was interrupted.
    let started = Instant::now();
    let replayed = wtrace(&["replay", trace.to_str().unwrap()]);
    assert!(started.elapsed() < Duration::from_secs(10), "replay stops; it never hangs");
    assert_eq!(replayed.status.code(), Some(130), "{}", text(&replayed.stderr));
    assert_eq!(text(&replayed.stdout), "started, now spinning\n");
    let stderr = text(&replayed.stderr);
    assert!(
        stderr.contains("replay matched the recording: interrupted by SIGINT in spin at Wasm PC 0x"),
        "{stderr}"
    );
}

#[test]
fn sigterm_while_the_guest_waits_for_input() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("stdin.zst");
    // stdin stays open and empty: the guest waits in fd_read.
    let child = start_recording(&trace, &[guest("stdin_echo").to_str().unwrap()], Stdio::piped());
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    let (status, stderr) = wait_at_most(child, Duration::from_secs(10));
    assert_eq!(status, Some(143), "{stderr}");
    let dump = text(&wtrace(&["dump", trace.to_str().unwrap()]).stdout);
    let last = dump.lines().last().unwrap();
    assert!(last.contains("interrupted SIGTERM"), "{dump}");
    assert!(last.contains("waiting in wasi_snapshot_preview1::fd_read"), "{dump}");
    let replayed = wtrace(&["replay", "-q", trace.to_str().unwrap()]);
    assert_eq!(replayed.status.code(), Some(143), "{}", text(&replayed.stderr));
}

#[test]
fn events_reach_the_file_while_the_guest_computes() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("spin.zst");
    let mut child = start_recording(&trace, &[spin().to_str().unwrap()], Stdio::null());
    wait_for_line(&mut child, "started, now spinning");
    // No host call follows the print; the epoch tick (every 50 ms) hands it to the writer. The
    // wait is long so that a loaded machine still gives the recorder a tick.
    std::thread::sleep(Duration::from_secs(1));
    signal(&child, "KILL");
    let (status, _) = wait_at_most(child, Duration::from_secs(10));
    assert_eq!(status, None, "killed");
    let dump = wtrace(&["dump", trace.to_str().unwrap()]);
    let stderr = text(&dump.stderr);
    assert!(stderr.contains("incomplete trace: 1 events recovered"), "{stderr}");
    assert!(text(&dump.stdout).contains("started, now spinning"), "{}", text(&dump.stdout));
}

#[test]
fn replay_limits_stop_a_foreign_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("spin.zst");
    let mut child = start_recording(&trace, &[spin().to_str().unwrap()], Stdio::null());
    wait_for_line(&mut child, "started, now spinning");
    std::thread::sleep(Duration::from_millis(2500));
    signal(&child, "INT");
    assert_eq!(wait_at_most(child, Duration::from_secs(10)).0, Some(130));
    // The replay would spin for 2.5 s before reaching the interruption.
    let started = Instant::now();
    let out = wtrace(&["replay", "-q", "--timeout", "300ms", trace.to_str().unwrap()]);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(211), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("did not end within 0.3 s"), "{}", text(&out.stderr));

    let grown = dir.path().join("grow.zst");
    let grow = fixture("programs/grow.wat");
    let out = wtrace(&["record", "-o", grown.to_str().unwrap(), grow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = wtrace(&["replay", "--max-memory", "1MiB", grown.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(211), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("grow its memory to 67108864 bytes, past the replay's limit of 1048576"),
        "{stderr}"
    );
    assert_eq!(wtrace(&["replay", "--max-memory", "64MiB", grown.to_str().unwrap()]).status.code(), Some(0));
}

#[test]
fn timeout_stops_a_trace_recorded_without_epoch_checks() {
    use wtrace::traces::{TraceWriter, WriterOptions};
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("spin.zst");
    let mut child = start_recording(&trace, &[spin().to_str().unwrap()], Stdio::null());
    wait_for_line(&mut child, "started, now spinning");
    signal(&child, "INT");
    assert_eq!(wait_at_most(child, Duration::from_secs(10)).0, Some(130));
    // As a format 1.0 recording has it: no epoch checks, so the guest cannot be stopped while
    // it computes, and without the interruption the replay spins forever.
    let original = wtrace::Trace::open(&trace).unwrap();
    let mut header = original.header().clone();
    header.run.engine_config.retain(|(key, _)| key != "epoch-interruption");
    let old = dir.path().join("old.zst");
    let bytes = original.module_bytes(0).unwrap();
    let mut writer = TraceWriter::create(&old, header, &[(0, &bytes)], WriterOptions::default()).unwrap();
    let (_, first) = original.events().next().unwrap().unwrap();
    writer.append(&first).unwrap();
    writer.finish().unwrap();
    let child = wtrace_command()
        .args(["replay", "-q", "--timeout", "300ms", old.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (status, stderr) = wait_at_most(child, Duration::from_secs(20));
    assert_eq!(status, Some(211), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(stderr.contains("did not end within 0.3 s"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_recorded_exit_status_outside_wasi_range_is_refused() {
    use wtrace::traces::{Event, Outcome, TraceWriter, WriterOptions};
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("exit.wat");
    std::fs::write(
        &module,
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 5))))"#,
    )
    .unwrap();
    let trace = dir.path().join("exit.zst");
    let out = wtrace(&["record", "-o", trace.to_str().unwrap(), module.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    // Forge 205, wtrace's own "diverged", into the recorded exit.
    let original = wtrace::Trace::open(&trace).unwrap();
    let forged = dir.path().join("forged.zst");
    let bytes = original.module_bytes(0).unwrap();
    let mut writer =
        TraceWriter::create(&forged, original.header().clone(), &[(0, &bytes)], WriterOptions::default())
            .unwrap();
    for item in original.events() {
        let (_, mut event) = item.unwrap();
        match &mut event {
            Event::HostCall(call) => call.outcome = Outcome::Exited(205),
            Event::Exit { code } => *code = 205,
            _ => {}
        }
        writer.append(&event).unwrap();
    }
    writer.finish().unwrap();
    let out = wtrace(&["replay", forged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(203), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("exit status 205 is outside WASI's 0–125"), "{}", text(&out.stderr));
}

/// SIGKILL the recorder at many moments across a guest that makes host calls steadily (about
/// two a millisecond): every trace opens, recovery keeps every event from more than 100 ms
/// before the kill (of the recorder's own running: before its last print, when it was starved
/// of CPU until the kill), and its replay matches the recording up to the cut. `WTRACE_KILLS`
/// sets how many (100 by default).
#[test]
fn a_killed_recorder_keeps_all_but_the_last_100_ms() {
    let kills: u64 = std::env::var("WTRACE_KILLS").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let ticker = fixture("programs/ticker.wat");
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..kills {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let delay = Duration::from_millis(150 + random % 450);
        let trace = dir.path().join(format!("killed-{i}.zst"));
        let mut child = start_recording(&trace, &[ticker.to_str().unwrap()], Stdio::null());
        // Every line the guest printed, with when it arrived.
        let stdout = child.stdout.take().unwrap();
        let lines = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                let tick: u64 = line.trim_start_matches("tick ").parse().unwrap();
                seen.push((tick, Instant::now()));
            }
            seen
        });
        let started = Instant::now();
        while started.elapsed() < delay {
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed_at = Instant::now();
        child.kill().unwrap();
        child.wait().unwrap();
        let seen = lines.join().unwrap();

        let opened = wtrace::Trace::open(&trace).unwrap_or_else(|e| panic!("kill {i}: {e}"));
        // Tick N's fd_write is event 2N + 1 (each tick reads the clock, then prints).
        let Some(&(last_seen, last_at)) = seen.last() else { continue };
        // The 100 ms count from the kill, or from the recorder's last print when the machine
        // left it no CPU after that (a process that is not running makes nothing to lose; the
        // test shares two cores with the rest of the suite).
        let cut = killed_at.min(last_at + Duration::from_millis(5));
        let mut old_enough =
            seen.iter().filter(|(_, at)| cut.saturating_duration_since(*at) > Duration::from_millis(100));
        if let Some(&(tick, _)) = old_enough.next_back() {
            assert!(
                opened.len() >= 2 * tick + 2,
                "kill {i} after {delay:?}: tick {tick} printed over 100 ms before the kill, but only {} events were kept (last tick printed: {last_seen}, {:?} before the kill)",
                opened.len(),
                killed_at.saturating_duration_since(last_at)
            );
        }
        let replayed = wtrace(&["replay", "-q", trace.to_str().unwrap()]);
        let stderr = text(&replayed.stderr);
        assert_eq!(replayed.status.code(), Some(207), "kill {i}: {stderr}");
        assert!(stderr.contains("the replay matched every one and stops there"), "kill {i}: {stderr}");
    }
}

/// A disk that fills part-way (here a file-size limit, so writes fail with EFBIG): one error
/// line, exit 207, and the trace keeps what reached it, which replays up to the cut.
#[cfg(unix)]
#[test]
fn a_full_disk_keeps_the_trace_written_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("full.zst");
    let random = fixture("programs/random.wat");
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -f 2048; trap "" XFSZ; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_wtrace"))
        .args(["record", "-o", trace.to_str().unwrap(), random.to_str().unwrap()])
        .env("WTRACE_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("wtrace-cache"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(207), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    assert!(stderr.contains("File too large") && stderr.contains("stay readable"), "{stderr}");
    let kept = wtrace::Trace::open(&trace).unwrap();
    assert!(kept.len() > 100, "most of 2 MiB of events is kept: {}", kept.len());
    let replayed = wtrace(&["replay", "-q", trace.to_str().unwrap()]);
    assert_eq!(replayed.status.code(), Some(207), "{}", text(&replayed.stderr));
    assert!(text(&replayed.stderr).contains(&format!("after {} host calls; the replay matched", kept.len())));
}
