//! Whole-process figures: `wtrace record` and `wtrace replay` against `wasmtime run` of the same
//! command, each a separate process, measured side by side in one run.
//!
//! - A short script on a large interpreter (a JavaScript engine, about 7 MB of Wasm), with cold
//!   caches (`wasmtime run -C cache=n`, `wtrace record --no-cache`) and warm ones.
//! - The size of such a trace in a trace directory, where the module is stored once.
//! - The cost of hashing the module, which every recording pays once.
//! - A program that reads 48 MB of files (half text, half incompressible): recorded-read
//!   bandwidth and the whole-process ratio.
//!
//! Targets (README, Benchmarks): warm record / run <= 1.1x, replay <= record, cold record /
//! run -C cache=n <= 1.1x, trace <= 1% of the module, >= 500 MB/s of recorded reads, <= 1.1x on
//! the file-reading program.
//!
//! `cargo bench --bench startup` builds the guest programs under `benches/guests` and compares
//! with the Wasmtime CLI of the same version from the PATH (or `$WASMTIME`), e.g. installed with
//! `cargo install wasmtime-cli --version 48.0.8 --locked`; without it, only wtrace's own
//! figures are printed.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{guests, median, ms, ratio};

const ROUNDS: usize = 5;

/// The Wasmtime CLI, if there is one.
fn wasmtime() -> Option<PathBuf> {
    let candidate = std::env::var_os("WASMTIME").map_or_else(|| PathBuf::from("wasmtime"), PathBuf::from);
    let out = Command::new(&candidate).arg("--version").output().ok()?;
    println!("baseline: {} ({})", String::from_utf8_lossy(&out.stdout).trim(), candidate.display());
    Some(candidate)
}

/// One command line, run as its own process with its caches and trace directory in `home`.
struct Run<'a> {
    program: &'a Path,
    args: Vec<String>,
    home: &'a Path,
}

impl<'a> Run<'a> {
    fn new(program: &'a Path, home: &'a Path, args: &[&str]) -> Run<'a> {
        Run { program, args: args.iter().map(|a| (*a).to_owned()).collect(), home }
    }

    fn time(&self) -> Duration {
        let start = Instant::now();
        let status = Command::new(self.program)
            .args(&self.args)
            .env("XDG_CACHE_HOME", self.home.join("cache"))
            .env("WTRACE_CACHE_DIR", self.home.join("cache/wtrace"))
            .env("WTRACE_DIR", self.home.join("traces"))
            .env("HOME", self.home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run");
        let elapsed = start.elapsed();
        assert!(
            status.code().is_some_and(|c| c < 200),
            "{} {:?}: {status}",
            self.program.display(),
            self.args
        );
        elapsed
    }
}

/// The median of `ROUNDS` runs of each, run alternately so drift affects all alike.
fn side_by_side(runs: &[&Run<'_>]) -> Vec<Duration> {
    let mut samples = vec![Vec::new(); runs.len()];
    for _ in 0..ROUNDS {
        for (run, samples) in runs.iter().zip(&mut samples) {
            samples.push(run.time());
        }
    }
    samples.into_iter().map(median).collect()
}

/// Writes six 8 MB files, alternately text-like and incompressible; returns the bytes written.
fn write_files(dir: &Path) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..6 {
        let mut content = Vec::with_capacity(8 << 20);
        while content.len() < 8 << 20 {
            if i % 2 == 0 {
                content.extend_from_slice(format!("line {:016x}\n", next() % 1_000_000).as_bytes());
            } else {
                content.extend_from_slice(&next().to_le_bytes());
            }
        }
        std::fs::write(dir.join(format!("file{i}.bin")), &content).unwrap();
    }
    6 * (8 << 20)
}

fn main() {
    let wtrace = PathBuf::from(env!("CARGO_BIN_EXE_wtrace"));
    let guests = guests();
    let baseline = wasmtime();
    if baseline.is_none() {
        println!("baseline: no `wasmtime` on the PATH (or in $WASMTIME); only wtrace's own figures follow");
    }
    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path();

    short_script_on_an_interpreter(&wtrace, baseline.as_deref(), &guests, home);
    reading_files(&wtrace, baseline.as_deref(), &guests, home);
}

