//! Crafted traces, small on disk and huge when believed, against the reader's ceilings: each
//! gets one error line or an honest recovery, never a panic or an abort, and the command's peak
//! memory stays near that of reading a small valid trace (measured with `getrusage` of the
//! child, through Python, which every machine running these tests has).

use std::path::Path;
use std::process::Command;

use wtrace::traces::fuzzing::Parts;

use crate::common::text;

/// Runs `wtrace ARGS` and returns its exit status, stderr and peak RSS in MiB.
fn run_measured(args: &[&str]) -> (Option<i32>, String, f64) {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n\
                  sys.stderr.write(r.stderr.decode(errors='replace'))\n\
                  sys.stderr.write('\\nmaxrss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                  sys.exit(r.returncode)";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_wtrace"))
        .args(args)
        .env("WTRACE_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("wtrace-cache"))
        .output()
        .expect("python3 runs");
    let stderr = text(&out.stderr);
    let kib: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|n| n.parse().ok())
        .expect("python reports the peak");
    let stderr = stderr
        .lines()
        .filter(|l| !l.starts_with("maxrss_kib=") && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (out.status.code(), stderr, kib / 1024.0)
}

/// A zstd frame that declares `declared` bytes of content and holds `actual` bytes of RLE
/// blocks (4 bytes on disk per 128 KiB), with a content checksum that does not match: a single
/// segment, whose window is its whole declared size.
fn rle_frame(declared: u64, actual: u64) -> Vec<u8> {
    let mut frame = 0xFD2F_B528_u32.to_le_bytes().to_vec();
    frame.push(0xE4); // 8-byte content size, single segment, content checksum
    rle_blocks(frame, declared, actual)
}

/// Like [`rle_frame`], with a 128 KiB window, as a large frame the writer sends has: a decoder
/// takes it however large it declares itself.
fn windowed_rle_frame(declared: u64, actual: u64) -> Vec<u8> {
    let mut frame = 0xFD2F_B528_u32.to_le_bytes().to_vec();
    frame.push(0xC4); // 8-byte content size, a window descriptor, content checksum
    frame.push(7 << 3); // window 2^(10 + 7)
    rle_blocks(frame, declared, actual)
}

fn rle_blocks(mut frame: Vec<u8>, declared: u64, actual: u64) -> Vec<u8> {
    frame.extend_from_slice(&declared.to_le_bytes());
    let mut left = actual;
    loop {
        let size = left.min(128 << 10);
        left -= size;
        let last = u32::from(left == 0);
        let header = ((size as u32) << 3) | (1 << 1) | last;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0x2a);
        if left == 0 {
            break;
        }
    }
    frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    frame
}

/// The peak memory of `info` on the valid seed trace, the baseline others are held to.
fn baseline(dir: &Path) -> f64 {
    let path = dir.join("valid.zst");
    std::fs::write(&path, Parts::seed(false).assemble()).unwrap();
    let (status, stderr, mib) = run_measured(&["info", path.to_str().unwrap()]);
    assert_eq!(status, Some(0), "{stderr}");
    mib
}

fn assert_bounded(what: &str, mib: f64, base: f64) {
    assert!(mib < base + 64.0, "{what}: peak {mib:.1} MiB against {base:.1} MiB for a valid trace");
}

fn assert_clean(what: &str, status: Option<i32>, stderr: &str, allowed: &[i32]) {
    assert!(status.is_some_and(|s| allowed.contains(&s)), "{what}: exit {status:?}\n{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("memory allocation"), "{what}: {stderr}");
}

#[test]
fn data_frames_past_the_ceiling_are_refused_before_decompressing() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    // 300 MiB declared (past the 272 MiB ceiling) in 9 KiB; and 8 GiB declared in 4 bytes
    // more than the frame header: both found by recovery (no index).
    for (name, declared, actual) in [("over", 300u64 << 20, 300u64 << 20), ("absurd", 8 << 30, 128 << 10)] {
        let mut bytes = Parts { data: Vec::new(), finished: false, ..Parts::seed(false) }.assemble();
        bytes.extend_from_slice(&rle_frame(declared, actual));
        assert!(bytes.len() < 16 << 10, "{} bytes", bytes.len());
        let path = dir.path().join(format!("{name}.zst"));
        std::fs::write(&path, &bytes).unwrap();
        for command in ["info", "dump"] {
            let (status, stderr, mib) = run_measured(&[command, path.to_str().unwrap()]);
            assert_clean(name, status, &stderr, &[0]);
            assert!(stderr.contains("-byte ceiling"), "{name}: {stderr}");
            assert_bounded(name, mib, base);
        }
    }
}

#[test]
fn a_frame_that_inflates_past_what_it_declares_stops_at_the_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    // Declares 4 MiB but would inflate to 1 GiB: decompression stops at the declared size.
    let mut bytes = Parts { data: Vec::new(), finished: false, ..Parts::seed(false) }.assemble();
    bytes.extend_from_slice(&rle_frame(4 << 20, 1 << 30));
    let path = dir.path().join("inflates.zst");
    std::fs::write(&path, &bytes).unwrap();
    let (status, stderr, mib) = run_measured(&["dump", path.to_str().unwrap()]);
    assert_clean("inflates", status, &stderr, &[0]);
    assert!(stderr.contains("incomplete trace: 0 events recovered"), "{stderr}");
    assert_bounded("inflates", mib, base);
}

