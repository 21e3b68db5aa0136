//! Prints the wall clock, a monotonic interval and 16 random bytes: different on every run.
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

fn main() {
    let start = Instant::now();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    let mut bytes = [0u8; 16];
    // SAFETY: `bytes` is a valid, writable buffer of the length passed.
    let errno = unsafe { random_get(bytes.as_mut_ptr(), bytes.len()) };
    assert_eq!(errno, 0);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("wall clock: {now} ns");
    println!("random: {hex}");
    println!("elapsed: {} ns", start.elapsed().as_nanos());
}
