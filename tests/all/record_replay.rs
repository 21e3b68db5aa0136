//! `wtrace record` and `wtrace replay` on Rust guest programs built for `wasm32-wasip1`: the
//! replay must reproduce output, exit status and traps with no host access; divergences and
//! bad input must be reported with their documented exit codes.

use std::path::Path;

use crate::common::{fixture, guest, text, wtrace, wtrace_with};
use wtrace::traces::{Event, Outcome, TraceWriter, Value, WriterOptions};

fn record(dir: &Path, name: &str, args: &[&str]) -> (std::process::Output, String) {
    record_with(dir, name, args, b"")
}

fn record_with(dir: &Path, name: &str, args: &[&str], stdin: &[u8]) -> (std::process::Output, String) {
    let trace = dir.join(format!("{name}-{}.zst", std::process::id())).to_str().unwrap().to_string();
    let mut all = vec!["record", "-o", &trace];
    all.extend_from_slice(args);
    (wtrace_with(&all, stdin, &[]), trace)
}

#[test]
fn args_environment_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("args_env");
    let (out, trace) = record(
        dir.path(),
        "args",
        &["--env", "GREETING=hello world", "--env", "EMPTY=", module.to_str().unwrap(), "--", "7", "--flag"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let expected =
        "arg[0] = args_env.wasm\narg[1] = 7\narg[2] = --flag\nenv EMPTY = \nenv GREETING = hello world\n";
    assert_eq!(stdout, expected);

    let replayed = wtrace(&["replay", &trace, "--expect-exit", "7"]);
    assert_eq!(replayed.status.code(), Some(7), "{}", text(&replayed.stderr));
    assert_eq!(text(&replayed.stdout), expected);
    assert!(text(&replayed.stderr).contains("replay matched the recording: exited with status 7"));

    let wrong = wtrace(&["replay", "-q", &trace, "--expect-exit", "3"]);
    assert_eq!(wrong.status.code(), Some(206), "{}", text(&wrong.stderr));
    assert!(text(&wrong.stderr).contains("expected exit status 3, but the run exited with status 7"));
    // The header keeps the names, not the values: those the guest read are in its events.
    let info = wtrace(&["info", "--json", &trace]);
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["env"][0]["name"], "GREETING");
    assert!(json["env"].as_array().unwrap().iter().all(|v| v["value"].is_null()), "{json}");
    assert!(!text(&info.stdout).contains("hello world"), "{}", text(&info.stdout));
    let recorded = wtrace::Trace::open(&trace).unwrap();
    let read = recorded.events().map(Result::unwrap).any(|(_, event)| match event {
        Event::HostCall(call) => {
            call.writes.iter().any(|w| w.bytes.windows(20).any(|b| b == b"GREETING=hello world"))
        }
        _ => false,
    });
    assert!(read, "the guest's environ_get call holds the value it read");
}

#[test]
fn files_in_a_preopened_directory_replay_after_the_directory_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("input.txt"), "hello wtrace\n").unwrap();
    let dir_arg = format!("{}::/data", data.display());
    let module = guest("files");
    let (out, trace) = record(dir.path(), "files", &["--dir", &dir_arg, module.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("read 13 bytes: hello wtrace"), "{stdout}");
    assert!(stdout.contains("wrote and read back: HELLO WTRACE"), "{stdout}");
    assert!(stdout.contains("directory: input.txt, output.txt"), "{stdout}");
    assert_eq!(std::fs::read_to_string(data.join("output.txt")).unwrap(), "HELLO WTRACE\n");

    std::fs::remove_dir_all(&data).unwrap();
    let expected_stdout = dir.path().join("expected.txt");
    std::fs::write(&expected_stdout, &out.stdout).unwrap();
    let replayed = wtrace(&["replay", &trace, "--expect-stdout", expected_stdout.to_str().unwrap()]);
    assert_eq!(replayed.status.code(), Some(0), "{}", text(&replayed.stderr));
    assert_eq!(replayed.stdout, out.stdout);
    assert!(!data.exists(), "replay must not touch the host file system");

    // The host calls show the path opened and the bytes printed.
    let dump = text(&wtrace(&["dump", &trace]).stdout);
    assert!(dump.contains("path_open"), "{dump}");
    assert!(dump.contains("input.txt"), "{dump}");
}

