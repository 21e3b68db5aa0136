//! What the benchmarks share: where the repository is, building the guest programs under
//! `benches/guests`, and printing durations.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the benchmarks' guest programs (cargo skips it when they are up to date); returns the
/// directory of the `.wasm` files.
pub(crate) fn guests() -> PathBuf {
    let target = root().join("target/bench-guests");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip1", "--manifest-path"])
        .arg(root().join("benches/guests/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building benches/guests failed; is the wasm32-wasip1 target installed?");
    target.join("wasm32-wasip1/release")
}

pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

pub(crate) fn ratio(a: Duration, b: Duration) -> String {
    format!("{:6.3}x", a.as_secs_f64() / b.as_secs_f64())
}
