//! Starting as cheaply as `wasmtime run`: the compiled-code cache (hits, misses, corrupt and
//! truncated entries rebuilt, settings that must not share code, eviction, switched off), the
//! module store of a trace directory (each module once; traces that reference it; a missing
//! module named by its hash; `--module`), `wtrace pack`, `wtrace gc`, shell completions and the
//! manual page.

use std::path::{Path, PathBuf};

use wtrace::runtime::CacheOptions;
use wtrace::runtime::cache::Lookup;
use wtrace::runtime::module::CompileOptions;
use wtrace::{RecordOptions, ReplayOptions, RunEnd, Trace};

use crate::common::{fixture, guest, text, wtrace_with};

fn options(module: &Path, cache: &Path) -> RecordOptions {
    RecordOptions {
        compile: CompileOptions { cache: CacheOptions::at(cache), notice: None },
        ..RecordOptions::from_file(module).unwrap()
    }
}

fn replay_with_cache(trace: &Path, cache: &Path) -> wtrace::Replay {
    let trace = Trace::open(trace).unwrap();
    let options = ReplayOptions {
        compile: CompileOptions { cache: CacheOptions::at(cache), notice: None },
        ..ReplayOptions::default()
    };
    wtrace::replayer::replay(&trace, options).unwrap()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|d| {
            d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "cwasm")).collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn a_second_record_and_every_replay_load_compiled_code_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let trace = dir.path().join("t.zst");
    let module = fixture("traps/oob_memory.wat");
    let first = wtrace::record(&options(&module, &cache), &trace).unwrap();
    assert_eq!(first.compiled, Lookup::Miss);
    assert_eq!(entries(&cache).len(), 1);
    let second = wtrace::record(&options(&module, &cache), &trace).unwrap();
    assert_eq!(second.compiled, Lookup::Hit);
    assert!(
        wtrace::replayer::ends_match(&first.end, &second.end),
        "code from the cache behaves as fresh code"
    );
    let replay = replay_with_cache(&trace, &cache);
    assert_eq!(replay.compiled, Lookup::Hit, "replay runs the same engine configuration");
    replay.assert_matched();
    let RunEnd::Trapped(trap) = &replay.end else { panic!("{:?}", replay.end) };
    assert!(
        matches!(trap.native, wtrace::traces::NativeCapture::Captured(_)),
        "native capture works on cached code"
    );

    // Other engine settings compile other code: a new entry, never the old one.
    let other = options(&module, &cache).wasm_flag("tail-call=n").unwrap();
    assert_eq!(wtrace::record(&other, &trace).unwrap().compiled, Lookup::Miss);
    assert_eq!(entries(&cache).len(), 2);
}

#[test]
fn corrupt_or_truncated_entries_are_rebuilt_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let trace = dir.path().join("t.zst");
    let module = guest("args_env");
    let expected = wtrace::record(&options(&module, &cache), &trace).unwrap();
    let [entry] = &entries(&cache)[..] else { panic!("one entry expected") };
    let good = std::fs::read(entry).unwrap();

    let mut damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"not compiled code at all".to_vec()),
    ];
    for at in [0, 20, good.len() / 3, good.len() - 1] {
        let mut flipped = good.clone();
        flipped[at] ^= 0x40;
        damages.push(("flipped", flipped));
    }
    for (what, bytes) in damages {
        std::fs::write(entry, &bytes).unwrap();
        let recorded = wtrace::record(&options(&module, &cache), &trace).unwrap();
        assert_eq!(recorded.compiled, Lookup::Rejected, "{what} entry");
        assert_eq!(recorded.end, expected.end, "{what} entry");
        assert_eq!(recorded.stdout, expected.stdout, "{what} entry");
        assert_eq!(std::fs::read(entry).unwrap(), good, "{what}: the entry is rebuilt");
    }
}

