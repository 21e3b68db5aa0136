//! Reads `/data/input.txt`, writes it upper-cased to `/data/output.txt`, reads that back,
//! and lists the directory.
use std::fs;

fn main() {
    let input = fs::read_to_string("/data/input.txt").expect("read input");
    println!("read {} bytes: {}", input.len(), input.trim_end());
    fs::write("/data/output.txt", input.to_uppercase()).expect("write output");
    let back = fs::read_to_string("/data/output.txt").expect("read output back");
    println!("wrote and read back: {}", back.trim_end());
    let mut names: Vec<String> =
        fs::read_dir("/data").expect("list").map(|e| e.expect("entry").file_name().into_string().unwrap()).collect();
    names.sort();
    println!("directory: {}", names.join(", "));
    let size = fs::metadata("/data/input.txt").expect("stat").len();
    println!("input.txt is {size} bytes");
}
