//! Reads every file of the directory named by its first argument, in 64 KiB reads as buffered
//! readers do, and prints a checksum of each and the bytes read: a program whose work is
//! mostly reading files, as a renderer loading fonts or a compiler loading sources is.

use std::io::Read;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: filesum DIR");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).expect("read dir").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    let mut total = 0u64;
    let mut buffer = vec![0u8; 64 << 10];
    for path in paths {
        let mut file = std::fs::File::open(&path).expect("open");
        let mut sum = 0xcbf2_9ce4_8422_2325_u64;
        loop {
            let n = file.read(&mut buffer).expect("read");
            if n == 0 {
                break;
            }
            for &byte in &buffer[..n] {
                sum = (sum ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
            total += n as u64;
        }
        println!("{:016x} {}", sum, path.display());
    }
    println!("{total} bytes");
}
