//! Opens arbitrary bytes as a trace and reads everything it claims to hold: no input may panic,
//! hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(trace) = wtrace_traces::Trace::from_bytes(data.to_vec()) else { return };
    for item in trace.events() {
        if item.is_err() {
            break;
        }
    }
    let _ = trace.event(trace.len() / 2);
    let _ = trace.event(trace.len());
    for index in 0..trace.header().run.modules.len() {
        let _ = trace.module_bytes(index);
    }
});
