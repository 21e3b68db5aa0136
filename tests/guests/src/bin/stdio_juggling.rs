//! Moves its stdio around as C programs do with `freopen` and `dup2` (which WASI libc turns
//! into `fd_renumber` and `fd_close`): sends stdout to a file and back, closes stderr, reuses
//! the freed numbers for files, and writes through every number as it goes. Only some of those
//! writes reach the terminal; the rest fail with EBADF or land in files under `/data`.

use std::fs::File;
use std::os::fd::IntoRawFd;

#[repr(C)]
struct Ciovec {
    buf: *const u8,
    len: usize,
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn fd_renumber(fd: u32, to: u32) -> u16;
    fn fd_close(fd: u32) -> u16;
    fn fd_write(fd: u32, iovs: *const Ciovec, iovs_len: usize, nwritten: *mut usize) -> u16;
}

/// One `fd_write` of `text` in two iovecs; returns the errno and how many bytes the host took
/// (a host may take fewer than offered: Wasmtime's stdout takes the first iovec only).
fn write_once(fd: u32, text: &[u8]) -> (u16, usize) {
    let (a, b) = text.split_at(text.len() / 2);
    let iovs = [Ciovec { buf: a.as_ptr(), len: a.len() }, Ciovec { buf: b.as_ptr(), len: b.len() }];
    let mut written = 0;
    // SAFETY: the iovecs point at live bytes, and `written` is a live out-pointer.
    let errno = unsafe { fd_write(fd, iovs.as_ptr(), iovs.len(), &mut written) };
    (errno, written)
}

/// Writes all of `text` as C's stdio does, again after a partial write; returns the errno.
fn write(fd: u32, text: &str) -> u16 {
    let mut left = text.as_bytes();
    while !left.is_empty() {
        match write_once(fd, left) {
            (0, written) => left = &left[written..],
            (errno, _) => return errno,
        }
    }
    0
}

fn renumber(from: u32, to: u32) {
    // SAFETY: plain WASI call on descriptor numbers.
    assert_eq!(unsafe { fd_renumber(from, to) }, 0, "fd_renumber({from}, {to})");
}

fn main() {
    write(1, "1: on the terminal\n");
    // A partial write, not completed: only what the host took reached the terminal.
    let (_, taken) = write_once(1, b"partial: half of this line reaches the terminal, the rest never\n");
    write(1, &format!("\n(the host took {taken} bytes)\n"));
    write(2, "2: on the terminal's stderr\n");

    // "dup2(1, saved)": stdout's stream moves to a high number (which must be open first).
    let saved = File::create("/data/placeholder.txt").unwrap().into_raw_fd() as u32;
    renumber(1, saved);
    let status = write(1, "lost: stdout is closed\n");
    write(saved, &format!("3: through the saved number {saved} (errno of the write to 1 was {status})\n"));

    // "freopen(file, stdout)": a file takes number 1, and what the program prints goes there.
    let file = File::create("/data/stdout.txt").unwrap().into_raw_fd() as u32;
    let one = File::create("/data/one.txt").unwrap().into_raw_fd() as u32;
    renumber(one, 1);
    write(1, "into one.txt through fd 1\n");
    renumber(file, 1);
    write(1, "into stdout.txt through fd 1\n");

    // Restore: the saved stream comes back to 1.
    renumber(saved, 1);
    write(1, "4: stdout restored\n");

    // Close stderr, write to it, then let a file reuse the number.
    // SAFETY: plain WASI call on a descriptor number.
    assert_eq!(unsafe { fd_close(2) }, 0);
    let status = write(2, "lost: stderr is closed\n");
    let reused = File::create("/data/reused.txt").unwrap().into_raw_fd() as u32;
    write(reused, &format!("into reused.txt through fd {reused}\n"));
    write(1, &format!("5: the write to closed stderr got errno {status}; a file then took fd {reused}\n"));
}
