//! Replay assertions for Rust tests: `replay.assert_trap(code).in_function(name).at_wasm_pc(pc)`,
//! exit status, output. A failed assertion panics (like `assert_eq!`) with a message written
//! for people: what was expected, what the replay did, and a line diff for output.

// Assertions are called for their panic; their results are for chaining, not for use.
#![allow(clippy::return_self_not_must_use, clippy::manual_assert)]

use std::fmt::Write as _;

use wtrace_traces::{Trap, TrapCode};

use crate::replay::Replay;
use wtrace_runtime::RunEnd;
use wtrace_runtime::outcome::{describe_frame, readable_name};

impl Replay {
    /// Asserts the replay followed the recording to the same end.
    #[track_caller]
    pub fn assert_matched(&self) -> &Self {
        if let Some(divergence) = &self.divergence {
            panic!("{divergence}");
        }
        match &self.recorded {
            None => panic!("the recording stopped before the run ended; the replay {}", self.end.describe()),
            Some(recorded) if !crate::replay::ends_match(recorded, &self.end) => panic!(
                "the replay ended differently from the recording\n  recorded: {}\n  replayed: {}",
                recorded.describe(),
                self.end.describe()
            ),
            Some(_) => self,
        }
    }

    /// Asserts the run trapped with `code`; chain [`TrapAssert::in_function`] and
    /// [`TrapAssert::at_wasm_pc`] to pin down where.
    #[track_caller]
    #[allow(clippy::needless_pass_by_value)] // `assert_trap(TrapCode::Unreachable...)` reads best
    pub fn assert_trap(&self, code: TrapCode) -> TrapAssert<'_> {
        match &self.end {
            RunEnd::Trapped(trap) if trap.code == code => TrapAssert { trap },
            RunEnd::Trapped(trap) => panic!(
                "expected trap {}, but the run trapped with {} ({}){}",
                code.name(),
                trap.code.name(),
                trap.message,
                backtrace(trap)
            ),
            other => panic!("expected trap {}, but the run {}", code.name(), other.describe()),
        }
    }

    /// Asserts the guest exited with `status`.
    #[track_caller]
    pub fn assert_exit(&self, status: i32) -> &Self {
        match &self.end {
            RunEnd::Exited(code) if *code == status => self,
            other => panic!("expected exit status {status}, but the run {}", other.describe()),
        }
    }

    /// Asserts the guest's stdout was exactly `expected`.
    #[track_caller]
    pub fn assert_stdout(&self, expected: impl AsRef<[u8]>) -> &Self {
        if let Some(diff) = output_diff("stdout", expected.as_ref(), &self.stdout) {
            panic!("{diff}");
        }
        self
    }

    /// Asserts the guest's stderr was exactly `expected`.
    #[track_caller]
    pub fn assert_stderr(&self, expected: impl AsRef<[u8]>) -> &Self {
        if let Some(diff) = output_diff("stderr", expected.as_ref(), &self.stderr) {
            panic!("{diff}");
        }
        self
    }
}

/// Further assertions on a trap; see [`Replay::assert_trap`].
#[derive(Debug, Clone, Copy)]
pub struct TrapAssert<'a> {
    trap: &'a Trap,
}

impl<'a> TrapAssert<'a> {
    /// Asserts the innermost frame is in the function named `name` in the name section,
    /// either as it is spelled there or, for Rust, demangled without the hash
    /// (`app::parse_header`).
    #[track_caller]
    pub fn in_function(self, name: &str) -> Self {
        let innermost = self.trap.frames.first().and_then(|f| f.func_name.as_deref());
        if !innermost.is_some_and(|raw| raw == name || readable_name(raw) == name) {
            panic!(
                "expected the trap in function `{name}`, but it is in {}{}",
                innermost.map_or_else(
                    || "a function without a name".to_string(),
                    |n| format!("`{}`", readable_name(n))
                ),
                backtrace(self.trap)
            );
        }
        self
    }

    /// Asserts the innermost frame's Wasm PC (byte offset in the module) is `pc`.
    #[track_caller]
    pub fn at_wasm_pc(self, pc: u32) -> Self {
        let innermost = self.trap.frames.first().and_then(|f| f.module_offset);
        if innermost != Some(pc) {
            panic!(
                "expected the trap at Wasm PC {pc:#x}, but it is at {}{}",
                innermost.map_or_else(|| "an unknown PC".to_string(), |p| format!("{p:#x}")),
                backtrace(self.trap)
            );
        }
        self
    }

    /// The trap, for checks of your own.
    pub fn trap(self) -> &'a Trap {
        self.trap
    }
}

/// The trap's backtrace, indented, after a newline.
fn backtrace(trap: &Trap) -> String {
    let mut text = String::from("\nWasm backtrace:");
    for (i, frame) in trap.frames.iter().enumerate() {
        let _ = write!(text, "\n  {i:>3}: {}", describe_frame(frame));
    }
    text
}

/// A readable difference between expected and actual output, or `None` when they are equal:
/// the line numbers that differ, each shown as `-expected` / `+actual`, with escapes for
/// bytes that are not printable text.
fn output_diff(stream: &str, expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let expected_text = String::from_utf8_lossy(expected);
    let actual_text = String::from_utf8_lossy(actual);
    let want: Vec<&str> = expected_text.split_inclusive('\n').collect();
    let got: Vec<&str> = actual_text.split_inclusive('\n').collect();
    let mut text = format!(
        "{stream} differs from the expected ({} bytes expected, {} replayed)\n--- expected\n+++ replayed\n",
        expected.len(),
        actual.len()
    );
    let mut shown = 0;
    for line in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(line), got.get(line));
        if w == g {
            continue;
        }
        if shown == 20 {
            text.push_str("... (more lines differ)\n");
            break;
        }
        let _ = writeln!(text, "@@ line {} @@", line + 1);
        if let Some(w) = w {
            let _ = writeln!(text, "-{}", w.escape_debug());
        }
        if let Some(g) = g {
            let _ = writeln!(text, "+{}", g.escape_debug());
        }
        shown += 1;
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_the_differing_lines() {
        let diff = output_diff("stdout", b"a\nb\nc\n", b"a\nB\nc\nd\n").unwrap();
        assert!(diff.contains("@@ line 2 @@\n-b\\n\n+B\\n\n"), "{diff}");
        assert!(diff.contains("@@ line 4 @@\n+d\\n\n"), "{diff}");
        assert!(!diff.contains("line 1 @@"), "{diff}");
        assert_eq!(output_diff("stdout", b"same", b"same"), None);
    }
}
