//! Exit codes and the error type of the command line: every library error becomes one line of
//! text with a hint and one documented exit code.

use std::path::Path;

use wtrace::TraceError;

/// The documented exit codes (see `wtrace --help`). They sit above 199 so that they cannot be
/// mistaken for a guest's own exit status (WASI limits those to 0..126) or for death by signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    Success = 0,
    Usage = 200,
    InputMissing = 201,
    NotATrace = 202,
    Damaged = 203,
    NeedsNewer = 204,
    Diverged = 205,
    ExpectationFailed = 206,
    OutputFailed = 207,
    Internal = 208,
    ModuleUnusable = 209,
    Refused = 210,
    /// Stdout was closed by the reader (`wtrace dump | head`): stop quietly, successfully.
    Quiet = 255,
}

impl ExitCode {
    pub(crate) fn process_code(self) -> i32 {
        match self {
            ExitCode::Quiet => 0,
            other => other as i32,
        }
    }
}

/// An error ready for the user: what went wrong, what to do, and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: ExitCode,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl CliError {
    pub(crate) fn new(code: ExitCode, message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        CliError { code, message: message.into(), hint: hint.into() }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::new(ExitCode::Usage, message, Some("see `wtrace help`".to_string()))
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        CliError::new(
            ExitCode::Internal,
            message,
            Some("this is a bug in wtrace; please report it".to_string()),
        )
    }

    /// Maps a trace error about the file at `path` to exit code, message and hint.
    pub(crate) fn from_trace(error: &TraceError, path: &Path) -> Self {
        let shown = path.display();
        let (code, hint) = match error {
            TraceError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => (
                ExitCode::InputMissing,
                Some("check the path; `wtrace record` writes new traces".to_string()),
            ),
            TraceError::Open { .. } => {
                (ExitCode::InputMissing, Some("check the path and its permissions".into()))
            }
            TraceError::Empty | TraceError::NotATrace { .. } => {
                (ExitCode::NotATrace, Some(format!("{shown} is not a trace written by `wtrace record`")))
            }
            TraceError::NewerFormat { writer, .. } => {
                (ExitCode::NeedsNewer, Some(format!("install wtrace {writer} or later to read it")))
            }
            damage if damage.is_damage() => (
                ExitCode::Damaged,
                Some(format!("the file is damaged; `wtrace repair {shown}` keeps every intact event")),
            ),
            TraceError::ModuleNotEmbedded { .. } | TraceError::ModuleHashMismatch { .. } => {
                (ExitCode::Damaged, Some("the trace's embedded module is missing or altered".into()))
            }
            TraceError::NoSuchEvent { len, .. } => {
                (ExitCode::Usage, Some(format!("choose events between 0 and {}", len.saturating_sub(1))))
            }
            TraceError::Io { .. } => {
                (ExitCode::OutputFailed, Some("check free space and permissions".into()))
            }
            _ => (ExitCode::Internal, Some("this is a bug in wtrace; please report it".into())),
        };
        let message = match error {
            TraceError::Open { .. } => error.to_string(),
            _ => format!("{shown}: {error}"),
        };
        CliError::new(code, message, hint)
    }

    /// An error writing our own output (stdout).
    pub(crate) fn from_output(error: &std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError::new(ExitCode::Quiet, "", None);
        }
        CliError::new(ExitCode::OutputFailed, format!("cannot write output: {error}"), None)
    }
}
