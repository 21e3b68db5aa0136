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