/// A short script on a large interpreter: cold and warm caches, the trace's size in a trace
/// directory, and the cost of hashing the module.
fn short_script_on_an_interpreter(wtrace: &Path, baseline: Option<&Path>, guests: &Path, home: &Path) {
    let data = home.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("short.js"), "let s = 0; for (let i = 0; i < 1000; i++) { s += i } s").unwrap();
    let jsrun = guests.join("jsrun.wasm");
    let module_len = std::fs::metadata(&jsrun).expect("jsrun.wasm").len();
    let (jsrun_s, dir) = (jsrun.to_str().unwrap(), format!("{}::/data", data.display()));
    let trace = home.join("js.zst");
    let trace_s = trace.to_str().unwrap();
    let guest = [dir.as_str(), jsrun_s, "/data/short.js"];
    // The default: a trace in the trace directory, the module in its store.
    let record_cold =
        Run::new(wtrace, home, &[&["record", "-q", "--no-cache", "--dir"][..], &guest].concat());
    let record_warm = Run::new(wtrace, home, &[&["record", "-q", "--dir"][..], &guest].concat());
    let replay = Run::new(wtrace, home, &["replay", "-q", "latest"]);
    // A self-contained trace: the module compressed into it at every recording.
    let record_embed =
        Run::new(wtrace, home, &[&["record", "-q", "-o", trace_s, "--dir"][..], &guest].concat());
    println!("\nshort script on jsrun.wasm ({:.1} MB of Wasm), median of {ROUNDS}", module_len as f64 / 1e6);
    record_warm.time();
    if let Some(wasmtime) = baseline {
        let run_cold = Run::new(wasmtime, home, &[&["run", "-C", "cache=n", "--dir"][..], &guest].concat());
        let run_warm = Run::new(wasmtime, home, &[&["run", "--dir"][..], &guest].concat());
        run_warm.time();
        let f = side_by_side(&[&run_cold, &record_cold, &run_warm, &record_warm, &replay, &record_embed]);
        println!("cold  wasmtime run -C cache=n  {}", ms(f[0]));
        println!("cold  wtrace record --no-cache {}   {} (target <= 1.1x)", ms(f[1]), ratio(f[1], f[0]));
        println!("warm  wasmtime run             {}", ms(f[2]));
        println!("warm  wtrace record            {}   {} (target <= 1.1x)", ms(f[3]), ratio(f[3], f[2]));
        println!(
            "warm  wtrace replay            {}   {} of record (target <= 1.0x)",
            ms(f[4]),
            ratio(f[4], f[3])
        );
        println!("warm  wtrace record -o (embeds the module) {}   {}", ms(f[5]), ratio(f[5], f[2]));
    } else {
        let f = side_by_side(&[&record_cold, &record_warm, &replay, &record_embed]);
        println!("cold  wtrace record --no-cache {}", ms(f[0]));
        println!("warm  wtrace record            {}", ms(f[1]));
        println!(
            "warm  wtrace replay            {}   {} of record (target <= 1.0x)",
            ms(f[2]),
            ratio(f[2], f[1])
        );
        println!("warm  wtrace record -o (embeds the module) {}", ms(f[3]));
    }

    // In a trace directory the module is stored once, beside the traces.
    let trace_len = std::fs::read_dir(home.join("traces"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "zst"))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap();
    println!(
        "trace in a trace directory: {trace_len} bytes, {:.3}% of the module (target <= 1%)",
        trace_len as f64 * 100.0 / module_len as f64
    );

    // Hashing the module, which every recording does once.
    let bytes = std::fs::read(&jsrun).unwrap();
    let hash = median(
        (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(wtrace::traces::sha256(std::hint::black_box(&bytes)));
                start.elapsed()
            })
            .collect(),
    );
    println!(
        "hashing the module (SHA-256) per recording: {} ({:.0} MB/s)",
        ms(hash),
        module_len as f64 / hash.as_secs_f64() / 1e6
    );
}

/// A program that reads 48 MB of files.
fn reading_files(wtrace: &Path, baseline: Option<&Path>, guests: &Path, home: &Path) {
    let files = home.join("files");
    let read_bytes = write_files(&files);
    let filesum = guests.join("filesum.wasm");
    let files_dir = format!("{}::/files", files.display());
    let guest = [files_dir.as_str(), filesum.to_str().unwrap(), "/files"];
    let trace = home.join("files.zst");
    let trace_s = trace.to_str().unwrap();
    let record = Run::new(wtrace, home, &[&["record", "-q", "-o", trace_s, "--dir"][..], &guest].concat());
    let replay = Run::new(wtrace, home, &["replay", "-q", trace_s]);
    record.time();
    println!(
        "\nfilesum.wasm reading {} MB of files (half text, half incompressible), median of {ROUNDS}",
        read_bytes / 1_000_000
    );
    if let Some(wasmtime) = baseline {
        let run = Run::new(wasmtime, home, &[&["run", "--dir"][..], &guest].concat());
        run.time();
        let f = side_by_side(&[&run, &record, &replay]);
        let added = f[1].saturating_sub(f[0]).max(Duration::from_micros(1));
        println!("warm  wasmtime run             {}", ms(f[0]));
        println!("warm  wtrace record            {}   {} (target <= 1.1x)", ms(f[1]), ratio(f[1], f[0]));
        println!("warm  wtrace replay            {}   {} of record", ms(f[2]), ratio(f[2], f[1]));
        println!(
            "recorded reads: {:.0} MB/s over the time recording adds (target >= 500 MB/s)",
            read_bytes as f64 / added.as_secs_f64() / 1e6
        );
    } else {
        let f = side_by_side(&[&record, &replay]);
        println!("warm  wtrace record            {}", ms(f[0]));
        println!("warm  wtrace replay            {}   {} of record", ms(f[1]), ratio(f[1], f[0]));
    }
    println!(
        "trace: {} bytes for {} MB read",
        std::fs::metadata(&trace).unwrap().len(),
        read_bytes / 1_000_000
    );
}
