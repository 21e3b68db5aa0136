//! The exit codes of the `wtrace` command, public so that scripts and tests can name them.
//!
//! wtrace's own codes sit above 199 so that they can never be confused with a guest's status:
//! WASI limits a guest's exit status to 0–125, and 128+N means death by signal N. [`DOCUMENTED`]
//! is the one list `wtrace --help` prints and the README's table is checked against.

/// Success.
pub const SUCCESS: i32 = 0;
/// `record` and `replay`: the guest trapped (what `wasmtime run` exits with on a trap).
pub const GUEST_TRAPPED: i32 = wtrace_runtime::outcome::TRAP_EXIT_STATUS;
/// Usage error: bad flags, arguments or event range.
pub const USAGE: i32 = 200;
/// An input file is missing or unreadable.
pub const INPUT_MISSING: i32 = 201;
/// An input is not a wtrace trace.
pub const NOT_A_TRACE: i32 = 202;
/// The trace is damaged (truncated, bad checksum, corrupt).
pub const DAMAGED: i32 = 203;
/// The trace needs a newer wtrace (newer format major version).
pub const NEEDS_NEWER: i32 = 204;
/// `replay`: the run diverged from the recording.
pub const DIVERGED: i32 = 205;
/// `replay`: an `--expect-*` check failed.
pub const EXPECTATION_FAILED: i32 = 206;
/// An output could not be written (disk full, permissions); a recording that failed part-way,
/// and its replay.
pub const OUTPUT_FAILED: i32 = wtrace_runtime::outcome::RECORDING_FAILED_STATUS;
/// Internal error (a bug).
pub const INTERNAL: i32 = 208;
/// The module cannot be run: not valid Wasm or WAT, an unknown import, no such `--invoke`
/// function, a Wasm feature switched off.
pub const MODULE_UNUSABLE: i32 = 209;
/// `replay`: the trace was refused (recorded with another module, engine configuration or
/// Wasmtime version).
pub const REFUSED: i32 = 210;

/// A limit was reached: `replay`'s `--timeout` or `--max-memory`, or the machine would not
/// give the memory a trace's contents need.
pub const LIMIT_EXCEEDED: i32 = 211;
/// `record` and `replay`: the recording was interrupted by signal N (SIGHUP, SIGINT, SIGTERM):
/// 128 + N, as a shell reports a process that signal ended.
pub const INTERRUPTED_FIRST: i32 = 129;
/// The last of the `INTERRUPTED_FIRST` range (SIGTERM).
pub const INTERRUPTED_LAST: i32 = 143;

/// One documented exit status, or a range of them, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Documented {
    /// The first code.
    pub first: i32,
    /// The last code (the same as `first` for a single code).
    pub last: i32,
    /// What it means, as `--help` and the README say it.
    pub meaning: &'static str,
}

impl Documented {
    const fn one(code: i32, meaning: &'static str) -> Documented {
        Documented { first: code, last: code, meaning }
    }

    /// `200`, or `0–125` for a range.
    pub fn codes(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}–{}", self.first, self.last)
        }
    }
}

/// Every exit status `wtrace` uses, in the order `--help` and the README list them.
pub const DOCUMENTED: &[Documented] = &[
    Documented::one(SUCCESS, "success"),
    Documented::one(USAGE, "usage error: bad flags, arguments or event range"),
    Documented::one(INPUT_MISSING, "an input file is missing or unreadable"),
    Documented::one(NOT_A_TRACE, "an input is not a wtrace trace"),
    Documented::one(
        DAMAGED,
        "the trace is damaged (truncated, bad checksum, corrupt); `wtrace repair` may help",
    ),
    Documented::one(NEEDS_NEWER, "the trace needs a newer wtrace (newer format major version)"),
    Documented::one(DIVERGED, "`replay`: the run diverged from the recording"),
    Documented::one(EXPECTATION_FAILED, "`replay`: an `--expect-*` check failed"),
    Documented::one(
        OUTPUT_FAILED,
        "an output could not be written (disk full, permissions); a recording that failed part-way, and its replay",
    ),
    Documented::one(INTERNAL, "internal error (a bug)"),
    Documented::one(
        MODULE_UNUSABLE,
        "the module cannot be run: not valid Wasm or WAT, an unknown import, no such `--invoke` function, a Wasm feature switched off (`-W`)",
    ),
    Documented::one(
        REFUSED,
        "`replay`: the trace was refused (recorded with another module, engine configuration or Wasmtime version)",
    ),
    Documented::one(
        LIMIT_EXCEEDED,
        "a limit was reached: `replay --timeout` or `--max-memory`, or the machine's memory",
    ),
    Documented { first: 0, last: 125, meaning: "`record` and `replay`: the guest's own exit status" },
    Documented {
        first: INTERRUPTED_FIRST,
        last: INTERRUPTED_LAST,
        meaning: "`record` and `replay`: the recording was interrupted by a signal, 128 + its number (SIGHUP 129, SIGINT 130, SIGTERM 143)",
    },
    Documented::one(
        GUEST_TRAPPED,
        "`record` and `replay`: the guest trapped (what `wasmtime run` exits with on a trap)",
    ),
];

/// The exit-code section of `wtrace --help`.
pub fn help() -> String {
    use std::fmt::Write as _;
    let mut text = String::from("Exit codes:\n");
    for entry in DOCUMENTED {
        let _ = writeln!(text, "  {:<4} {}", entry.codes(), entry.meaning);
    }
    text.pop();
    text
}
