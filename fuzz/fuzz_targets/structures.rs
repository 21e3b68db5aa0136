//! Reaches every decoder past the checksums: the first byte picks a part of a valid trace
//! holding every event kind — the header, the embedded module, the index, the seek table, a
//! data frame with or without the index (recovery), in format 1.1 or as a later minor version
//! writes it (bit 0) — and the rest of the input replaces it, with every checksum and size
//! recomputed (`wtrace_traces::fuzzing`). The trace is then read in full, and repaired. No
//! input may panic, hang or allocate past the reader's ceilings.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use wtrace_traces::fuzzing::Parts;

/// The seed traces, in format 1.1 and as a later minor version writes them: built once.
static SEEDS: LazyLock<[Parts; 2]> = LazyLock::new(|| [Parts::seed(false), Parts::seed(true)]);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, part)) = data.split_first() else { return };
    let mut parts = SEEDS[usize::from(selector & 1)].clone();
    let arm = (selector >> 1) % 7;
    match arm {
        0 => parts.header = part.to_vec(),
        1 => parts.modules = vec![part.to_vec()],
        2 => parts.index = Some(part.to_vec()),
        3 => parts.seek_table = Some(part.to_vec()),
        4 => parts.data = vec![part.to_vec()],
        5 => {
            parts.data = vec![part.to_vec()];
            parts.finished = false;
        }
        _ => {
            // A data frame after the seed's own, cut off: recovery, then repair.
            parts.data.push(part.to_vec());
            parts.finished = false;
        }
    }
    let bytes = parts.assemble();
    let cut = (arm == 6).then(|| bytes.clone());
    let Ok(trace) = wtrace_traces::Trace::from_bytes(bytes) else { return };
    for item in trace.events().on_this_thread() {
        if item.is_err() {
            break;
        }
    }
    let _ = trace.event(trace.len() / 2);
    let _ = trace.module_bytes(0);
    let _ = trace.header().engine_fingerprint();
    if let Some(bytes) = cut {
        let dir = std::env::temp_dir().join(format!("wtrace-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("cut.zst");
        if std::fs::write(&path, &bytes).is_ok() {
            let _ = wtrace_traces::repair(&path, None);
            if let Ok(repaired) = wtrace_traces::Trace::open(&path) {
                for item in repaired.events() {
                    if item.is_err() {
                        break;
                    }
                }
            }
        }
    }
});