#[test]
fn the_cache_stays_within_its_bound_evicting_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let trace = dir.path().join("t.zst");
    let modules = ["traps/unreachable.wat", "traps/div_by_zero.wat", "traps/oob_memory.wat"].map(fixture);
    wtrace::record(&options(&modules[0], &cache), &trace).unwrap();
    let one = std::fs::metadata(&entries(&cache)[0]).unwrap().len();
    let bounded = |module: &Path| RecordOptions {
        compile: CompileOptions {
            cache: CacheOptions { dir: Some(cache.clone()), max_bytes: one * 5 / 2 },
            notice: None,
        },
        ..RecordOptions::from_file(module).unwrap()
    };
    wtrace::record(&bounded(&modules[1]), &trace).unwrap();
    // Use the first again, so the second is the least recently used when the third arrives.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(wtrace::record(&bounded(&modules[0]), &trace).unwrap().compiled, Lookup::Hit);
    std::thread::sleep(std::time::Duration::from_millis(20));
    wtrace::record(&bounded(&modules[2]), &trace).unwrap();
    let total: u64 = entries(&cache).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert_eq!(entries(&cache).len(), 2);
    assert!(total <= one * 5 / 2, "{total} bytes in a cache bounded to {}", one * 5 / 2);
    assert_eq!(wtrace::record(&bounded(&modules[0]), &trace).unwrap().compiled, Lookup::Hit);
    assert_eq!(wtrace::record(&bounded(&modules[2]), &trace).unwrap().compiled, Lookup::Hit);
    assert_eq!(wtrace::record(&bounded(&modules[1]), &trace).unwrap().compiled, Lookup::Miss, "evicted");
}

#[test]
fn the_cache_can_be_switched_off_and_moved() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let trace = dir.path().join("t.zst");
    let module = fixture("traps/unreachable.wat");
    let module = module.to_str().unwrap();
    let trace_arg = trace.to_str().unwrap();
    let env = [("WTRACE_CACHE_DIR", cache.to_str().unwrap())];
    let off = [("WTRACE_CACHE_DIR", cache.to_str().unwrap()), ("WTRACE_CACHE", "0")];
    assert_eq!(wtrace_with(&["record", "-q", "-o", trace_arg, module], b"", &off).status.code(), Some(134));
    assert_eq!(wtrace_with(&["replay", "-q", trace_arg], b"", &off).status.code(), Some(134));
    assert!(entries(&cache).is_empty(), "WTRACE_CACHE=0 writes nothing");
    let flag = ["record", "-q", "--no-cache", "-o", trace_arg, module];
    assert_eq!(wtrace_with(&flag, b"", &env).status.code(), Some(134));
    assert!(entries(&cache).is_empty(), "--no-cache writes nothing");
    assert_eq!(wtrace_with(&["record", "-q", "-o", trace_arg, module], b"", &env).status.code(), Some(134));
    assert_eq!(entries(&cache).len(), 1, "WTRACE_CACHE_DIR moves the cache");
    let elsewhere = dir.path().join("elsewhere");
    let flag = ["replay", "-q", "--cache-dir", elsewhere.to_str().unwrap(), trace_arg];
    assert_eq!(wtrace_with(&flag, b"", &env).status.code(), Some(134));
    assert_eq!(entries(&elsewhere).len(), 1, "--cache-dir moves the cache");
}

/// Runs the real binary with the trace directory and the cache in `dir`.
fn in_trace_dir(dir: &Path, args: &[&str]) -> std::process::Output {
    let traces = dir.join("traces");
    let cache = dir.join("cache");
    wtrace_with(
        args,
        b"",
        &[("WTRACE_DIR", traces.to_str().unwrap()), ("WTRACE_CACHE_DIR", cache.to_str().unwrap())],
    )
}

#[test]
fn a_trace_directory_holds_each_module_once() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("args_env");
    let module_len = std::fs::metadata(&module).unwrap().len();
    for i in 0..3 {
        let out = in_trace_dir(dir.path(), &["record", "-q", module.to_str().unwrap(), "--", &i.to_string()]);
        assert_eq!(out.status.code(), Some(i), "{}", text(&out.stderr));
    }
    let traces = dir.path().join("traces");
    let stored: Vec<_> = std::fs::read_dir(traces.join("modules")).unwrap().flatten().collect();
    assert_eq!(stored.len(), 1, "one module store entry for three traces");
    let trace = traces.join("args_env-2.zst");
    let trace_len = std::fs::metadata(&trace).unwrap().len();
    assert!(trace_len * 10 < module_len, "a {trace_len}-byte trace of a {module_len}-byte module embeds it");
    let opened = Trace::open(&trace).unwrap();
    assert!(!opened.header().run.modules[0].embedded);
    let info = text(&in_trace_dir(dir.path(), &["info", "latest"]).stdout);
    assert!(info.contains("referenced, in the module store"), "{info}");

    // Replay reads the module from the store (the cache is off, so it must).
    let replay =
        wtrace_with(&["replay", "--no-cache", trace.to_str().unwrap(), "--expect-exit", "2"], b"", &[]);
    assert_eq!(replay.status.code(), Some(2), "{}", text(&replay.stderr));
}

