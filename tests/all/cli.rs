//! End-to-end tests of `wtrace info`, `dump` and `repair` on traces written by the library.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::{sample_events, text, write_trace, wtrace};
use wtrace::traces::WriterOptions;

fn small_frames() -> WriterOptions {
    WriterOptions { batch_bytes: 512, ..WriterOptions::default() }
}

#[test]
fn info_describes_header_counts_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.zst");
    write_trace(&path, &sample_events(1000), small_frames());
    let out = wtrace(&["info", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("status:     complete"), "{stdout}");
    assert!(stdout.contains("format:     1.1 (written by wtrace 0.1.0)"), "{stdout}");
    assert!(stdout.contains("recorded:   2026-11-24 17:48:26 UTC"), "{stdout}");
    assert!(stdout.contains("wasmtime:   48.0.0"), "{stdout}");
    assert!(
        stdout.contains("events:     1003 (host_call 1002, trap 1, exit 0, returned 0, interrupted 0)"),
        "{stdout}"
    );
    assert!(stdout.contains("module 0:   app.wasm (8 bytes, sha256 "), "{stdout}");
    assert!(stdout.contains("embedded)"), "{stdout}");
    assert!(stdout.contains("bytes/event"), "{stdout}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let out = wtrace(&["info", "--json", path.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["complete"], true);
    assert_eq!(json["events"], 1003);
    assert_eq!(json["events_by_kind"]["host_call"], 1002);
    assert_eq!(json["events_by_kind"]["trap"], 1);
    assert_eq!(json["imports"][0], "wasi_snapshot_preview1::fd_write");
    assert!(json["data_frames"].as_u64().unwrap() > 5);
}

#[test]
fn dump_prints_one_line_per_event_and_honours_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.zst");
    write_trace(&path, &sample_events(50), small_frames());
    let p = path.to_str().unwrap();
    let out = wtrace(&["dump", p]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // One line per event; a trap with a register snapshot adds indented register lines.
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(lines.len(), 53);
    assert!(stdout.lines().all(|l| l.starts_with('#') || l.starts_with("    ")), "{stdout}");
    assert_eq!(
        lines[0],
        r#"#0 host_call wasi_snapshot_preview1::fd_write(1, 1024, 1, 2048) -> 0  wrote 4B@0x800  read "hello\n"  printed 6B to stdout"#
    );
    assert_eq!(
        lines[52],
        "#52 trap memory-out-of-bounds at 0x1a3 in parse_header address 0x100000 [SIGSEGV pc=0x555500001234]: \
         wasm trap: out of bounds memory access"
    );
    let range = text(&wtrace(&["dump", p, "10-12"]).stdout);
    assert_eq!(
        range.lines().map(|l| l.split(' ').next().unwrap()).collect::<Vec<_>>(),
        ["#10", "#11", "#12"]
    );
    let last = text(&wtrace(&["dump", p, "end"]).stdout);
    assert!(last.starts_with("#52 trap"), "{last}");
    assert_eq!(last.lines().filter(|l| l.starts_with('#')).count(), 1);
    assert!(last.contains("    rax 0x") && last.contains("    rip 0x0000555500001234"), "{last}");
    assert!(last.contains("   xmm0 0x"), "{last}");
    assert_eq!(text(&wtrace(&["dump", p, "50-"]).stdout).lines().filter(|l| l.starts_with('#')).count(), 3);
    assert_eq!(text(&wtrace(&["dump", p, "7"]).stdout).lines().next().unwrap().split(' ').next(), Some("#7"));

    let bad = wtrace(&["dump", p, "99"]);
    assert_eq!(bad.status.code(), Some(200));
    assert_eq!(text(&bad.stderr).lines().count(), 1, "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("event 99 does not exist: the trace has 53 events"));
    assert_eq!(wtrace(&["dump", p, "5-x"]).status.code(), Some(200));
}

#[test]
fn dump_json_lines_carry_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.zst");
    write_trace(&path, &sample_events(3), small_frames());
    let out = wtrace(&["dump", "--json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(events.len(), 6);
    let first = &events[0];
    assert_eq!(first["seq"], 0);
    assert_eq!(first["kind"], "host_call");
    assert_eq!(first["name"], "fd_write");
    assert_eq!(first["params"][1], serde_json::json!({"type": "i32", "value": 1024}));
    assert_eq!(first["outcome"]["returned"][0]["value"], 0);
    assert_eq!(first["reads"][0]["text"], "hello\n");
    assert_eq!(first["writes"][0]["hex"], "06000000");
    assert_eq!(events[1]["params"][1], serde_json::json!({"type": "i64", "value": "1000"}));
    let trap = &events[5];
    assert_eq!(trap["kind"], "trap");
    assert_eq!(trap["code"], "memory-out-of-bounds");
    assert_eq!(trap["message"], "wasm trap: out of bounds memory access");
    assert_eq!(trap["frames"][0]["func_name"], "parse_header");
    assert_eq!(trap["frames"][0]["module_offset"], 0x1a3);
    assert_eq!(trap["frames"][1]["func_name"], serde_json::Value::Null);
    assert_eq!(trap["wasm_fault_address"], 0x10_0000);
    assert_eq!(trap["native"]["signal"], "SIGSEGV");
    assert_eq!(trap["native"]["registers"]["rip"], "0x0000555500001234");
    assert_eq!(trap["native"]["registers"]["rsp"], "0x00007ffd00001000");
    assert_eq!(trap["native"]["registers"]["r15"], "0xffffffffffffffff");
    assert_eq!(trap["native"]["registers"]["xmm0"], "0xffffffffffffffffffffffffffffffff");
    assert_eq!(trap["native"]["registers"]["mxcsr"], "0x0000000000001f80");
}

#[test]
fn dump_json_feeds_jq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.zst");
    write_trace(&path, &sample_events(3), small_frames());
    let mut dump = Command::new(env!("CARGO_BIN_EXE_wtrace"))
        .args(["dump", "--json", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let jq = Command::new("jq")
        .args(["-r", "select(.kind == \"trap\") | .native.registers.rip"])
        .stdin(dump.stdout.take().unwrap())
        .output()
        .expect("the `jq` command must be installed (Debian package jq; scripts/test.sh installs it)");
    assert!(dump.wait().unwrap().success());
    assert!(jq.status.success(), "{}", text(&jq.stderr));
    assert_eq!(text(&jq.stdout), "0x0000555500001234\n");
}

#[test]
fn repair_restores_a_trace_whose_index_was_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.zst");
    let events = sample_events(2000);
    write_trace(&path, &events, small_frames());
    let p = path.to_str().unwrap();
    let full_dump = text(&wtrace(&["dump", p]).stdout);
    // Cut off the index and seek table (and a bit of the last data frame), as a killed
    // recorder leaves the file.
    let bytes = std::fs::read(&path).unwrap();
    let trace = wtrace::Trace::open(&path).unwrap();
    let last = trace.frames().last().unwrap().clone();
    let cut = last.offset + u64::from(last.compressed_len) - 3;
    std::fs::write(&path, &bytes[..cut as usize]).unwrap();
    let kept = last.first_seq;

    let info = wtrace(&["info", p]);
    assert_eq!(info.status.code(), Some(0));
    assert!(
        text(&info.stderr).contains(&format!("warning: incomplete trace: {kept} events recovered")),
        "{}",
        text(&info.stderr)
    );
    assert!(text(&info.stdout).contains("status:     incomplete trace"), "{}", text(&info.stdout));

    let repair = wtrace(&["repair", p]);
    assert_eq!(repair.status.code(), Some(0), "{}", text(&repair.stderr));
    assert!(
        text(&repair.stdout)
            .contains(&format!("repaired (no index: the recording did not finish); {kept} events kept"))
    );

    let info = wtrace(&["info", p]);
    assert!(info.stderr.is_empty(), "{}", text(&info.stderr));
    assert!(text(&info.stdout).contains("status:     complete"));
    let repaired_dump = text(&wtrace(&["dump", p]).stdout);
    let expected: String = full_dump.lines().take(kept as usize).flat_map(|l| [l, "\n"]).collect();
    assert_eq!(repaired_dump, expected);

    let again = wtrace(&["repair", p]);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again.stdout).contains("already complete"));
}

fn assert_one_line_error(out: &std::process::Output, code: i32, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "want one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "want {needle:?} in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_inputs_get_one_line_and_a_documented_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for command in ["info", "dump", "repair"] {
        assert_one_line_error(&wtrace(&[command, &d("missing.zst")]), 201, "No such file");
    }
    std::fs::write(d("garbage.zst"), b"this is not a trace").unwrap();
    assert_one_line_error(&wtrace(&["info", &d("garbage.zst")]), 202, "not a wtrace trace");
    std::fs::write(d("empty.zst"), b"").unwrap();
    assert_one_line_error(&wtrace(&["dump", &d("empty.zst")]), 202, "the file is empty");
    std::fs::write(d("plain.zst"), zstd::bulk::compress(b"plain text", 3).unwrap()).unwrap();
    assert_one_line_error(&wtrace(&["info", &d("plain.zst")]), 202, "zstd file");
    assert_one_line_error(&wtrace(&["info", dir.path().to_str().unwrap()]), 201, "directory");

    // A trace from a newer format major version.
    let mut future = crate::common::header();
    future.format.major = 2;
    future.writer = "3.1.0".into();
    let mut writer = wtrace::traces::TraceWriter::create(
        dir.path().join("future.zst").as_path(),
        future,
        &[],
        WriterOptions::default(),
    )
    .unwrap();
    writer.append(&crate::common::clock(1)).unwrap();
    writer.finish().unwrap();
    assert_one_line_error(&wtrace(&["dump", &d("future.zst")]), 204, "wtrace 3.1.0");

    // Cut inside the header.
    write_trace(&dir.path().join("ok.zst"), &sample_events(10), small_frames());
    let bytes = std::fs::read(d("ok.zst")).unwrap();
    std::fs::write(d("cut.zst"), &bytes[..20]).unwrap();
    assert_one_line_error(&wtrace(&["info", &d("cut.zst")]), 203, "truncated header");

    // A damaged data frame: the index is fine, reading the events is not.
    let trace = wtrace::Trace::open(d("ok.zst")).unwrap();
    let frame = trace.frames()[0].clone();
    let mut damaged = bytes.clone();
    damaged[(frame.offset + u64::from(frame.compressed_len) - 1) as usize] ^= 0x55;
    std::fs::write(d("damaged.zst"), &damaged).unwrap();
    let out = wtrace(&["dump", &d("damaged.zst")]);
    assert_one_line_error(&out, 203, "data frame 0");
    assert!(text(&out.stderr).contains("checksum mismatch"));
    assert!(text(&out.stderr).contains("wtrace repair"));

    // Usage errors.
    assert_eq!(wtrace(&[]).status.code(), Some(200));
    assert_eq!(wtrace(&["frobnicate"]).status.code(), Some(200));
    assert_eq!(wtrace(&["dump"]).status.code(), Some(200));
    let help = wtrace(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("203  the trace is damaged"));
}

#[test]
fn a_closed_pipe_ends_dump_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.zst");
    write_trace(&path, &sample_events(200_000), WriterOptions::default());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wtrace"))
        .args(["dump", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("#0 host_call"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// The README's exit-code table lists exactly `wtrace::exit_codes::DOCUMENTED`, in order.
#[test]
fn the_readme_documents_every_exit_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("### Exit codes").nth(1).expect("the README has an exit-code section");
    let rows: Vec<(String, String)> = section
        .lines()
        .skip_while(|line| !line.starts_with("|---"))
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].to_string(), cells[1..].join(" | "))
        })
        .collect();
    let documented: Vec<(String, String)> = wtrace::exit_codes::DOCUMENTED
        .iter()
        .map(|entry| (entry.codes(), entry.meaning.to_string()))
        .collect();
    assert_eq!(rows, documented);
    let help = text(&wtrace(&["--help"]).stdout);
    for entry in wtrace::exit_codes::DOCUMENTED {
        assert!(help.contains(&format!("  {:<4} ", entry.codes())), "--help lacks {}", entry.codes());
    }
}

