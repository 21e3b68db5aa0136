//! Parses arbitrary bytes as a decompressed event stream. Data frames are checksummed, so the
//! `reader` target rarely gets this far; this target exercises record splitting and decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wtrace_traces::parse_event_stream(data);
});
