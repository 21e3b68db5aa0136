//! Calls as many `wasi_snapshot_preview1` functions as a sandboxed guest can, through std
//! where std has an API and directly otherwise, printing what each returned, so that the
//! recorder's write-set table can be audited function by function. Expects a writable
//! directory preopened as `/work`.
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn clock_res_get(id: u32, resolution: *mut u64) -> u16;
    fn fd_advise(fd: u32, offset: u64, len: u64, advice: u8) -> u16;
    fn fd_allocate(fd: u32, offset: u64, len: u64) -> u16;
    fn fd_fdstat_set_flags(fd: u32, flags: u16) -> u16;
    fn fd_fdstat_set_rights(fd: u32, base: u64, inheriting: u64) -> u16;
    fn fd_renumber(fd: u32, to: u32) -> u16;
    fn fd_tell(fd: u32, offset: *mut u64) -> u16;
    fn fd_pread(fd: u32, iovs: *const [u32; 2], len: usize, offset: u64, read: *mut u32) -> u16;
    fn fd_pwrite(fd: u32, iovs: *const [u32; 2], len: usize, offset: u64, written: *mut u32) -> u16;
    fn path_symlink(old: *const u8, old_len: usize, fd: u32, new: *const u8, new_len: usize) -> u16;
    fn fd_datasync(fd: u32) -> u16;
    fn proc_raise(sig: u8) -> u16;
    fn sched_yield() -> u16;
    fn sock_accept(fd: u32, flags: u16, accepted: *mut u32) -> u16;
    fn sock_recv(fd: u32, iovs: *const [u32; 2], len: usize, flags: u16, read: *mut u32, out_flags: *mut u16) -> u16;
    fn sock_send(fd: u32, iovs: *const [u32; 2], len: usize, flags: u16, sent: *mut u32) -> u16;
    fn sock_shutdown(fd: u32, how: u8) -> u16;
}

fn raw_fd(file: &File) -> u32 {
    use std::os::fd::AsRawFd;
    file.as_raw_fd() as u32
}

fn main() {
    let dir = "/work";
    // args_*, environ_*: read by std at startup and here.
    println!("args {:?}, {} env vars", std::env::args().collect::<Vec<_>>(), std::env::vars().count());
    // clock_time_get, clock_res_get
    let now = SystemTime::now();
    let mut resolution = 0u64;
    // SAFETY: a valid out-pointer.
    println!("clock_res_get -> {}", unsafe { clock_res_get(1, &mut resolution) });
    // random_get (through HashMap's RandomState)
    let mut map = std::collections::HashMap::new();
    map.insert("key", now);
    // path_open, fd_write, fd_pwrite, fd_seek, fd_tell, fd_read, fd_pread, fd_filestat_*
    let path = format!("{dir}/tour.txt");
    let mut file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(&path).unwrap();
    file.write_all(b"hello, wasi tour\n").unwrap();
    let upper = b"HELLO";
    let iov = [upper.as_ptr() as u32, upper.len() as u32];
    let mut written = 0u32;
    // SAFETY: the iovec points at a live buffer of the length given.
    println!("fd_pwrite -> {} ({written} bytes)", unsafe { fd_pwrite(raw_fd(&file), &iov, 1, 0, &mut written) });
    file.seek(SeekFrom::Start(7)).unwrap();
    let mut offset = 0u64;
    // SAFETY: a valid out-pointer.
    println!("fd_tell -> {} at {offset}", unsafe { fd_tell(raw_fd(&file), &mut offset) });
    let mut word = [0u8; 4];
    file.read_exact(&mut word).unwrap();
    let mut head = [0u8; 5];
    let iov = [head.as_mut_ptr() as u32, head.len() as u32];
    let mut read = 0u32;
    // SAFETY: the iovec points at a live, writable buffer of the length given.
    println!("fd_pread -> {} ({read} bytes)", unsafe { fd_pread(raw_fd(&file), &iov, 1, 0, &mut read) });
    println!("read {:?} and {:?}", String::from_utf8_lossy(&word), String::from_utf8_lossy(&head));
    file.set_len(12).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)).unwrap();
    println!("len {}", file.metadata().unwrap().len());
    file.sync_all().unwrap();
    // SAFETY: plain integer arguments.
    unsafe {
        println!("fd_datasync -> {}", fd_datasync(raw_fd(&file)));
        println!("fd_advise -> {}", fd_advise(raw_fd(&file), 0, 12, 0));
        println!("fd_allocate -> {}", fd_allocate(raw_fd(&file), 0, 64));
        println!("fd_fdstat_set_flags -> {}", fd_fdstat_set_flags(raw_fd(&file), 1));
        println!("fd_fdstat_set_rights -> {}", fd_fdstat_set_rights(raw_fd(&file), 0x1fff_ffff, 0x1fff_ffff));
    }
    let other = File::open(&path).unwrap();
    // SAFETY: plain integer arguments; `other` is not used after its descriptor is replaced.
    println!("fd_renumber -> {}", unsafe { fd_renumber(raw_fd(&other), raw_fd(&file)) });
    std::mem::forget(other);
    drop(file);
    // path_create_directory, path_filestat_get, path_rename, path_link, path_symlink,
    // path_readlink, fd_readdir, path_unlink_file, path_remove_directory
    fs::create_dir(format!("{dir}/sub")).unwrap();
    println!("is dir {}", fs::metadata(format!("{dir}/sub")).unwrap().is_dir());
    fs::rename(&path, format!("{dir}/sub/moved.txt")).unwrap();
    println!("hard link -> {:?}", fs::hard_link(format!("{dir}/sub/moved.txt"), format!("{dir}/sub/link.txt")).is_ok());
    let (target, link) = ("moved.txt", "sub/sym.txt");
    // SAFETY: both strings are live for the call; descriptor 3 is the preopened `/work`.
    println!("path_symlink -> {}", unsafe { path_symlink(target.as_ptr(), target.len(), 3, link.as_ptr(), link.len()) });
    println!("readlink {:?}", fs::read_link(format!("{dir}/sub/sym.txt")).unwrap());
    let mut names: Vec<String> =
        fs::read_dir(format!("{dir}/sub")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    println!("entries {names:?}");
    println!("set times -> {:?}", File::open(format!("{dir}/sub/moved.txt")).unwrap().set_modified(SystemTime::UNIX_EPOCH).is_ok());
    for name in &names {
        fs::remove_file(format!("{dir}/sub/{name}")).unwrap();
    }
    fs::remove_dir(format!("{dir}/sub")).unwrap();
    // poll_oneoff (sleep), sched_yield, proc_raise, sockets (no sockets here: errors)
    std::thread::sleep(Duration::from_millis(1));
    let iov = [0u32; 2];
    let (mut n, mut flags, mut accepted) = (0u32, 0u16, 0u32);
    // SAFETY: valid pointers to locals; descriptor 0 is not a socket, so nothing is written.
    unsafe {
        println!("sched_yield -> {}", sched_yield());
        println!("proc_raise -> {}", proc_raise(0));
        println!("sock_accept -> {}", sock_accept(0, 0, &mut accepted));
        println!("sock_recv -> {}", sock_recv(0, &iov, 1, 0, &mut n, &mut flags));
        println!("sock_send -> {}", sock_send(0, &iov, 1, 0, &mut n));
        println!("sock_shutdown -> {}", sock_shutdown(0, 1));
    }
    println!("elapsed {:?}", now.elapsed().is_ok());
    std::process::exit(3);
}