/// Strings in a trace are data: a forged one must not drive the terminal it is printed on.
#[test]
fn control_characters_from_a_trace_are_printed_escaped() {
    use wtrace::traces::{Event, TraceWriter};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forged.zst");
    let mut header = crate::common::header();
    header.run.args = vec!["app.wasm".into(), "\x1b]0;owned\x07\x1b[2J".into()];
    header.run.command_line.push("\r\x1b[1A".into());
    let mut writer =
        TraceWriter::create(&path, header, &[(0, crate::common::MODULE)], small_frames()).unwrap();
    let Event::Trap(mut trap) = crate::common::trap() else { unreachable!() };
    trap.message = "wasm trap: \x1b[31mred\x1b[0m".into();
    writer.append(&Event::Trap(trap)).unwrap();
    writer.finish().unwrap();
    let p = path.to_str().unwrap();
    for args in [vec!["info", p], vec!["dump", p]] {
        let out = wtrace(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(!out.stdout.iter().any(|b| *b == 0x1b || *b == 0x07 || *b == b'\r'), "{}", text(&out.stdout));
    }
    let info = text(&wtrace(&["info", p]).stdout);
    assert!(info.contains(r"\x1b]0;owned\x07\x1b[2J"), "{info}");
    let dump = text(&wtrace(&["dump", p]).stdout);
    assert!(dump.contains(r"wasm trap: \x1b[31mred\x1b[0m"), "{dump}");
}

/// Arguments that are not UTF-8 cannot reach a WASI guest: one line, not a panic, no trace.
#[cfg(unix)]
#[test]
fn arguments_that_are_not_utf8_are_refused_cleanly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.zst");
    let module = dir.path().join(OsStr::from_bytes(b"m\xffodule.wat"));
    std::fs::write(&module, r#"(module (func (export "_start")))"#).unwrap();
    // A module path that is not UTF-8 records (its name shows U+FFFD).
    let out =
        crate::common::wtrace_command().arg("record").arg("-o").arg(&trace).arg(&module).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&wtrace(&["info", trace.to_str().unwrap()]).stdout).contains("m\u{fffd}odule.wat"));
    // A guest argument that is not UTF-8 is a usage error.
    let refused = dir.path().join("refused.zst");
    let out = crate::common::wtrace_command()
        .arg("record")
        .arg("-o")
        .arg(&refused)
        .arg(&module)
        .arg(OsStr::from_bytes(b"\xff\xfe"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(200), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("invalid UTF-8"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    assert!(!refused.exists());
}

/// A trace cut off as a killed recorder leaves it, at `path`; returns the events it keeps.
fn cut_trace(path: &std::path::Path) -> u64 {
    write_trace(path, &sample_events(2000), small_frames());
    let bytes = std::fs::read(path).unwrap();
    let last = wtrace::Trace::open(path).unwrap().frames().last().unwrap().clone();
    std::fs::write(path, &bytes[..(last.offset + u64::from(last.compressed_len) - 3) as usize]).unwrap();
    last.first_seq
}

/// `repair` cannot hurt: it keeps a file's mode, repairs a symlink's target (the link stays),
/// writes a copy with `--output` leaving the original alone, and refuses a live recording.
#[cfg(unix)]
#[test]
fn repair_keeps_mode_follows_symlinks_writes_copies_and_leaves_live_recordings_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let path = dir.path().join("run.zst");
    let kept = cut_trace(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link.zst");
    std::os::unix::fs::symlink("run.zst", &link).unwrap();

    // --output: a complete copy elsewhere, the original untouched.
    let before = std::fs::read(&path).unwrap();
    let copy = dir.path().join("copy.zst");
    let out = wtrace(&["repair", link.to_str().unwrap(), "--output", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let repaired = wtrace::Trace::open(&copy).unwrap();
    assert_eq!(repaired.len(), kept);
    assert!(matches!(repaired.completeness(), wtrace::traces::Completeness::Complete));

    // In place through the link: the target is repaired, the link stays a link, the mode stays.
    let out = wtrace(&["repair", link.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(mode(&path), 0o640);
    assert!(matches!(
        wtrace::Trace::open(&path).unwrap().completeness(),
        wtrace::traces::Completeness::Complete
    ));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 3, "no temporary file is left: {leftovers:?}");

    // A recording still running holds its trace: repair refuses and writes nothing.
    let live = dir.path().join("live.zst");
    let spin = crate::common::fixture("programs/spin.wat");
    let mut child = crate::common::wtrace_command()
        .args(["record", "-q", "-o", live.to_str().unwrap(), spin.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut started = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut started).unwrap();
    let before = std::fs::read(&live).unwrap();
    let out = wtrace(&["repair", live.to_str().unwrap()]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(201), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("still being recorded"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&live).unwrap(), before);
}
