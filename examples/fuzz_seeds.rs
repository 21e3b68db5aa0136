//! Writes the seed corpus of the `structures` fuzz target into DIR: for each part it replaces,
//! in both minor-version modes, the selector byte and the seed trace's own bytes of that part.
//!
//! ```text
//! cargo run --example fuzz_seeds -- fuzz/corpus/structures
//! ```
use wtrace::traces::fuzzing::Parts;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?;
    std::fs::create_dir_all(&dir)?;
    for newer_minor in [false, true] {
        let seed = Parts::seed(newer_minor);
        let (index, seek_table) = tail(&seed.assemble()).ok_or("the seed has a tail")?;
        let parts: [(&str, Vec<u8>); 7] = [
            ("header", seed.header.clone()),
            ("module", seed.modules[0].clone()),
            ("index", index),
            ("seek-table", seek_table),
            ("data", seed.data.concat()),
            ("data-recovered", seed.data.concat()),
            ("data-cut", seed.data[0].clone()),
        ];
        for (i, (name, bytes)) in parts.into_iter().enumerate() {
            let selector = (i as u8) << 1 | u8::from(newer_minor);
            let mut input = vec![selector];
            input.extend_from_slice(&bytes);
            let minor = if newer_minor { "newer" } else { "current" };
            std::fs::write(format!("{dir}/{name}-{minor}"), input)?;
        }
    }
    Ok(())
}

/// The index frame's body and the seek table of a finished trace: the table ends the file
/// (its footer gives the frame count), and its last entry is the index frame's length.
fn tail(trace: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(trace.get(at..at + 4)?.try_into().ok()?) as usize);
    let count = u32_at(trace.len().checked_sub(9)?)?;
    let table_at = trace.len().checked_sub(8 + count * 8 + 9)?;
    let index_len = u32_at(table_at + 8 + (count - 1) * 8)?;
    let index_at = table_at.checked_sub(index_len)?;
    // Skippable header (8 bytes), tag (4), body, check (8).
    let body = trace.get(index_at + 12..table_at - 8)?.to_vec();
    Some((body, trace[table_at..].to_vec()))
}
