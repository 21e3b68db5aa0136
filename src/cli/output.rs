//! Writing to the terminal: buffered stdout that treats a closed pipe as a normal end, and the
//! one-line error report on stderr.

use std::io::{self, BufWriter, StdoutLock, Write};

use wtrace::traces::display::escape_controls;

use super::CliError;

/// Buffered, locked stdout for what wtrace prints about a trace: control characters in it
/// are shown escaped (see [`escape_controls`]).
pub(crate) fn stdout() -> Escaping<BufWriter<StdoutLock<'static>>> {
    Escaping { inner: BufWriter::with_capacity(64 << 10, io::stdout().lock()), scratch: Vec::new() }
}

/// A writer that shows control characters (but newline and tab) as `\xNN` escapes.
pub(crate) struct Escaping<W: Write> {
    inner: W,
    scratch: Vec<u8>,
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if !wtrace::traces::display::has_controls(bytes) {
            self.inner.write_all(bytes)?;
            return Ok(bytes.len());
        }
        self.scratch.clear();
        wtrace::traces::display::escape_control_bytes(bytes, &mut self.scratch);
        self.inner.write_all(&self.scratch)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Prints `error: message; hint` as one line on stderr.
pub(crate) fn report_error(error: &CliError) {
    let mut stderr = io::stderr().lock();
    let _ = match &error.hint {
        Some(hint) => {
            writeln!(stderr, "error: {}; {}", escape_controls(&error.message), escape_controls(hint))
        }
        None => writeln!(stderr, "error: {}", escape_controls(&error.message)),
    };
}

/// Prints a warning line on stderr.
pub(crate) fn warn(message: &str) {
    let _ = writeln!(io::stderr().lock(), "warning: {}", escape_controls(message));
}

/// Flushes stdout, mapping failures (other than a closed pipe) to an output error.
pub(crate) fn finish(mut out: impl Write) -> Result<(), CliError> {
    out.flush().map_err(|e| CliError::from_output(&e))
}

/// Prints a `wtrace: ...` status line on stderr (stdout belongs to the guest).
pub(crate) fn note(message: &str) {
    let _ = writeln!(io::stderr().lock(), "wtrace: {}", escape_controls(message));
}

/// Writes wtrace's own text (a trap report, a divergence) to stderr, control characters
/// escaped.
pub(crate) fn print_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(escape_controls(text).as_bytes());
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
