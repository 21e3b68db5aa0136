//! Prints a line, then traps with `unreachable` in a function of its own: the trap the TUI's
//! source view is tested on (the module has line tables, and this file is where they point).

#[inline(never)]
fn check_length(header: &[u8]) -> u32 {
    let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if length > 64 {
        core::arch::wasm32::unreachable();
    }
    length
}

fn main() {
    println!("checking the header");
    let header = std::hint::black_box([0xff_u8; 8]);
    println!("length {}", check_length(&header));
}
