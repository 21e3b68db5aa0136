//! Writing to the terminal: buffered stdout that treats a closed pipe as a normal end, and the
//! one-line error report on stderr.

use std::io::{self, BufWriter, StdoutLock, Write};

use super::CliError;

/// Buffered, locked stdout.
pub(crate) fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(64 << 10, io::stdout().lock())
}

/// Prints `error: message; hint` as one line on stderr.
pub(crate) fn report_error(error: &CliError) {
    let mut stderr = io::stderr().lock();
    let _ = match &error.hint {
        Some(hint) => writeln!(stderr, "error: {}; {hint}", error.message),
        None => writeln!(stderr, "error: {}", error.message),
    };
}

/// Prints a warning line on stderr.
pub(crate) fn warn(message: &str) {
    let _ = writeln!(io::stderr().lock(), "warning: {message}");
}

/// Flushes stdout, mapping failures (other than a closed pipe) to an output error.
pub(crate) fn finish(mut out: impl Write) -> Result<(), CliError> {
    out.flush().map_err(|e| CliError::from_output(&e))
}

/// Prints a `wtrace: ...` status line on stderr (stdout belongs to the guest).
pub(crate) fn note(message: &str) {
    let _ = writeln!(io::stderr().lock(), "wtrace: {message}");
}

/// Writes text to stderr as it is.
pub(crate) fn print_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Writes text to stdout, treating a closed pipe as a normal end.
pub(crate) fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| CliError::from_output(&e))
}

/// How long a compilation runs before the status line appears.
const COMPILING_STATUS_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// A compile notice that shows `wtrace: compiling app.wasm (38 MB)…` on stderr when compiling
/// takes longer than a second, and clears it when done; `None` (no status) when stderr is not
/// a terminal.
pub(crate) fn compiling_status() -> Option<wtrace::runtime::module::CompileNotice> {
    use std::io::IsTerminal;
    use std::sync::{Arc, Condvar, Mutex};

    use wtrace::runtime::module::CompileEvent;

    #[derive(Default)]
    struct Status {
        done: bool,
        shown: bool,
    }
    if !io::stderr().is_terminal() {
        return None;
    }
    let shared = Arc::new((Mutex::new(Status::default()), Condvar::new()));
    Some(Arc::new(move |event: CompileEvent<'_>| {
        let (lock, wake) = &*shared;
        match event {
            CompileEvent::Started { name, bytes } => {
                *lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Status::default();
                let text = format!("wtrace: compiling {name} ({})…", megabytes(bytes));
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let (lock, wake) = &*shared;
                    let status = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let (mut status, _) = wake
                        .wait_timeout_while(status, COMPILING_STATUS_DELAY, |s| !s.done)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if !status.done {
                        let _ = write!(io::stderr().lock(), "\r{text}");
                        status.shown = true;
                    }
                });
            }
            CompileEvent::Finished => {
                let mut status = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                status.done = true;
                if status.shown {
                    // Carriage return and erase-line: the status leaves no trace.
                    let _ = write!(io::stderr().lock(), "\r\x1b[2K");
                }
                wake.notify_all();
            }
        }
    }))
}

fn megabytes(bytes: usize) -> String {
    if bytes >= 1_000_000 {
        format!("{:.0} MB", bytes as f64 / 1e6)
    } else {
        format!("{} kB", bytes.div_ceil(1000))
    }
}
