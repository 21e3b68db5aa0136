//! The error type of the command line: every library error becomes one line of text with a hint
//! and one of the documented [`wtrace::exit_codes`], chosen by the error's type, never by its
//! message.

use std::path::Path;

use wtrace::exit_codes;
use wtrace::{SetupError, TraceError};

/// An error ready for the user: what went wrong, what to do, and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: i32,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    /// Nothing to report: the reader closed stdout (`wtrace dump | head`), a normal end.
    pub(crate) silent: bool,
}

impl CliError {
    pub(crate) fn new(code: i32, message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        CliError { code, message: message.into(), hint: hint.into(), silent: false }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::new(exit_codes::USAGE, message, Some("see `wtrace help`".to_string()))
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        CliError::new(
            exit_codes::INTERNAL,
            message,
            Some("this is a bug in wtrace; please report it".to_string()),
        )
    }

    /// Maps a trace error about the file at `path` to exit code, message and hint.
    pub(crate) fn from_trace(error: &TraceError, path: &Path) -> Self {
        let shown = path.display();
        let (code, hint) = match error {
            TraceError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => (
                exit_codes::INPUT_MISSING,
                Some("check the path; `wtrace record` writes new traces".to_string()),
            ),
            TraceError::Open { .. } => {
                (exit_codes::INPUT_MISSING, Some("check the path and its permissions".into()))
            }
            TraceError::Empty | TraceError::NotATrace { .. } => {
                (exit_codes::NOT_A_TRACE, Some(format!("{shown} is not a trace written by `wtrace record`")))
            }
            TraceError::NewerFormat { writer, .. } => {
                (exit_codes::NEEDS_NEWER, Some(format!("install wtrace {writer} or later to read it")))
            }
            damage if damage.is_damage() => (
                exit_codes::DAMAGED,
                Some(format!("the file is damaged; `wtrace repair {shown}` keeps every intact event")),
            ),
            TraceError::BeingRecorded { .. } => (
                exit_codes::INPUT_MISSING,
                Some("wait for the recording to end (or Ctrl-C it: an interrupted trace is complete)".into()),
            ),
            TraceError::ImpossibleEvent { .. } => {
                (exit_codes::DAMAGED, Some("the trace was altered; it cannot be replayed".into()))
            }
            TraceError::ModuleNotEmbedded { .. } | TraceError::ModuleHashMismatch { .. } => {
                (exit_codes::DAMAGED, Some("the trace's embedded module is missing or altered".into()))
            }
            TraceError::ModuleMissing { name, .. } => (
                exit_codes::INPUT_MISSING,
                Some(format!(
                    "pass --module PATH to replay it with the module it was recorded from ({name}), or `wtrace pack` it where its module store is"
                )),
            ),
            TraceError::NoSuchEvent { len, .. } => {
                (exit_codes::USAGE, Some(format!("choose events between 0 and {}", len.saturating_sub(1))))
            }
            TraceError::OutOfMemory { .. } => (
                exit_codes::LIMIT_EXCEEDED,
                Some("free memory, or raise the process's memory limit (`ulimit -v`)".into()),
            ),
            TraceError::Io { .. } => {
                (exit_codes::OUTPUT_FAILED, Some("check free space and permissions".into()))
            }
            _ => (exit_codes::INTERNAL, Some("this is a bug in wtrace; please report it".into())),
        };
        let message = match error {
            TraceError::Open { .. } => error.to_string(),
            _ => format!("{shown}: {error}"),
        };
        CliError::new(code, message, hint)
    }

    /// A module that cannot be run as asked, with the hint that fits why. `command` is the
    /// subcommand whose help explains the flags.
    pub(crate) fn from_setup(error: &SetupError, module: &str, command: &str) -> Self {
        let hint = match error {
            SetupError::InvalidModule { .. } => {
                format!("{module} must be a WebAssembly module (.wasm or .wat)")
            }
            SetupError::FeatureDisabled { feature, .. } => {
                format!("switch the Wasm feature on with -W, as for `wasmtime run` (-W {feature}=y)")
            }
            SetupError::UnknownImport { .. } | SetupError::ImportType { .. } => {
                format!("wtrace provides the WASI preview 1 (`{}`) imports", wtrace::runtime::wasi::MODULE)
            }
            SetupError::EngineRejected { .. } => {
                "the engine settings (-W) may not allow what the module needs".to_string()
            }
            _ => format!("see `wtrace {command} --help`"),
        };
        CliError::new(exit_codes::MODULE_UNUSABLE, error.to_string(), Some(hint))
    }

    /// An error writing our own output (stdout).
    pub(crate) fn from_output(error: &std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError { silent: true, ..CliError::new(exit_codes::SUCCESS, "", None) };
        }
        CliError::new(exit_codes::OUTPUT_FAILED, format!("cannot write output: {error}"), None)
    }
}
