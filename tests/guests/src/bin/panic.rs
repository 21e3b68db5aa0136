//! Panics after printing a line: a Rust panic aborts, which traps on wasm32-wasip1.
fn parse_config(text: &str) -> u32 {
    text.trim().parse().unwrap_or_else(|e| panic!("bad config value {text:?}: {e}"))
}

fn main() {
    println!("parsing");
    let value = parse_config(&std::env::args().nth(1).unwrap_or_else(|| "forty-two".into()));
    println!("value {value}");
}