#[test]
fn stdin_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("stdin_echo");
    let (out, trace) = record_with(dir.path(), "stdin", &[module.to_str().unwrap()], b"one\ntwo\nthree\n");
    assert_eq!(text(&out.stdout), "stdin: 14 bytes, 3 lines\nthree\ntwo\none\n");
    // Replay reads nothing from its own stdin.
    let replayed = wtrace_with(&["replay", &trace], b"something else entirely\n", &[]);
    assert_eq!(replayed.status.code(), Some(0), "{}", text(&replayed.stderr));
    assert_eq!(replayed.stdout, out.stdout);
}

#[test]
fn clock_and_random_differ_between_recordings_and_replay_equals_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("clock_random");
    let (first, first_trace) = record(dir.path(), "clock1", &[module.to_str().unwrap()]);
    let (second, second_trace) = record(dir.path(), "clock2", &[module.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let random_line = |out: &[u8]| text(out).lines().find(|l| l.starts_with("random: ")).unwrap().to_string();
    assert_ne!(random_line(&first.stdout), random_line(&second.stdout));
    assert_ne!(first.stdout, second.stdout);
    for (out, trace) in [(&first, &first_trace), (&second, &second_trace)] {
        for _ in 0..2 {
            let replayed = wtrace(&["replay", trace]);
            assert_eq!(replayed.status.code(), Some(0), "{}", text(&replayed.stderr));
            assert_eq!(replayed.stdout, out.stdout);
        }
    }
}

#[test]
fn rust_panic_traps_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("panic");
    let (out, trace) = record(dir.path(), "panic", &[module.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{stderr}");
    assert!(stderr.contains("panicked at"), "{stderr}");
    assert!(stderr.contains("bad config value \"forty-two\""), "{stderr}");
    assert!(stderr.contains("wasm trap: wasm `unreachable` instruction executed"), "{stderr}");
    let replayed = wtrace(&["replay", &trace, "--expect-trap", "unreachable"]);
    let replay_stderr = text(&replayed.stderr);
    assert_eq!(replayed.status.code(), Some(134), "{replay_stderr}");
    assert!(replay_stderr.contains("bad config value \"forty-two\""), "{replay_stderr}");
    assert_eq!(replayed.stdout, out.stdout);
    let wrong = wtrace(&["replay", "-q", &trace, "--expect-trap", "memory-out-of-bounds"]);
    assert_eq!(wrong.status.code(), Some(206));
}

#[test]
fn traces_go_to_the_trace_directory_with_a_latest_link() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("WTRACE_DIR", dir.path().to_str().unwrap())];
    let module = fixture("traps/unreachable.wat");
    for _ in 0..2 {
        let out = wtrace_with(&["record", module.to_str().unwrap()], b"", &env);
        assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    }
    assert!(dir.path().join("unreachable-0.zst").is_file());
    assert!(dir.path().join("unreachable-1.zst").is_file());
    assert_eq!(std::fs::read_link(dir.path().join("latest")).unwrap(), Path::new("unreachable-1.zst"));
    let replayed = wtrace_with(&["replay", "latest", "--expect-trap", "unreachable"], b"", &env);
    assert_eq!(replayed.status.code(), Some(134), "{}", text(&replayed.stderr));
    let info = wtrace_with(&["info", "latest"], b"", &env);
    assert_eq!(info.status.code(), Some(0), "{}", text(&info.stderr));
}