#[test]
fn a_missing_module_is_named_by_its_hash_and_can_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("args_env");
    assert_eq!(in_trace_dir(dir.path(), &["record", "-q", module.to_str().unwrap()]).status.code(), Some(0));
    let traces = dir.path().join("traces");
    let trace = traces.join("args_env-0.zst");
    let sha = Trace::open(&trace).unwrap().header().run.modules[0].sha256_hex();
    std::fs::remove_dir_all(traces.join("modules")).unwrap();
    let trace_arg = trace.to_str().unwrap();

    let out = wtrace_with(&["replay", "--no-cache", trace_arg], b"", &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(201), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&sha) && stderr.contains("--module PATH"), "{stderr}");
    let info = text(&in_trace_dir(dir.path(), &["info", trace_arg]).stdout);
    assert!(info.contains("MISSING"), "{info}");

    let given = wtrace_with(
        &["replay", "-q", "--no-cache", "--module", module.to_str().unwrap(), trace_arg],
        b"",
        &[],
    );
    assert_eq!(given.status.code(), Some(0), "{}", text(&given.stderr));
    let other = guest("files");
    let wrong =
        wtrace_with(&["replay", "--no-cache", "--module", other.to_str().unwrap(), trace_arg], b"", &[]);
    assert_eq!(wrong.status.code(), Some(210), "{}", text(&wrong.stderr));
}