#[test]
fn a_frame_under_the_ceiling_stops_when_its_records_go_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    // 200 MiB of one repeated byte, under the 272 MiB ceiling: 42-byte records of an unknown
    // kind, then a record starting past any batch, which stops it within 16 MiB.
    let mut bytes = Parts { data: Vec::new(), finished: false, ..Parts::seed(false) }.assemble();
    bytes.extend_from_slice(&windowed_rle_frame(200 << 20, 200 << 20));
    assert!(bytes.len() < 16 << 10, "{} bytes", bytes.len());
    let path = dir.path().join("repeated.zst");
    std::fs::write(&path, &bytes).unwrap();
    for command in ["info", "dump"] {
        let (status, stderr, mib) = run_measured(&[command, path.to_str().unwrap()]);
        assert_clean("repeated", status, &stderr, &[0]);
        assert!(stderr.contains("past any batch the writer sends"), "{stderr}");
        assert_bounded("repeated", mib, base);
    }
}

#[test]
fn a_module_under_the_ceiling_that_is_not_the_named_one_never_costs_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    // 768 MiB of one repeated byte under the header's name: the streaming hash pass finds it
    // is not the module before any of it is kept.
    let mut header = wtrace::Trace::from_bytes(Parts::seed(false).assemble()).unwrap().header().clone();
    header.run.modules[0].size = 768 << 20;
    header.run.modules[0].sha256 = [7; 32];
    let encoded = Parts::header_body(&header);
    let mut module = 0u32.to_le_bytes().to_vec();
    module.extend_from_slice(&windowed_rle_frame(768 << 20, 768 << 20));
    let parts = Parts { header: encoded, modules: vec![module], ..Parts::seed(false) };
    let path = dir.path().join("module.zst");
    std::fs::write(&path, parts.assemble()).unwrap();
    let (status, stderr, mib) = run_measured(&["replay", path.to_str().unwrap()]);
    assert_clean("module", status, &stderr, &[203]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_bounded("module", mib, base);
}

#[test]
fn a_module_past_the_ceiling_is_refused_before_decompressing() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    // The header claims a 1 TiB module; the frame holds a few bytes of RLE blocks.
    let mut header = wtrace::Trace::from_bytes(Parts::seed(false).assemble()).unwrap().header().clone();
    header.run.modules[0].size = 1 << 40;
    let encoded = Parts::header_body(&header);
    let mut module = 0u32.to_le_bytes().to_vec();
    module.extend_from_slice(&rle_frame(1 << 40, 256 << 20));
    let parts = Parts { header: encoded, modules: vec![module], ..Parts::seed(false) };
    let path = dir.path().join("module.zst");
    std::fs::write(&path, parts.assemble()).unwrap();
    let (status, stderr, mib) = run_measured(&["replay", path.to_str().unwrap()]);
    assert_clean("module", status, &stderr, &[203]);
    assert!(stderr.contains("past the 1073741824-byte ceiling"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_bounded("module", mib, base);
}

#[test]
fn lengths_that_claim_the_world_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path());
    // A varint claiming 2^60 entries, in the index and in the header's run information.
    let claim = [253u8, 0, 0, 0, 0, 0, 0, 0, 0x10];
    let seed = Parts::seed(false);
    let mut header = seed.header.clone();
    let preamble = 6 + usize::from(u16::from_le_bytes([header[4], header[5]]));
    header.truncate(preamble);
    header.extend_from_slice(&[1, 0]);
    header.extend_from_slice(&claim);
    let cases = [
        ("index", Parts { index: Some(claim.to_vec()), ..seed.clone() }, vec![0]),
        ("header", Parts { header, ..seed.clone() }, vec![203]),
        ("events", Parts { data: vec![[&[10u8, 1][..], &claim[..]].concat()], ..seed.clone() }, vec![0, 203]),
    ];
    for (name, parts, allowed) in cases {
        let path = dir.path().join(format!("{name}.zst"));
        std::fs::write(&path, parts.assemble()).unwrap();
        for command in ["info", "dump"] {
            let (status, stderr, mib) = run_measured(&[command, path.to_str().unwrap()]);
            assert_clean(name, status, &stderr, &allowed);
            assert_bounded(name, mib, base);
        }
    }
}

#[test]
fn a_machine_short_of_memory_gets_an_error_line_not_an_abort() {
    use crate::common::{clock, fd_write, write_trace};
    let dir = tempfile::tempdir().unwrap();
    // A real 96 MiB event (a read of zeros compresses to almost nothing) and a reader whose
    // address space cannot hold it twice.
    let path = dir.path().join("big.zst");
    let big = fd_write(&vec![0; 96 << 20]);
    write_trace(&path, &[clock(0), big, clock(1)], wtrace::traces::WriterOptions::default());
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let shell = format!("ulimit -v 160000; exec {} dump {}", env!("CARGO_BIN_EXE_wtrace"), path.display());
    let out = Command::new("sh").args(["-c", &shell]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(211), "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("not enough memory for the"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // With the memory, the same trace reads.
    let out = crate::common::wtrace(&["info", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