/// A trace holds what the guest read, like a core dump: owner-only, as are the directories.
#[cfg(unix)]
#[test]
fn traces_and_the_trace_directory_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("traces");
    let env = [("WTRACE_DIR", dir.to_str().unwrap())];
    let module = fixture("traps/unreachable.wat");
    let out = wtrace_with(&["record", module.to_str().unwrap()], b"", &env);
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("unreachable-0.zst")), 0o600);
    let stored: Vec<_> = walk(&dir).into_iter().filter(|p| p.is_file()).collect();
    assert!(stored.len() >= 2, "a trace and its module: {stored:?}");
    for path in stored {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    let own = parent.path().join("own.zst");
    let out = wtrace(&["record", "-o", own.to_str().unwrap(), module.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    assert_eq!(mode(&own), 0o600);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}

#[test]
fn invoke_calls_an_export_with_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("add.wat");
    std::fs::write(&module, r#"(module (func (export "add") (param i32 i64) (result i64) (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1))))"#).unwrap();
    let trace = dir.path().join("add.zst");
    let out = wtrace(&[
        "record",
        "-o",
        trace.to_str().unwrap(),
        "--invoke",
        "add",
        module.to_str().unwrap(),
        "-5",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "7\n");
    let replayed = wtrace(&["replay", trace.to_str().unwrap()]);
    assert_eq!(text(&replayed.stdout), "7\n");
    assert_eq!(replayed.status.code(), Some(0));

    let missing =
        wtrace(&["record", "-o", trace.to_str().unwrap(), "--invoke", "sub", module.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(209));
    let stderr = text(&missing.stderr);
    assert!(
        stderr.starts_with("error: the module has no exported function `sub` to invoke; it exports: add"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_modified_module_diverges_at_the_first_different_call() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("hello.wat");
    let hello = |text: &str| {
        format!(
            r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{text}")
  (func $say (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 32)))
    (call $say)))"#
        )
    };
    std::fs::write(&original, hello("hello\\0a")).unwrap();
    let trace = dir.path().join("hello.zst");
    let out = wtrace(&["record", "-o", trace.to_str().unwrap(), original.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "hello\n");
    let trace = trace.to_str().unwrap();

    let modified = dir.path().join("modified.wat");
    std::fs::write(&modified, hello("HELLO\\0a")).unwrap();
    let refused = wtrace(&["replay", trace, "--module", modified.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(210), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("not the one recorded"));

    let diverged =
        wtrace(&["replay", trace, "--module", modified.to_str().unwrap(), "--allow-modified-module"]);
    let stderr = text(&diverged.stderr);
    assert_eq!(diverged.status.code(), Some(205), "{stderr}");
    assert!(stderr.contains("replay diverged at event 1"), "{stderr}");
    assert!(stderr.contains(r#"expected: fd_write with "hello\n""#), "{stderr}");
    assert!(stderr.contains(r#"actual:   fd_write with "HELLO\n""#), "{stderr}");
    assert!(stderr.contains("say at Wasm PC"), "{stderr}");
    assert!(diverged.stdout.is_empty(), "nothing of the diverging call may be printed");
}

#[test]
fn a_hand_edited_host_call_result_diverges_where_the_guest_reacts() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("args_env");
    let (out, trace) = record(dir.path(), "edit", &[module.to_str().unwrap(), "--", "0"]);
    assert_eq!(out.status.code(), Some(0));
    let original = wtrace::Trace::open(&trace).unwrap();
    // Make `args_sizes_get` report one argument fewer: the guest then asks `args_get` for a
    // smaller buffer, which differs from the recorded call right after it.
    let header = original.header().clone();
    let module_bytes = original.module_bytes(0).unwrap();
    let edited_path = dir.path().join("edited.zst");
    let mut writer =
        TraceWriter::create(&edited_path, header.clone(), &[(0, &module_bytes)], WriterOptions::default())
            .unwrap();
    let mut edited_seq = None;
    for item in original.events() {
        let (seq, mut event) = item.unwrap();
        if let Event::HostCall(call) = &mut event
            && edited_seq.is_none()
            && header.run.imports[call.import.0 as usize].name == "args_sizes_get"
        {
            call.writes[0].bytes = 1u32.to_le_bytes().to_vec();
            assert_eq!(call.outcome, Outcome::Returned(vec![Value::I32(0)]));
            edited_seq = Some(seq);
        }
        writer.append(&event).unwrap();
    }
    writer.finish().unwrap();
    let edited_seq = edited_seq.expect("the guest calls args_sizes_get");

    let replayed = wtrace(&["replay", "-q", edited_path.to_str().unwrap()]);
    let stderr = text(&replayed.stderr);
    assert_eq!(replayed.status.code(), Some(205), "{stderr}");
    // The guest reads its arguments with the edited count and prints something else: the
    // first print is where it leaves the recording.
    let first_print = original
        .events()
        .map(Result::unwrap)
        .find(|(_, e)| matches!(e, Event::HostCall(c) if header.run.imports[c.import.0 as usize].name == "fd_write"))
        .map(|(seq, _)| seq)
        .unwrap();
    assert!(first_print > edited_seq);
    assert!(stderr.contains(&format!("replay diverged at event {first_print}\n")), "{stderr}");
    assert!(stderr.contains(r#"expected: fd_write with "arg[0] = args_env.wasm\n""#), "{stderr}");
}

#[test]
fn bad_input_gets_one_clear_line_and_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.zst");
    let trace = trace.to_str().unwrap();
    let check = |args: &[&str], code: i32, needle: &str| {
        let out = wtrace(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    check(&["record", "-o", trace, "/no/such/module.wasm"], 201, "cannot read module /no/such/module.wasm");

    let not_wasm = dir.path().join("notes.txt");
    std::fs::write(&not_wasm, "just some text\n").unwrap();
    check(&["record", "-o", trace, not_wasm.to_str().unwrap()], 209, "is not a valid WebAssembly module");

    let invalid = dir.path().join("invalid.wasm");
    std::fs::write(
        &invalid,
        b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x0a\x04\x01\x02\x00\x0b",
    )
    .unwrap();
    check(&["record", "-o", trace, invalid.to_str().unwrap()], 209, "is not a valid WebAssembly module");

    let unknown_import = dir.path().join("import.wat");
    std::fs::write(
        &unknown_import,
        r#"(module (import "env" "magic" (func)) (func (export "_start") (call 0)))"#,
    )
    .unwrap();
    check(&["record", "-o", trace, unknown_import.to_str().unwrap()], 209, "env::magic");

    check(
        &["record", "-o", trace, "-W", "warp-drive=y", not_wasm.to_str().unwrap()],
        200,
        "unknown -W option `warp-drive`",
    );

    let shared = dir.path().join("shared.wat");
    std::fs::write(&shared, r#"(module (memory (export "memory") 1 1 shared) (func (export "_start")))"#)
        .unwrap();
    check(&["record", "-o", trace, shared.to_str().unwrap()], 209, "shared memory support is disabled");
    let out =
        wtrace(&["record", "-q", "-o", trace, "-W", "threads=y,shared-memory=y", shared.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A trap in the start function is the guest's, recorded like any other.
    let start = dir.path().join("start.wat");
    std::fs::write(&start, r"(module (func $boom unreachable) (start $boom))").unwrap();
    let out = wtrace(&["record", "-q", "-o", trace, start.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    assert_eq!(wtrace(&["replay", "-q", trace]).status.code(), Some(134));

    let module = fixture("traps/unreachable.wat");
    wtrace(&["record", "-q", "-o", trace, module.to_str().unwrap()]);
    let mut bytes = std::fs::read(trace).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    let corrupted = dir.path().join("corrupted.zst");
    std::fs::write(&corrupted, &bytes).unwrap();
    let out = wtrace(&["replay", corrupted.to_str().unwrap()]);
    assert!(matches!(out.status.code(), Some(203)), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));

    check(&["replay", not_wasm.to_str().unwrap()], 202, "not a wtrace trace");
    check(&["replay", "/no/such/trace.zst"], 201, "/no/such/trace.zst");
}

/// The README's example: reads a file from a preopened directory, then traps.
#[test]
fn the_bundled_example_records_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(root.join("examples/data/header.bin"), data.join("header.bin")).unwrap();
    let trace = dir.path().join("example.zst");
    let dir_arg = format!("{}::/data", data.display());
    let example = root.join("examples/header_parser.wat");
    let out =
        wtrace(&["record", "-o", trace.to_str().unwrap(), "--dir", &dir_arg, example.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "opening /data/header.bin\nread the header, parsing it\n");
    std::fs::remove_dir_all(&data).unwrap();
    let replayed = wtrace(&["replay", trace.to_str().unwrap(), "--expect-trap", "memory-out-of-bounds"]);
    assert_eq!(replayed.status.code(), Some(134), "{}", text(&replayed.stderr));
    assert_eq!(replayed.stdout, out.stdout);
    assert!(text(&replayed.stderr).contains("memory fault at wasm address 0x100400"));
}

/// An edit of a trace header's run information.
type Edit<'a> = &'a dyn Fn(&mut wtrace::traces::RunInfo);

/// A trace whose header names an engine setting or a Wasmtime version this build cannot
/// reproduce is refused before anything runs.
#[test]
fn traces_from_another_engine_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.zst");
    let module = fixture("traps/unreachable.wat");
    wtrace(&["record", "-q", "-o", trace.to_str().unwrap(), module.to_str().unwrap()]);
    let original = wtrace::Trace::open(&trace).unwrap();
    let module_bytes = original.module_bytes(0).unwrap();
    let events: Vec<Event> = original.events().map(|e| e.unwrap().1).collect();
    let rewrite = |name: &str, edit: &dyn Fn(&mut wtrace::traces::RunInfo)| {
        let mut header = original.header().clone();
        edit(&mut header.run);
        let path = dir.path().join(name);
        let mut writer =
            TraceWriter::create(&path, header, &[(0, &module_bytes)], WriterOptions::default()).unwrap();
        for event in &events {
            writer.append(event).unwrap();
        }
        writer.finish().unwrap();
        path
    };
    let cases: [(&str, Edit<'_>, &str); 3] = [
        (
            "setting.zst",
            &|run| run.engine_config.push(("warp-drive".into(), "y".into())),
            "engine setting warp-drive=y",
        ),
        (
            "traps.zst",
            &|run| {
                for (key, value) in &mut run.engine_config {
                    if key == "signals-based-traps" {
                        *value = "n".into();
                    }
                }
            },
            "signals-based-traps=n",
        ),
        ("version.zst", &|run| run.wasmtime_version = "47.0.0".into(), "recorded with Wasmtime 47.0.0"),
    ];
    for (name, edit, needle) in cases {
        let path = rewrite(name, edit);
        let out = wtrace(&["replay", path.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(210), "{name}: {stderr}");
        assert!(stderr.starts_with("error: cannot replay") && stderr.contains(needle), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn replay_prints_exactly_what_reached_the_terminal_when_stdio_moves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let dir_arg = format!("{}::/data", data.display());
    let module = guest("stdio_juggling");
    let (out, trace) = record(dir.path(), "juggling", &["--dir", &dir_arg, module.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("1: on the terminal\npartial: half of this line "), "{stdout}");
    assert!(!stdout.contains("the rest never"), "a partial write shows only what the host took: {stdout}");
    assert!(stdout.contains("\n3: through the saved number "), "{stdout}");
    assert!(stdout.contains("4: stdout restored\n5: the write to closed stderr got errno 8"), "{stdout}");
    assert!(!stdout.contains("lost") && !stdout.contains("into "), "{stdout}");
    let guest_lines =
        |all: &str| all.lines().filter(|l| !l.starts_with("wtrace:")).collect::<Vec<_>>().join("\n");
    let stderr = guest_lines(&text(&out.stderr));
    assert_eq!(stderr, "2: on the terminal's stderr");
    assert!(!stderr.contains("lost"), "{stderr}");
    // (Which of the two files the second write lands in is Wasmtime's business; not the terminal.)
    let files = ["one.txt", "stdout.txt"].map(|f| std::fs::read_to_string(data.join(f)).unwrap()).concat();
    assert!(files.contains("into one.txt through fd 1\n") && files.contains("into stdout.txt"), "{files}");
    assert!(std::fs::read_to_string(data.join("reused.txt")).unwrap().starts_with("into reused.txt"));

    std::fs::remove_dir_all(&data).unwrap();
    let replayed = wtrace(&["replay", &trace]);
    assert_eq!(replayed.status.code(), Some(0), "{}", text(&replayed.stderr));
    assert_eq!(text(&replayed.stdout), stdout, "replay prints exactly what the recording printed");
    let replay_stderr = text(&replayed.stderr);
    assert_eq!(guest_lines(&replay_stderr), stderr);
    let closing =
        format!("{} bytes to stdout and 28 bytes to stderr, as the recording printed them", out.stdout.len());
    assert!(replay_stderr.contains(&closing), "{replay_stderr}");

    // The dump says which writes reached the terminal.
    let dump = text(&wtrace(&["dump", &trace]).stdout);
    let printed = |stream: &str| -> usize {
        dump.lines()
            .filter_map(|l| {
                l.split("  printed ").nth(1)?.strip_suffix(&format!("B to {stream}"))?.parse::<usize>().ok()
            })
            .sum()
    };
    assert_eq!(printed("stdout"), out.stdout.len(), "{dump}");
    assert_eq!(printed("stderr"), 28, "{dump}");
    let failed: Vec<&str> = dump.lines().filter(|l| l.contains("fd_write") && l.contains(" -> 8")).collect();
    assert_eq!(failed.len(), 2, "the writes to closed stdout and stderr fail with EBADF: {dump}");
    assert!(failed.iter().all(|l| !l.contains("printed")), "{failed:?}");
    let into_files = dump.lines().filter(|l| l.contains("fd_write(1,") && l.contains("\"into")).count();
    assert!(into_files >= 2, "fd 1 writes into the files: {dump}");
    assert!(
        dump.lines()
            .filter(|l| l.contains("fd_write(1,") && l.contains("\"into"))
            .all(|l| !l.contains("printed")),
        "{dump}"
    );
}

/// A module that hands `fd_read` another buffer (only the address inside its iovec differs)
/// diverges at that `fd_read`, not at the print two calls later that shows other bytes.
#[test]
fn a_changed_iovec_diverges_at_the_call_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let dir_arg = format!("{}::/data", data.display());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/header_parser.wat");
    let (out, trace) = record(dir.path(), "example", &["--dir", &dir_arg, example.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    let source = std::fs::read_to_string(&example).unwrap();
    let moved = "(i32.store (i32.const 32) (i32.const 2048))";
    let modified_source = source.replace("(i32.store (i32.const 32) (i32.const 1024))", moved);
    assert!(modified_source.contains(moved), "the example stores the iovec's buffer address");
    let modified = dir.path().join("moved_buffer.wat");
    std::fs::write(&modified, modified_source).unwrap();
    let replayed =
        wtrace(&["replay", "-q", &trace, "--module", modified.to_str().unwrap(), "--allow-modified-module"]);
    let stderr = text(&replayed.stderr);
    assert_eq!(replayed.status.code(), Some(205), "{stderr}");
    let dump = text(&wtrace(&["dump", &trace]).stdout);
    let fd_read = dump.lines().position(|l| l.contains("fd_read(")).unwrap();
    assert!(stderr.contains(&format!("replay diverged at event {fd_read}\n")), "{stderr}");
    assert!(stderr.contains("fd_read with other buffers"), "{stderr}");
}

/// Replay touches nothing on the host but the trace, the compiled-code cache and what the
/// binary itself starts with: watched with strace, a replay of guests that read files, the
/// clock and random bytes opens no other path, makes no network call and draws no more random
/// bytes than a replay of a guest that draws none.
#[cfg(target_os = "linux")]
#[test]
fn replay_touches_no_host_resource() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("input.txt"), "secret input\n").unwrap();
    let dir_arg = format!("{}::/data", data.display());
    let files = guest("files");
    let (out, files_trace) = record(dir.path(), "files", &["--dir", &dir_arg, files.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (out, random_trace) = record(dir.path(), "random", &[guest("clock_random").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (out, quiet_trace) = record(dir.path(), "args", &[guest("args_env").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&data).unwrap();

    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wtrace-cache");
    let binary = Path::new(env!("CARGO_BIN_EXE_wtrace"));
    let watch = |trace: &str| -> String {
        let log = dir.path().join("strace.log");
        let status = std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=%file,%network,getrandom", "-o"])
            .arg(&log)
            .arg(binary)
            .args(["replay", "-q", trace])
            .env("WTRACE_CACHE_DIR", &cache)
            // Cargo's library path sends the dynamic loader probing its build directories.
            .env_remove("LD_LIBRARY_PATH")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("strace runs (scripts/test.sh installs it)");
        assert_eq!(status.code(), Some(0), "replay of {trace}");
        std::fs::read_to_string(&log).unwrap()
    };
    let allowed = |path: &str| {
        path.is_empty()
            || path == binary.to_str().unwrap()
            || path.starts_with(cache.to_str().unwrap())
            || [dir.path().to_str().unwrap(), "/proc/self/", "/lib", "/usr/lib", "/etc/ld.so"]
                .iter()
                .any(|prefix| path.starts_with(prefix))
    };
    let getrandom = |log: &str| log.lines().filter(|l| l.contains("getrandom(")).count();
    let baseline = getrandom(&watch(&quiet_trace));
    for trace in [&files_trace, &random_trace] {
        let log = watch(trace);
        for line in log.lines() {
            assert!(!line.contains("socket(") && !line.contains("connect("), "network: {line}");
            // The first quoted string of a file call is its path.
            let Some(path) = line.split('"').nth(1) else { continue };
            let is_file_call = !line.contains("getrandom(");
            assert!(!is_file_call || allowed(path), "{trace}: replay touched {path}: {line}");
            assert!(!path.contains("data"), "{trace}: the guest's directory: {line}");
        }
        assert_eq!(getrandom(&log), baseline, "{trace}: random bytes drawn beyond start-up:\n{log}");
    }
}

/// A module that imports one function twice (as `AssemblyScript` does with `fd_write`) records
/// and replays, and each call is attributed to the import it went through.
#[test]
fn functions_imported_twice_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("twice.wat");
    std::fs::write(
        &module,
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $first (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit_a (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $second (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit_b (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "one\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $second (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $first (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $second (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit_b (i32.const 3))))"#,
    )
    .unwrap();
    let (out, trace) = record(dir.path(), "twice", &[module.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "one\none\none\n");
    let recorded = wtrace::Trace::open(&trace).unwrap();
    let imports: Vec<u32> = recorded
        .events()
        .map(Result::unwrap)
        .filter_map(|(_, event)| match event {
            Event::HostCall(call) => Some(call.import.0),
            _ => None,
        })
        .collect();
    assert_eq!(imports, [2, 0, 2, 3], "the import each call went through");
    let replayed = wtrace(&["replay", &trace]);
    assert_eq!(replayed.status.code(), Some(3), "{}", text(&replayed.stderr));
    assert_eq!(replayed.stdout, out.stdout);
    assert!(text(&replayed.stderr).contains("replay matched the recording"), "{}", text(&replayed.stderr));
    let debugged = wtrace(&["replay", "--debug", &trace]);
    assert!(text(&debugged.stdout).contains("exit"), "{}", text(&debugged.stdout));
}