#[test]
fn pack_makes_a_trace_self_contained_and_output_traces_are_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let module = guest("args_env");
    assert_eq!(in_trace_dir(dir.path(), &["record", "-q", module.to_str().unwrap()]).status.code(), Some(0));
    let traces = dir.path().join("traces");
    let trace = traces.join("args_env-0.zst");
    let trace_arg = trace.to_str().unwrap();
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&trace, std::fs::Permissions::from_mode(0o600)).unwrap();
        |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };

    let packed = dir.path().join("packed.zst");
    let out = wtrace_with(&["pack", trace_arg, "-o", packed.to_str().unwrap()], b"", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = wtrace_with(&["pack", trace_arg], b"", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("self-contained"), "{}", text(&out.stdout));
    #[cfg(unix)]
    assert_eq!(mode(&trace), 0o600, "pack keeps the trace's permissions");
    std::fs::remove_dir_all(traces.join("modules")).unwrap();
    for path in [&trace, &packed] {
        let opened = Trace::open(path).unwrap();
        assert!(opened.header().run.modules[0].embedded);
        let replay = wtrace_with(&["replay", "-q", "--no-cache", path.to_str().unwrap()], b"", &[]);
        assert_eq!(replay.status.code(), Some(0), "{}", text(&replay.stderr));
    }
    let again = wtrace_with(&["pack", trace_arg], b"", &[]);
    assert!(text(&again.stdout).contains("already self-contained"), "{}", text(&again.stdout));

    // `-o` traces embed their module unless told not to.
    let own = dir.path().join("own.zst");
    let out = wtrace_with(&["record", "-q", "-o", own.to_str().unwrap(), module.to_str().unwrap()], b"", &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(Trace::open(&own).unwrap().header().run.modules[0].embedded);
    let beside = dir.path().join("beside.zst");
    let out = wtrace_with(
        &["record", "-q", "--no-embed", "-o", beside.to_str().unwrap(), module.to_str().unwrap()],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!Trace::open(&beside).unwrap().header().run.modules[0].embedded);
    assert!(dir.path().join("modules").is_dir());
}

#[test]
fn gc_keeps_the_newest_traces_and_the_modules_they_reference() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    let (first, second) = (guest("args_env"), guest("files"));
    for _ in 0..3 {
        assert_eq!(
            in_trace_dir(dir.path(), &["record", "-q", first.to_str().unwrap()]).status.code(),
            Some(0)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = in_trace_dir(dir.path(), &["record", "-q", second.to_str().unwrap()]);
    assert!(out.status.success() || out.status.code().is_some(), "{}", text(&out.stderr));
    let count = |ext: &str, sub: &str| {
        std::fs::read_dir(traces.join(sub))
            .unwrap()
            .flatten()
            .filter(|e| e.path().to_string_lossy().ends_with(ext))
            .count()
    };
    assert_eq!((count(".zst", ""), count(".wasm.zst", "modules")), (4, 2));

    let dry = in_trace_dir(dir.path(), &["gc", "--keep", "2", "--dry-run"]);
    assert!(text(&dry.stdout).starts_with("would remove 2 trace(s)"), "{}", text(&dry.stdout));
    assert_eq!(count(".zst", ""), 4);
    let out = in_trace_dir(dir.path(), &["gc", "--keep", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!((count(".zst", ""), count(".wasm.zst", "modules")), (2, 2));
    // Only the newest trace (of the second module) stays: the first module goes with its traces.
    let out = in_trace_dir(dir.path(), &["gc", "--keep", "1"]);
    assert!(text(&out.stdout).starts_with("removed 1 trace(s)"), "{}", text(&out.stdout));
    assert_eq!((count(".zst", ""), count(".wasm.zst", "modules")), (1, 1));
    let replay = in_trace_dir(dir.path(), &["replay", "-q", "--no-cache", "latest"]);
    assert!(replay.status.code().is_some_and(|c| c < 200), "{}", text(&replay.stderr));
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line_definitions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = wtrace_with(&["completions", shell], b"", &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("record") && script.contains("expect-trap"), "{shell}: {script}");
    }
    let man = text(&wtrace_with(&["man"], b"", &[]).stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH wtrace"), "{man}");
    assert!(man.contains("record") && man.contains("replay"));
    let record = text(&wtrace_with(&["man", "record"], b"", &[]).stdout);
    assert!(record.contains(".TH wtrace-record") && record.contains("no\\-cache"), "{record}");
    assert_eq!(wtrace_with(&["man", "frobnicate"], b"", &[]).status.code(), Some(200));
}

/// A module with enough functions that compiling it takes a debug build more than a second.
fn slow_to_compile(dir: &Path) -> PathBuf {
    use std::fmt::Write as _;
    let mut wat = String::from("(module\n");
    for i in 0..4000 {
        let _ = writeln!(
            wat,
            "  (func (param i32) (result i32) (local i32) local.get 0 i32.const {i} i32.add local.tee 1 local.get 1 i32.mul i32.const 7 i32.rem_u)"
        );
    }
    wat.push_str("  (func (export \"_start\")))\n");
    let path = dir.join("slow.wat");
    std::fs::write(&path, wat).unwrap();
    path
}

/// Runs `wtrace ARGS` on a pseudo-terminal (util-linux `script`), returning what it showed.
fn on_a_terminal(args: &[&str]) -> String {
    let binary = env!("CARGO_BIN_EXE_wtrace");
    let command = std::iter::once(binary).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux `script` runs a command on a pseudo-terminal");
    text(&out.stdout)
}

#[test]
fn a_long_compilation_shows_one_transient_status_line_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let module = slow_to_compile(dir.path());
    let trace = dir.path().join("t.zst");
    let (module, trace) = (module.to_str().unwrap(), trace.to_str().unwrap());
    let shown = on_a_terminal(&["record", "--no-cache", "-o", trace, module]);
    let status = shown.find("wtrace: compiling slow.wat (").expect(&shown);
    let cleared = shown.find("\r\x1b[2K").expect(&shown);
    assert!(status < cleared && shown[cleared..].contains("wtrace: recorded"), "{shown:?}");
    assert!(!on_a_terminal(&["record", "-q", "--no-cache", "-o", trace, module]).contains("compiling"));
    let piped = wtrace_with(&["record", "--no-cache", "-o", trace, module], b"", &[]);
    assert!(!text(&piped.stderr).contains("compiling"), "{}", text(&piped.stderr));
}
